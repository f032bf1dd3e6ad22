"""One request carried through to an answer, over real HTTP against the sandbox: every failure class
retried or refused as the policy says, timeouts, 429 pauses, the rate limit, and no token in any error."""

import logging
import time

import pytest

from zchat_assets.api import (ApiUnavailableError, AuthError, BadRequestError, ClientSettings, ConfigError,
                              ZchatClient)
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import TOKEN, WINDOW, fast_client, make_world, sandbox_stats

@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "cut", "truncated", "success_false", "html", "empty"])
def test_transient_faults_are_retried(sandbox, fault):
    sandbox.app.queue_faults(fault, fault)
    c = fast_client(sandbox)
    lines = c.report("period", *WINDOW)
    assert lines[-1]["title"] == "Total"
    assert c.stats.requests == 3 and c.stats.retries == 2


def test_slow_answer_times_out_and_is_retried(sandbox):
    protocol = str(next(fast_client(sandbox).history_pages(*WINDOW))[0]["id"])
    sandbox.app.queue_faults("slow")
    c = fast_client(sandbox, read_timeout=0.3)
    assert c.messages(protocol) == fast_client(sandbox).messages(protocol)
    assert c.stats.retries == 1


@pytest.mark.parametrize("form", ["seconds", "zero", "date", "missing"])
def test_429_waits_at_least_the_minimum_whatever_retry_after_says(sandbox, form, monkeypatch):
    import zchat_assets.sandbox.app as app_module

    monkeypatch.setattr(app_module, "RETRY_AFTER_FORMS", (form,))
    sandbox.app.retry_after = 0.3 if form in ("seconds", "date") else 0
    sandbox.app.queue_faults("429")
    c = fast_client(sandbox, min_retry_after=0.2)
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
    c = fast_client(sandbox, **({} if retries is None else {"max_retries": retries}))
    with pytest.raises(ApiUnavailableError) as err:
        c.report("period", *WINDOW)
    attempts = (ClientSettings().max_retries if retries is None else retries) + 1
    assert f"still failed after {attempts} attempts" in str(err.value) and "HTTP 503" in str(err.value)
    assert TOKEN not in str(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None


def test_wrong_token_fails_at_once_naming_the_variable(sandbox):
    c = fast_client(sandbox, token="wrong-token")
    with pytest.raises(AuthError, match="ZCHAT_API_TOKEN"):
        c.report("period", *WINDOW)
    assert sandbox_stats(sandbox)["requests"] == 1


def test_bad_parameters_show_the_api_error_text_without_retry(sandbox):
    c = fast_client(sandbox)
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
    c = fast_client(sandbox, base_url=sandbox.url.replace("http://", "https://"))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="The TLS handshake failed .* check the base URL") as err:
        c.report("period", *WINDOW)
    assert c.stats.requests == 1 and time.monotonic() - started < 10 and TOKEN not in str(err.value)


def test_a_wrong_path_in_the_base_url_shows_the_url_called(sandbox):
    c = fast_client(sandbox, base_url=sandbox.url + "/zchat")
    with pytest.raises(ConfigError, match=r"HTTP 404 calling http://127\.0\.0\.1:\d+/zchat/api/ms/external/history"):
        next(c.history_pages(*WINDOW))
    assert c.stats.requests == 1


def test_an_auth_error_in_the_body_of_a_200_fails_at_once_naming_the_variable(tmp_path):
    with SandboxServer(SandboxApp(make_world(), TOKEN, dialects=frozenset({"auth_in_body"}))) as server:
        c = ZchatClient("wrong-token", ClientSettings(base_url=server.url), token_variable="ACME_TOKEN")
        with pytest.raises(AuthError, match="status 401 in the body of an HTTP 200: Invalid or missing token.*ACME_TOKEN"):
            c.report("period", *WINDOW)
        assert c.stats.requests == 1


def test_a_concurrency_limit_answered_with_429_shrinks_the_whole_pool(sandbox):
    sandbox.app.max_in_flight = 2
    sandbox.app.latency = 0.02
    c = fast_client(sandbox, concurrency=8)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    assert len(dict(c.messages_many(ids))) == len(ids)
    # The first wave meets the limit; then the pool keeps to what the API accepts, probing now and then.
    assert 0 < c.stats.throttled < 0.15 * len(ids)
    assert c._requester.in_flight.limit <= 3


def test_the_rate_limit_holds_as_the_api_counts_it(sandbox):
    c = fast_client(sandbox, concurrency=16, rate_limit=40)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page][:100]
    assert len(dict(c.messages_many(ids))) == len(ids)
    # Starts leave the client at least 25 ms apart; an arrival recorded a hair early can add one.
    assert sandbox_stats(sandbox)["max_per_second"] <= 40 + 1


def test_two_accounts_never_share_a_budget_or_a_429_pause(sandbox):
    """The budget and the 429 pause belong to the token (and base URL): clients of one token share the pause
    and name the same budget, another token's clients do neither. Each client spaces its own requests, at
    the part of the budget it holds (`set_rate_share`)."""
    first, again, other = fast_client(sandbox, rate_limit=5), fast_client(sandbox, rate_limit=5), fast_client(sandbox, "other", rate_limit=5)
    assert first._requester.gate is again._requester.gate and first.budget_key == again.budget_key
    assert first._requester.gate is not other._requester.gate and first.budget_key != other.budget_key
    assert TOKEN not in first.budget_key and first._requester.limiter is not again._requester.limiter
    first.set_rate_share(0.5)
    assert first.rate_limit == 2.5 and again.rate_limit == 5


def test_a_hung_api_fails_within_the_stall_limit(sandbox):
    sandbox.app.faults = {"slow": 1.0}
    sandbox.app.slow_seconds = 60
    c = fast_client(sandbox, read_timeout=1.0, stall_seconds=10, max_retries=50, backoff_max_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ApiUnavailableError, match=r"The API has answered nothing for 1\d s .* it looks hung"):
        c.messages("1")
    assert time.monotonic() - started < 10 + 1.0 + 1.5  # the limit, one read timeout, one back-off


def test_isolated_429s_make_only_their_own_request_wait(sandbox):
    """A 429 now and then is not a limit: the pool neither pauses nor shrinks."""
    sandbox.app.latency = 0.01
    sandbox.app.queue_faults("429")
    c = fast_client(sandbox, concurrency=4, min_retry_after=0.5)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page]
    started = time.monotonic()
    assert len(dict(c.messages_many(ids))) == len(ids)
    assert c.stats.throttled == 1 and c._requester.in_flight.limit == 4
    assert time.monotonic() - started < 0.5 + len(ids) * 0.011 / 4 + 1.0


def test_a_request_waiting_to_be_retried_leaves_its_slot_to_the_others(sandbox):
    """At a concurrency of one, the messages of the other protocols come while the one answered 429 waits
    through its Retry-After, instead of all of them waiting behind it."""
    sandbox.app.latency = 0.01
    c = fast_client(sandbox, concurrency=1, min_retry_after=1.0)
    ids = [str(r["id"]) for page in c.history_pages(*WINDOW) for r in page][:30]
    sandbox.app.queue_faults("429")  # the first messages request
    order = [protocol for protocol, _ in c.messages_many(ids)]
    assert sorted(order) == sorted(ids) and c.stats.throttled == 1
    assert order.index(ids[0]) >= 10  # its second of waiting is room for dozens at 10 ms an answer


def test_requests_run_on_uvloop_where_it_is_installed(sandbox):
    """uvloop carries the same requests for less CPU than asyncio's own loop (docs/performance.md)."""
    uvloop = pytest.importorskip("uvloop")
    c = fast_client(sandbox)
    assert c.report("period", *WINDOW)[-1]["title"] == "Total"
    assert isinstance(c._requester.loop, uvloop.Loop)
