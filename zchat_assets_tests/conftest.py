"""Shared fixtures: a sandbox on a free 127.0.0.1 port with a frozen clock, and Dagster resources."""

import os
from datetime import datetime, timezone

import pytest

# Partitions are fixed when the definitions load; tests pin their environment before any import.
os.environ.setdefault("ZCHAT_TIMEZONE", "America/Sao_Paulo")
os.environ.setdefault("ZCHAT_START_DATE", "2026-10-01")

from zchat_assets.resources import ZchatApi, ZchatLake  # noqa: E402
from zchat_assets.sandbox import SandboxApp, SandboxServer, World  # noqa: E402

TOKEN = "tok-7f3a9c-SECRET-value"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc).timestamp()
DAY = "2026-11-18"  # a complete day for NOW, with a few interactions still ongoing across midnight


def make_world(scale: int = 120, seed: int = 11) -> World:
    return World(seed=seed, scale=scale, now=lambda: NOW)


@pytest.fixture
def sandbox():
    """A fresh sandbox per test (faults and counters are per app)."""
    with SandboxServer(SandboxApp(make_world(), TOKEN, retry_after=0.05, slow_seconds=1.0)) as server:
        yield server


def fast_api(url: str, **overrides) -> ZchatApi:
    settings = dict(token=TOKEN, base_url=url, backoff_seconds=0.01, backoff_max_seconds=0.05,
                    min_retry_after=0.01, read_timeout=5.0, concurrency=8)
    settings.update(overrides)
    return ZchatApi(**settings)


@pytest.fixture
def resources(sandbox, tmp_path):
    return {"zchat_api": fast_api(sandbox.url), "zchat_lake": ZchatLake(uri=str(tmp_path / "lake"))}


class ReliabilityFigures:
    """What the fault suite proved, summed over the session and printed at the end of the run."""

    def __init__(self):
        self.runs = self.faults = self.protocols = self.messages = self.token_hits = 0

    def record(self, faults: int, protocols: int, messages: int, token_hits: int = 0) -> None:
        self.runs += 1
        self.faults += faults
        self.protocols += protocols
        self.messages += messages
        self.token_hits += token_hits


FIGURES = ReliabilityFigures()


@pytest.fixture
def reliability_figures() -> ReliabilityFigures:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES.runs:
        terminalreporter.write_line(
            f"reliability: {FIGURES.runs} runs against a faulty sandbox, {FIGURES.faults:,} faults injected, "
            f"{FIGURES.protocols:,} protocols and {FIGURES.messages:,} messages checked exactly, "
            f"{FIGURES.token_hits} token hits")
