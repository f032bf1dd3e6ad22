"""The service history, standard and expanded: one row per interaction (protocol) of the day."""

from contextlib import suppress

from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, Failure

from .. import open_days
from ..api.vendor import HISTORY_FILTERS
from ..quality import Check, unique_ids
from ..schemas import dataset_schema, to_table
from .account import Shape
from .days import DayOutcome, late_changes_spec
from .metadata import partition_metadata
from .relay import Listing, Relays

CODE_VERSION = "2"
PREVIEW = ["protocol_id", "created_at", "media", "current_state", "agent_name", "department_name"]


def audit(writer, other: str, seen: set, others: set[str] | None) -> dict:
    """The day's checks; `others` are the protocols of the other history's published day (None: it has none)."""
    unlisted, extra = (others - seen, seen - others - {None}) if others is not None else (set(), set())
    listed = ("" if not unlisted else f"{len(unlisted)} protocol(s) of {other} not listed here even when asked "
              f"again (deleted at the vendor since {other} was fetched?): {sorted(unlisted)[:5]}")
    more = f"{len(extra)} protocol(s) not in {other} yet, which its next run fetches: {sorted(extra)[:5]}" if extra else ""
    return {"protocol_id_unique": unique_ids(writer.read(["protocol_id"]).column("protocol_id"), "protocol_id"),
            "protocols_match": Check(not (unlisted or extra), "; ".join(t for t in (listed, more) if t), "warn")}


def listed(lake, dataset: str, day: str) -> set[str] | None:
    """The protocols of a dataset's published day, or None when it has none."""
    if not lake.exists(dataset, day):
        return None
    return {p for p in lake.read(dataset, day, columns=["protocol_id"]).column("protocol_id").to_pylist() if p}


def history_spec(account: Shape, name: str) -> tuple[AssetSpec, list[AssetCheckSpec]]:
    key, other = account.key(name), other_history(name)
    what = "expanded service history (standard fields plus counters, times, tags and web client data)" \
        if name == "history_expanded" else "service history"
    spec = AssetSpec(**account.spec_args(name, "history"), code_version=CODE_VERSION,
                     description=f"The {what}: one row per interaction created that day, fetched page by page.")
    return spec, [AssetCheckSpec("protocol_id_unique", asset=key, blocking=True,
                                 description="Every row has a protocol_id and none appears twice."),
                  AssetCheckSpec("protocols_match", asset=key,
                                 description=f"The same protocols as {other}'s day: one missing here is asked "
                                             "again before the day is published (a record deleted while the "
                                             "pages were read hides another)."),
                  late_changes_spec(key)]


def other_history(name: str) -> str:
    return "history" if name == "history_expanded" else "history_expanded"


def history_day(context: AssetExecutionContext, account: Shape, name: str, tells: Relays | None = None,
                mine: Listing | None = None, theirs: Listing | None = None):
    """What a day of a history is. In a step of several datasets, the expanded history tells `tells` each
    page as written and the day's fate (for the messages); and when both histories run, each tells the other
    what it listed (`mine`, `theirs`): each asks again for what the other's walk found and its own did not,
    and is audited against the other's whole day, rather than against the lake's."""
    expanded, other, schema = name == "history_expanded", other_history(name), dataset_schema(name)

    def produce(member, day, client, lake) -> DayOutcome:
        told = [relays.get(member.name, day.key) for relays in (tells, *(mine.both if mine else ())) if relays]
        try:
            outcome, seen = walk_day(member, day, client, lake)
        except BaseException as exc:
            for relay in told:
                relay.settle(f"{name} {member.partition(day.key)} was not published ({exc})")
            raise
        for relay in told:
            relay.settle(protocols=seen)
        return outcome

    def other_listing(member, day, lake, relays: Relays | None) -> set[str] | None:
        if relays is not None:
            with suppress(Failure):  # the other failed that day: the lake's version, as when it ran before
                return relays.get(member.name, day.key).published()
        return listed(lake, other, day.key) if account.has(other) else None

    def walk_day(member, day, client, lake) -> tuple[DayOutcome, set]:
        privacy, filters = member.privacy(context), member.settings.filters.params(HISTORY_FILTERS)
        unfinished, seen, others = 0, set(), None
        pages = tells.get(member.name, day.key) if tells is not None else None

        def walk(writer, wanted: set[str] | None = None) -> None:
            nonlocal unfinished
            for page in client.history_pages(day.start, day.end, day.offset, expanded=expanded, **filters):
                if wanted is not None:
                    page = [r for r in page if str(r.get("id")) in wanted]
                table = to_table(page, name, privacy=privacy, zone=day.zone)
                unfinished += table.column("end_time").null_count if expanded else 0
                seen.update(table.column("protocol_id").to_pylist())
                written = writer.write(table)
                if pages is not None:
                    pages.put(written)  # without erased subjects: their conversations are not asked for
                del page, table, written  # not kept while the next page is read (paging.walk)

        with lake.replace_partition(name, day.key, schema, lambda w: audit(w, other, seen, others)) as writer:
            walk(writer)
            if mine is not None:
                mine.walked.get(member.name, day.key).settle(protocols=_ids(seen))
            others = other_listing(member, day, lake, theirs.walked if theirs else None)
            if others and others - seen:
                context.log.warning(f"{name} {member.partition(day.key)}: {len(others - seen)} protocol(s) of {other} were not "
                                    "listed (a record deleted while the pages were read?): asking again")
                walk(writer, others - seen)
            if pages is not None:
                pages.walked()
            if theirs is not None:
                mine.whole.get(member.name, day.key).settle(protocols=_ids(seen))
                others = other_listing(member, day, lake, theirs.whole)
        if expanded:
            open_days.mark(lake, day.key, unfinished)
        return DayOutcome(partition_metadata(name, writer.result, writer.sample, PREVIEW), writer.checks,
                          writer.result.changes), _ids(seen)

    return produce


def _ids(protocols: set) -> set[str]:
    return {p for p in protocols if p}
