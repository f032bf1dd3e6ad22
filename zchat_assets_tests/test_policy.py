"""The retry policy as a table: what each answer means, how long a retry waits, when a request gives up,
and how long an answer is waited for."""

from datetime import datetime, timezone

import pytest

from zchat_assets.api import AuthError, BadRequestError, ConfigError, GoneError
from zchat_assets.api.policy import Latency, Retry, RetryPolicy, classify, data_as_sent, decode, parse_retry_after
from zchat_assets.api.redact import redact

TOKEN = "policy-token-SECRET"
URL = f"https://zchat.zenvia.io/api/ms/external/history?page=2&token={TOKEN}"
OK = b'{"success": true, "data": []}'


def judge(status: int, content: bytes, path: str = "history", headers: dict | None = None):
    return classify(status, headers or {}, content, path, {"page": "2"}, URL, lambda t: redact(t, TOKEN),
                    "check ACME_TOKEN")


@pytest.mark.parametrize("status,content,path,retried", [
    (200, OK, "history", None),                                      # the answer
    (201, b'{"data": []}', "history", None),                          # another 2xx with a body: the answer
    (500, b"oops", "history", "HTTP 500: oops"),
    (503, b'{"error": "maintenance"}', "history", "HTTP 503: maintenance"),
    (408, b"", "history", "HTTP 408"),
    (200, b"", "history", "HTTP 200 with an empty body"),
    (200, b"<html>gateway</html>", "history", "HTTP 200 with a body that is not a JSON object (20 bytes)"),
    (200, b'{"data": [', "history", "HTTP 200 with a body that is not a JSON object (10 bytes)"),  # cut
    (200, b"[1, 2]", "history", "HTTP 200 with a body that is not a JSON object (6 bytes)"),
    (200, b'{"success": false, "error": "busy"}', "history", "HTTP 200 with success=false: busy"),
    (200, b'{"success": false, "status": 429}', "history", "HTTP 200 with success=false: no error text"),
], ids=lambda v: v if isinstance(v, (int, str)) and v not in ("history",) else None)
def test_what_is_retried_and_what_is_the_answer(status, content, path, retried):
    outcome = judge(status, content, path)
    if retried is None:
        assert isinstance(outcome, dict)
    else:
        assert outcome == Retry(retried)


@pytest.mark.parametrize("status,content,path,error,words", [
    (401, b'{"error": "Invalid token"}', "history", AuthError, "rejected the token (HTTP 401: Invalid token)"),
    (403, b"", "history", AuthError, "HTTP 403"),
    (200, b'{"success": false, "status": 401, "error": "x"}', "history", AuthError,
     "status 401 in the body of an HTTP 200"),
    (404, b"", "history/123/messages", GoneError, "HTTP 404"),
    (200, b'{"success": false, "status": "404"}', "history/1/messages", GoneError, "status 404 in the body"),
    (404, b"", "history", ConfigError, "The API has no /api/ms/external/history (HTTP 404 calling "
                                       "https://zchat.zenvia.io/api/ms/external/history?page=2&token=***)"),
    (400, b'{"error": "Invalid \'from\' date"}', "history", BadRequestError, "refused GET /api/ms/external/history"
                                                                             "?page=2 (HTTP 400): Invalid 'from' date"),
    (200, b'{"success": false, "status": 422}', "history", BadRequestError, "status 422 in the body"),
])
def test_what_retrying_cannot_fix_is_an_error_at_once(status, content, path, error, words):
    with pytest.raises(error) as raised:
        judge(status, content, path)
    assert words in str(raised.value) and TOKEN not in str(raised.value)


def test_a_429_carries_the_servers_wait_and_a_body_never_leaks_the_token():
    outcome = judge(429, f"slow down {TOKEN}".encode(), headers={"retry-after": "7"})
    assert outcome.throttled and outcome.wait == 7.0 and TOKEN not in outcome.reason
    assert judge(429, b"", headers={"Retry-After": "2"}).wait == 2.0 and judge(429, b"").wait is None


def test_decode_falls_back_to_the_standard_library_for_what_orjson_refuses():
    assert decode(b'{"a": NaN}')["a"] != decode(b'{"a": NaN}')["a"]  # NaN, as json reads it
    assert decode(b'{"id": 123456789012345678901234567890}') == {"id": 123456789012345678901234567890}
    assert decode(b'{"a": "\xff"}') is None and decode(b"") is None
    assert decode('{"text": "olá"}'.encode()) == {"text": "olá"}


NOON = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("header,seconds", [
    (None, None), ("", None), ("  ", None), ("soon", None),
    ("0", 0.0), ("3", 3.0), ("1.5", 1.5), ("-4", 0.0),
    ("Fri, 20 Nov 2026 12:00:30 GMT", 30.0),   # an HTTP date
    ("Fri, 20 Nov 2026 11:59:00 GMT", 0.0),    # a date already past
])
def test_retry_after_in_seconds_or_as_a_date(header, seconds):
    assert parse_retry_after(header, now=NOON) == seconds


@pytest.mark.parametrize("outcome,failures,low,high", [
    (Retry("503"), 1, 0.25, 0.5),                         # half the first backoff, plus jitter up to the whole
    (Retry("503"), 3, 1.0, 2.0),                          # doubled each failure
    (Retry("503"), 20, 15.0, 30.0),                       # capped
    (Retry("429", wait=None, throttled=True), 0, 1.0, 1.0),  # the minimum after a 429
    (Retry("429", wait=0.2, throttled=True), 0, 1.0, 1.0),
    (Retry("429", wait=9.0, throttled=True), 0, 9.0, 9.0),   # the server's wait when longer
])
def test_the_delay_before_a_retry(outcome, failures, low, high):
    delays = [RetryPolicy().delay(outcome, failures) for _ in range(50)]
    assert low <= min(delays) and max(delays) <= high


@pytest.mark.parametrize("failures,throttles,gives_up", [(6, 0, False), (7, 0, True), (0, 30, False), (0, 31, True),
                                                         (6, 30, False)])
def test_when_a_request_gives_up(failures, throttles, gives_up):
    assert RetryPolicy().gives_up(failures, throttles) is gives_up


def test_an_answer_is_waited_for_ten_times_the_recent_slowest_within_the_bounds():
    latency = Latency(ceiling=60.0)
    assert [latency.timeout(n) for n in range(4)] == [10.0, 20.0, 40.0, 60.0]  # before five answers came
    for _ in range(100):
        latency.record(0.05)
    assert latency.timeout(0) == 5.0 and latency.timeout(1) == 10.0  # at least MIN
    for _ in range(100):
        latency.record(2.0)  # the API has become slow: its answers give the longer timeout back
    assert latency.timeout(0) == 20.0 and latency.timeout(2) == 60.0
    assert len(latency.recent()) == Latency.SAMPLES


@pytest.mark.parametrize("content,sent", [
    (b'{"success": true, "data": [{"a": 1,  "b": "\\u00e9"}, 2, null]}', ['{"a": 1,  "b": "\\u00e9"}', "2", "null"]),
    ('{"data":[{"text":"olá"}]}'.encode(), ['{"text":"olá"}']),   # as written: no spaces added, no escapes
    (b'{"data": []}', []),
    (b'{"data": {"a": 1}}', None),                                # not a list: the caller writes the JSON itself
    (b'{"data": [{"a": NaN}]}', None),                            # what only the standard library reads
    (b'{"status": 200}', None),
])
def test_data_as_sent_cuts_each_item_from_the_body(content, sent):
    assert data_as_sent(content) == sent
