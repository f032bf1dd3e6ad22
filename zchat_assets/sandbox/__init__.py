"""A local simulator of the Zenvia Chat Data API, used by the demo, the tests and the benchmarks."""

from .app import FAULT_KINDS, SandboxApp, parse_faults
from .server import SandboxServer
from .world import World

__all__ = ["FAULT_KINDS", "SandboxApp", "SandboxServer", "World", "parse_faults"]
