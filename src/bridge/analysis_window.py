"""How far back the analysis reads: the one place the snapshot's window is decided.

The store loads history from `analysis_since(settings, now)` on, and the analysis indexes what it was
given from the same moment, so a report, a cycle, `bridge explain` and the benchmarks all see the same
changes. It depends on nothing of the bridge at run time, so the store, the analysis and their callers
can all import it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import AnalyticsConfig


def analysis_since(settings: AnalyticsConfig, now: datetime) -> datetime:
    """The earliest moment the analysis looks at: the longer of the bottleneck window (`window`) and the
    forecasts' throughput window (`forecast_window`) before `now`, and never after `now`."""
    return now - max(settings.window, settings.forecast_window, timedelta(0))
