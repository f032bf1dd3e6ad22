"""The walk through a paged endpoint (history, expanded history, ongoing): `page=1,2,…` until the end.

The end is an empty page, a page past the end refused with 404 or 400, or the second page in a row that
brings nothing new: records all seen already, or the same page again (an API that ignores `page`). One
such page alone does not end it: records inserted ahead of the walk while it runs (on a busy day, or
during a long retry) can shift a whole page of records already read under the next page's number, and
the records after them would be lost; an API that ignores `page` costs one request more. A page
shorter than the limit does not end the walk: an API that caps `limit` below what was asked for (the
document says up to 10,000) would otherwise be read in part without a word. That costs one request
more per walk, the empty page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from .errors import BadRequestError, ConfigError
from .policy import request_label


def walk(get: Callable[[str, dict[str, str]], dict], path: str, params: dict[str, str], page_size: int,
         records_of: Callable[[dict, str], list[dict]], log: logging.Logger) -> Iterator[list[dict]]:
    """Pages of `path` as lists of records, each record once by its `id` (records without one are all kept:
    the day's uniqueness check flags them), even if pages shift underneath."""
    seen: set[str] = set()
    page, short, warned, previous, stale = 1, None, False, None, False
    while True:
        try:
            records = records_of(get(path, {**params, "limit": str(page_size), "page": str(page)}), path)
        except (ConfigError, BadRequestError):
            if page == 1:
                raise
            return  # an API that refuses a page past the end (404, 400) has ended the walk
        fresh = _unseen(records, seen)
        # What tells the same page again (an API that ignores `page`): ids, and the records that have none.
        # Not the page itself, which would keep a page alive while the next one is read.
        shape = [r if r.get("id") is None else r.get("id") for r in records]
        nothing_new = not fresh or shape == previous
        if not records or (nothing_new and stale):
            return
        previous, stale = shape, nothing_new
        if nothing_new:  # shifted by records inserted ahead, or `page` ignored: the next page tells
            del records, fresh
            page += 1
            continue
        if short and not warned:
            log.warning(f"{request_label(path, {})}: {short} records came for limit={page_size}, and more after "
                        "them: the API caps the page size; every page is read until an empty one.")
            warned = True
        short = len(records) if len(records) < page_size else None
        del records  # a 10,000-record page is ~50 MB of Python objects: the caller's alone from here
        yield fresh
        del fresh
        page += 1


def _unseen(records: list[dict], seen: set[str]) -> list[dict]:
    """The records whose id is not in `seen` (now added to it), and every record without an id."""
    fresh = []
    for record in records:
        key = record.get("id")
        if key is None:
            fresh.append(record)
        elif str(key) not in seen:
            seen.add(str(key))
            fresh.append(record)
    return fresh
