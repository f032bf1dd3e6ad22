"""The one place that removes the API token from text: URLs, log lines and exception messages.

`requests` and `urllib3` put the full URL, query string included, into their exception messages and
debug logs, and the token travels as `?token=`. Everything the client reports passes through here.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

MASK = "***"
_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s'\"<>#]+")


def redact(text: str, secret: str | None = None) -> str:
    """Masks any `token=` query parameter, and every occurrence of `secret` in `text` as written, as a
    URL encodes it, and as JSON escapes it."""
    text = _TOKEN_PARAM.sub(r"\g<1>" + MASK, str(text))
    if secret:
        for form in sorted({secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}, key=len,
                           reverse=True):
            text = text.replace(form, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites log records of third-party loggers (urllib3 logs request URLs at DEBUG level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Idempotently attaches the filter to the loggers that can see request URLs."""
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
