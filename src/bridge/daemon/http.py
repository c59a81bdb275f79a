"""The daemon's HTTP face: health, readiness, Prometheus metrics and a status page; routing only.

`/healthz` answers while the process runs and its scheduler has not died; `/readyz` only while the
store can be read, the scheduler runs and not every tracker's last cycle failed on the store;
`/metrics` renders the registry through `prometheus_client` (OpenMetrics when the scraper's `Accept`
asks for it); `/` and `/status.json` show each tracker's last runs (from the `run`
table), its next scheduled run and its pending writes; `/report.html` is `bridge report --html`'s page
with charts, rendered from the store on request and kept until the `run` table changes (the next
cycle). The pages themselves are made in `bridge.report.status_page`.

Every page but the probes can require a bearer token (`daemon.auth_token_env`). The server holds at most
`daemon.max_connections` connections and gives each `daemon.header_timeout` to send its headers.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from bridge.config import BridgeConfig, DaemonConfig, auth_token_problem
from bridge.errors import BridgeError, UserError
from bridge.http import SECRETS, redact
from bridge.report.status_page import (
    RUNS_PER_TRACKER,
    LiveStatus,
    TrackerStatus,
    render_status_html,
    report_error_page,
    status_document,
    status_rows,
    with_live_status,
)
from bridge.store import Store
from bridge.store.runs import runs_version

log = logging.getLogger(__name__)

REPORT_PAGE = "/report.html"
"""Where the status server serves the HTML report with charts."""


PROBES = frozenset({"/healthz", "/readyz"})
"""Paths open without a token, so an orchestrator's probes need no secret."""

StatusProvider = Callable[[], LiveStatus]
"""Called on every request to `/readyz`, `/` and `/status.json`, from the server's threads."""


_REFUSAL = b"too many connections; try again shortly\n"
_REFUSED = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL)
)


@dataclass
class _Connection:
    accepted: float
    reading_headers: bool = True


class _Server(ThreadingHTTPServer):
    """One thread per connection, but at most `max_connections` of them: when all are taken, the
    connection that has waited longest for its headers (a slow client, most likely) is closed to make
    room; when every one is being served, the newcomer is answered 503 at once."""

    daemon_threads = True
    block_on_close = False
    owner: StatusServer

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        header_timeout: float,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._connections: dict[socket.socket, _Connection] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            room = len(self._connections) < self.max_connections or self._close_slowest()
            if room:
                self._connections[request] = _Connection(time.monotonic())
        if not room:
            log.debug("%s: refused, %d connections open", client_address[0], self.max_connections)
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed: a client gone or cut off is routine, anything else a bug to log
        (socketserver would print the traceback to stderr, past the log's redaction)."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("the connection from %s ended early", client_address[0], exc_info=True)
        else:
            log.exception("serving a connection from %s failed", client_address[0])

    def headers_read(self, request: socket.socket) -> None:
        """The request line and headers are in: the connection is served, no longer one to close."""
        with self._connections_lock:
            connection = self._connections.get(request)
            if connection is not None:
                connection.reading_headers = False

    def _close_slowest(self) -> bool:
        """Close the connection that has waited longest for its headers; False when none waits.
        Called with the lock held; its thread sees the end of the stream and finishes."""
        waiting = [(c.accepted, s) for s, c in self._connections.items() if c.reading_headers]
        if not waiting:
            return False
        _, slowest = min(waiting, key=lambda pair: pair[0])
        del self._connections[slowest]
        with contextlib.suppress(OSError):
            slowest.shutdown(socket.SHUT_RDWR)
        log.debug("closed a connection still sending its headers, to make room")
        return True

    def _forget(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)

    def _refuse(self, request: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            request.sendall(_REFUSED)
        self.shutdown_request(request)


class _HeaderDeadline(io.RawIOBase):
    """The socket as the handler reads it: until the headers are in, every read waits at most for what
    is left of the header deadline, so a client sending a byte at a time is cut off when it passes."""

    def __init__(self, sock: socket.socket, deadline: float, timeout: float) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = deadline
        self.timeout = timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request line and headers took too long")
            self.sock.settimeout(min(left, self.timeout))
        return self.sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10
    server_version = "milestone-bridge"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by a reader that keeps the header deadline
        self._reader = _HeaderDeadline(
            self.connection, time.monotonic() + self.server.header_timeout, float(self.timeout)
        )
        self.rfile = io.BufferedReader(self._reader)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self._reader.deadline = None
        self.connection.settimeout(self.timeout)
        self.server.headers_read(self.connection)
        return parsed

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        owner = self.server.owner
        challenge = not owner.authorized(path, self.headers.get("Authorization"))
        try:
            if challenge:
                log.debug("%s: refused %s without a valid bearer token", self.address_string(), path)
                status, content_type, text = (
                    401,
                    TEXT,
                    "a bearer token is required (Authorization: Bearer ...)\n",
                )
            else:
                status, content_type, text = owner.respond(path, accept=self.headers.get("Accept"))
        except Exception:
            log.exception("serving %s failed", path)
            status, content_type, text = 500, "text/plain; charset=utf-8", "internal error\n"
        data = text.encode("utf-8")
        self.send_response(status)
        if challenge:
            self.send_header("WWW-Authenticate", 'Bearer realm="milestone-bridge"')
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
        registry: CollectorRegistry,
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
        self._token: bytes | None = None

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
        token = bearer_token(self.config.daemon)
        self._token = token.encode("utf-8") if token is not None else None
        host, port = self.config.daemon.http_host, self.config.daemon.http_port
        server_class = (
            type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        )
        try:
            server = server_class(
                (host, port),
                _Handler,
                max_connections=self.config.daemon.max_connections,
                header_timeout=self.config.daemon.header_timeout.total_seconds(),
            )
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

    def authorized(self, path: str, authorization: str | None) -> bool:
        """Whether a request for `path` with this Authorization header may be answered: always for the
        probes and without a configured token, else only with `Bearer <token>`."""
        if self._token is None or path in PROBES:
            return True
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), self._token)

    def respond(self, path: str, *, accept: str | None = None) -> Response:
        """The status, content type and body for a GET of `path` (`accept`: the request's `Accept`)."""
        if path == "/healthz":
            failure = self.not_alive()
            return (503, TEXT, f"not alive: {failure}\n") if failure else (200, TEXT, "ok\n")
        if path == "/readyz":
            reason = self.not_ready()
            return (503, TEXT, f"not ready: {reason}\n") if reason else (200, TEXT, "ready\n")
        if path == "/metrics":
            encode, content_type = choose_encoder(accept or "")
            return 200, content_type, encode(self.registry).decode("utf-8")
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
            return 503, HTML, report_error_page(f"the report could not be made: {exc}")

    def _report_key(self) -> tuple[Any, ...]:
        return runs_version(self.store)

    def not_alive(self) -> str | None:
        """Why the daemon is no longer alive (its scheduler died under it), or None while it is.

        A daemon starting or stopping is alive but not ready; a status that cannot be read is a
        readiness problem, not a reason to restart the process."""
        status, _ = self._daemon_status()
        return redact(status.scheduler_failure) if status is not None and status.scheduler_failure else None

    def not_ready(self) -> str | None:
        """Why the daemon cannot do its work now, or None when it can: the store does not answer or
        cannot be read (a corrupt file answers `SELECT 1`), the scheduler does not run, or every
        tracker's last cycle failed on the store."""
        try:
            self.store.ping()
            runs_version(self.store)  # reads a table: a damaged database fails here
        except BridgeError as exc:
            return redact(str(exc))
        status, problem = self._daemon_status()
        if status is None:
            return problem
        if not status.scheduler_running:
            return status.scheduler_failure or "the scheduler is not running"
        trackers = {name for name, tracker in self.config.trackers.items() if tracker.enabled}
        if trackers and trackers <= set(status.store_failures):
            reasons = sorted(set(status.store_failures.values()))
            return redact(f"every tracker's last cycle failed on the store: {'; '.join(reasons)}")
        return None

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
        document = status_document(
            rows,
            now=now,
            status=status,
            problem=problem,
            report="/report" if self.report is not None else None,
            report_html=REPORT_PAGE,
        )
        return (503 if problem else 200), JSON, document


def bearer_token(daemon: DaemonConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The token the pages require, read from the variable `daemon.auth_token_env` names (and from then
    on scrubbed from every log line); None when none is configured. An unset or short token is a
    `UserError`: a server told to require one never starts open."""
    if daemon.auth_token_env is None:
        return None
    token = (os.environ if environ is None else environ).get(daemon.auth_token_env, "")
    if token:
        SECRETS.add(token)
    problem = auth_token_problem(daemon, environ)
    if problem is not None:
        raise UserError(problem)
    return token
