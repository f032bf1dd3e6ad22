"""The sandbox itself: determinism, the vendor's parameters and errors, and consistent figures."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
import requests

from zchat_assets.sandbox import parse_faults
from zchat_assets.sandbox.views import ADDITIVE, ApiProblem, Views, parse_offset

from .conftest import DAY, TOKEN, make_world

API = "/api/ms/external"


def get(sandbox, path, **params):
    return requests.get(f"{sandbox.url}{API}/{path}", params={"token": TOKEN, **params})


def test_same_seed_same_data_other_seed_other_data():
    day = date.fromisoformat(DAY)
    assert make_world().day(day) == make_world().day(day)
    assert make_world(seed=12).day(day) != make_world().day(day)


def test_wrong_or_missing_token_is_401_in_the_vendor_shape(sandbox):
    for params in ({"token": "nope"}, {}):
        answer = requests.get(f"{sandbox.url}{API}/history", params=params)
        assert answer.status_code == 401
        assert answer.json() == {"error": "Invalid or missing token", "status": 401, "success": False}


@pytest.mark.parametrize("params,message", [
    ({"limit": "0"}, "'limit' must be between 1 and 10000"),
    ({"limit": "10001"}, "'limit' must be between 1 and 10000"),
    ({"page": "0"}, "'page' must be greater than or equal to 1"),
    ({"from": "18/11/2026"}, "Invalid 'from' date"),
    ({"timezone": "BRT"}, "Invalid timezone"),
])
def test_bad_parameters_are_400_with_the_reason(sandbox, params, message):
    answer = get(sandbox, "history", **params)
    assert answer.status_code == 400 and message in answer.json()["error"]


def test_defaults_are_100_per_page_and_the_last_30_days(sandbox):
    assert len(get(sandbox, "history").json()["data"]) == 100


def test_filters_narrow_the_history(sandbox):
    window = {"from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59", "timezone": "-0300", "limit": "10000"}
    everything = get(sandbox, "history/expanded", **window).json()["data"]
    assert len(everything) == 120
    whatsapp = get(sandbox, "history", types="WHATSAPP", **window).json()["data"]
    assert whatsapp and {r["media"] for r in whatsapp} == {"WHATSAPP"}
    ended = get(sandbox, "history", states="'ENDED'", **window).json()["data"]
    assert {r["current_state"] for r in ended} == {"ENDED"}
    sent = get(sandbox, "history", active="true", **window).json()["data"]
    assert {r["active"] for r in sent} == {"true"}
    one = everything[5]
    found = get(sandbox, "history", search=str(one["id"]), **window).json()["data"]
    assert [r["id"] for r in found] == [one["id"]]
    agent = next(r["agent"]["id"] for r in everything if r["agent"])
    by_agent = get(sandbox, "history", agents=agent, **window).json()["data"]
    assert {r["agent"]["id"] for r in by_agent} == {agent}
    department = everything[0]["department"]["id"]
    by_department = get(sandbox, "history", departments=department, **window).json()["data"]
    assert {r["department"]["id"] for r in by_department} == {department}
    assert len(by_department) == sum(r["department"]["id"] == department for r in everything) < len(everything)
    tag = next(r["tags"][0]["id"] for r in everything if r["tags"])
    tagged = get(sandbox, "history/expanded", tags=tag, **window).json()["data"]
    assert tagged and all(tag in {t["id"] for t in r["tags"]} for r in tagged)
    assert len(tagged) == sum(tag in {t["id"] for t in r["tags"]} for r in everything)
    both = get(sandbox, "history", types="WHATSAPP", active="true", **window).json()["data"]
    assert {r["id"] for r in both} == {r["id"] for r in whatsapp} & {r["id"] for r in sent}


def test_realistic_shapes(sandbox):
    window = {"from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59", "timezone": "-0300", "limit": "10000"}
    data = get(sandbox, "history/expanded", **window).json()["data"]
    assert any(r["agent"] is None for r in data)  # canceled / unavailable
    emails = [r["customer"]["fields"]["channel_email"] for r in data]
    assert any(isinstance(e, list) for e in emails) and any(isinstance(e, str) and e for e in emails)
    phone = [r for r in data if r["media"] == "PHONE"]
    assert phone and all(r["messages"] == 0 for r in phone)
    assert any(any(ch in r["customer"]["fields"]["main_identifier"] for ch in "ãçéíóúâêô") for r in data)


def test_messages_of_a_protocol_and_404_for_an_unknown_one(sandbox):
    window = {"from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59", "timezone": "-0300"}
    record = next(r for r in get(sandbox, "history/expanded", **window).json()["data"] if r["messages"])
    messages = get(sandbox, f"history/{record['id']}/messages").json()["data"]
    assert len(messages) == record["messages"]
    assert get(sandbox, "history/9818999999/messages").status_code == 404
    assert get(sandbox, "history/abc/messages").status_code == 404


@pytest.mark.parametrize("data_type", ["period", "agent", "department", "channel", "tag"])
def test_report_total_is_consistent(data_type):
    views = Views(make_world())
    lines = views.report({"data_type": data_type, "from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59",
                          "timezone": "-0300"})
    total, rest = lines[-1], lines[:-1]
    assert total["title"] == "Total"
    assert total["received"] + total["made"] == 120
    for name in ADDITIVE:
        if data_type == "tag":
            assert sum(line[name] for line in rest) >= total[name]
        else:
            assert sum(line[name] for line in rest) == total[name]


def test_ongoing_lists_only_unfinished_interactions(sandbox):
    data = get(sandbox, "ongoing", limit="10000").json()["data"]
    assert data and {r["current_state"] for r in data} <= {"NOT_ANSWERED", "RINGING", "TALKING", "POSTPONED", "PENDING"}


def test_fault_spec_parsing():
    assert parse_faults("500=0.1, reset=0.05") == {"500": 0.1, "reset": 0.05}
    assert len(parse_faults("all=0.01")) == 12
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults("teapot=0.1")


def test_offsets():
    assert parse_offset("-0300").utcoffset(None).total_seconds() == -3 * 3600
    with pytest.raises(ApiProblem):
        parse_offset("+25:00")


def test_the_sandbox_keeps_its_own_copy_of_the_vendor_constants_and_they_agree():
    from zchat_assets.api import vendor
    from zchat_assets.sandbox import app, views, world

    assert app.PREFIX == vendor.API_PREFIX + "/"
    assert views.REPORT_TYPES == vendor.REPORT_DATA_TYPES and views.ADDITIVE == vendor.REPORT_ADDITIVE
    assert views.MAX_LIMIT == vendor.MAX_PAGE_SIZE
    assert (world.CHANNELS, world.FINAL_STATES, world.ONGOING_STATES) == \
        (vendor.CHANNELS, vendor.FINAL_STATES, vendor.ONGOING_STATES)


def test_each_token_is_an_account_with_its_own_world(tmp_path):
    from zchat_assets.sandbox import SandboxApp, SandboxServer, World

    other = World(seed=99, scale=30, account=1)
    with SandboxServer(SandboxApp(make_world(), TOKEN, more_accounts={"other-token": other})) as server:
        mine = requests.get(f"{server.url}{API}/history", params={"token": TOKEN, "limit": 5}).json()["data"]
        theirs = requests.get(f"{server.url}{API}/history", params={"token": "other-token", "limit": 5}).json()["data"]
        crossed = requests.get(f"{server.url}{API}/history/{theirs[0]['id']}/messages", params={"token": TOKEN})
        stats = requests.get(f"{server.url}/_sandbox/stats").json()
    assert mine and theirs and not {r["id"] for r in mine} & {r["id"] for r in theirs}
    assert crossed.status_code == 404  # one account cannot read another's conversations
    assert stats["by_account"] == {"0": {"requests": 2, "max_per_second": 2}, "1": {"requests": 1, "max_per_second": 1}}


def test_reports_count_the_queue_and_pending_lists_as_the_period_ended():
    """A day's report agrees with what ongoing showed at the day's end: some interactions were still
    pending or waiting for the customer overnight."""
    world = make_world(scale=400)
    start, end = world.local_bounds(date.fromisoformat(DAY))
    total = Views(world).report({"data_type": "period", "from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59",
                                 "timezone": "-0300"})[-1]
    open_at_end = [ix.state_at(end)[0] for ix in world.between(start, end) if ix.ended > end]
    assert (total["pending"], total["postponed"], total["not_answered"]) == (
        open_at_end.count("PENDING"), open_at_end.count("POSTPONED"), open_at_end.count("NOT_ANSWERED"))
    assert total["pending"] + total["postponed"] + total["not_answered"] > 0


def test_a_fleet_sandbox_gives_every_token_of_its_prefix_a_world_of_its_own():
    from argparse import Namespace

    from zchat_assets.cli import _fleet_worlds
    from zchat_assets.sandbox import SandboxApp, SandboxServer

    worlds = _fleet_worlds(Namespace(fleet_prefix="fleet-", seed=7, scale=20, timezone="America/Sao_Paulo",
                                     regulars=0, typing=0.0))
    with SandboxServer(SandboxApp(make_world(), TOKEN, fleet=worlds)) as server:
        def protocols(token):
            answer = requests.get(f"{server.url}{API}/history", params={"token": token, "from": f"{DAY}T00:00:00",
                                                                         "to": f"{DAY}T23:59:59", "timezone": "-0300"})
            return answer.status_code, {r["id"] for r in answer.json().get("data", [])}

        (one, first), (two, second) = protocols("fleet-1"), protocols("fleet-2")
        assert one == two == 200 and first and second and not first & second
        assert protocols("fleet-1") == (200, first)  # the same world at every request
        assert protocols("fleet-x")[0] == protocols("other")[0] == 401
        assert server.app.stats.as_dict()["by_account"].keys() == {"1001", "1002"}


def test_drift_belongs_to_one_walk_of_one_endpoint():
    """history and history_expanded of a day are walked side by side with the same query: a walk of one
    starting over must not shift the pages of the other back, which would hide records."""
    from zchat_assets.sandbox import SandboxApp

    app = SandboxApp(make_world(), TOKEN)
    day = {"from": "2026-11-18T00:00:00", "to": "2026-11-18T23:59:59", "timezone": "-0300"}
    assert app._drift("history", {**day, "page": "2"}, "drift") == app.drift
    assert app._drift("history/expanded", {**day, "page": "1"}, None) == 0  # the other endpoint's walk begins
    assert app._drift("history", {**day, "page": "3"}, None) == app.drift  # this one keeps its shift


def test_a_page_being_built_holds_no_other_answer(sandbox, monkeypatch):
    """A page of thousands of records takes the sandbox tens of milliseconds to build; built on its event
    loop, it held every answer in flight that long, past the latency it promises."""
    building, release = threading.Event(), threading.Event()
    history = Views.history

    def slow_history(self, *args, **kwargs):
        building.set()
        release.wait(30)
        return history(self, *args, **kwargs)

    monkeypatch.setattr(Views, "history", slow_history)
    protocol = str(sandbox.app.views.world.day(date.fromisoformat(DAY))[0].protocol)
    with ThreadPoolExecutor(1) as pool:
        page = pool.submit(get, sandbox, "history", **{"from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59"})
        assert building.wait(10)
        try:
            answer = requests.get(f"{sandbox.url}{API}/history/{protocol}/messages", params={"token": TOKEN}, timeout=5)
            assert answer.status_code == 200  # while the page is built
        finally:
            release.set()
        assert page.result().status_code == 200
