"""`bridge run`: each tracker's cycle on its own schedule, one at a time, shared safely between replicas.

APScheduler 3.x schedules in memory (jobs rebuilt from the config at start; durable state lives in the
store): one job per tracker, `max_instances=1`, coalescing, a misfire grace time, errors logged through a
listener. A job first claims the tracker's lease in the store; a replica that does not get it leaves the
cycle to the one that did. While the cycle runs, a heartbeat extends the lease, and every transaction
that stores results checks the lease's fencing token, so a replica that lost its lease (paused, cut off)
cannot commit over the one that took over. A cycle is due when the tracker's last finished cycle, by
whichever replica, started an interval ago (less a small tolerance for the jitter).

Shutdown (SIGTERM, Ctrl-C) sets one event: pulls stop after the page in hand, waits (Retry-After, backoff,
rate limits) return at once, and the transaction in hand finishes; `run` returns within the configured
`daemon.shutdown_timeout`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.config import BridgeConfig, log_config_warnings
from bridge.daemon.leases import LeaseLost, LeaseManager
from bridge.errors import BridgeError, StoreError
from bridge.http import redact
from bridge.store import Store
from bridge.sync.cycle import CycleResult, TrackerCycle, run_cycle

if TYPE_CHECKING:
    from bridge.daemon.metrics import DaemonMetrics
    from bridge.progress import Progress
    from bridge.report.status_page import LiveStatus

log = logging.getLogger(__name__)


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class TrackerState:
    """What the daemon knows of one tracker's cycles, for `/`, `/metrics` and logs."""

    name: str
    last: TrackerCycle | None = None
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_success: datetime | None = None
    last_duration: float | None = None
    cycles: int = 0
    skipped: int = 0
    """Due cycles another replica held the lease for."""
    running: bool = False
    store_failure: str | None = None
    """Why the last cycle could not use the store; None when it could."""


@dataclass
class DaemonStatus:
    replica: str
    started: datetime
    trackers: dict[str, TrackerState] = field(default_factory=dict)
    next_runs: dict[str, datetime | None] = field(default_factory=dict)
    scheduler_running: bool = False
    key_results: list[dict[str, Any]] = field(default_factory=list)
    """Each key result's status, reason and progress, as the last cycle's analysis had them."""
    item_warnings: list[dict[str, Any]] = field(default_factory=list)
    """The items the method warns about (kind, item, team, reason, label), as the last cycle's analysis
    had them."""


class Daemon:
    def __init__(
        self,
        config: BridgeConfig,
        store: Store,
        *,
        replica: str | None = None,
        on_cycle: Callable[[str, TrackerCycle, float], None] | None = None,
        on_lease: Callable[[str, bool], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        """`on_cycle(tracker, cycle, seconds)` hears of every cycle this replica ran, whatever it ended
        with; `on_lease(tracker, held)` of every lease it takes or gives up; `progress` of each page
        stored and each chunk of writes sent."""
        self.config = config
        self.store = store
        self.replica = replica or replica_id()
        self.stop = threading.Event()
        self.on_cycle = on_cycle
        self.progress = progress
        self.leases = LeaseManager(
            store,
            self.replica,
            ttl=config.daemon.lease_ttl,
            heartbeat=config.daemon.heartbeat,
            on_held=on_lease,
        )
        self.trackers = [name for name, tracker in config.trackers.items() if tracker.enabled]
        self.status = DaemonStatus(self.replica, datetime.now(UTC))
        self.status.trackers = {name: TrackerState(name) for name in self.trackers}
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.trackers)))},
        )
        self._lock = threading.Lock()
        self._facts_lock = threading.Lock()
        self._facts_done = False
        self._facts_after: tuple[str, str] | None = None

    # ---- life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule every enabled tracker's cycle; the first run of each is due at once."""
        log_config_warnings(self.config, log)
        # SQLite: one daemon at a time (a second is refused); a daemon that loses that claim stops.
        self.leases.start_daemon(datetime.now(UTC), stop=self.stop, on_lost=lambda _: self.stop.set())
        for name in self.trackers:
            schedule = self.config.schedule_for(name)
            self.scheduler.add_job(
                self.run_tracker,
                trigger=_trigger(schedule.cron, schedule.effective_interval, schedule.jitter),
                args=[name],
                id=name,
                name=f"cycle of {name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(schedule.misfire_grace.total_seconds()) or None,
                next_run_time=datetime.now(UTC),
            )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.scheduler.start()
        self.status.scheduler_running = True
        log.info("daemon %s started: %d trackers", self.replica, len(self.trackers))

    def shutdown(self) -> None:
        """Stop scheduling, let cycles in hand finish their transaction, release what this replica holds."""
        self.stop.set()
        self.status.scheduler_running = False
        deadline = time.monotonic() + self.config.daemon.shutdown_timeout.total_seconds()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        while any(state.running for state in self.status.trackers.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.leases.stop_daemon()
        log.info("daemon %s stopped", self.replica)

    def scheduler_failure(self) -> str | None:
        """Why the scheduler no longer runs though the daemon was not told to stop; None while it runs,
        before `start` and once shutting down. APScheduler keeps saying it runs when its thread dies."""
        if not self.status.scheduler_running or self.stop.is_set():
            return None
        if not self.scheduler.running:
            return "the scheduler has stopped"
        thread = getattr(self.scheduler, "_thread", None)
        if not isinstance(thread, threading.Thread) or not thread.is_alive():
            return "the scheduler's thread has died"
        return None

    def next_runs(self) -> dict[str, datetime | None]:
        found: dict[str, datetime | None] = {}
        for job in self.scheduler.get_jobs():
            found[job.id] = job.next_run_time
        return found

    # ---- one tracker's cycle --------------------------------------------------------------------------

    def run_tracker(self, name: str) -> TrackerCycle | None:
        """The scheduled job: claim the lease, run the cycle with fencing, record, release.

        Whatever a cycle raises ends here: it becomes the cycle's error, logged at ERROR (with the
        traceback when it is not one of the bridge's own errors) and counted as a failed cycle, and the
        scheduler goes on. A cycle that failed on the store (unreadable, corrupt, gone) is also remembered
        in the tracker's state, so readiness can say the daemon cannot work.
        """
        if self.stop.is_set():
            return None
        state = self.status.trackers[name]
        started = time.monotonic()
        try:
            entry = self._run_tracker(name, state)
        except Exception as exc:
            if isinstance(exc, StoreError):
                state.store_failure = redact(str(exc))
            failed = TrackerCycle(name, error=_failure(exc))
            self._finished(state, failed, time.monotonic() - started, exc)
            return failed
        state.store_failure = None
        if entry is not None:
            self._finished(state, entry, time.monotonic() - started)
            self._backfill_facts()
        return entry

    def _run_tracker(self, name: str, state: TrackerState) -> TrackerCycle | None:
        """The cycle, or None when it is not due here (another replica ran it or runs it)."""
        now = datetime.now(UTC)
        schedule = self.config.schedule_for(name)
        due_every = schedule.effective_interval or _cron_spacing(schedule.cron, now)
        lease = self.leases.claim(name, now, due_every=due_every)
        if lease is None:
            state.skipped += 1
            log.debug("%s: not due here (another replica ran or runs it)", name)
            return None
        state.running = True
        state.last_started = now
        entry: TrackerCycle | None = None
        try:
            with self.leases.heartbeat(lease, every=self.config.daemon.heartbeat) as held:
                result: CycleResult = run_cycle(
                    self.store,
                    self.config,
                    now=now,
                    tracker=name,
                    stop=self.stop,
                    guard=held.check,
                    progress=self.progress,
                )
            (entry,) = result.trackers or (TrackerCycle(name, error="nothing pulled"),)
            if result.report is not None:
                from bridge.report.status_page import item_warnings_json, key_results_json

                self.status.key_results = key_results_json(result.report)
                self.status.item_warnings = item_warnings_json(result.report)
        except LeaseLost as exc:
            entry = TrackerCycle(name, error=f"lease lost: {exc}")
            log.warning(
                "%s: %s; the replica that took over finishes the cycle", name, exc, extra={"tracker": name}
            )
        finally:
            state.running = False
            self.leases.finish(lease, datetime.now(UTC), ok=entry is not None and entry.error is None)
        return entry

    def _finished(
        self, state: TrackerState, entry: TrackerCycle, duration: float, raised: BaseException | None = None
    ) -> None:
        """Record a cycle that ran (or raised), log its summary and tell `on_cycle`."""
        finished = datetime.now(UTC)
        state.cycles += 1
        state.last_finished = finished
        state.last_duration = duration
        state.last = entry
        if entry.error is None:
            state.last_success = finished
        log_cycle(entry, duration, number=state.cycles, raised=raised)
        if self.on_cycle is not None:
            self.on_cycle(state.name, entry, duration)

    def _backfill_facts(self) -> None:
        """After a cycle, one chunk of the flow-facts backfill, until no task's history lacks them (a
        store pulled before facts existed); each chunk is short and yields to every other writer."""
        if self._facts_done or not self._facts_lock.acquire(blocking=False):
            return  # done, or another tracker's thread is at it
        from bridge.store.facts import BACKFILL_CHUNK, backfill_chunk

        try:
            keys, wrote = backfill_chunk(self.store, datetime.now(UTC), self._facts_after, BACKFILL_CHUNK)
        except StoreError as exc:
            log.warning("flow facts backfill: %s; tried again after the next cycle", exc)
            return
        finally:
            self._facts_lock.release()
        if wrote:
            log.info("flow facts backfill: %d more tasks have their facts", wrote)
        if len(keys) < BACKFILL_CHUNK:
            self._facts_done = True
        else:
            self._facts_after = keys[-1]

    def _on_event(self, event: Any) -> None:
        if isinstance(event, JobExecutionEvent) and event.exception is not None:
            log.error("%s: the cycle failed: %s", event.job_id, event.exception)
        elif event.code == EVENT_JOB_MISSED:
            log.warning(
                "%s: a cycle was missed (the process was busy or asleep past the grace time)", event.job_id
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("%s: still running; the next cycle waits for it", event.job_id)


def _failure(exc: BaseException) -> str:
    """What a cycle that raised `exc` reports as its error: the bridge's own errors say what happened;
    anything else is a bug, named by its type."""
    if isinstance(exc, BridgeError):
        return redact(str(exc))
    return redact(f"unexpected {type(exc).__name__}: {exc}")


_CYCLE_LEVELS = {"ok": logging.INFO, "partial": logging.WARNING, "failed": logging.ERROR}


def log_cycle(
    entry: TrackerCycle, duration: float, *, number: int, raised: BaseException | None = None
) -> None:
    """One line for a tracker's cycle: INFO when it went well, WARNING when some writes failed, ERROR
    when it failed (with the traceback when it raised something other than the bridge's own errors).
    JSON logs carry the figures as fields: `tracker`, `cycle` (this replica's count of the tracker's
    cycles, from 1), `outcome`, `duration_s`, `items`, `writes_*`, `requests`, `error`."""
    summary = entry.summary()
    outcome = entry.outcome
    fields = {
        "tracker": entry.tracker,
        "cycle": number,
        "outcome": outcome,
        "duration_s": round(duration, 3),
        "items": summary["items_pulled"],
        "writes_planned": summary["writes_planned"],
        "writes_deferred": summary["writes_deferred"],
        "writes_done": summary["writes_done"],
        "writes_failed": summary["writes_failed"],
        "writes_read_back": summary["writes_read_back"],
        "requests": summary["requests"],
        "error": entry.error,
    }
    log.log(
        _CYCLE_LEVELS[outcome],
        "%s: cycle %s in %.1fs: %d pulled, %d writes planned, %d done, %d failed, %d requests%s",
        entry.tracker, "FAILED" if outcome == "failed" else outcome, duration, summary["items_pulled"],
        summary["writes_planned"], summary["writes_done"], summary["writes_failed"], summary["requests"],
        f": {entry.error}" if entry.error else "",
        extra=fields,
        exc_info=raised if raised is not None and not isinstance(raised, BridgeError) else None,
    )  # fmt: skip


def _trigger(cron: str | None, interval: timedelta | None, jitter: timedelta) -> Any:
    seconds = int(jitter.total_seconds()) or None
    if cron is not None:
        trigger = CronTrigger.from_crontab(cron, timezone=UTC)
        trigger.jitter = seconds
        return trigger
    assert interval is not None
    return IntervalTrigger(seconds=interval.total_seconds(), jitter=seconds, timezone=UTC)


def _cron_spacing(cron: str | None, now: datetime) -> timedelta:
    """The time between a crontab's next two runs: a cycle is due again once that much has passed."""
    if cron is None:
        return timedelta(0)
    trigger = CronTrigger.from_crontab(cron, timezone=UTC)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    return second - first if first is not None and second is not None else timedelta(0)


def run_forever(daemon: Daemon, *, install_signals: bool = True) -> None:
    """Start, then wait for SIGTERM or Ctrl-C, then shut down within the configured timeout."""
    if install_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: daemon.stop.set())
    daemon.start()
    try:
        while not daemon.stop.wait(0.5):
            pass
    finally:
        daemon.shutdown()


def serve(config: BridgeConfig, store: Store, announce: Callable[[Daemon, str], None]) -> None:
    """Run the daemon with its status server (health, metrics, status page) until SIGTERM or Ctrl-C.

    `announce(daemon, url)` is called once the status server listens.
    """
    from bridge.daemon.http import StatusServer
    from bridge.daemon.metrics import DaemonMetrics

    metrics = DaemonMetrics()
    daemon = Daemon(
        config,
        store,
        on_cycle=lambda name, entry, seconds: metrics.record_cycle(entry, seconds),
        on_lease=metrics.set_lease_held,
        progress=metrics.progress(),
    )
    for name in daemon.trackers:
        metrics.add_tracker(name)
    resume_metrics(metrics, store, daemon.trackers)
    stop_counting = metrics.listen()
    server = StatusServer(config, store, metrics.registry, lambda: live_status(daemon))
    try:
        server.start()
        announce(daemon, server.url)
        run_forever(daemon)
    finally:
        server.stop()
        stop_counting()


def resume_metrics(metrics: DaemonMetrics, store: Store, trackers: list[str]) -> None:
    """Start `metrics`' gauges from the store's run history (last success, pending writes); a store
    that cannot be read leaves them at 0, and readiness will say why."""
    from bridge.report.status_page import status_rows

    try:
        metrics.resume(status_rows(store, datetime.now(UTC), trackers=trackers, limit=1))
    except StoreError as exc:
        log.warning("the metrics start at 0: the store's run history could not be read: %s", exc)


def live_status(daemon: Daemon) -> LiveStatus:
    """What `daemon` knows now, for the status server: whether its scheduler runs (or died), the next
    runs, the writes each tracker's last cycle left, and the trackers whose last cycle failed on the store."""
    from bridge.report.status_page import LiveStatus, PendingWrites, pending_from_cycle

    pending: dict[str, PendingWrites] = {}
    store_failures: dict[str, str] = {}
    for name, state in daemon.status.trackers.items():
        found = pending_from_cycle(state.last) if state.last is not None else None
        if found is not None:
            pending[name] = found
        if state.store_failure is not None:
            store_failures[name] = state.store_failure
    failure = daemon.scheduler_failure()
    return LiveStatus(
        daemon.status.scheduler_running and failure is None,
        daemon.next_runs(),
        pending,
        daemon.replica,
        scheduler_failure=failure,
        store_failures=store_failures,
        key_results=list(daemon.status.key_results),
        item_warnings=list(daemon.status.item_warnings),
    )
