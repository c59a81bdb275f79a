"""Pure analytics over a snapshot of the store: value ranks, OKR links and progress, bottlenecks,
time in status, forecasts and coherence warnings. No I/O; the current time is passed in."""

from __future__ import annotations

from bridge.analytics.report import Report, analyse
from bridge.domain import Snapshot

__all__ = ["Report", "Snapshot", "analyse"]
