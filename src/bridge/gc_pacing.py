"""Fewer garbage collections while a pull turns pages of JSON into rows, and none over a loaded snapshot.

A page makes hundreds of thousands of short-lived objects (decoded JSON, domain values, row tuples), and
with the interpreter's default threshold (700 allocations) the collector runs thousands of times a pull,
each time also walking the long-lived objects of the process (modules, the SQLAlchemy metadata, the
connector). While a pull runs, the objects that were there before it are frozen (left out of every
collection) and the youngest generation is collected every 50,000 allocations: measured with
`bench/pull.py`'s setup at 3,000 issues, the pull's CPU time fell by about a fifth. Cycles are still
collected, only less often, so memory stays bounded. Thread-safe: the daemon pulls several trackers at
once; the first pull to start sets this up and the last to end restores the interpreter's settings.

A snapshot loaded for an analysis is several hundred thousand objects (tasks, flow facts and their
tuples) that hold no cycle and live until the report is made. Each collection that reaches their
generation walks all of them: measured at 100,000 tasks, 0.19 s of CPU once the load ends and 0.28 s
more while the report's JSON is made. So when a load ends, what is alive is frozen (`hold_loaded`), and
the freeze is released when the next load starts, a pull ends or a sync cycle ends (objects freed
meanwhile are freed as usual; a cycle that was garbage when frozen waits until the release to be
collected). A cycle that loaded a snapshot releases it and collects once as it ends
(`release_loaded(collect=True)`): otherwise the daemon's next cycle, a quiet one, paid for that
collection (measured at a million tasks: 0.59 s of its CPU, the cycle 1.07 s against 0.54 to 0.63 s
for the cycles after it), and the garbage of the loaded snapshot waited for it meanwhile.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 100)

_lock = threading.Lock()
_holders = 0
_held = False
"""A load froze what was alive (`hold_loaded`) and nothing has released it since."""
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often, and never the objects older than the outermost holder, until it ends."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
                _release_held()


def hold_loaded() -> None:
    """Leave every object alive now (a snapshot just loaded, with everything older) out of collections
    until `release_loaded` or the end of a pull."""
    global _held
    with _lock:
        gc.freeze()
        _held = True


def release_loaded(*, collect: bool = False) -> None:
    """Return what `hold_loaded` froze to the collector (a pull under way releases it when it ends);
    with `collect`, and when a load had frozen it, collect the oldest generation now, so the garbage
    left from the load is freed here rather than in whatever runs next."""
    with _lock:
        if _holders != 0:
            return
        gc.unfreeze()
        held = _release_held()
    if collect and held:
        gc.collect()


def _release_held() -> bool:
    """Whether a load's freeze was in place, which it is not from now on (called under `_lock`)."""
    global _held
    held, _held = _held, False
    return held
