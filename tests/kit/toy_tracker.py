"""A toy tracker's API, served by the sandbox's HTTP machinery (auth, faults, holds, request log, edits).

    GET   /api/me                          who the token belongs to
    GET   /api/items?since=ISO&after=T     items updated since `since`, oldest first, 100 a page, `next` token
    GET   /api/items/{id}                  one item (404 when there is none)
    GET   /api/ids?after=ID                every item id, 100 a page, in id order (a fresh query per page)
    PATCH /api/items/{id}                  {"rank": x, "add_labels": [...], "remove_labels": [...]}

An item: {"id", "kind": "milestone"|"task", "title", "milestone", "status", "created", "updated",
"history": [{"id", "at", "from", "to"}], "labels", "rank"}.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge_sandbox.server import Emulator, HTTPError, Request, route

STATUSES = ("To Do", "In Progress", "Done")
PAGE = 100


class ToyTracker(Emulator):
    name = "toy"

    def __init__(self, token: str, items: int, seed: int = 1) -> None:
        super().__init__()
        self.token = token
        self.items: dict[str, dict[str, Any]] = {}
        self._numbers = 0
        rng = random.Random(seed)
        start = datetime(2026, 1, 5, tzinfo=UTC)
        milestones = [self._new("milestone", f"Milestone {n}", None, start) for n in range(1, 11)]
        for n in range(items - len(milestones)):
            item = self._new("task", f"Task {n}", rng.choice(milestones)["id"], start + timedelta(hours=n))
            for status in STATUSES[1 : rng.randint(1, 3)]:
                self._move(item, status, datetime.fromisoformat(item["updated"]) + timedelta(hours=5))

    def _new(self, kind: str, title: str, milestone: str | None, at: datetime) -> dict[str, Any]:
        self._numbers += 1
        prefix = "M" if kind == "milestone" else "T"
        item: dict[str, Any] = {
            "id": f"{prefix}-{self._numbers:04d}", "kind": kind, "title": title, "milestone": milestone,
            "status": "To Do", "created": at.isoformat(), "updated": at.isoformat(), "history": [],
            "labels": [], "rank": None,
        }  # fmt: skip
        self.items[item["id"]] = item
        return item

    def _move(self, item: dict[str, Any], status: str, at: datetime) -> None:
        entry = {"id": f"{item['id']}/{len(item['history']) + 1}", "at": at.isoformat(),
                 "from": item["status"], "to": status}  # fmt: skip
        item["history"].append(entry)
        item["status"], item["updated"] = status, at.isoformat()

    # ---- the sandbox's hooks --------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str:
        if request.header("authorization") != f"Bearer {self.token}":
            raise HTTPError(401, {"error": "not authenticated"})
        return "toy-user"

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def dump_state(self) -> dict[str, Any]:
        return {"items": list(self.items.values())}

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def malform(self, body: Any, rule: dict[str, Any]) -> Any:
        if isinstance(body, dict) and body.get("items"):
            body["items"][0] = {**body["items"][0], "status": {"broken": True}}
        return body

    def edit(self, change: dict[str, Any]) -> Any:
        with self.lock:
            now = self.clock.now()
            if change["op"] == "create":
                return self._new("task", change["title"], change.get("milestone"), now)["id"]
            item = self.items.get(change["id"])
            if item is None:
                raise HTTPError(404, {"error": "no such item"})
            if change["op"] == "move":
                self._move(item, change["status"], now)
            elif change["op"] == "delete":
                del self.items[item["id"]]
            return item["id"]

    # ---- the API ----------------------------------------------------------------------------------------

    @route("GET", "/api/me")
    def me(self, request: Request) -> Any:
        return {"user": request.principal}

    @route("GET", "/api/items")
    def list_items(self, request: Request) -> Any:
        since = request.arg("since") or ""
        after = tuple((request.arg("after") or "|").split("|", 1))
        with self.lock:
            found = sorted((i["updated"], i["id"]) for i in self.items.values() if i["updated"] >= since)
            keys = [key for key in found if key > after][:PAGE] if request.arg("after") else found[:PAGE]
            page = [dict(self.items[item_id]) for _, item_id in keys]
        more = keys and keys[-1] != found[-1]
        return {"items": page, "next": "|".join(keys[-1]) if more else None}

    @route("GET", "/api/items/{item}")
    def get_item(self, request: Request, item: str) -> Any:
        with self.lock:
            if item not in self.items:
                raise HTTPError(404, {"error": "no such item"})
            return dict(self.items[item])

    @route("GET", "/api/ids")
    def list_ids(self, request: Request) -> Any:
        after = request.arg("after") or ""
        with self.lock:
            return {"ids": sorted(i for i in self.items if i > after)[:PAGE]}

    @route("PATCH", "/api/items/{item}")
    def patch_item(self, request: Request, item: str) -> Any:
        body = request.json()
        with self.lock:
            found = self.items.get(item)
            if found is None:
                raise HTTPError(404, {"error": "no such item"})
            if "rank" in body:
                if body["rank"] is not None and not isinstance(body["rank"], int | float):
                    raise HTTPError(400, {"error": "rank must be a number"})
                found["rank"] = body["rank"]
            labels = [x for x in found["labels"] if x not in body.get("remove_labels", [])]
            found["labels"] = labels + [x for x in body.get("add_labels", []) if x not in labels]
            found["updated"] = self.clock.now().isoformat()
            return dict(found)
