"""`zchat-assets plan`: an account's missing days, what fetching them costs, and which the vendor loses first.

Reads the lake only (no token, no request). The figures are estimates (`retention.plan`), and the
output says so.
"""

from __future__ import annotations

import textwrap
from datetime import date

from . import retention
from .settings import AccountSettings

LISTED = 10  # missing days listed by the day they are lost
WIDTH = 100


def wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def missing_groups(datasets: tuple, settings: AccountSettings) -> str:
    """What a day misses, by group where the whole group is missing: `reports, history_expanded`."""
    out = []
    for group, members in retention.GROUPS.items():
        had = [d for d in members if d in settings.datasets]
        absent = [d for d in had if d in datasets]
        out += [group] if absent and len(absent) == len(had) and len(had) > 1 else absent
    return ", ".join(out)


def duration(seconds: float) -> str:
    """A time a person reads at a glance: 40 s, 12 min, 3 h 20 min, 2 d 4 h."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def table(rows: list[tuple], right: tuple[int, ...] = ()) -> list[str]:
    """Rows as aligned text columns, the first row the header; columns in `right` aligned right."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


class AccountPlan:
    """One account's missing days, the fetchable ones priced."""

    def __init__(self, settings: AccountSettings):
        self.settings = settings
        self.scan = retention.scan(settings)
        lost = set(self.scan.lost)
        self.days = [d for d in retention.plan(self.scan) if d.day not in lost]  # the vendor still has them
        self.lost = sorted(lost)
        self.requests = sum(d.requests for d in self.days)
        self.rate, self.assumption = retention.throughput(settings)
        self.unknown = any(d.interactions is None for d in self.days)  # nothing published to estimate from

    @property
    def name(self) -> str:
        return self.settings.name or "(unnamed)"

    @property
    def seconds(self) -> float:
        return self.requests / self.rate

    @property
    def first_lost(self) -> date | None:
        return self.days[0].lost_on if self.days else None

    @property
    def about(self) -> str:
        return "at least" if self.unknown else "about"

    def lines(self) -> list[str]:
        """The account's own view: days by dataset group, and the days lost first."""
        settings, current = self.settings, self.scan.current
        kept = f"the lake keeps {settings.retention_days} days" if settings.retention_days else "the lake keeps every day"
        out = wrapped(f"Account {self.name} ({settings.lake_uri}, {settings.timezone}, today {current}): "
                      f"{len(self.days)} missing day(s) the vendor still has; it keeps "
                      f"{settings.vendor_retention_days} days, {kept}.")
        if not self.days:
            return out + self._lost_lines()
        rows = [("group", "days", "requests")]
        for group, datasets in retention.GROUPS.items():
            days = [d for d in self.days if set(d.datasets) & set(datasets)]
            if days:
                requests = sum(retention.day_requests([s for s in d.datasets if s in datasets], d.interactions or 0,
                                                      settings.page_size) for d in days)
                rows.append((group, len(days), f"{requests:,}"))
        rows.append(("all", len(self.days), f"{self.requests:,}"))
        out += ["", *("  " + line for line in table(rows, right=(1, 2)))]
        out += wrapped(f"{self.about} {duration(self.seconds)} at {self.assumption}.", "  ")
        if self.unknown:
            out += wrapped("The lake has no published day to estimate a day's interactions from, so messages are "
                           "not counted: materialize one recent day, then run plan again.", "  ")
        listed = [("day", "lost on", "in", "missing")]
        for d in self.days[:LISTED]:
            listed.append((d.day, d.lost_on.isoformat(), f"{(d.lost_on - current).days} d",
                           missing_groups(d.datasets, settings)))
        more = len(self.days) - LISTED
        out += ["", "  Lost first (the day each passes the vendor's retention):",
                *("  " + line for line in table(listed, right=(2,)))]
        if more > 0:
            out.append(f"  …and {more} more day(s), each lost later.")
        return out + self._lost_lines()

    def _lost_lines(self) -> list[str]:
        if not self.lost:
            return []
        return wrapped(f"{len(self.lost)} missing day(s) are already past the vendor's retention ({self.lost[0]} to "
                       f"{self.lost[-1]}): not counted, the vendor no longer has them.", "  ")


def estimate_note(settings: AccountSettings) -> str:
    reports = sum(d in settings.datasets for d in retention.REPORTS)
    return (f"Requests are an estimate: a missing day has the interactions of its published neighbours (up to "
            f"{retention.NEIGHBOURS} days each side, else the account's average), and costs {reports} report "
            f"request(s), a walk of each history (its pages of {settings.page_size:,}, then the empty page that "
            "ends it) and one messages request per interaction; retries, re-asked protocols and cached messages "
            "are not counted.")


def account_report(settings: AccountSettings) -> str:
    plan = AccountPlan(settings)
    summary = (f"Summary: {len(plan.days)} missing day(s), {plan.about} {plan.requests:,} requests, "
               f"{duration(plan.seconds)}" + (f"; the first is lost on {plan.first_lost}." if plan.days else "."))
    return "\n".join([*plan.lines(), "", *wrapped(estimate_note(settings)), summary])


def fleet_report(name: str, accounts: list[AccountSettings]) -> str:
    """One line per account with missing days, the first lost first."""
    plans = sorted((AccountPlan(a) for a in accounts), key=lambda p: (p.first_lost or date.max, p.name))
    due = [p for p in plans if p.days]
    rows = [("account", "missing days", "requests", "time", "first lost on")]
    rows += [(p.name, len(p.days), f"{'≥' if p.unknown else ''}{p.requests:,}", duration(p.seconds),
              p.first_lost.isoformat()) for p in due]
    lost = sum(len(p.lost) for p in plans)
    out = [f"Fleet {name}: {len(due)} of {len(plans)} account(s) have missing days the vendor still has."]
    if due:
        out += ["", *("  " + line for line in table(rows, right=(1, 2, 3)))]
        out += wrapped(f"Times at each account's own budget, for {due[0].name}: {due[0].assumption}.", "  ")
    if lost:
        out += wrapped(f"{lost} missing day(s) are already past the vendor's retention: not counted.", "  ")
    longest = max((p.seconds for p in due), default=0)
    summary = (f"Summary: {sum(len(p.days) for p in due)} missing day(s) in {len(due)} account(s), about "
               f"{sum(p.requests for p in due):,} requests; the accounts fetch in parallel, the longest in "
               f"{duration(longest)}" + (f"; the first is lost on {due[0].first_lost} ({due[0].name})." if due else "."))
    return "\n".join([*out, "", *wrapped(estimate_note(accounts[0])), summary])
