"""The daemon's HTTP face: health, readiness, Prometheus metrics and a status page.

`/healthz` answers while the process runs; `/readyz` only while the store answers and the scheduler
runs; `/metrics` renders the registry; `/` and `/status.json` show each tracker's last runs (from the
`run` table), its next scheduled run and its pending writes; `/report.html` is `bridge report --html`'s
page with charts, rendered from the store on request and kept until the `run` table changes (the next
cycle). `status_rows` and `render_status_text` read and print the same from the store alone, for
`bridge status`. Every error text is redacted before it
leaves, and escaped on the page.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from sqlalchemy import RowMapping, func, select

from bridge.config import BridgeConfig
from bridge.daemon.metrics import CONTENT_TYPE, Registry
from bridge.errors import BridgeError, UserError
from bridge.http import redact
from bridge.store import Store
from bridge.store.models import RunRow

if TYPE_CHECKING:
    from bridge.sync.cycle import TrackerCycle

log = logging.getLogger(__name__)

RUNS_PER_TRACKER = 5
ERROR_CHARS = 500
"""Longer error texts are cut on the page and in JSON; the full text stays in the store and the log."""
ANALYSIS_SOURCE = "*"
"""The `run` rows of whole-store analyses carry this source; they belong to no tracker."""
REPORT_PAGE = "/report.html"
"""Where the status server serves the HTML report with charts."""


@dataclass(frozen=True)
class RunSummary:
    """One row of the `run` table, its error redacted."""

    id: int
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    items_pulled: int
    items_skipped: int
    writes_planned: int
    writes_done: int
    writes_failed: int
    requests: int
    error: str | None

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at is not None else None

    def to_json(self) -> dict[str, Any]:
        duration = self.duration
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": round(duration.total_seconds(), 3) if duration is not None else None,
            "items_pulled": self.items_pulled,
            "items_skipped": self.items_skipped,
            "writes_planned": self.writes_planned,
            "writes_done": self.writes_done,
            "writes_failed": self.writes_failed,
            "requests": self.requests,
            "error": self.error,
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
            "runs": [run.to_json() for run in self.runs],
        }


def status_rows(
    store: Store, now: datetime, *, trackers: Iterable[str] = (), limit: int = RUNS_PER_TRACKER
) -> list[TrackerStatus]:
    """The last `limit` runs of each tracker, its last success and failure, and the writes its last push
    left pending; one entry per tracker in `trackers` (even without runs) and per tracker in the store.

    Raises `StoreError` when the store cannot be read.
    """
    table: Any = RunRow.__table__  # type: ignore[attr-defined]
    newest = func.row_number().over(
        partition_by=table.c.source, order_by=(table.c.started_at.desc(), table.c.id.desc())
    )
    ranked = select(table, newest.label("position")).where(table.c.source != ANALYSIS_SOURCE).subquery()
    recent = select(ranked).where(ranked.c.position <= limit).order_by(ranked.c.source, ranked.c.position)
    finished = func.max(table.c.finished_at)
    outcomes = (
        select(table.c.source, table.c.status, finished.label("at"))
        .where(table.c.source != ANALYSIS_SOURCE, table.c.status.in_(("ok", "failed")))
        .group_by(table.c.source, table.c.status)
    )
    latest = func.row_number().over(
        partition_by=table.c.source, order_by=(table.c.started_at.desc(), table.c.id.desc())
    )
    pushes_ranked = select(table, latest.label("position")).where(table.c.kind == "push").subquery()
    last_push = select(pushes_ranked).where(pushes_ranked.c.position == 1)
    with store.read() as conn:
        runs = conn.execute(recent).mappings().all()
        ends = conn.execute(outcomes).all()
        pushes = conn.execute(last_push).mappings().all()
    by_tracker: dict[str, list[RunSummary]] = {name: [] for name in trackers}
    for row in runs:
        by_tracker.setdefault(row["source"], []).append(_summary(row))
    last: dict[tuple[str, str], datetime] = {(source, status): at for source, status, at in ends if at}
    pending = {row["source"]: _pending(row) for row in pushes}
    return [
        _tracker_status(name, tuple(found), last, pending.get(name), now)
        for name, found in sorted(by_tracker.items())
    ]


def _summary(row: RowMapping) -> RunSummary:
    error = row["error"]
    return RunSummary(
        id=int(row["id"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        items_pulled=int(row["items_pulled"] or 0),
        items_skipped=int(row["items_skipped"] or 0),
        writes_planned=int(row["writes_planned"] or 0),
        writes_done=int(row["writes_done"] or 0),
        writes_failed=int(row["writes_failed"] or 0),
        requests=int(row["requests"] or 0),
        error=_clean_error(error) if error else None,
    )


def _pending(row: RowMapping) -> PendingWrites:
    planned, done, failed = (int(row[k] or 0) for k in ("writes_planned", "writes_done", "writes_failed"))
    return PendingWrites(deferred=max(0, planned - done - failed), failed=failed)


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


StatusProvider = Callable[[], LiveStatus]
"""Called on every request to `/readyz`, `/` and `/status.json`, from the server's threads."""


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: StatusServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10
    server_version = "milestone-bridge"

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        try:
            status, content_type, text = self.server.owner.respond(path)
        except Exception:
            log.exception("serving %s failed", path)
            status, content_type, text = 500, "text/plain; charset=utf-8", "internal error\n"
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), redact(format % args))


TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"
Response = tuple[int, str, str]


class StatusServer:
    """Serves `/healthz`, `/readyz`, `/metrics`, `/`, `/status.json`, `/report.html` (and `/report` when
    given) on `daemon.http_host:http_port` from a thread of its own. Port 0 binds a free port: see `port`."""

    def __init__(
        self,
        config: BridgeConfig,
        store: Store,
        registry: Registry,
        status_provider: StatusProvider,
        *,
        report: Callable[[], str] | None = None,
        runs_per_tracker: int = RUNS_PER_TRACKER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.status_provider = status_provider
        self.report = report
        self.runs_per_tracker = runs_per_tracker
        self.clock = clock
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._report_lock = threading.Lock()
        self._report_cache: tuple[tuple[Any, ...], str] | None = None

    @property
    def port(self) -> int:
        """The port bound (the chosen one when configured as 0)."""
        if self._server is None:
            raise RuntimeError("the status server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.daemon.http_host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def start(self) -> None:
        """Bind and serve from a background thread; raises `UserError` when the address is taken."""
        if self._server is not None:
            return
        host, port = self.config.daemon.http_host, self.config.daemon.http_port
        server_class = (
            type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        )
        try:
            server = server_class((host, port), _Handler)
        except OSError as exc:
            raise UserError(f"cannot serve the status page on {host}:{port}: {exc.strerror or exc}") from exc
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="status-http", daemon=True
        )
        self._thread.start()
        log.info("status page on %s (/healthz /readyz /metrics /status.json /report.html)", self.url)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving and release the port; requests in flight are not waited for."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def respond(self, path: str) -> Response:
        """The status, content type and body for a GET of `path`."""
        if path == "/healthz":
            return 200, TEXT, "ok\n"
        if path == "/readyz":
            reason = self.not_ready()
            return (503, TEXT, f"not ready: {reason}\n") if reason else (200, TEXT, "ready\n")
        if path == "/metrics":
            return 200, CONTENT_TYPE, self.registry.render()
        if path in ("/", "/index.html"):
            return self._page()
        if path == "/status.json":
            return self._json()
        if path == "/report" and self.report is not None:
            return 200, HTML, self.report()
        if path == REPORT_PAGE:
            return self._report_page()
        return 404, TEXT, "not found\n"

    def forget_report(self) -> None:
        """Drop the cached `/report.html`; the next request renders it afresh."""
        with self._report_lock:
            self._report_cache = None

    def _report_page(self) -> Response:
        """The HTML report, rendered once per state of the `run` table: a cycle or an analysis that
        starts or finishes changes it, so the page follows the cycles without rendering per request."""
        from bridge.report.commands import html_report

        try:
            with self._report_lock:
                key = self._report_key()
                if self._report_cache is not None and self._report_cache[0] == key:
                    return 200, HTML, self._report_cache[1]
                page = html_report(self.config, self.store, now=self.clock())
                self._report_cache = (key, page)
                return 200, HTML, page
        except BridgeError as exc:
            problem = redact(f"the report could not be made: {exc}")
            body = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f"<title>Milestone Bridge report</title><style>{PAGE_STYLE}</style></head><body>"
                f'<h1>Milestone Bridge report</h1><p class="banner bad">{escape(problem)}</p>'
                '<p><a href="/">status</a></p></body></html>\n'
            )
            return 503, HTML, body

    def _report_key(self) -> tuple[Any, ...]:
        table: Any = RunRow.__table__  # type: ignore[attr-defined]
        query = select(func.count(), func.max(table.c.id), func.max(table.c.finished_at))
        with self.store.read() as conn:
            row = conn.execute(query).one()
        return tuple(row)

    def not_ready(self) -> str | None:
        """Why the daemon cannot do its work now, or None when it can."""
        try:
            self.store.ping()
        except BridgeError as exc:
            return redact(str(exc))
        status, problem = self._daemon_status()
        if status is None:
            return problem
        return None if status.scheduler_running else "the scheduler is not running"

    def _daemon_status(self) -> tuple[LiveStatus | None, str | None]:
        try:
            return self.status_provider(), None
        except Exception as exc:
            log.exception("the daemon's status could not be read")
            return None, redact(f"the daemon's status could not be read: {exc}")

    def _collect(self) -> tuple[datetime, list[TrackerStatus], LiveStatus | None, str | None]:
        now = self.clock()
        status, problem = self._daemon_status()
        trackers = [name for name, tracker in self.config.trackers.items() if tracker.enabled]
        try:
            rows = status_rows(self.store, now, trackers=trackers, limit=self.runs_per_tracker)
        except BridgeError as exc:
            rows, problem = [TrackerStatus(name) for name in sorted(trackers)], redact(str(exc))
        if status is not None:
            rows = with_live_status(rows, status)
        return now, rows, status, problem

    def _page(self) -> Response:
        now, rows, status, problem = self._collect()
        page = render_status_html(
            rows,
            now=now,
            status=status,
            problem=problem,
            report_link=self.report is not None,
            report_page=REPORT_PAGE,
        )
        return (503 if problem else 200), HTML, page

    def _json(self) -> Response:
        now, rows, status, problem = self._collect()
        document = {
            "generated_at": _iso(now),
            "scheduler_running": status.scheduler_running if status is not None else None,
            "replica": status.replica if status is not None else None,
            "problem": problem,
            "report": "/report" if self.report is not None else None,
            "report_html": REPORT_PAGE,
            "trackers": [row.to_json() for row in rows],
        }
        return (503 if problem else 200), JSON, json.dumps(document, indent=2) + "\n"
