"""The daemon's Prometheus metrics: a registry of the bridge's own, exposed through `prometheus_client`.

`DaemonMetrics(trackers)` registers, in a `CollectorRegistry` of its own (never the library's global
one, so two daemons in a process, or tests, never share counts): the process, platform and garbage
collector metrics the library provides, `bridge_build_info`, and the bridge's `bridge_*` metrics with
every per-tracker series present, at 0, from the start.

Counters move as the work happens, not when a cycle ends: requests as each is made (`REQUEST_EVENTS`),
429 answers as each arrives (`RETRY_EVENTS`) and chat messages as each is sent or fails
(`ANNOUNCE_EVENTS`), once `listen()` is called; pages and items as each page is
stored, and writes (with those read back after a lost answer) as each chunk is sent, through the
`Progress` a cycle is given (`progress()`).
`record_cycle` adds, when a cycle ends whatever it ended with, its outcome, its duration, the writes
deferred and left pending, and the last success. `set_lease_held` is the lease manager's `on_held`.
The status server (`bridge.daemon.http`) renders the registry.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from bridge import __version__
from bridge.announce.sending import ANNOUNCE_EVENTS
from bridge.errors import RetriableAPIError
from bridge.http import REQUEST_EVENTS, RETRY_EVENTS
from bridge.progress import Progress

if TYPE_CHECKING:
    from bridge.domain import WriteOutcome
    from bridge.report.status_page import TrackerStatus
    from bridge.sync.cycle import TrackerCycle

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Cycle durations range from a no-change pull (well under a second) to a first full pull (many minutes)."""
CYCLE_OUTCOMES = ("ok", "partial", "failed")
WRITE_OUTCOMES = ("done", "failed", "deferred")
READ_BACK_OUTCOMES = ("applied", "not_applied")
UNKNOWN_TRACKER = "unknown"
"""The tracker label of a request or 429 whose session did not name its tracker."""


class DaemonMetrics:
    """The daemon's metrics, registered in `registry` (a new one when omitted)."""

    def __init__(self, trackers: Iterable[str] = (), *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._register_build_info()
        self._register_cycle_metrics()
        self._register_traffic_metrics()
        self._register_state_metrics()
        for tracker in trackers:
            self.add_tracker(tracker)

    def _register_build_info(self) -> None:
        build = Info("bridge_build", "The running bridge: its version and Python's.", registry=self.registry)
        build.info({"version": __version__, "python": platform.python_version()})

    def _register_cycle_metrics(self) -> None:
        r = self.registry
        self.cycles = Counter(
            "bridge_cycles",
            "Cycles run, by tracker and outcome (ok, partial: some writes failed, failed).",
            ("tracker", "outcome"),
            registry=r,
        )
        self.cycle_duration = Histogram(
            "bridge_cycle_duration_seconds",
            "How long a tracker's cycle took, in seconds.",
            ("tracker",),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "bridge_last_success_timestamp_seconds",
            "When a tracker's last cycle without error finished (Unix time; 0 when it never did).",
            ("tracker",),
            registry=r,
        )

    def _register_traffic_metrics(self) -> None:
        r = self.registry
        self.pages_pulled = Counter(
            "bridge_pages_pulled",
            "Pages read from a tracker and stored, as each is stored.",
            ("tracker",),
            registry=r,
        )
        self.items_pulled = Counter(
            "bridge_items_pulled",
            "Items read from a tracker, as each page is stored.",
            ("tracker",),
            registry=r,
        )
        self.writes = Counter(
            "bridge_writes",
            "Writes to a tracker, by outcome: done and failed as each is sent, deferred (past the write "
            "budget) once per cycle.",
            ("tracker", "outcome"),
            registry=r,
        )
        self.writes_read_back = Counter(
            "bridge_writes_read_back",
            "Writes whose request got no answer, read back from the tracker, by what it held (applied: "
            "counted done; not_applied: counted failed), as each batch is sent.",
            ("tracker", "outcome"),
            registry=r,
        )
        self.requests = Counter(
            "bridge_requests",
            "HTTP requests made to a tracker (setup reads included), as each is made.",
            ("tracker",),
            registry=r,
        )
        self.announcements = Counter(
            "bridge_announcements",
            "Chat messages (milestones reached, key results met) by `[announce]` channel and outcome (sent, "
            "failed), as each is sent.",
            ("channel", "outcome"),
            registry=r,
        )
        self.rate_limited = Counter(
            "bridge_rate_limited",
            "Answers from a tracker that asked the bridge to slow down (HTTP 429).",
            ("tracker",),
            registry=r,
        )

    def _register_state_metrics(self) -> None:
        r = self.registry
        self.pending_writes = Gauge(
            "bridge_pending_writes",
            "Writes a tracker's last push left for a later cycle: deferred past the write budget, or failed.",
            ("tracker",),
            registry=r,
        )
        self.lease_held = Gauge(
            "bridge_lease_held",
            "1 while this replica holds the tracker's lease, else 0.",
            ("tracker",),
            registry=r,
        )

    def add_tracker(self, tracker: str) -> None:
        """Make every series of `tracker` present, at 0 (counters) or as it is (gauges already set)."""
        for outcome in CYCLE_OUTCOMES:
            self.cycles.labels(tracker, outcome)
        for outcome in WRITE_OUTCOMES:
            self.writes.labels(tracker, outcome)
        for outcome in READ_BACK_OUTCOMES:
            self.writes_read_back.labels(tracker, outcome)
        for metric in (
            self.cycle_duration, self.last_success, self.pages_pulled, self.items_pulled, self.requests,
            self.rate_limited, self.pending_writes, self.lease_held,
        ):  # fmt: skip
            metric.labels(tracker)

    def resume(self, rows: Iterable[TrackerStatus]) -> None:
        """Start the gauges where the store left them, so a restart does not look like a tracker that
        never succeeded: each tracker's last successful run and the writes its last push left pending."""
        for row in rows:
            if row.last_success_at is not None:
                self.last_success.labels(row.tracker).set(row.last_success_at.timestamp())
            if row.pending is not None:
                self.pending_writes.labels(row.tracker).set(row.pending.total)

    # ---- updates -----------------------------------------------------------------------------------------

    def listen(self) -> Callable[[], None]:
        """Count every request and every 429 any session or retry policy in this process sees, by
        tracker, from now on; returns the undo."""

        def on_request(tracker: str) -> None:
            self.requests.labels(tracker or UNKNOWN_TRACKER).inc()

        def on_retriable(error: RetriableAPIError) -> None:
            if error.status == 429:
                self.rate_limited.labels(error.tracker or UNKNOWN_TRACKER).inc()

        def on_announced(event: tuple[str, str]) -> None:
            channel, outcome = event
            self.announcements.labels(channel, outcome).inc()

        REQUEST_EVENTS.add(on_request)
        RETRY_EVENTS.add(on_retriable)
        ANNOUNCE_EVENTS.add(on_announced)

        def undo() -> None:
            REQUEST_EVENTS.remove(on_request)
            RETRY_EVENTS.remove(on_retriable)
            ANNOUNCE_EVENTS.remove(on_announced)

        return undo

    def progress(self) -> MetricsProgress:
        """A `Progress` for the daemon's cycles that moves the page, item and write counters."""
        return MetricsProgress(self)

    def record_cycle(
        self, cycle: TrackerCycle, duration: float, *, finished_at: datetime | None = None
    ) -> None:
        """Count one tracker's cycle as it ended: its outcome, duration, deferred and pending writes, and
        (without an error) the last success, stamped `finished_at` (aware; now by default)."""
        tracker = cycle.tracker
        outcome = cycle.outcome
        self.cycles.labels(tracker, outcome).inc()
        self.cycle_duration.labels(tracker).observe(max(0.0, duration))
        push = cycle.push
        if push is not None and not push.dry_run:
            deferred = len(push.plan.deferred)
            self.writes.labels(tracker, "deferred").inc(deferred)
            self.pending_writes.labels(tracker).set(deferred + push.failed)
        if outcome != "failed":
            stamp = finished_at.timestamp() if finished_at is not None else time.time()
            self.last_success.labels(tracker).set(stamp)

    def set_lease_held(self, tracker: str, held: bool) -> None:
        self.lease_held.labels(tracker).set(1 if held else 0)


class MetricsProgress(Progress):
    """Moves the counters as a cycle reports its progress: pages and items as each page is stored,
    writes done, failed and read back as each chunk is sent. Page reports carry running totals per
    tracker; the counters get what each adds to the previous one."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _added(self, tracker: str, what: str, total: int) -> int:
        """How much `total` adds to the previous running total of `what` for `tracker`."""
        with self._lock:
            previous = self._seen.get((tracker, what), 0)
            self._seen[(tracker, what)] = total
        return max(0, total - previous)

    def pull_started(self, tracker: str) -> None:
        with self._lock:
            for what in ("pages", "items"):
                self._seen.pop((tracker, what), None)

    def pulled(self, tracker: str, stream: str, pages: int, items: int) -> None:
        self.metrics.pages_pulled.labels(tracker).inc(self._added(tracker, "pages", pages))
        self.metrics.items_pulled.labels(tracker).inc(self._added(tracker, "items", items))

    def sent(self, tracker: str, outcomes: Sequence[WriteOutcome]) -> None:
        done = sum(1 for outcome in outcomes if outcome.ok)
        read_back = [outcome for outcome in outcomes if outcome.read_back]
        applied = sum(1 for outcome in read_back if outcome.ok)
        self.metrics.writes.labels(tracker, "done").inc(done)
        self.metrics.writes.labels(tracker, "failed").inc(len(outcomes) - done)
        self.metrics.writes_read_back.labels(tracker, "applied").inc(applied)
        self.metrics.writes_read_back.labels(tracker, "not_applied").inc(len(read_back) - applied)
