"""A local simulator of the Zenvia Chat Data API, used by the demo, the tests and the benchmarks."""

from .app import FAULT_KINDS, SandboxApp, parse_faults, parse_gaps
from .dialects import DIALECTS, parse_dialects
from .server import SandboxServer
from .world import World

__all__ = ["DIALECTS", "FAULT_KINDS", "SandboxApp", "SandboxServer", "World", "parse_dialects", "parse_faults",
           "parse_gaps"]
