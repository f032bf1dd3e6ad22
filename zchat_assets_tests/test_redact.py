"""The one place that masks the token: every form it can take in a URL, a log line or an error."""

import logging

import pytest

from zchat_assets.api.redact import RedactingFilter, redact

SECRET = 'tok/+= é"x'  # characters that URL encoding, form encoding and JSON escaping all change


@pytest.mark.parametrize("text,expected", [
    ("GET /history?token=abc123&page=2", "GET /history?token=***&page=2"),
    ("GET /history?page=2&TOKEN=abc123", "GET /history?page=2&TOKEN=***"),
    ("https://h/x?token=abc'&y=1", "https://h/x?token=***'&y=1"),
    ("no secret here", "no secret here"),
])
def test_token_parameters_are_masked_without_knowing_the_secret(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("form", [
    SECRET,                                  # as written
    "tok%2F%2B%3D%20%C3%A9%22x",             # percent-encoded, as in a URL path
    "tok%2F%2B%3D+%C3%A9%22x",               # form-encoded, where a space becomes +
    "tok/+= \\u00e9\\\"x",                   # JSON-escaped, as in a body or a structured log
])
def test_the_secret_is_masked_in_every_form(form):
    assert redact(f"before {form} after", SECRET) == "before *** after"


def test_log_records_of_http_libraries_are_rewritten():
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1,
                               '%s "GET /x?token=%s HTTP/1.1" 200', ("https://h:443", "abc"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == 'https://h:443 "GET /x?token=*** HTTP/1.1" 200'
