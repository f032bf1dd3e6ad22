"""Python's garbage collector in the process, set when the package is first imported; a user's own setting is kept.

- **What import made is frozen.** By then Dagster, pandas, pyarrow and this package have made some 240,000
  objects the collector tracks, which live as long as the process. Each full collection walked all of them,
  a dozen times in a busy day's run, and the interpreter walked them again on its way out, most of a run's
  last second. Frozen (`gc.freeze`), they are left alone: at import, and once more at exit for what the
  run made.
- **A young collection every 10,000 allocations**, not Python's default 700. A busy day decodes 20,000
  answers into short-lived objects; most are freed by reference counting before a young collection
  would have walked them.

Together a busy day's run takes about 13 % less CPU for the same peak memory (docs/performance.md). An
object frozen here that later becomes part of a cycle of garbage stays until the process ends; import
makes few such objects. A process that already chose its collector's thresholds, or turned it off, keeps
its choice.
"""

import atexit
import gc

YOUNG = 10_000
PYTHONS_DEFAULT = (700, 10, 10)


def choose() -> None:
    if not gc.isenabled() or gc.get_threshold() != PYTHONS_DEFAULT:
        return
    gc.set_threshold(YOUNG, *PYTHONS_DEFAULT[1:])
    gc.freeze()
    atexit.register(gc.freeze)
