"""The daemon's status, for people and scripts: the status page (`/`), its JSON (`/status.json`), the
report's error page, and `bridge status`'s text, from the store's `run` table and the running daemon's
scheduler. Every error text is redacted and cut before it is shown, and escaped on the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from bridge.http import redact
from bridge.store import Store
from bridge.store.runs import RunSummary, run_history
from bridge.text import html_escape as escape

if TYPE_CHECKING:
    from bridge.analytics.report import Report
    from bridge.sync.cycle import TrackerCycle

RUNS_PER_TRACKER = 5
ERROR_CHARS = 500
"""Longer error texts are cut on the page and in JSON; the full text stays in the store and the log."""


def run_json(run: RunSummary) -> dict[str, Any]:
    """One run as `/status.json` shows it."""
    duration = run.duration
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": round(duration.total_seconds(), 3) if duration is not None else None,
        "items_pulled": run.items_pulled,
        "items_skipped": run.items_skipped,
        "writes_planned": run.writes_planned,
        "writes_done": run.writes_done,
        "writes_failed": run.writes_failed,
        "requests": run.requests,
        "error": run.error,
    }


@dataclass(frozen=True)
class PendingWrites:
    """Writes the last push left: `deferred` past the write budget, `failed` by the tracker."""

    deferred: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.deferred + self.failed


@dataclass(frozen=True)
class TrackerStatus:
    """What the store (and, in the daemon, the scheduler) knows about one tracker."""

    tracker: str
    runs: tuple[RunSummary, ...] = ()
    """Newest first."""
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    since_success: timedelta | None = None
    pending: PendingWrites | None = None
    next_run: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker,
            "last_success_at": _iso(self.last_success_at),
            "last_failure_at": _iso(self.last_failure_at),
            "seconds_since_success": (
                round(self.since_success.total_seconds(), 3) if self.since_success is not None else None
            ),
            "next_run": _iso(self.next_run),
            "pending_writes": (
                {"deferred": self.pending.deferred, "failed": self.pending.failed} if self.pending else None
            ),
            "runs": [run_json(run) for run in self.runs],
        }


def status_rows(
    store: Store, now: datetime, *, trackers: Iterable[str] = (), limit: int = RUNS_PER_TRACKER
) -> list[TrackerStatus]:
    """The last `limit` runs of each tracker, its last success and failure, and the writes its last push
    left pending; one entry per tracker in `trackers` (even without runs) and per tracker in the store.

    Raises `StoreError` when the store cannot be read.
    """
    history = run_history(store, limit=limit)
    by_tracker: dict[str, list[RunSummary]] = {name: [] for name in trackers}
    for name, runs in history.recent.items():
        by_tracker.setdefault(name, []).extend(_shown(run) for run in runs)
    pending = {name: _pending(run) for name, run in history.last_push.items()}
    return [
        _tracker_status(name, tuple(found), history.last_at, pending.get(name), now)
        for name, found in sorted(by_tracker.items())
    ]


def _shown(run: RunSummary) -> RunSummary:
    return replace(run, error=_clean_error(run.error)) if run.error else run


def _pending(run: RunSummary) -> PendingWrites:
    deferred = max(0, run.writes_planned - run.writes_done - run.writes_failed)
    return PendingWrites(deferred=deferred, failed=run.writes_failed)


def _tracker_status(
    name: str,
    runs: tuple[RunSummary, ...],
    last: Mapping[tuple[str, str], datetime],
    pending: PendingWrites | None,
    now: datetime,
) -> TrackerStatus:
    success = last.get((name, "ok"))
    return TrackerStatus(
        tracker=name,
        runs=runs,
        last_success_at=success,
        last_failure_at=last.get((name, "failed")),
        since_success=max(timedelta(0), now - success) if success is not None else None,
        pending=pending,
    )


def _clean_error(text: str) -> str:
    cleaned = redact(text)
    return cleaned if len(cleaned) <= ERROR_CHARS else cleaned[: ERROR_CHARS - 1] + "…"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at is not None else None


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at is not None else "-"


def _took(duration: timedelta | None) -> str:
    if duration is None:
        return "-"
    seconds = duration.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _ago(since: timedelta | None) -> str:
    return f" ({_took(since)} ago)" if since is not None else ""


def _run_cells(run: RunSummary) -> list[str]:
    is_push = run.kind == "push"
    return [
        _when(run.started_at),
        run.kind,
        run.status,
        "-" if is_push else str(run.items_pulled),
        f"{run.writes_done}/{run.writes_planned}"
        + (f" ({run.writes_failed} failed)" if run.writes_failed else "")
        if is_push
        else "-",
        str(run.requests),
        _took(run.duration),
    ]


RUN_HEADINGS = ("started", "kind", "status", "items", "writes done", "requests", "took")


def _pending_text(pending: PendingWrites | None) -> str:
    if pending is None:
        return "-"
    return f"{pending.deferred} deferred, {pending.failed} failed"


def render_status_text(rows: Sequence[TrackerStatus]) -> str:
    """`bridge status`: per tracker its last success, next run, pending writes and last runs, as text."""
    if not rows:
        return "No runs recorded yet.\n"
    lines: list[str] = []
    for row in rows:
        lines.append(row.tracker)
        lines.append(f"  last success   {_when(row.last_success_at)}{_ago(row.since_success)}")
        if row.last_failure_at is not None:
            lines.append(f"  last failure   {_when(row.last_failure_at)}")
        if row.next_run is not None:
            lines.append(f"  next run       {_when(row.next_run)}")
        lines.append(f"  pending writes {_pending_text(row.pending)}")
        if not row.runs:
            lines.append("  no runs yet")
            lines.append("")
            continue
        table = [list(RUN_HEADINGS), *(_run_cells(run) for run in row.runs)]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(RUN_HEADINGS))]
        for cells in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        for run in row.runs:
            if run.error:
                lines.append(f"  error in {run.kind} of {_when(run.started_at)}: {run.error}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class LiveStatus:
    """What the running daemon knows beyond the store: its scheduler and, per tracker, the next run and
    the writes its last cycle left (fresher than the store's last push row)."""

    scheduler_running: bool
    next_runs: Mapping[str, datetime | None] = field(default_factory=dict)
    pending: Mapping[str, PendingWrites] = field(default_factory=dict)
    replica: str | None = None
    scheduler_failure: str | None = None
    """Why the scheduler stopped though the daemon was not told to stop (its thread died): the process
    is no longer alive in any useful sense, and `/healthz` says so."""
    store_failures: Mapping[str, str] = field(default_factory=dict)
    """Trackers whose last cycle failed because the store could not be used, each with why."""
    key_results: Sequence[Mapping[str, Any]] = ()
    """Each key result's status, reason and progress from the last cycle's analysis
    (`key_results_json`)."""
    item_warnings: Sequence[Mapping[str, Any]] = ()
    """The items the method warns about, with their reasons and labels, from the last cycle's analysis
    (`item_warnings_json`)."""


def pending_from_cycle(cycle: TrackerCycle) -> PendingWrites | None:
    """The writes a tracker's cycle left: deferred past the write budget and failed; None without a push."""
    push = cycle.push
    if push is None or push.dry_run:
        return None
    return PendingWrites(deferred=len(push.plan.deferred), failed=push.failed)


def with_live_status(rows: Sequence[TrackerStatus], status: LiveStatus) -> list[TrackerStatus]:
    """`rows` with the scheduler's next runs and pending writes; trackers only it knows are added."""
    known = {row.tracker for row in rows}
    extra = [TrackerStatus(name) for name in sorted({*status.next_runs, *status.pending} - known)]
    return [
        replace(
            row,
            next_run=status.next_runs.get(row.tracker, row.next_run),
            pending=status.pending.get(row.tracker, row.pending),
        )
        for row in [*rows, *extra]
    ]


PAGE_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .3rem}
.meta{color:#5b6372;margin:.2rem 0}.banner{padding:.5rem .8rem;border-radius:4px;margin:.6rem 0}
.bad{background:#fde8e8;color:#8a1c1c}.ok{color:#1f7a3a}.failed{color:#b42318}.running{color:#8a5a00}
table{border-collapse:collapse;margin:.3rem 0}th,td{padding:.2rem .6rem;border-bottom:1px solid #e3e6eb;
text-align:left;vertical-align:top}td.error{max-width:40rem;white-space:pre-wrap;word-break:break-word}
"""


def render_status_html(
    rows: Sequence[TrackerStatus],
    *,
    now: datetime,
    status: LiveStatus | None,
    problem: str | None = None,
    report_link: bool = False,
    report_page: str | None = None,
) -> str:
    """The status page: self-contained (no scripts, no external files), every value escaped."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="refresh" content="30">',
        "<title>Milestone Bridge status</title>",
        f"<style>{PAGE_STYLE}</style></head><body>",
        "<h1>Milestone Bridge</h1>",
        f'<p class="meta">As of {escape(_when(now))}{_scheduler_text(status)}',
    ]
    links = ['<a href="/status.json">JSON</a>', '<a href="/metrics">metrics</a>']
    if report_link:
        links.insert(0, '<a href="/report">report</a>')
    if report_page:
        links.insert(0, f'<a class="report" href="{escape(report_page, quote=True)}">report with charts</a>')
    parts.append(" · " + " · ".join(links) + "</p>")
    if problem:
        parts.append(f'<p class="banner bad">{escape(problem)}</p>')
    if not rows and not problem:
        parts.append("<p>No runs recorded yet.</p>")
    for row in rows:
        parts.extend(_tracker_html(row))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _scheduler_text(status: LiveStatus | None) -> str:
    if status is None:
        return ""
    state = "running" if status.scheduler_running else "not running"
    replica = f" on replica {escape(status.replica)}" if status.replica else ""
    return f" · scheduler {state}{replica}"


def _tracker_html(row: TrackerStatus) -> list[str]:
    name = escape(row.tracker)
    parts = [
        f'<h2 id="tracker-{escape(row.tracker, quote=True)}">{name}</h2>',
        '<p class="meta">',
        f"Last success: {escape(_when(row.last_success_at))}{escape(_ago(row.since_success))}",
        f" · next run: {escape(_when(row.next_run))}",
        f" · pending writes: {escape(_pending_text(row.pending))}",
        "</p>",
    ]
    if not row.runs:
        parts.append("<p>No runs yet.</p>")
        return parts
    parts.append("<table><thead><tr>")
    parts.extend(f"<th>{escape(h)}</th>" for h in (*RUN_HEADINGS, "error"))
    parts.append("</tr></thead><tbody>")
    for run in row.runs:
        cells = _run_cells(run)
        status_class = escape(run.status, quote=True)
        tds = [f"<td>{escape(c)}</td>" for c in cells]
        tds[2] = f'<td class="{status_class}">{escape(cells[2])}</td>'
        tds.append(f'<td class="error">{escape(run.error or "")}</td>')
        parts.append("<tr>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    return parts


def report_error_page(problem: str) -> str:
    """The page served instead of the report when it cannot be made: `problem`, redacted and escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Milestone Bridge report</title><style>{PAGE_STYLE}</style></head><body>"
        f'<h1>Milestone Bridge report</h1><p class="banner bad">{escape(redact(problem))}</p>'
        '<p><a href="/">status</a></p></body></html>\n'
    )


def status_document(
    rows: Sequence[TrackerStatus],
    *,
    now: datetime,
    status: LiveStatus | None,
    problem: str | None,
    report: str | None,
    report_html: str,
) -> str:
    """The body of `/status.json`."""
    document = {
        "generated_at": _iso(now),
        "scheduler_running": status.scheduler_running if status is not None else None,
        "replica": status.replica if status is not None else None,
        "problem": problem,
        "report": report,
        "report_html": report_html,
        "trackers": [row.to_json() for row in rows],
        "key_results": list(status.key_results) if status is not None else [],
        "item_warnings": list(status.item_warnings) if status is not None else [],
    }
    # orjson: at 20,000 milestones linked to key results the body is about 4 MB, which the standard
    # library's encoder takes a tenth of a second of CPU to write on every request.
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def key_results_json(report: Report) -> list[dict[str, Any]]:
    """Each key result of `report` as `/status.json` shows it: the shape of `bridge report --json` and
    `bridge explain KR --json` (`bridge.analytics.shapes.key_result_dict`)."""
    from bridge.analytics.shapes import key_result_dict

    return [key_result_dict(kr, objective.title) for objective in report.okrs for kr in objective.key_results]


def item_warnings_json(report: Report) -> list[dict[str, Any]]:
    """Each item warning of `report` as `/status.json` shows it, in the shape and order of the report's
    `item_warnings` (`bridge.analytics.shapes.item_warning_dict`): by kind, then team and name."""
    from bridge.analytics.shapes import item_warning_dict

    return [item_warning_dict(w, report.warning_labels.get(w.kind)) for w in report.item_warnings]
