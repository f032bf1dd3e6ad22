"""The walk through pages against scripted APIs: where it ends, what it keeps, what it says."""

import logging
import weakref

import pytest

from zchat_assets.api.client import data_list
from zchat_assets.api.errors import BadRequestError, ConfigError
from zchat_assets.api.paging import walk


def api(pages: dict[int, list[dict] | Exception]):
    """A `get` answering page N with `pages[N]` (an exception is raised; a page not given is empty), and the
    pages it was asked for."""
    asked = []

    def get(path, params):
        page = int(params["page"])
        asked.append(page)
        answer = pages.get(page, [])
        if isinstance(answer, Exception):
            raise answer
        return {"data": answer}

    return get, asked


def records(*ids) -> list[dict]:
    return [{"id": i} for i in ids]


def read(pages, page_size=3, log=logging.getLogger("test")):
    get, asked = api(pages)
    walked = list(walk(get, "history", {"from": "x"}, page_size, data_list, log))
    return [[r.get("id") for r in page] for page in walked], asked


@pytest.mark.parametrize("pages,walked,asked", [
    ({}, [], [1]),                                                               # nothing that day
    ({1: records(1, 2)}, [[1, 2]], [1, 2]),                                      # short, then the empty page
    ({1: records(1, 2, 3), 2: records(4, 5, 6)}, [[1, 2, 3], [4, 5, 6]], [1, 2, 3]),  # exactly full pages
    ({1: records(1, 2, 3), 2: records(3, 4, 5), 3: records(5, 6)}, [[1, 2, 3], [4, 5], [6]], [1, 2, 3, 4]),  # drift
    ({1: records(1, 2, 3), 2: records(1, 2, 3)}, [[1, 2, 3]], [1, 2, 3]),        # `page` ignored: seen already
    ({1: [{"x": 1}], 2: [{"x": 1}]}, [[None]], [1, 2, 3]),                       # `page` ignored, no ids: same page
    ({1: records(1, 2, 3), 2: records(2, 3, 4), 3: records(1, 2, 3), 4: records(4, 5, 6), 5: records(7)},
     [[1, 2, 3], [4], [5, 6], [7]], [1, 2, 3, 4, 5, 6]),                         # a whole page shifted: read on
    ({1: records(1, 2, 3), 2: records(1, 2), 3: records(2, 3), 4: records(4)}, [[1, 2, 3]], [1, 2, 3]),  # twice: end
    ({1: records(1, 2, 3), 2: BadRequestError("400")}, [[1, 2, 3]], [1, 2]),     # the page past the end refused
    ({1: records(1, 2, 3), 2: ConfigError("404")}, [[1, 2, 3]], [1, 2]),
    ({1: records(1, None, None)}, [[1, None, None]], [1, 2]),                     # records without an id all kept
], ids=["empty", "short", "full", "drift", "repeated", "repeated-no-ids", "shifted-a-whole-page", "nothing-new-twice",
        "400-past-end", "404-past-end", "no-ids"])
def test_where_the_walk_ends_and_what_it_keeps(pages, walked, asked):
    assert read(pages) == (walked, asked)


@pytest.mark.parametrize("error", [BadRequestError("400"), ConfigError("404")])
def test_a_first_page_refused_is_an_error(error):
    with pytest.raises(type(error)):
        read({1: error})


def test_a_capped_page_size_is_read_whole_and_said_once(caplog):
    """The document says limit goes up to 10,000: an API that answers fewer must not truncate the day."""
    pages = {1: records(1, 2), 2: records(3, 4), 3: records(5)}
    with caplog.at_level(logging.WARNING):
        assert read(pages, page_size=10) == ([[1, 2], [3, 4], [5]], [1, 2, 3, 4])
    assert [r.message for r in caplog.records] == [
        "GET /api/ms/external/history: 2 records came for limit=10, and more after them: the API caps the page "
        "size; every page is read until an empty one."]


def test_each_request_names_the_page_and_the_limit():
    seen = []
    list(walk(lambda path, params: seen.append(params) or {"data": []}, "ongoing", {"agent": "7"}, 500, data_list,
              logging.getLogger("test")))
    assert seen == [{"agent": "7", "limit": "500", "page": "1"}]


def test_a_page_is_let_go_before_the_next_is_asked_for():
    """A page of 10,000 expanded records is ~50 MB of Python objects: two must never be alive at once."""
    class Record(dict):  # a dict that can be watched with a weak reference
        pass

    alive = []

    def get(path, params):
        page = int(params["page"])
        assert all(ref() is None for ref in alive), f"page {page} asked for while an earlier page is alive"
        found = [Record(id=f"{page}-{i}") for i in range(3)] if page <= 3 else []
        alive.extend(weakref.ref(r) for r in found)
        return {"data": found}

    pages = 0
    for page in walk(get, "history", {}, 3, data_list, logging.getLogger("test")):
        pages += 1
        del page  # as the history assets do
    assert pages == 3
