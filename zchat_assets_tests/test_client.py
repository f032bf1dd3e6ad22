"""The client over real HTTP against the sandbox: every failure class, paging, fan-out, redaction."""

import logging
import re
import threading
import time
from datetime import date, datetime, timezone

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from zchat_assets.api import (ApiUnavailableError, AuthError, BadRequestError, ClientSettings, ConfigError, ZchatClient,
                              parse_retry_after)
from zchat_assets.api.client import _setup_problem
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.sandbox.views import ApiProblem

from .conftest import DAY, TOKEN, make_world

WINDOW = (f"{DAY}T00:00:00", f"{DAY}T23:59:59", "-0300")


def client(sandbox, token: str = TOKEN, **kw) -> ZchatClient:
    options = dict(base_url=sandbox.url, backoff_seconds=0.01, backoff_max_seconds=0.05, min_retry_after=0.01,
                   read_timeout=5.0)
    options.update(kw)
    return ZchatClient(token, ClientSettings(**options))


def stats(sandbox) -> dict:
    return requests.get(f"{sandbox.url}/_sandbox/stats").json()


def test_history_pages_cover_the_day_once(sandbox):
    c = client(sandbox, page_size=50)
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
        "GET /api/ms/external/history: 100 records came for limit=10000, and more after them: the API caps the page "
        "size; every page is read until an empty one.") == 1


def test_last_page_exactly_limit_long_stops_on_the_empty_page(sandbox):
    c = client(sandbox, page_size=40)  # 120 interactions: pages of 40, 40, 40, then an empty one
    pages = list(c.history_pages(*WINDOW))
    assert [len(p) for p in pages] == [40, 40, 40]
    assert stats(sandbox)["by_endpoint"]["history"] == 4


def test_page_drift_duplicates_are_dropped(sandbox):
    sandbox.app.queue_faults("drift", "drift")  # pages 2 and 3 start 7 records early
    c = client(sandbox, page_size=30)
    ids = [r["id"] for page in c.history_pages(*WINDOW, expanded=True) for r in page]
    assert len(ids) == len(set(ids)) == 120
    assert stats(sandbox)["faults"]["drift"] == 2


@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "cut", "truncated", "success_false", "html", "empty"])
def test_transient_faults_are_retried(sandbox, fault):
    sandbox.app.queue_faults(fault, fault)
    c = client(sandbox)
    lines = c.report("period", *WINDOW)
    assert lines[-1]["title"] == "Total"
    assert c.stats.requests == 3 and c.stats.retries == 2


def test_slow_answer_times_out_and_is_retried(sandbox):
    protocol = str(next(client(sandbox).history_pages(*WINDOW))[0]["id"])
    sandbox.app.queue_faults("slow")
    c = client(sandbox, read_timeout=0.3)
    assert c.messages(protocol) == client(sandbox).messages(protocol)
    assert c.stats.retries == 1


@pytest.mark.parametrize("form", ["seconds", "zero", "date", "missing"])
def test_429_waits_at_least_the_minimum_whatever_retry_after_says(sandbox, form, monkeypatch):
    import zchat_assets.sandbox.app as app_module

    monkeypatch.setattr(app_module, "RETRY_AFTER_FORMS", (form,))
    sandbox.app.retry_after = 0.3 if form in ("seconds", "date") else 0
    sandbox.app.queue_faults("429")
    c = client(sandbox, min_retry_after=0.2)
    started = time.monotonic()
    c.report("agent", *WINDOW)
    waited = time.monotonic() - started
    assert c.stats.throttled == 1
    assert waited >= 0.19
    if form == "seconds":
        assert waited >= 0.29


@pytest.mark.parametrize("retries", [2, None])  # None: the default, which README quotes
def test_retry_budget_exhausted_fails_loudly_without_the_token(sandbox, retries):
    sandbox.app.queue_faults(*["503"] * 10)
    c = client(sandbox, **({} if retries is None else {"max_retries": retries}))
    with pytest.raises(ApiUnavailableError) as err:
        c.report("period", *WINDOW)
    attempts = (ClientSettings().max_retries if retries is None else retries) + 1
    assert f"still failed after {attempts} attempts" in str(err.value) and "HTTP 503" in str(err.value)
    assert TOKEN not in str(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None


def test_wrong_token_fails_at_once_naming_the_variable(sandbox):
    c = client(sandbox, token="wrong-token")
    with pytest.raises(AuthError, match="ZCHAT_API_TOKEN"):
        c.report("period", *WINDOW)
    assert stats(sandbox)["requests"] == 1


def test_bad_parameters_show_the_api_error_text_without_retry(sandbox):
    c = client(sandbox)
    with pytest.raises(BadRequestError, match="Invalid 'from' date"):
        c.report("period", "yesterday", WINDOW[1], WINDOW[2])
    assert c.stats.requests == 1


def test_a_refused_connection_fails_at_once_naming_the_setting_without_the_token(caplog):
    c = ZchatClient(TOKEN, ClientSettings(base_url="http://127.0.0.1:9", backoff_seconds=0.01, connect_timeout=0.5))
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="urllib3"), pytest.raises(ConfigError) as err:
        c.messages("1")
    text = str(err.value) + caplog.text
    assert "The connection was refused" in text and "ZCHAT_BASE_URL" in text and "token=***" in text
    assert TOKEN not in text and c.stats.requests == 1 and time.monotonic() - started < 5


def test_https_to_a_plain_http_port_fails_at_once_as_a_tls_mistake(sandbox):
    c = client(sandbox, base_url=sandbox.url.replace("http://", "https://"))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="The TLS handshake failed .* check the base URL") as err:
        c.report("period", *WINDOW)
    assert c.stats.requests == 1 and time.monotonic() - started < 10 and TOKEN not in str(err.value)


def test_a_wrong_path_in_the_base_url_shows_the_url_called(sandbox):
    c = client(sandbox, base_url=sandbox.url + "/zchat")
    with pytest.raises(ConfigError, match=r"HTTP 404 calling http://127\.0\.0\.1:\d+/zchat/api/ms/external/history"):
        next(c.history_pages(*WINDOW))
    assert c.stats.requests == 1


def test_an_auth_error_in_the_body_of_a_200_fails_at_once_naming_the_variable(tmp_path):
    with SandboxServer(SandboxApp(make_world(), TOKEN, dialects=frozenset({"auth_in_body"}))) as server:
        c = ZchatClient("wrong-token", ClientSettings(base_url=server.url), token_variable="ACME_TOKEN")
        with pytest.raises(AuthError, match="status 401 in the body of an HTTP 200: Invalid or missing token.*ACME_TOKEN"):
            c.report("period", *WINDOW)
        assert c.stats.requests == 1


def test_messages_many_respects_the_concurrency_cap(sandbox):
    sandbox.app.latency = 0.02
    c = client(sandbox, concurrency=4)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    got = dict(c.messages_many(ids))
    assert set(got) == set(ids)
    assert stats(sandbox)["max_in_flight"] <= 4


def test_a_concurrency_limit_answered_with_429_shrinks_the_whole_pool(sandbox):
    sandbox.app.max_in_flight = 2
    sandbox.app.latency = 0.02
    c = client(sandbox, concurrency=8)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    assert len(dict(c.messages_many(ids))) == len(ids)
    # The first wave meets the limit; then the pool keeps to what the API accepts, probing now and then.
    assert 0 < c.stats.throttled < 0.15 * len(ids)
    assert c._in_flight.limit <= 3


def test_the_rate_limit_holds_as_the_api_counts_it(sandbox):
    c = client(sandbox, concurrency=16, rate_limit=40)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page][:100]
    assert len(dict(c.messages_many(ids))) == len(ids)
    # Starts leave the client at least 25 ms apart; an arrival recorded a hair early can add one.
    assert stats(sandbox)["max_per_second"] <= 40 + 1


def test_rate_limit_spaces_every_start_from_many_threads():
    from zchat_assets.api.throttle import RateLimiter

    limiter = RateLimiter(100)

    def worker():
        for _ in range(10):
            limiter.acquire()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 79 * 0.01  # 80 starts, each 10 ms after the one before


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


def test_two_accounts_never_share_a_budget_or_a_429_pause(sandbox):
    """The budget and the 429 pause belong to the token (and base URL): clients of one token share the pause
    and name the same budget, another token's clients do neither. Each client spaces its own requests, at
    the part of the budget it holds (`set_rate_share`)."""
    first, again, other = client(sandbox, rate_limit=5), client(sandbox, rate_limit=5), client(sandbox, "other", rate_limit=5)
    assert first._gate is again._gate and first.budget_key == again.budget_key
    assert first._gate is not other._gate and first.budget_key != other.budget_key
    assert TOKEN not in first.budget_key and first._limiter is not again._limiter
    first.set_rate_share(0.5)
    assert first.rate_limit == 2.5 and again.rate_limit == 5


NOON = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("header,seconds", [
    (None, None), ("", None), ("  ", None), ("soon", None),
    ("0", 0.0), ("3", 3.0), ("1.5", 1.5), ("-4", 0.0),
    ("Fri, 20 Nov 2026 12:00:30 GMT", 30.0),   # an HTTP date
    ("Fri, 20 Nov 2026 11:59:00 GMT", 0.0),    # a date already past
])
def test_retry_after_in_seconds_or_as_a_date(header, seconds):
    assert parse_retry_after(header, now=NOON) == seconds


def test_a_hung_api_fails_within_the_stall_limit(sandbox):
    sandbox.app.faults = {"slow": 1.0}
    sandbox.app.slow_seconds = 60
    c = client(sandbox, read_timeout=1.0, stall_seconds=10, max_retries=50, backoff_max_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ApiUnavailableError, match=r"The API has answered nothing for 1\d s .* it looks hung"):
        c.messages("1")
    assert time.monotonic() - started < 10 + 1.0 + 1.5  # the limit, one read timeout, one back-off


def test_isolated_429s_make_only_their_own_request_wait(sandbox):
    """A 429 now and then is not a limit: the pool neither pauses nor shrinks."""
    sandbox.app.latency = 0.01
    sandbox.app.queue_faults("429")
    c = client(sandbox, concurrency=4, min_retry_after=0.5)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    started = time.monotonic()
    assert len(dict(c.messages_many(ids))) == len(ids)
    assert c.stats.throttled == 1 and c._in_flight.limit == 4
    assert time.monotonic() - started < 0.5 + len(ids) * 0.011 / 4 + 1.0


def _connection_error(reason) -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/x", reason))


@pytest.mark.parametrize("exc,problem", [
    (requests.exceptions.SSLError("wrong version number"), "The TLS handshake failed"),
    (_connection_error(NameResolutionError("zchat.invalid", None, OSError("gaierror"))),
     "The API's host name does not resolve"),
    (_connection_error(NewConnectionError(None, "Connection refused")), "The connection was refused"),
    (_connection_error(ConnectionResetError("reset by peer")), None),      # a fault of the moment: retried
    (requests.exceptions.ConnectTimeout("timed out"), None),
    (requests.exceptions.ReadTimeout("timed out"), None),
])
def test_set_up_mistakes_are_told_apart_from_faults_of_the_moment(exc, problem):
    found = _setup_problem(exc)
    assert (found is None) if problem is None else found.startswith(problem)


def test_a_walk_ends_when_the_page_past_the_end_is_refused_or_repeats(monkeypatch):
    """Asking one page past the end must not fail a day (an API may answer it 404 or 400), nor loop on an
    API that ignores `page` and sends the same records without an id again and again."""
    with SandboxServer(SandboxApp(make_world(scale=30), TOKEN)) as server:
        views = server.app.views
        history = views.history

        def refused(q, **kw):
            if q.get("page") != "1":
                raise ApiProblem(404, "Page not found")
            return history(q, **kw)

        monkeypatch.setattr(views, "history", refused)
        c = ZchatClient(TOKEN, ClientSettings(base_url=server.url))
        assert len([r for page in c.history_pages(*WINDOW) for r in page]) == 30
        monkeypatch.setattr(views, "history", lambda q, **kw: [{"created_at": "2026-11-18T10:00:00Z"}])
        assert len([r for page in c.history_pages(*WINDOW) for r in page]) == 1
