"""A fourth tracker's connector, built from the kit alone: the README's "Writing a connector" example.

It reads a toy tracker's items (milestones and tasks with their status history) incrementally, lists every
id for the census, and writes back a rank field and the bridge's labels. Everything vendor-specific is
here; opening, the stream loop, refusing writes the config switches off, retries and counting come from
`bridge.kit` and `bridge.http`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Literal

import requests

from bridge.config import EnvName, HttpUrl, TrackerConfig
from bridge.connector import Capability, Discovery
from bridge.domain import FieldWrite, ItemState, Milestone, Ref, RemotePage, SkippedItem, StatusChange, Task
from bridge.domain import WriteKind as Kind
from bridge.errors import FatalAPIError, RetriableAPIError, WriteRefused
from bridge.http import RetryPolicy, error_for_status
from bridge.kit import KeyPaginator, Outcomes, SessionConnector, TokenPaginator, TrackerSession, Writer
from bridge.mapping import status_category

ITEMS = "items"


class ToyConfig(TrackerConfig):
    """`[trackers.NAME]` with `kind = "toy"`: the common keys, the URL and the token's variable."""

    kind: Literal["toy"]
    secret_fields: ClassVar[tuple[str, ...]] = ("token_env",)
    url: HttpUrl
    token_env: EnvName


class ToySession(TrackerSession[ToyConfig]):
    """JSON over HTTP with the bridge's retry policy and rate limit; every request counted, setup apart."""

    vendor_rate = 10.0  # requests a second, unless the config sets max_requests_per_second

    def __init__(self, name: str, config: ToyConfig, token: str, policy: RetryPolicy) -> None:
        super().__init__(name, config, [token], policy=policy, in_setup=True)
        self.http = requests.Session()
        self.http.verify = self.verify
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.user = self.call("GET", "/api/me")["user"]  # a setup request: refused credentials show here
        self._in_setup = False

    def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        def attempt() -> Any:
            self.limiter.acquire()
            self.count()
            try:
                answer = self.http.request(method, self.config.url + path, json=body, params=params,
                                           timeout=self.config.timeout.total_seconds())  # fmt: skip
            except requests.RequestException as exc:
                raise RetriableAPIError(f"{self.name}: {type(exc).__name__}", tracker=self.name) from None
            if answer.status_code >= 400:
                raise error_for_status(answer.status_code, answer.text[:200], tracker=self.name,
                                       headers=dict(answer.headers))  # fmt: skip
            return answer.json()

        return self.policy.call(attempt)

    def forget_connections(self) -> None:
        """Let go of the pooled connections (a forked pull's worker opens its own; the parent keeps its)."""
        self.http.close()

    def close(self) -> None:
        self.http.close()


class ToyPuller:
    """One stream, `items`: pages of items updated since the cursor (less the lag), oldest first."""

    def __init__(self, name: str, config: ToyConfig, session: ToySession) -> None:
        self.name, self.config, self.session = name, config, session

    def streams(self) -> Sequence[str]:
        return (ITEMS,)

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        if stream != ITEMS:
            raise ValueError(f"the toy connector has no stream {stream!r}")
        since = (datetime.fromisoformat(cursor) - self.config.lag).isoformat() if cursor else ""
        listing = TokenPaginator[dict[str, Any]](f"{self.name}: items", lambda page: page.get("next"))
        newest = cursor
        for body in listing.pages(lambda token: self._page(since, token)):
            page = self.map_items(body["items"])
            stamps = [t.updated for t in page.tasks if t.updated] + [
                m.updated for m in page.milestones if m.updated
            ]
            if not body.get("next"):  # the last page: everything updated before the signpost was seen
                newest = signpost.isoformat()
            elif stamps:
                newest = min(max(stamps), signpost).isoformat()
            yield replace(page, cursor=newest)

    def _page(self, since: str, token: str | None) -> Any:
        params = {"since": since, **({"after": token} if token else {})}
        return self.session.call("GET", "/api/items", **params)

    def map_items(self, records: list[Any]) -> RemotePage:
        milestones: list[Milestone] = []
        tasks: list[Task] = []
        changes: list[StatusChange] = []
        skipped: list[SkippedItem] = []
        for record in records:
            key = str(record.get("id")) if isinstance(record, dict) else "?"
            try:
                item, history = self.map_item(record)
            except (KeyError, TypeError, ValueError) as exc:
                skipped.append(SkippedItem(self.name, key, f"unreadable item: {exc}"))
                continue
            if isinstance(item, Milestone):
                milestones.append(item)
            else:
                tasks.append(item)
            changes.extend(history)
        return RemotePage(self.name, ITEMS, milestones=milestones, tasks=tasks, status_changes=changes,
                          skipped=skipped)  # fmt: skip

    def map_item(self, record: dict[str, Any]) -> tuple[Milestone | Task, list[StatusChange]]:
        status = record["status"]
        category = status_category(self.config, None, status) if isinstance(status, str) else None
        if category is None:
            raise ValueError(f"status {status!r} is not in status_map")
        times = {name: datetime.fromisoformat(record[name]) for name in ("created", "updated")}
        item_id = record["id"]
        common = {"source": self.name, "remote_id": item_id, "key": item_id, "title": record["title"],
                  "team": self.config.team, "raw_status": status, "category": category, **times}  # fmt: skip
        if record["kind"] == "milestone":
            return Milestone(**common), []
        history = [
            StatusChange(
                self.name,
                entry["id"],
                record["id"],
                datetime.fromisoformat(entry["at"]),
                entry["from"],
                entry["to"],
                status_category(self.config, None, entry["from"]),
                status_category(self.config, None, entry["to"]) or category,
            )
            for entry in record["history"]
        ]
        return Task(**common, milestone_id=record["milestone"], labels=tuple(record["labels"])), history

    def census(self) -> Sequence[str]:
        listing = KeyPaginator[str, list[str]](f"{self.name}: ids", lambda ids: ids[-1] if ids else None)
        pages = listing.pages(lambda after: self.session.call("GET", "/api/ids", after=after or "")["ids"])
        return [item for page in pages for item in page]


class ToyWriter(Writer[ToyConfig]):
    """A rank field and the bridge's labels; one PATCH carries every write to one item."""

    def __init__(self, name: str, config: ToyConfig, session: ToySession) -> None:
        super().__init__(name, config)
        self.session = session

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        states = {}
        for ref in items:
            try:
                record = self.session.call("GET", f"/api/items/{ref.remote_id}")
            except FatalAPIError as exc:
                if exc.status == 404:
                    continue  # gone since the pull: left out of the answer
                raise
            states[ref] = ItemState(ref, ref.remote_id, {"rank": record["rank"]}, frozenset(record["labels"]))
        return states

    def refuse(self, write: FieldWrite) -> None:
        if write.kind in (Kind.LINK, Kind.ORDER):
            raise WriteRefused(f"the toy tracker has no {write.kind} writes")
        if write.kind is Kind.FIELD and write.value is not None and not isinstance(write.value, int | float):
            raise WriteRefused(f"rank is a number field; {write.value!r} is not a number")

    def send(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        edits: dict[str, list[tuple[int, FieldWrite]]] = {}
        for index, write in writes:
            edits.setdefault(write.item.remote_id, []).append((index, write))
        for item, group in edits.items():
            body: dict[str, Any] = {"add_labels": [], "remove_labels": []}
            for _, write in group:
                if write.kind is Kind.FIELD:
                    body["rank"] = write.value
                else:
                    body["add_labels" if write.kind is Kind.LABEL_ADD else "remove_labels"].append(
                        write.field
                    )
            error = self.edit(item, body)
            for index, _ in group:
                outcomes.settle(index, error)

    def edit(self, item: str, body: dict[str, Any]) -> Exception | None:
        """One PATCH; None when it was made, else why this item refused it."""
        try:
            self.breaker.call(lambda: self.session.call("PATCH", f"/api/items/{item}", body), "an edit")
        except WriteRefused as exc:
            return exc
        except FatalAPIError as exc:
            if exc.status not in (400, 404):
                raise  # refused credentials stop the push
            return exc
        return None


class ToyConnector(SessionConnector[ToyConfig, ToySession, ToyPuller, ToyWriter]):
    kind = "toy"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.WRITE_FIELDS
        | Capability.WRITE_LABELS
    )
    config_model: ClassVar[type[TrackerConfig]] = ToyConfig

    @classmethod
    def connect(
        cls, name: str, config: ToyConfig, secrets: Mapping[str, str], policy: RetryPolicy
    ) -> ToySession:
        return ToySession(name, config, secrets["token_env"], policy)

    def make_puller(self) -> ToyPuller:
        return ToyPuller(self.name, self.config, self.session)

    def make_writer(self) -> ToyWriter:
        return ToyWriter(self.name, self.config, self.session)

    def discover(self) -> Discovery:
        return Discovery(
            statuses=[(s, s) for s in ("To Do", "In Progress", "Done")], item_types=["milestone", "task"]
        )
