"""The client's endpoints over real HTTP against the sandbox: what each asks for and gives back, paging and
fan-out end to end, and the settings it is built from."""

import json
import logging
import re
from datetime import date

import pytest

from zchat_assets.api import ClientSettings, ConfigError, ZchatClient
from zchat_assets.api.settings import PAGE_SIZE
from zchat_assets.schemas import messages_table
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DAY, TOKEN, WINDOW, fast_client, make_world, sandbox_stats

def test_history_pages_cover_the_day_once(sandbox):
    c = fast_client(sandbox, page_size=50)
    records = [r for page in c.history_pages(*WINDOW) for r in page]
    world = sandbox.app.views.world
    truth = world.between(*world.local_bounds(date.fromisoformat(DAY)))
    assert [r["id"] for r in records] == [ix.protocol for ix in truth]
    assert c.stats.pages == len(truth) // 50 + 2  # the last, short page, then an empty one ends the walk


def test_a_server_that_caps_the_page_size_is_read_whole_and_said_so(caplog):
    """The document says limit goes up to 10,000; a server answering 100 must not truncate the day."""
    with SandboxServer(SandboxApp(make_world(scale=250), TOKEN, page_cap=100)) as server:
        c = ZchatClient(TOKEN, ClientSettings(base_url=server.url))
        with caplog.at_level(logging.WARNING):
            ids = [r["id"] for page in c.history_pages(*WINDOW) for r in page]
    world = server.app.views.world
    assert ids == [ix.protocol for ix in world.between(*world.local_bounds(date.fromisoformat(DAY)))]
    assert len(ids) == 250 and c.stats.pages == 4  # 100, 100, 50, then the empty page
    assert [r.message for r in caplog.records].count(
        f"GET /api/ms/external/history: 100 records came for limit={PAGE_SIZE}, and more after them: the API caps the "
        "page size; every page is read until an empty one.") == 1


def test_last_page_exactly_limit_long_stops_on_the_empty_page(sandbox):
    c = fast_client(sandbox, page_size=40)  # 120 interactions: pages of 40, 40, 40, then an empty one
    pages = list(c.history_pages(*WINDOW))
    assert [len(p) for p in pages] == [40, 40, 40]
    assert sandbox_stats(sandbox)["by_endpoint"]["history"] == 4


def test_page_drift_duplicates_are_dropped(sandbox):
    sandbox.app.queue_faults("drift", "drift")  # pages 2 and 3 start 7 records early
    c = fast_client(sandbox, page_size=30)
    ids = [r["id"] for page in c.history_pages(*WINDOW, expanded=True) for r in page]
    assert len(ids) == len(set(ids)) == 120
    assert sandbox_stats(sandbox)["faults"]["drift"] == 2


def test_a_page_shifted_whole_by_inserted_records_does_not_end_the_walk(sandbox):
    sandbox.app.drift = 30  # a page's worth of records inserted ahead: page 2 repeats page 1
    sandbox.app.queue_faults("drift")
    c = fast_client(sandbox, page_size=30)
    ids = [r["id"] for page in c.history_pages(*WINDOW, expanded=True) for r in page]
    assert len(ids) == len(set(ids)) == 120


def test_messages_many_respects_the_concurrency_cap(sandbox):
    sandbox.app.latency = 0.02
    c = fast_client(sandbox, concurrency=4)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    got = dict(c.messages_many(ids))
    assert set(got) == set(ids)
    assert sandbox_stats(sandbox)["max_in_flight"] <= 4


def test_messages_keep_each_ones_json_as_the_api_wrote_it():
    """`raw_json` is the API's own text: cut from the answer, not written again (a compact, escaped one here)."""
    world = make_world()
    with SandboxServer(SandboxApp(world, TOKEN)) as plain, \
            SandboxServer(SandboxApp(world, TOKEN, dialects=frozenset({"escaped_json"}))) as escaped:
        ids = [str(r["id"]) for page in fast_client(plain).history_pages(*WINDOW) for r in page]
        wanted = dict(fast_client(plain).messages_many(ids))
        got = dict(fast_client(escaped).messages_many(ids))
    assert got == wanted and sum(map(len, got.values())) > len(ids)
    sent = [text for items in got.values() for text in items.sent]
    assert [json.loads(text) for text in sent] == [m for items in got.values() for m in items]
    assert sent == [json.dumps(m, separators=(",", ":")) for items in got.values() for m in items]
    assert any("\\u00" in text for text in sent)  # accented names, escaped as the server wrote them
    table = messages_table(list(got.items()))
    assert table.column("raw_json").to_pylist() == sent


@pytest.mark.parametrize("url,problem", [
    ("http://api.example.com", "would send the token in clear text"),
    ("http://10.0.0.5:8080", "would send the token in clear text"),
    ("ftp://x", "is not an http(s) URL"),
    ("zchat.zenvia.io", "is not an http(s) URL"),
])
def test_unsafe_base_urls_are_refused(url, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        ClientSettings(base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:8765/", "http://[::1]:80", "https://x.io/"])
def test_loopback_http_and_any_https_are_accepted(url):
    assert ClientSettings(base_url=url).base_url == url.rstrip("/")


@pytest.mark.parametrize("kw", [{"concurrency": 0}, {"concurrency": 1000}, {"rate_limit": -1}, {"page_size": 20000},
                                {"read_timeout": 0}, {"max_retries": -1}])
def test_nonsense_settings_are_refused(kw):
    with pytest.raises(ValueError):
        ClientSettings(**kw)


def test_missing_token_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="ACME_TOKEN"):
        ZchatClient(" ", ClientSettings(), token_variable="ACME_TOKEN")


def test_a_closed_client_used_again_starts_afresh(sandbox):
    """Its event loop, connections and the locks of its rate and concurrency limits are made again."""
    c = fast_client(sandbox, rate_limit=1000, concurrency=2)
    ids = [str(r["id"]) for r in next(c.history_pages(*WINDOW))][:6]
    first = dict(c.messages_many(ids))
    c.close()
    assert dict(c.messages_many(ids)) == first
    c.close()
