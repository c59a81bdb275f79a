"""The HTTP machinery every emulator shares: routing, auth, the request log, faults, holds, control API.

An `Emulator` holds one vendor's state and routes; a `SandboxServer` serves one emulator on its own port
on 127.0.0.1, in a thread (tests) or as the main loop of `bridge sandbox serve` (a subprocess).

The control API lives under `/_sandbox/` on each server and needs no credentials:

    GET    /_sandbox/state                 the emulator's whole state as JSON
    GET    /_sandbox/requests              {"count": N, "by_route": {...}, "log": [...]}
    DELETE /_sandbox/requests              forget the log (the counter keeps counting)
    PUT    /_sandbox/faults                {"rules": [...]}: replace the fault plan (see faults.py)
    DELETE /_sandbox/faults                no faults
    POST   /_sandbox/hold                  {"request": N}: request number N waits until released (see below)
    POST   /_sandbox/release               {"request": N} or {} for all (pending route holds too)
    GET    /_sandbox/held                  {"waiting": [N, ...], "applied": [N, ...]}: the requests waiting
                                           now, and those of them already applied (held answers)
    POST   /_sandbox/edit                  {"op": ..., ...}: a change as a user would make it
    POST   /_sandbox/clock                 {"now": ISO} or {"advance": seconds}: the emulator's clock

Every vendor request gets a number (1, 2, ...) in arrival order; holds and fault rules refer to it.

A hold names its request by number (`{"request": N}`) or by route (`{"route": "POST /tasks/{gid}/stories",
"count": 1}`: the next `count` requests of that method whose path ends with that template, `{name}`
matching one path segment, the API's base path optional; default one). By default a held request waits
at the door, before it is applied; one whose client has gone meanwhile (a SIGKILL before the request
left it) is dropped when released, never applied, as a request that was never sent (its log entry has
the fault "client gone"). With `"after": true` it is applied (its change made, its entry in the
request log) and its ANSWER waits until released: a client that dies meanwhile (a SIGKILL between a post
and its record) leaves the change made and never learns so, as when a response is lost. `held` lists such
a request under `applied` as well as `waiting`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from bridge_sandbox.faults import Drop, FaultPlan
from bridge_sandbox.messages import HTTPError, Request, Response

log = logging.getLogger(__name__)

SECRET_PARAMS = frozenset({"key", "token", "access_token", "api_key"})
REDACTED = "***"


Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Mark an emulator method as the handler of `METHOD /path/{param}`; params arrive as kwargs."""

    def mark(function: Handler) -> Handler:
        routes: list[tuple[str, str]] = getattr(function, "_sandbox_routes", [])
        routes.append((method.upper(), template))
        function._sandbox_routes = routes  # type: ignore[attr-defined]
        return function

    return mark


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}/?$")


class RequestLog:
    """Every vendor request: number, method, path, redacted query, status, duration.

    With `record` (a text file), every entry is also appended to it as a JSON line, with the request's
    body (decoded as UTF-8, undecodable bytes replaced) under `body`. `redact` names the query parameters
    blanked there (by default every parameter that carries a credential for some vendor); a test checking
    that nothing secret is sent passes the few its vendor legitimately takes in the query.
    """

    def __init__(
        self,
        record: IO[str] | None = None,
        label: str | None = None,
        *,
        redact: frozenset[str] = SECRET_PARAMS,
    ) -> None:
        self._label = label
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._counter = 0
        self._by_route: Counter[str] = Counter()
        self._record = record
        self._redact = redact

    def next_number(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    @property
    def count(self) -> int:
        return self._counter

    def add(self, request: Request, route_name: str, status: int, seconds: float, fault: str | None) -> None:
        entry = {
            "n": request.number,
            "method": request.method,
            "path": request.path,
            "route": route_name,
            "query": redact_query(request.query),
            "status": status,
            "ms": round(seconds * 1000, 2),
        }
        if fault:
            entry["fault"] = fault
        with self._lock:
            self._entries.append(entry)
            self._by_route[f"{request.method} {route_name}"] += 1
            if self._record is not None:
                recorded = {
                    "emulator": self._label,
                    **entry,
                    "query": redact_query(request.query, self._redact),
                    "body": request.body.decode("utf-8", errors="replace"),
                }
                self._record.write(json.dumps(recorded) + "\n")
                self._record.flush()

    def by_route(self) -> dict[str, int]:
        """Requests served so far by `METHOD template`: cheap enough to poll (no copy of the log)."""
        with self._lock:
            return dict(self._by_route)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"count": len(self._entries), "total": self._counter, "by_route": dict(self._by_route),
                    "log": list(self._entries)}  # fmt: skip

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_route.clear()


def redact_query(
    query: dict[str, list[str]], secret: frozenset[str] = SECRET_PARAMS
) -> dict[str, list[str] | str]:
    return {k: (REDACTED if k in secret else v if len(v) > 1 else v[0]) for k, v in query.items()}


@dataclass
class RouteHold:
    """A hold waiting for the next requests of a route: `method` and a path template (see the module)."""

    method: str
    pattern: re.Pattern[str]
    after: bool
    count: int

    @classmethod
    def parse(cls, text: str, *, after: bool, count: int) -> RouteHold:
        method, _, template = text.strip().partition(" ")
        if not method or not template.startswith("/") or count < 1:
            raise HTTPError(
                400, {"error": f"a route hold is 'METHOD /path' with a count of 1 or more: {text!r}"}
            )
        segments = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template.rstrip("/")))
        return cls(method.upper(), re.compile(f"(?:^|/){segments.lstrip('/')}/?$"), after, count)

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and method == self.method and self.pattern.search(path) is not None


class Holds:
    """Requests told to wait until a test releases them: at the door (before they are applied), or, held
    `after`, with their change made and their answer not sent yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._wanted: dict[int, bool] = {}
        """Request number -> whether it is held after being applied."""
        self._routes: list[RouteHold] = []
        self._waiting: set[int] = set()
        self._applied: set[int] = set()
        self._closed = False

    def hold(self, number: int, *, after: bool = False) -> None:
        """Request `number` waits: before it is applied, or (`after`) before its answer leaves."""
        with self._cond:
            self._wanted[number] = after

    def hold_route(self, route: str, *, after: bool = False, count: int = 1) -> None:
        """The next `count` requests of `route` ("METHOD /path/{param}") wait, as `hold` does."""
        found = RouteHold.parse(route, after=after, count=count)
        with self._cond:
            self._routes.append(found)

    def release(self, number: int | None = None) -> None:
        """Let request `number` go on; with None every held request, and forget the route holds."""
        with self._cond:
            if number is None:
                self._wanted.clear()
                self._routes.clear()
            else:
                self._wanted.pop(number, None)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._routes.clear()
            self._cond.notify_all()

    def waiting(self) -> list[int]:
        with self._cond:
            return sorted(self._waiting)

    def applied(self) -> list[int]:
        """The waiting requests that were applied: their answers are held."""
        with self._cond:
            return sorted(self._applied)

    def claim(self, number: int, method: str, path: str) -> bool | None:
        """Whether request `number` (`method` on `path`) is held after being applied (True), before
        (False), or not at all (None); a route hold it matches is used up by one."""
        with self._cond:
            if number in self._wanted:
                return self._wanted[number]
            for found in self._routes:
                if found.matches(method, path):
                    found.count -= 1
                    self._wanted[number] = found.after
                    self._routes = [r for r in self._routes if r.count > 0]
                    return found.after
            return None

    def wait_if_held(self, number: int, *, applied: bool = False) -> None:
        """Block while request `number` is held (`applied`: its change is made, its answer waits)."""
        with self._cond:
            if number not in self._wanted:
                return
            self._waiting.add(number)
            if applied:
                self._applied.add(number)
            try:
                while number in self._wanted and not self._closed:
                    self._cond.wait(0.5)
            finally:
                self._waiting.discard(number)
                self._applied.discard(number)


class Clock:
    """The emulator's idea of now: real time, optionally shifted or frozen by the control API."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._frozen: datetime | None = None
        self._lock = threading.Lock()
        self._last: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            now = self._frozen or (datetime.now(UTC) + self._offset)
            # Strictly increasing, so that two edits within one millisecond still order.
            if self._last is not None and now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
            return now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._frozen = None
            self._offset = when - datetime.now(UTC)
            self._last = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


class Emulator:
    """One vendor's API: state, routes and auth. Subclasses add routes with `@route`."""

    name: ClassVar[str] = "emulator"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.faults = FaultPlan()
        self.holds = Holds()
        self.requests = RequestLog()
        self._routes = self._collect_routes()

    # ---- for subclasses -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str:
        """Return who is calling, or raise `HTTPError(401)`."""
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        """What `bridge sandbox serve` prints for clients to use."""
        raise NotImplementedError

    def dump_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def edit(self, change: dict[str, Any]) -> Any:
        """Apply a user's change from the control API; return what it created or changed."""
        raise HTTPError(400, {"error": f"{self.name} supports no edits"})

    def not_found(self, request: Request) -> HTTPError:
        return HTTPError(404, message=f"no route for {request.method} {request.path}")

    def error_body(self, status: int, message: str) -> Any:
        return {"errorMessages": [message], "errors": {}}

    def malform(self, body: Any, rule: dict[str, Any]) -> Any:
        """Break one item inside a good page (fault kind `malformed`)."""
        return body

    def rate_limit_key(self, request: Request) -> str | None:
        """Whose budget a request spends under vendor rate limits (fault kind `vendor_limits`)."""
        return request.principal

    # ---- dispatch -------------------------------------------------------------------------------

    def _collect_routes(self) -> list[Route]:
        routes = []
        for attribute in dir(type(self)):
            function = getattr(type(self), attribute, None)
            for method, template in getattr(function, "_sandbox_routes", []):
                routes.append(Route(method, _compile(template), template, getattr(self, attribute)))
        # Longer templates first, so `/issue/{key}/changelog` wins over `/issue/{key}`.
        routes.sort(key=lambda r: (-r.template.count("/"), -len(r.template)))
        return routes

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for candidate in self._routes:
            if candidate.method != method:
                continue
            found = candidate.pattern.match(path)
            if found:
                return candidate, found.groupdict()
        return None

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        request.number = self.requests.next_number()
        found = self.match(request.method, request.path)
        route_name = found[0].template if found else request.path
        after = self.holds.claim(request.number, request.method, request.path)
        if after is False:
            self.holds.wait_if_held(request.number)
            if request.client_gone():
                self.requests.add(request, route_name, 0, 0.0, "client gone")
                raise Drop()
        started = time.perf_counter()
        try:
            response, fault_name = self._respond(request, found)
        except Drop:
            self.requests.add(request, route_name, 0, time.perf_counter() - started, "drop")
            raise
        self.requests.add(request, route_name, response.status, time.perf_counter() - started, fault_name)
        if after:
            self.holds.wait_if_held(request.number, applied=True)
        return response

    def _respond(
        self, request: Request, found: tuple[Route, dict[str, str]] | None
    ) -> tuple[Response, str | None]:
        fault = self.faults.decide(request, self)
        if fault is not None and fault.response is not None:
            return fault.response, fault.kind
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        try:
            request.principal = self.authenticate(request)
            limited = self.faults.vendor_limit(request, self)
            if limited is not None:
                return limited, "vendor_limit"
            if found is None:
                raise self.not_found(request)
            request.params = found[1]
            result = found[0].handler(request, **found[1])
        except HTTPError as exc:
            body = (
                exc.body
                if exc.body is not None
                else self.error_body(exc.status, HTTPStatus(exc.status).phrase)
            )
            return Response(exc.status, body, exc.headers), fault.kind if fault else None
        response = result if isinstance(result, Response) else Response(200, result)
        if fault is not None and fault.kind == "lose":
            raise Drop()  # applied, but the answer never leaves
        if fault is not None and fault.kind == "malformed":
            response.body = self.malform(response.body, fault.rule)
        return response, fault.kind if fault else None

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").strip("/")
        try:
            return Response(200, self._control_action(request.method, action, request))
        except HTTPError as exc:
            return Response(exc.status, exc.body)

    def _control_action(self, method: str, action: str, request: Request) -> Any:
        if (method, action) == ("GET", "state"):
            with self.lock:
                return self.dump_state()
        if (method, action) == ("GET", "requests"):
            return self.requests.snapshot()
        if (method, action) == ("DELETE", "requests"):
            self.requests.clear()
            return {"ok": True}
        if (method, action) == ("PUT", "faults"):
            self.faults.replace(request.json().get("rules", []))
            return {"ok": True, "rules": self.faults.describe()}
        if (method, action) == ("GET", "faults"):
            return {"rules": self.faults.describe(), "injected": self.faults.injected()}
        if (method, action) == ("DELETE", "faults"):
            self.faults.replace([])
            return {"ok": True}
        if (method, action) == ("POST", "hold"):
            return self._hold(request.json())
        if (method, action) == ("POST", "release"):
            number = request.json().get("request")
            self.holds.release(int(number) if number is not None else None)
            return {"ok": True}
        if (method, action) == ("GET", "held"):
            return {"waiting": self.holds.waiting(), "applied": self.holds.applied()}
        if (method, action) == ("POST", "edit"):
            with self.lock:
                return {"ok": True, "result": self.edit(request.json())}
        if (method, action) == ("POST", "clock"):
            body = request.json()
            if "now" in body:
                self.clock.set(datetime.fromisoformat(body["now"]))
            if "advance" in body:
                self.clock.advance(float(body["advance"]))
            return {"now": self.clock.now().isoformat()}
        raise HTTPError(404, {"error": f"no control action {method} {action}"})

    def _hold(self, body: Any) -> dict[str, Any]:
        """`POST /_sandbox/hold`: {"request": N} or {"route": "METHOD /path", "count": C}, with "after"."""
        if not isinstance(body, dict):
            raise HTTPError(400, {"error": "a hold is a JSON object"})
        after = bool(body.get("after", False))
        try:
            if body.get("route") is not None:
                self.holds.hold_route(str(body["route"]), after=after, count=int(body.get("count", 1)))
            else:
                self.holds.hold(int(body["request"]), after=after)
        except (KeyError, TypeError, ValueError):
            raise HTTPError(
                400, {"error": 'a hold names {"request": N} or {"route": "METHOD /path"}'}
            ) from None
        return {"ok": True}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, a keep-alive client waits ~40 ms on every response for the delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_gone=self._client_gone,
        )
        try:
            response = self.server.emulator.dispatch(request)
        except Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception:  # a bug in an emulator must not kill the server thread
            log.exception("sandbox %s failed on %s %s", self.server.emulator.name, self.command, parts.path)
            response = Response(500, {"errorMessages": ["sandbox internal error"]})
        payload = response.encode()
        self.send_response(response.status)
        headers = {"Content-Type": "application/json;charset=UTF-8", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _client_gone(self) -> bool:
        """Whether the client closed the connection: it sends nothing while it waits for an answer, so a
        readable socket with nothing to read (or a reset) means it went away."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout, a killed bridge) is expected here, not an error to print."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """One emulator on its own port on 127.0.0.1."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._server = _Server((host, port), emulator)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.emulator.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self.emulator.holds.close()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def iter_pages(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
