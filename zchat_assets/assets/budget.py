"""One budget per token, used in full: each API step's part of `rate_limit` follows the steps actually running.

A step that calls the API holds a lease on its token's budget: one row of the Dagster instance's own
key-value table (SQLite locally, PostgreSQL in a deployment, so every machine sees it), refreshed every
HEARTBEAT_SECONDS. At each refresh the step counts the leases still alive and takes an equal part of what
the ongoing sensor leaves: alone it gets 90% of the budget, two at once 45% each, on any machine. A lease
not refreshed for LEASE_SECONDS is dead (its run was killed) and counts for nobody; the next refresh deletes
it. A step that finds others running waits one heartbeat before its first request, so that they have taken
their smaller part first: the sum stays within the budget while the count changes. Accounts with the same
token share one budget, whatever fleet or account they are written in. No server beyond the instance.
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
LEASE_SECONDS = 10.0  # a lease unrefreshed this long is a killed step's
SENSOR_SHARE = 0.1  # the ongoing sensor's part (it polls a page or two a minute); the steps share the rest
PREFIX = "zchat/budget/"


class Leases:
    """The leases of the instance's key-value table: one row per step, keyed by budget and holder."""

    def __init__(self, instance: DagsterInstance):
        storage = instance.run_storage
        self._storage = storage if isinstance(storage, SqlRunStorage) else None

    @property
    def shared(self) -> bool:
        return self._storage is not None

    def renew(self, budget: str, holder: str, record: dict) -> None:
        self._storage.set_cursor_values({f"{PREFIX}{budget}/{holder}": json.dumps(
            {**record, "until": time.time() + LEASE_SECONDS})})

    def alive(self, budget: str) -> dict[str, dict]:
        """The budget's live leases by holder; dead ones are deleted on the way."""
        table = KeyValueStoreTable
        prefix = f"{PREFIX}{budget}/"
        rows = self._storage.fetchall(table.select().where(table.c.key.startswith(prefix, autoescape=True)))
        now, alive, dead = time.time(), {}, []
        for row in rows:
            record = json.loads(row["value"])
            (alive.__setitem__(row["key"][len(prefix):], record) if record.get("until", 0) > now
             else dead.append(row["key"]))
        if dead:
            self.remove(dead)
        return alive

    def remove(self, keys: list[str]) -> None:
        with self._storage.connect() as conn:
            conn.execute(KeyValueStoreTable.delete().where(KeyValueStoreTable.c.key.in_(keys)))

    def release(self, budget: str, holder: str) -> None:
        self.remove([f"{PREFIX}{budget}/{holder}"])


class Lease:
    """A step's hold on its token's budget while it calls the API: `share(part)` is told its part of the
    budget now and at every change."""

    def __init__(self, instance: DagsterInstance, budget: str, share: Callable[[float], None], record: dict,
                 log=None):
        self._leases, self._budget, self._share, self._record, self._log = Leases(instance), budget, share, record, log
        self._holder = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holders = 1

    def __enter__(self) -> Lease:
        if not self._leases.shared:  # an instance without a SQL run storage: this process is all there is
            self._share(1 - SENSOR_SHARE)
            return self
        self._leases.renew(self._budget, self._holder, self._record)
        others = self._refresh()
        if others:
            if self._log is not None:
                self._log.info(f"The account's budget is shared with {others} other step(s) running now: this one "
                               f"takes {100 * (1 - SENSOR_SHARE) / (others + 1):.0f}% of it.")
            time.sleep(HEARTBEAT_SECONDS)  # the others take their smaller part before this one starts
        self._thread = threading.Thread(target=self._beat, name="zchat-budget", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._leases.release(self._budget, self._holder)

    def _refresh(self) -> int:
        """Counts the live leases, takes this step's part; returns how many other steps hold one."""
        alive = self._leases.alive(self._budget)
        others = len([h for h in alive if h != self._holder])
        if others + 1 != self.holders or self._thread is None:
            self.holders = others + 1
            self._share((1 - SENSOR_SHARE) / self.holders)
        return others

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._leases.renew(self._budget, self._holder, self._record)
                self._refresh()
            except Exception as exc:  # the instance's database is briefly away: keep the part held, try again
                if self._log is not None:
                    self._log.warning(f"The account's budget lease could not be refreshed ({exc}); trying again.")
