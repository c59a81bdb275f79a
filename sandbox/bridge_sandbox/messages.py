"""A vendor request and response as the emulators see them, and the error a handler raises.

Kept apart from `server` so the fault plan, which answers in place of a route, can build responses
without importing the server that consults it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class HTTPError(Exception):
    """Raised by a handler to answer with an error: `body` as given, or `message` in the vendor's shape."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        message: str | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    number: int = 0
    params: dict[str, str] = field(default_factory=dict)
    principal: str | None = None
    client_gone: Callable[[], bool] = field(default=lambda: False, repr=False, compare=False)
    """Whether the client has closed its connection (the server fills it in; by default it never has)."""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of a repeated parameter, comma-separated lists split."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(part for part in value.split(",") if part)
        return out

    def int_arg(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HTTPError(400, message=f"'{name}' must be a number, got {raw!r}") from None
        if value < low:
            raise HTTPError(400, message=f"'{name}' must be at least {low}")
        return min(value, high) if high is not None else value

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise HTTPError(400, message="the request body is not JSON") from None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
