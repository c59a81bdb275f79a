"""One whole cycle: pull every tracker, note the milestones reached, analyse the whole store, plan and
push each tracker, then announce in chat the milestones reached and the key results first seen met
(`bridge.announce`).

`bridge sync` runs one; the daemon runs them on a schedule. The analysis reads one snapshot of the whole
store, so ranks span the portfolio; each tracker's push then writes its share. A tracker that fails
(opening, pulling or pushing) is recorded and the others go on; one whose pull failed is not pushed.

The cycle owns each tracker's connector: it is opened once (by the pull, on first use), the push goes
through the same one, and the cycle closes it at the end, whatever happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.analytics.report import Report
from bridge.announce import AnnounceResult, announce_cycle
from bridge.announcement import Announcement
from bridge.config import BridgeConfig
from bridge.connector import Capability, ConnectorRegistry
from bridge.domain import Milestone, Ref, WriteCost
from bridge.errors import BridgeError, StoreLost
from bridge.gc_pacing import release_loaded
from bridge.http import redact
from bridge.reached import pending_announcements, reached_comments, record_completions
from bridge.shared_analysis import Analysed, shared_analysis
from bridge.store import Store, analyses, forecast_history
from bridge.store.runs import new_generation, record_push
from bridge.sync.connection import TrackerConnection
from bridge.sync.plan import Plan, PlanTooLarge
from bridge.sync.pull import Guard, PullResult, pull_all, pull_targets
from bridge.sync.push import PushResult, push_tracker

if TYPE_CHECKING:
    from bridge.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class TrackerCycle:
    """What one cycle did for one tracker."""

    tracker: str
    pull: PullResult | None = None
    push: PushResult | None = None
    requests: int = 0
    error: str | None = None
    note: str | None = None
    comments: list[str] = field(default_factory=list)
    """The milestones reached that get no comment in this tracker, each with why (a person reads it)."""

    @property
    def plan(self) -> Plan | None:
        return self.push.plan if self.push is not None else None

    @property
    def outcome(self) -> str:
        """`failed` when the cycle ended in an error, `partial` when some writes failed, else `ok`."""
        if self.error is not None:
            return "failed"
        if self.push is not None and self.push.failed:
            return "partial"
        return "ok"

    def summary(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "tracker": self.tracker,
            "items_pulled": self.pull.items if self.pull else 0,
            "writes_planned": len(plan.writes) if plan else 0,
            "writes_deferred": len(plan.deferred) if plan else 0,
            "writes_done": self.push.done if self.push else 0,
            "writes_failed": self.push.failed if self.push else 0,
            "writes_read_back": self.push.read_back if self.push else 0,
            "requests": self.requests,
            "cost": _cost(self.push.cost) if self.push and self.push.cost else None,
            "error": self.error,
            "note": self.note,
            "comments_skipped": list(self.comments),
        }


def _cost(cost: WriteCost) -> dict[str, int]:
    return {"edits": cost.edits, "items": cost.items, "requests": cost.requests, "emails": cost.emails}


@dataclass
class CycleResult:
    trackers: list[TrackerCycle] = field(default_factory=list)
    report: Report | None = None
    announcements: list[Announcement] = field(default_factory=list)
    """The milestones reached whose announcement is due (`bridge.reached.pending_announcements`): the
    comments the pushes planned come from these; a chat sender tells each key once."""
    chat: AnnounceResult | None = None
    """What the chat channels of `[announce]` were sent (with a dry run, would be)."""

    @property
    def ok(self) -> bool:
        return all(t.error is None for t in self.trackers)


def run_cycle(
    store: Store,
    config: BridgeConfig,
    *,
    now: datetime,
    tracker: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    stop: threading.Event | None = None,
    registry: ConnectorRegistry | None = None,
    guard: Guard | None = None,
    progress: Progress | None = None,
) -> CycleResult:
    """Pull, analyse, plan and (unless `dry_run`) push; `tracker` limits pull and push to one.

    `guard(conn)` runs inside every transaction that stores results (see `pull_tracker`). `progress`,
    when given, hears of the pages pulled and the writes applied (see `bridge.progress`).
    """
    registry = registry or ConnectorRegistry.default()
    connections = {
        name: TrackerConnection(config, name, registry=registry, stop=stop)
        for name in pull_targets(config, tracker)
    }
    try:
        return _pull_analyse_push(
            store,
            config,
            connections,
            now=now,
            tracker=tracker,
            dry_run=dry_run,
            force=force,
            stop=stop,
            registry=registry,
            guard=guard,
            progress=progress,
        )
    finally:
        for connection in connections.values():
            try:
                connection.close()
            except Exception:  # closing one must not keep the others open
                log.exception("%s: closing the connector failed", connection.name)
        release_loaded(collect=True)  # the snapshot this cycle loaded, if any (see bridge.gc_pacing)


def _pull_analyse_push(
    store: Store,
    config: BridgeConfig,
    connections: Mapping[str, TrackerConnection],
    *,
    now: datetime,
    tracker: str | None,
    dry_run: bool,
    force: bool,
    stop: threading.Event | None,
    registry: ConnectorRegistry,
    guard: Guard | None,
    progress: Progress | None,
) -> CycleResult:
    result = CycleResult()
    pulls = pull_all(
        store,
        config,
        now=now,
        tracker=tracker,
        stop=stop,
        registry=registry,
        guard=guard,
        progress=progress,
        connections=connections,
    )
    for pulled in pulls:
        entry = TrackerCycle(pulled.tracker, pull=pulled, requests=pulled.requests + pulled.setup_requests)
        entry.error = pulled.error
        result.trackers.append(entry)
    if stop is not None and stop.is_set():
        return result
    watched = [entry.tracker for entry in result.trackers if entry.error is None]
    seen = record_completions(store, watched, now, dry_run=dry_run)  # one transaction, before any push
    analysed = shared_analysis(store, config, now)
    report = result.report = analysed.report
    slipping = keep_forecasts(store, config, report, now)
    already = written_back(store, analysed) if analysed.reused and not (dry_run or force) else set()
    milestones: dict[Ref, Milestone] = {}
    if any(entry.tracker not in already for entry in result.trackers if entry.error is None):
        # the contents are loaded only when something is to be announced or pushed: a quiet cycle that
        # reuses the stored analysis of a million tasks reads none of them
        contents = analysed.load_contents
        result.announcements = pending_announcements(store, config, contents, report, now, seen)
        wanted = {a.subject for a in result.announcements}
        if wanted:
            milestones = {
                ref: m for m in analysed.snapshot.milestones if (ref := Ref(m.source, m.remote_id)) in wanted
            }
    generation = new_generation(store, now)
    for entry in result.trackers:
        if entry.error is not None or not config.push.enabled:
            continue
        if entry.tracker in already:
            entry.note = "nothing changed since this analysis was written back: nothing to write"
            continue
        settings_t = config.tracker(entry.tracker)
        if not registry.load(settings_t.kind).capabilities & Capability.WRITE_BACK:
            entry.note = f"the {settings_t.kind} connector does not write back yet"
            continue
        connection = connections[entry.tracker]
        comments = reached_comments(result.announcements, config, entry.tracker, milestones)
        entry.comments = [f"{a.headline}: no comment, {why}" for a, why in comments.skipped]
        try:
            entry.push = push_tracker(
                store,
                config,
                entry.tracker,
                connection.connector(),
                report,
                analysed.snapshot,
                dry_run=dry_run,
                force=force,
                generation=generation,
                guard=guard,
                progress=progress,
                slipping=slipping,
                comments=comments.wished,
                now=now,
            )
        except PlanTooLarge as exc:
            entry.error = str(exc)
            log.error("%s", exc, extra={"tracker": entry.tracker, "error": entry.error})
        except StoreLost:
            raise  # as in the pull: no tracker's failure, the store's, said once
        except BridgeError as exc:
            entry.error = redact(str(exc))
            log.error(
                "%s: push failed: %s",
                entry.tracker,
                entry.error,
                extra={"tracker": entry.tracker, "error": entry.error},
            )
        finally:
            pushed = connection.counts().total  # what the push asked, the pull's share read before
            entry.requests += pushed
        if not dry_run:
            _record_push(store, entry, now, pushed)
            if _complete(entry):
                analyses.mark_pushed(store, analysed.key, entry.tracker)
    if stop is None or not stop.is_set():
        # After the push, so a message in chat never runs ahead of what the trackers show.
        result.chat = announce_cycle(
            store,
            config,
            analysed.load_contents,
            report.links,
            now=now,
            dry_run=dry_run,
            others=result.announcements,
        )
    return result


def keep_forecasts(store: Store, config: BridgeConfig, report: Report, now: datetime) -> dict[Ref, str]:
    """Keep the moves of the forecasts this cycle re-evaluated; returns the slipping milestones."""
    settings = config.analytics
    with store.write() as conn:
        forecast_history.record(conn, report.forecasts, now=now)
        return forecast_history.slipping(conn, now, settings.slip_window, settings.slip_share)


def _complete(entry: TrackerCycle) -> bool:
    """Whether the push wrote all it planned: no error, no failed write, none deferred to a later cycle
    (only then may a cycle that finds nothing changed skip it)."""
    push = entry.push
    return entry.error is None and push is not None and push.failed == 0 and not push.plan.deferred


def written_back(store: Store, analysed: Analysed) -> set[str]:
    """The trackers this (reused) analysis was already written back to without error."""
    with store.read() as conn:
        return analyses.pushed(conn, analysed.key)


def _record_push(store: Store, entry: TrackerCycle, now: datetime, requests: int) -> None:
    push = entry.push
    plan = push.plan if push is not None else None
    record_push(
        store,
        entry.tracker,
        now,
        failed=bool(entry.error),
        writes_planned=len(plan.writes) + len(plan.deferred) if plan else 0,
        writes_done=push.done if push else 0,
        writes_failed=push.failed if push else 0,
        requests=requests,
        error=entry.error,
    )
