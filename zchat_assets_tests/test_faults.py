"""The fault matrix: a 7-day backfill under each fault the sandbox can inject, alone and all together.

Every run must end with exactly the sandbox's protocols, messages and report lines for each of the
seven days, each once; a fault that outlasts the retry budget must fail with one clear sentence and
leave the previous good days in place.
"""

import dagster as dg
import pytest

from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import ALL, TOKEN, fast_api, make_world
from .truth import assert_lake_matches, message_ids, protocols

pytestmark = pytest.mark.slow

DAYS = [f"2026-11-{d}" for d in range(12, 19)]
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}
SCALE = 24
RATE = 0.12

# name: (sandbox options, client options). Each fault alone at RATE, then every fault at once.
CASES = {
    **{kind: ({"faults": {kind: RATE}}, {}) for kind in
       ("500", "502", "503", "reset", "cut", "truncated", "success_false", "html", "empty")},
    "429 (Retry-After in seconds, 0, an HTTP date, or none)": ({"faults": {"429": RATE}}, {}),
    "slower than the read timeout": ({"faults": {"slow": 0.05}, "slow_seconds": 0.5}, {"read_timeout": 0.25}),
    "concurrency limit answered with 429": ({"max_in_flight": 3, "latency": 0.02}, {"concurrency": 8}),
    "page drift": ({"faults": {"drift": 0.6}}, {}),
    "all together": ({"faults": {**{k: 0.015 for k in ("500", "502", "503", "429", "reset", "cut", "truncated",
                                                          "success_false", "html", "empty")},
                                 "slow": 0.01, "drift": 0.4},
                      "max_in_flight": 5, "slow_seconds": 0.5}, {"read_timeout": 0.25}),
}


def backfill(server, lake_path, **client) -> tuple[dg.ExecuteInProcessResult, str]:
    """The run's result, and the text of its whole event log (retry warnings, errors, metadata)."""
    resources = {"zchat_api": fast_api(server.url, **{"page_size": 10, "max_retries": 10, **client}),
                 "zchat_lake": ZchatLake(uri=str(lake_path))}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(ALL, resources=resources, tags=RANGE, instance=instance,
                            raise_on_error=False)
    return result, "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))


@pytest.mark.parametrize("case", CASES)
def test_a_week_backfilled_under_a_fault_is_exact(case, tmp_path, reliability_figures):
    sandbox, client = CASES[case]
    world = make_world(scale=SCALE)
    app = SandboxApp(world, TOKEN, retry_after=0.02, **sandbox)
    with SandboxServer(app) as server:
        result, log = backfill(server, tmp_path, **client)
        injected = sum(app.stats.faults.values())
    hits = log.count(TOKEN)
    reliability_figures.record(faults=injected, protocols=sum(len(protocols(world, d)) for d in DAYS),
                               messages=sum(len(message_ids(world, d)) for d in DAYS), token_hits=hits)
    assert hits == 0
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [(c.asset_key.to_user_string(), c.check_name, {k: v.value for k, v in c.metadata.items()})
              for c in result.get_asset_check_evaluations() if not c.passed]
    assert not failed, failed
    # The pool keeps under a concurrency limit once it has met it, so that case sees only a few 429s.
    assert injected >= (1 if case.startswith("concurrency") else 5), app.stats.faults
    lake = Lake(str(tmp_path))
    for day in DAYS:
        assert_lake_matches(lake, world, day)
    assert "retrying in" in log or case == "page drift"


def test_a_fault_that_outlasts_the_retries_fails_clearly_and_keeps_the_good_days(tmp_path, reliability_figures):
    world = make_world(scale=SCALE)
    app = SandboxApp(world, TOKEN, retry_after=0.02)
    with SandboxServer(app) as server:
        good, good_log = backfill(server, tmp_path)
        assert good.success
        lake = Lake(str(tmp_path))
        before = {day: lake.read("messages", day) for day in DAYS}
        app.faults["503"] = 1.0
        result, log = backfill(server, tmp_path, max_retries=2)
    hits = (good_log + log).count(TOKEN)  # the failure's message is in its log
    reliability_figures.record(faults=sum(app.stats.faults.values()), protocols=0, messages=0, token_hits=hits)
    assert hits == 0
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    while error.cause:  # Dagster wraps the asset's own exception, which the UI shows as the cause
        error = error.cause
    message = error.message
    assert "still failed after 3 attempts" in message and "try again later" in message
    assert message.count(". ") <= 1
    for day in DAYS:
        assert lake.read("messages", day).equals(before[day])
        assert_lake_matches(lake, world, day)
