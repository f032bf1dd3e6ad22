"""The Zenvia Chat Data API client: the endpoints, on top of one request (`requester`), the walk through
pages (`paging`) and many requests in flight (`fanout`).

No Dagster here: the client works the same from a notebook. It never lets the token out: every
message it builds or forwards goes through `redact`, and no exception it raises carries the URL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator

from .errors import ApiUnavailableError, ConfigError, GoneError, missing_token
from .fanout import fan_out
from .paging import walk
from .policy import data_as_sent
from .redact import install_log_redaction
from .requester import Requester, RequestStats
from .settings import DEFAULT_TOKEN_ENV, ClientSettings
from .vendor import API_PREFIX, REPORT_DATA_TYPES


class Messages(list):
    """One interaction's messages, decoded, and `sent`: each one's JSON as the API wrote it (None when it
    could not be cut from the answer), which `raw_json` keeps without writing every message again."""

    __slots__ = ("sent",)


class ZchatClient:
    """One account's view of the API. Thread-safe; close it (or use `with`) to release the pool."""

    def __init__(self, token: str, settings: ClientSettings | None = None, logger: logging.Logger | None = None,
                 rate_share: float = 1.0, token_variable: str = DEFAULT_TOKEN_ENV):
        """`rate_share` is the part of the account's `rate_limit` this client may use (steps that call the
        API at the same time each hold a part: see `set_rate_share`); `token_variable` names, in errors,
        where the token comes from."""
        settings = settings or ClientSettings()
        if not token or not token.strip():
            raise ConfigError(missing_token(token_variable))
        token = token.strip()
        self.base_url = settings.base_url
        self.concurrency = settings.concurrency
        self.page_size = settings.page_size
        self._log = logger or logging.getLogger("zchat_assets.api")
        self._requester = Requester(token, settings, self._log, rate_share, token_variable)
        # Names the token's budget where clients on other machines can find it, without being the token.
        self.budget_key = hashlib.sha256(f"zchat-budget|{self.base_url}|{token}".encode()).hexdigest()[:20]
        install_log_redaction()

    def __repr__(self) -> str:
        return f"ZchatClient(base_url={self.base_url!r}, concurrency={self.concurrency})"

    def __enter__(self) -> ZchatClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._requester.close()

    # -- what the requests tell ------------------------------------------------------------------

    @property
    def stats(self) -> RequestStats:
        return self._requester.stats

    @property
    def rate_limit(self) -> float | None:
        """Requests per second this client holds of the account's budget; None: no cap."""
        return self._requester.rate_limit

    @property
    def lowest_rate_limit(self) -> float | None:
        """The smallest `rate_limit` held since the caller last set this (a day's figures)."""
        return self._requester.lowest_rate_limit

    @lowest_rate_limit.setter
    def lowest_rate_limit(self, value: float | None) -> None:
        self._requester.lowest_rate_limit = value

    def set_rate_share(self, share: float) -> None:
        """Holds `share` of the account's `rate_limit` from the next request on (the steps that call the API
        at once change while this one runs)."""
        self._requester.set_rate_share(share)

    @property
    def rate_headers(self) -> dict[str, str]:
        """The latest rate-limit headers the API sent, if any."""
        return self._requester.rate_headers

    def latencies(self) -> list[float]:
        """Seconds the recent answers took."""
        return self._requester.latencies()

    @property
    def in_flight(self) -> int:
        """Requests on the wire right now."""
        return self._requester.in_flight.in_flight

    # -- endpoints -------------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, str]) -> dict:
        """GET one endpoint with retries; returns the decoded body of a successful answer."""
        return self._requester.get(path, params)

    def report(self, data_type: str, start: str, end: str, tz_offset: str, **filters: str) -> list[dict]:
        """Lines of the Digital Channels report, `Total` included, for one grouping."""
        if data_type not in REPORT_DATA_TYPES:
            raise ConfigError(f"data_type must be one of {', '.join(REPORT_DATA_TYPES)}, not {data_type!r}.")
        params = {"data_type": data_type, "from": start, "to": end, "timezone": tz_offset, **filters}
        body = self.get("reports", params)
        self.stats.add(pages=1)
        return data_list(body, "reports")

    def history_pages(self, start: str, end: str, tz_offset: str, *, expanded: bool = False,
                      **filters: str) -> Iterator[list[dict]]:
        """Pages of the (expanded) service history, each record once even if pages shift underneath."""
        path = "history/expanded" if expanded else "history"
        return self.pages(path, {"from": start, "to": end, "timezone": tz_offset, **filters})

    def ongoing_pages(self, **filters: str) -> Iterator[list[dict]]:
        """Pages of the interactions ongoing right now."""
        return self.pages("ongoing", dict(filters))

    def pages(self, path: str, params: dict[str, str]) -> Iterator[list[dict]]:
        """Every page of a paged endpoint (`paging.walk`)."""
        return walk(self.get, path, params, self.page_size, self._page_records, self._log)

    def messages(self, protocol_id: str) -> Messages:
        """Every message of one interaction."""
        return self._requester.run(self._messages(protocol_id))

    async def _messages(self, protocol_id: str) -> Messages:
        path = f"history/{protocol_id}/messages"
        body, content = await self._requester.fetch_sent(path, {})
        messages = Messages(data_list(body, path))
        messages.sent = data_as_sent(content)
        return messages

    def messages_many(self, protocol_ids: Iterable[str]) -> Iterator[tuple[str, Messages | GoneError]]:
        """(protocol, messages) pairs in completion order, `concurrency` at a time; a protocol the API says
        is not there comes with its `GoneError` instead, and the others go on. The first other failure stops
        the workers and is raised.

        Twice as many workers as requests in flight: a request waiting to be tried again (a 429's
        Retry-After, a back-off) holds no slot, and another worker's request takes it meanwhile."""
        return fan_out(self._messages, protocol_ids, 2 * self.concurrency, self._requester.loop,
                       passed=(GoneError,))

    def _page_records(self, body: dict, path: str) -> list[dict]:
        self.stats.add(pages=1)
        return data_list(body, path)


def data_list(body: dict, path: str) -> list[dict]:
    """The `data` list every endpoint answers with."""
    data = body.get("data")
    if not isinstance(data, list):
        raise ApiUnavailableError(
            f"The API answered {API_PREFIX}/{path} without a `data` list; this client may need an update."
        )
    return data
