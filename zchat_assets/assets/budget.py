"""One budget per token, used in full: each API step's part of `rate_limit` follows the steps actually running.

A step that calls the API holds a lease on its token's budget: one row of the Dagster instance's own
key-value table (SQLite locally, PostgreSQL in a deployment, so every machine sees it), refreshed every
HEARTBEAT_SECONDS. At each refresh the step counts the leases still alive and takes an equal part of what
the ongoing sensor leaves: alone it gets 90% of the budget, two at once 45% each, on any machine. A lease
seen unchanged for LEASE_SECONDS is dead (its run was killed) and counts for nobody; the next refresh
deletes it. A step that finds others running waits two heartbeats before its first request, so that they
have taken their smaller part first: the sum stays within the budget while the count changes. Accounts
with the same token share one budget, whatever fleet or account they are written in. No server beyond
the instance.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

from dagster import DagsterInstance
from dagster._core.storage.runs.schema import KeyValueStoreTable
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

HEARTBEAT_SECONDS = 1.0
LEASE_SECONDS = 10.0  # a lease seen unchanged this long is a killed step's
SENSOR_SHARE = 0.1  # the ongoing sensor's part (it polls a page or two a minute); the steps share the rest
PREFIX = "zchat/budget/"
# The leases of one process (the datasets of the interactions step each hold one) reach the instance's
# database one at a time: SQLite refuses a table another connection of the process is writing.
_STORAGE = threading.Lock()
RELEASE_TRIES = 3  # a release lost to a write of another step's heartbeat would leave a lease counting for 10 s


class Leases:
    """The leases of one budget in the instance's key-value table, one row per step, as one holder sees them.
    A row is alive while its beat changes: each holder judges that by its own clock alone (rows written on
    machines whose clocks disagree are judged alike), and counts a row it has just met as alive."""

    def __init__(self, instance: DagsterInstance, budget: str):
        storage = instance.run_storage
        self._storage = storage if isinstance(storage, SqlRunStorage) else None
        self._prefix = f"{PREFIX}{budget}/"
        self._seen: dict[str, tuple[str, float]] = {}  # key -> (value, when this holder saw it change)

    @property
    def shared(self) -> bool:
        return self._storage is not None

    def renew(self, holder: str, record: dict) -> None:
        with _STORAGE:
            self._storage.set_cursor_values({self._prefix + holder: json.dumps(record)})

    def alive(self) -> set[str]:
        """The holders whose lease is alive; rows unchanged for LEASE_SECONDS are deleted on the way."""
        table = KeyValueStoreTable
        with _STORAGE:
            rows = self._storage.fetchall(table.select().where(table.c.key.startswith(self._prefix, autoescape=True)))
        now, alive, dead = time.monotonic(), set(), []
        for row in rows:
            value, changed = self._seen.get(row["key"], (None, now))
            if value != row["value"]:
                self._seen[row["key"]] = (row["value"], now)
                changed = now
            (alive.add(row["key"][len(self._prefix):]) if now - changed < LEASE_SECONDS else dead.append(row["key"]))
        if dead:
            self.remove(dead)
        return alive

    def remove(self, keys: list[str]) -> None:
        with _STORAGE, self._storage.connect() as conn:
            conn.execute(KeyValueStoreTable.delete().where(KeyValueStoreTable.c.key.in_(keys)))
        for key in keys:
            self._seen.pop(key, None)

    def release(self, holder: str) -> None:
        self.remove([self._prefix + holder])


class Lease:
    """A step's hold on its token's budget while it calls the API: `share(part)` is told its part of the
    budget now and at every change."""

    def __init__(self, instance: DagsterInstance, budget: str, share: Callable[[float], None], record: dict,
                 log=None):
        self._leases, self._share, self._record, self._log = Leases(instance, budget), share, record, log
        self._holder = uuid.uuid4().hex
        self._beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = time.monotonic()
        self.holders = 1

    def __enter__(self) -> Lease:
        if not self._leases.shared:  # an instance without a SQL run storage: this process is all there is
            self._share(1 - SENSOR_SHARE)
            return self
        self._renew()
        others = self._refresh()
        if others:
            if self._log is not None:
                self._log.info(f"The account's budget is shared with {others} other step(s) running now: this one "
                               f"takes {100 * (1 - SENSOR_SHARE) / (others + 1):.0f}% of it.")
            time.sleep(2 * HEARTBEAT_SECONDS)  # the others take their smaller part before this one starts
        self._thread = threading.Thread(target=self._beat, name="zchat-budget", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join()
        for attempt in range(RELEASE_TRIES):
            try:
                self._leases.release(self._holder)
                return
            except Exception as error:  # another step's heartbeat holds the table a moment: try again
                if attempt + 1 < RELEASE_TRIES:
                    time.sleep(0.1)
                elif self._log is not None:  # the lease runs out by itself: nothing is lost but 10 s of the others' part
                    self._log.warning(f"The account's budget lease could not be released ({type(error).__name__}); "
                                      f"it runs out within {LEASE_SECONDS:g} s.")

    def _renew(self) -> None:
        self._beats += 1
        self._leases.renew(self._holder, {**self._record, "beat": self._beats})
        self._renewed = time.monotonic()

    def _refresh(self) -> int:
        """Counts the live leases, takes this step's part; returns how many other steps hold one."""
        others = len(self._leases.alive() - {self._holder})
        if others + 1 != self.holders or self._thread is None:
            self.holders = others + 1
            self._share((1 - SENSOR_SHARE) / self.holders)
        return others

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._renew()
                self._refresh()
            except Exception as error:  # the instance's database is away for a moment: try again
                if time.monotonic() - self._renewed > LEASE_SECONDS / 2:
                    # The others may soon count this step as gone and take its part: give most of it back.
                    self.holders = 0
                    self._share((1 - SENSOR_SHARE) / 10)
                if self._log is not None:
                    self._log.warning(f"The account's budget lease could not be refreshed ({type(error).__name__}); "
                                      "trying again.")
