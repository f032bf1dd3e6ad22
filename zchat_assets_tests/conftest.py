"""Shared fixtures: a sandbox on a free 127.0.0.1 port with a frozen clock, definitions built from
settings given as values, and Dagster resources pointed at the sandbox."""

import json
import time
import urllib.request
import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from zchat_assets.api import ClientSettings, ZchatClient
from zchat_assets.assets import build_account_defs
from zchat_assets.resources import ZchatApi, ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World
from zchat_assets.settings import AccountSettings

TOKEN = "tok-7f3a9c-SECRET-value"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc).timestamp()
DAY = "2026-11-18"  # a complete day for NOW, with a few interactions still ongoing across midnight
START = "2026-10-01"


def account_defs(**attributes) -> dg.Definitions:
    """One account's definitions from settings given as values; nothing is read from the environment."""
    return build_account_defs(AccountSettings(**{"start_date": START, **attributes}), {})


def daily_assets(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]


DEFS = account_defs()  # the unnamed account, as the shipped single-account setup builds it
DAILY = daily_assets(DEFS)
ALL = [*DAILY, *DEFS.asset_checks]


WINDOW = (f"{DAY}T00:00:00", f"{DAY}T23:59:59", "-0300")  # DAY as the API is asked for it


def make_world(scale: int = 120, seed: int = 11) -> World:
    return World(seed=seed, scale=scale, now=lambda: NOW)


@pytest.fixture
def sandbox():
    """A fresh sandbox per test (faults and counters are per app)."""
    with SandboxServer(SandboxApp(make_world(), TOKEN, retry_after=0.05, slow_seconds=1.0)) as server:
        yield server


def fast_client(sandbox, token: str = TOKEN, **settings) -> ZchatClient:
    """A client of the sandbox that retries at once (backoffs of tens of milliseconds)."""
    options = dict(base_url=sandbox.url, backoff_seconds=0.01, backoff_max_seconds=0.05, min_retry_after=0.01,
                   read_timeout=5.0)
    return ZchatClient(token, ClientSettings(**{**options, **settings}))


def eventually(condition, seconds: float = 10.0, what: str = "the condition") -> None:
    """Waits until `condition()` is true (a background thread has acted, a server answers): a loaded machine
    is slow, not wrong. Fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not true within {seconds:g} s"
        time.sleep(0.01)


def sandbox_stats(sandbox) -> dict:
    """What the sandbox counted: requests, in flight, per second, faults."""
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/stats") as answer:
        return json.loads(answer.read())


class Pick(list):
    """Definitions, and which of their assets to materialize: a step holding several datasets (the
    interactions) is given whole, with only some of its assets selected."""

    selection: list[dg.AssetKey]


def only(*names: str, assets=DAILY) -> Pick:
    pick = Pick(a for a in assets if any(k.path[-1] in names for k in a.keys))
    pick.selection = [k for a in pick for k in a.keys if k.path[-1] in names]
    return pick


def materialized(result: dg.ExecuteInProcessResult, dataset: str) -> list[dg.AssetMaterialization]:
    """The run's materializations of one dataset, whichever step made them."""
    return [e.materialization for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == dataset]


def materialize_some(assets, **kwargs) -> dg.ExecuteInProcessResult:
    """`dg.materialize` of definitions, or of `only`'s pick of them."""
    return dg.materialize(list(assets), selection=getattr(assets, "selection", None), **kwargs)


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
        self.notes: list[str] = []  # measured figures worth a line of their own

    def record(self, faults: int, protocols: int, messages: int, token_hits: int) -> None:
        """Called before the test's assertions, so a failing run's token hits still reach the summary;
        `token_hits` has no default, so a run that did not count them cannot pass as clean."""
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
    for note in FIGURES.notes:
        terminalreporter.write_line(note)
    if FIGURES.runs:
        terminalreporter.write_line(
            f"reliability: {FIGURES.runs} runs against a faulty sandbox, {FIGURES.faults:,} faults injected, "
            f"{FIGURES.protocols:,} protocols and {FIGURES.messages:,} messages checked exactly, "
            f"{FIGURES.token_hits} token hits")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One S3 server for the session, with one bucket; each test takes a prefix of its own (`s3_lake`)."""
    from .servers import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    server.bucket("lake")
    yield server
    server.stop()


@pytest.fixture
def s3_lake(s3_server, monkeypatch) -> str:
    """A lake URI of its own, with the standard AWS variables pointing s3fs (and boto3) at the server."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://lake/{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "s3"])
def lake_uri(request, tmp_path) -> str:
    """The same test on a local folder and on the S3 server."""
    return str(tmp_path / "lake") if request.param == "local" else request.getfixturevalue("s3_lake")


@pytest.fixture(scope="session")
def postgres():
    from .servers import Postgres

    server = Postgres().start()
    yield server
    server.stop()
