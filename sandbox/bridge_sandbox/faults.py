"""Fault plans: what a sandbox does wrong on purpose, and when.

A plan is a list of rules, each a JSON object:

    {"kind": "429", "every": 5, "retry_after": 2}            every 5th request: 429, Retry-After: 2
    {"kind": "429", "requests": [3, 4], "retry_after": "http-date"}   Retry-After as an HTTP date
    {"kind": "429", "probability": 0.1, "seed": 7}           about one request in ten, reproducibly
    {"kind": "5xx", "after": 10, "count": 3, "status": 502}  a burst: requests 10, 11, 12 get 502
    {"kind": "slow", "path": "/search", "delay": 5}          a response later than the client waits
    {"kind": "drop", "every": 7}                             the connection closes without an answer
    {"kind": "lose", "method": "PUT", "count": 3}           the request is applied, then the connection
                                                             closes without an answer (a lost response)
    {"kind": "malformed", "requests": [2], "field": "fields"}   one item in a good page is broken
    {"kind": "vendor_limits"}                                the vendor's published rate limits

Selectors: `every` (N, 2N, ...), `requests` (exact numbers), `after` (from request N on), `probability`
(with `seed`), and `path` (a regex on the URL path) and `method`. `count` caps how often a rule fires.
A rule with no selector fires on every request it matches. The first rule that fires wins.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from bridge_sandbox.messages import HTTPError, Request, Response

if TYPE_CHECKING:
    from bridge_sandbox.server import Emulator

KINDS = ("429", "5xx", "slow", "drop", "lose", "malformed", "vendor_limits")


class Drop(Exception):
    """Close the connection without answering."""


@dataclass
class Fault:
    kind: str
    rule: dict[str, Any]
    response: Response | None = None
    delay: float = 0.0


@dataclass
class _Rule:
    spec: dict[str, Any]
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random)
    path: re.Pattern[str] | None = None

    def matches(self, request: Request) -> bool:
        spec = self.spec
        if "count" in spec and self.fired >= int(spec["count"]):
            return False
        if "method" in spec and request.method != str(spec["method"]).upper():
            return False
        if self.path is not None and not self.path.search(request.path):
            return False
        number = request.number
        if "requests" in spec and number not in {int(n) for n in spec["requests"]}:
            return False
        if "after" in spec and number < int(spec["after"]):
            return False
        if "every" in spec and number % int(spec["every"]) != 0:
            return False
        return not ("probability" in spec and self.rng.random() >= float(spec["probability"]))


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._limits_on = False
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._injected: dict[str, int] = defaultdict(int)

    def replace(self, rules: list[dict[str, Any]]) -> None:
        parsed = []
        limits = False
        for spec in rules:
            kind = str(spec.get("kind"))
            if kind not in KINDS:
                raise HTTPError(400, {"error": f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}"})
            if kind == "vendor_limits":
                limits = bool(spec.get("enabled", True))
                continue
            rule = _Rule(dict(spec), rng=random.Random(spec.get("seed", 0)))
            rule.path = re.compile(spec["path"]) if spec.get("path") else None
            parsed.append(rule)
        with self._lock:
            self._rules = parsed
            self._limits_on = limits
            self._windows.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            rules = [dict(r.spec, fired=r.fired) for r in self._rules]
            if self._limits_on:
                rules.append({"kind": "vendor_limits"})
            return rules

    def injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._injected)

    def decide(self, request: Request, emulator: Emulator) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(request):
                    rule.fired += 1
                    self._injected[rule.spec["kind"]] += 1
                    return self._fault(rule.spec, emulator)
        return None

    def _fault(self, spec: dict[str, Any], emulator: Emulator) -> Fault:

        kind = spec["kind"]
        if kind == "drop":
            raise Drop()
        if kind == "slow":
            return Fault(kind, spec, delay=float(spec.get("delay", 5)))
        if kind in ("malformed", "lose"):
            return Fault(kind, spec)
        if kind == "429":
            headers = retry_after_header(spec.get("retry_after", 1), emulator)
            return Fault(kind, spec, Response(429, emulator.error_body(429, "Rate limit exceeded"), headers))
        status = int(spec.get("status", 503))
        return Fault(kind, spec, Response(status, emulator.error_body(status, "Service unavailable")))

    def vendor_limit(self, request: Request, emulator: Emulator) -> Response | None:
        """A 429 when the caller is over the vendor's published limit, while limits are on."""
        limit = getattr(emulator, "vendor_limit", None)
        if not self._limits_on or limit is None:
            return None
        budget, window = limit
        key = emulator.rate_limit_key(request) or "anonymous"
        now = time.monotonic()
        with self._lock:
            stamps = self._windows[key]
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= budget:
                wait = max(1, int(stamps[0] + window - now + 0.999))
                self._injected["vendor_limit"] += 1

                body = emulator.error_body(429, "Rate limit exceeded")
                return Response(429, body, {"Retry-After": str(wait)})
            stamps.append(now)
        return None


def retry_after_header(value: Any, emulator: Emulator) -> dict[str, str]:
    if value is None:
        return {}
    if value == "http-date":
        when = emulator.clock.now() + timedelta(seconds=1)
        return {"Retry-After": format_datetime(when, usegmt=True)}
    if isinstance(value, str) and value.startswith("http-date:"):
        when = emulator.clock.now() + timedelta(seconds=float(value.split(":", 1)[1]))
        return {"Retry-After": format_datetime(when, usegmt=True)}
    return {"Retry-After": str(value)}
