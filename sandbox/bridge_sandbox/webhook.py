"""A chat webhook receiver: it takes POSTs on any path as Slack, Microsoft Teams or any JSON webhook
would, and keeps what it received for tests to read.

    POST <any path>            a message; answered as the receiver's flavour does:
                                 slack   -> 200 "ok" (text/plain), as a Slack incoming webhook
                                 teams   -> 200 "1" (text/plain), as a Teams incoming webhook
                                 generic -> 200 {"ok": true}
                               A body that is not a JSON object is refused (400, Slack: "invalid_payload").
    GET /_sandbox/messages     {"count": N, "messages": [{"n", "path", "body", "at"}, ...]}
    DELETE /_sandbox/messages  forget them

The shared control API (`bridge_sandbox.server`) works here too: faults (a 500, a lost answer, a
dropped connection) and holds (`POST /_sandbox/hold {"request": N}` keeps message N waiting at the door:
not received until released, so a test can kill the sender while its POST is in flight).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, ClassVar, Literal

from bridge_sandbox.messages import HTTPError, Request, Response
from bridge_sandbox.server import Emulator, Route

Flavour = Literal["slack", "teams", "generic"]
_ANY_PATH = re.compile(r"^/.*$")


class WebhookEmulator(Emulator):
    """An incoming-webhook endpoint of a chat service, in the given flavour."""

    name: ClassVar[str] = "webhook"

    def __init__(self, flavour: Flavour = "slack") -> None:
        super().__init__()
        self.flavour: Flavour = flavour
        self._messages: list[dict[str, Any]] = []
        self._messages_lock = threading.Lock()
        self._route = Route("POST", _ANY_PATH, "/{webhook}", self._receive)

    def authenticate(self, request: Request) -> str:
        return "webhook"  # the URL is the credential: whoever knows it may post

    def credentials(self) -> dict[str, str]:
        return {"url": "any path on this server"}

    def dump_state(self) -> dict[str, Any]:
        return {"flavour": self.flavour, **self.messages()}

    def error_body(self, status: int, message: str) -> Any:
        return {"ok": False, "error": message}

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        return (self._route, {}) if method == "POST" else None

    def messages(self) -> dict[str, Any]:
        with self._messages_lock:
            return {"count": len(self._messages), "messages": list(self._messages)}

    def _receive(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if self.flavour == "slack":
                return Response(400, raw=b"invalid_payload", headers={"Content-Type": "text/plain"})
            raise HTTPError(400, {"ok": False, "error": "the body is not a JSON object"})
        with self._messages_lock:
            self._messages.append(
                {"n": request.number, "path": request.path, "body": body, "at": self.clock.now().isoformat()}
            )
        if self.flavour == "slack":
            return Response(200, raw=b"ok", headers={"Content-Type": "text/plain; charset=utf-8"})
        if self.flavour == "teams":
            return Response(200, raw=b"1", headers={"Content-Type": "text/plain; charset=utf-8"})
        return Response(200, {"ok": True})

    def _control_action(self, method: str, action: str, request: Request) -> Any:
        if (method, action) == ("GET", "messages"):
            return self.messages()
        if (method, action) == ("DELETE", "messages"):
            with self._messages_lock:
                self._messages.clear()
            return {"ok": True}
        return super()._control_action(method, action, request)
