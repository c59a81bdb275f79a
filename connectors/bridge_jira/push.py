"""Writing back to Jira: managed fields, the bridge's labels, its remote links, and backlog order.

Reading state (`read_state`) costs one request per 100 issues: Cloud's `POST issue/bulkfetch`, or on Data
Center a search `id in (...)` with `validateQuery=false` (a strict query naming an issue that was deleted
since the last pull would fail whole; bulk fetch and the lenient search just leave it out). Remote links
cost one `GET issue/{id}/remotelink` per issue, and only when `write.okr_links` is on.

An item's container is its project key: Jira's Rank field is one order over the whole site (each board
shows it filtered), so there is no per-board position to read; the project is where the bridge's moves
keep items together. Its position is the Rank field's LexoRank string (`0|i000db:`), which sorts as text.

Pushing (`push`) takes the fewest requests Jira allows:
- every field and label write on one issue goes into one `PUT issue/{id}` (`fields` for the managed
  fields, `update.labels` add/remove operations for labels, which are idempotent and have no colour);
  when Jira rejects that edit for one field (400 naming it, e.g. a field not on the edit screen), that
  field's writes fail and the rest are sent again without it;
- a link is `POST issue/{id}/remotelink` keyed by its `globalId` (Jira updates the link with that id
  rather than adding one), a removed link `DELETE issue/{id}/remotelink?globalId=` (404: already gone);
- moves go to `PUT /rest/agile/1.0/issue/rank`, up to 50 issues a call: consecutive moves that chain
  (B after A after X, or A and B both before Y) become one call; a 207 answer fails only the issues it
  names.

Only links whose global id starts with `GLOBAL_ID_PREFIX` are the bridge's: `read_state` reports only
those and `push` refuses to write any other, so a user's links are never touched. Nor does `push` add
what the tracker's `write` table does not manage (labels, links, order, fields it names); removing a
label or link stays possible, so what was written can always be taken back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from jira import JIRAError

from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteKind, WriteOutcome
from bridge.errors import FatalAPIError, RetriableAPIError, UserError
from bridge.http import RETRIABLE_STATUSES, redact
from bridge.mapping import resolve_field
from bridge.written import LINK_ID_PREFIX as GLOBAL_ID_PREFIX
from bridge_jira.client import JiraSession, _json
from bridge_jira.config import JiraTrackerConfig

log = logging.getLogger(__name__)

READ_BATCH = 100
RANK_BATCH = 50
LEXORANK_TYPE = "com.pyxis.greenhopper.jira:gh-lexo-rank"
MAX_RETRIABLE_IN_A_ROW = 3
"""Writes failing in a row after every retry before the tracker counts as down and `push` raises."""


@dataclass
class _Rejected:
    """A request the tracker refused for this item only (400, 404, 409...): its status and messages."""

    status: int
    messages: list[str]
    fields: dict[str, str]

    def text(self, tracker: str) -> str:
        parts = self.messages + [f"{name}: {message}" for name, message in self.fields.items()]
        return redact(f"{tracker}: HTTP {self.status}: {'; '.join(parts) or 'rejected'}")


@dataclass
class _Edit:
    """The field and label writes of one issue, sent as one `PUT issue`."""

    item: str
    writes: list[tuple[int, FieldWrite]] = field(default_factory=list)


@dataclass
class _Move:
    """One call to the rank API: `issues` (in order) just before or just after `anchor`."""

    anchor: str
    before: bool
    issues: list[tuple[int, str]] = field(default_factory=list)

    def accepts(self, item: str, after: str | None, before: str | None) -> bool:
        if len(self.issues) >= RANK_BATCH or item == self.anchor or any(i == item for _, i in self.issues):
            return False
        if after is not None:  # right after the last one moved: the chain goes on
            return after == self.issues[-1][1]
        return self.before and before == self.anchor  # before the same anchor, after the ones already moved


class JiraWriter:
    """The write side of one Jira site, sharing the puller's session and field list."""

    def __init__(
        self, name: str, config: JiraTrackerConfig, session: JiraSession, fields: Sequence[Any]
    ) -> None:
        self.name = name
        self.config = config
        self.session = session
        described = [f for f in fields if isinstance(f, dict) and f.get("id")]
        pairs = [(str(f["id"]), str(f.get("name", f["id"]))) for f in described]
        write = config.write
        self.managed: dict[str, str] = {}
        """Logical field (`rank`, `okr`) -> Jira field id, for the fields the config tells us to manage."""
        for logical, wanted in (("rank", write.rank_field), ("okr", write.okr_field)):
            if wanted is None:
                continue
            found = resolve_field(wanted, pairs)
            if found is None:
                where = f"trackers.{name}.write.{logical}_field"
                raise UserError(f"{where}: Jira has no field {wanted!r} (see `bridge discover`)")
            self.managed[logical] = found
        self.rank_order_field = next(
            (str(f["id"]) for f in described if (f.get("schema") or {}).get("custom") == LEXORANK_TYPE),
            None,
        ) or resolve_field("Rank", pairs)
        self._retriable_in_a_row = 0

    # ---- reading -------------------------------------------------------------------------------------

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        wanted: dict[str, Ref] = {}
        for ref in items:
            if ref.source == self.name and ref.remote_id.isdigit():  # fix versions (`version:...`) have none
                wanted.setdefault(ref.remote_id, ref)
        ids = list(wanted)
        fields = sorted({*self.managed.values(), "labels", "project", *filter(None, [self.rank_order_field])})
        raw: list[dict[str, Any]] = []
        for start in range(0, len(ids), READ_BATCH):
            raw.extend(self._fetch(ids[start : start + READ_BATCH], fields))
        states: dict[Ref, ItemState] = {}
        for issue in raw:
            found = wanted.get(str(issue.get("id")))
            if found is not None and found not in states:
                states[found] = self._state(found, issue)
        if self.config.write.okr_links:
            # One request per issue: only for those whose links matter.
            for ref, state in list(states.items()):
                if links is not None and ref not in links:
                    continue
                bridge_links = self._links(ref.remote_id)
                if bridge_links is None:
                    del states[ref]  # deleted since it was read
                else:
                    states[ref] = replace(state, links=bridge_links)
        return states

    def _fetch(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        if self.session.cloud:
            body = self.session.post("issue/bulkfetch", {"issueIdsOrKeys": ids, "fields": fields})
            return [i for i in (body or {}).get("issues") or [] if isinstance(i, dict)]
        found: list[dict[str, Any]] = []
        start_at = 0
        while True:
            params = {"jql": f"id in ({', '.join(ids)})", "fields": ",".join(fields),
                      "maxResults": READ_BATCH, "startAt": start_at, "validateQuery": "false"}  # fmt: skip
            body = self.session.get("search", params) or {}
            page = [i for i in body.get("issues") or [] if isinstance(i, dict)]
            found.extend(page)
            start_at += len(page)
            if not page or start_at >= int(body.get("total") or 0):
                return found

    def _state(self, ref: Ref, issue: dict[str, Any]) -> ItemState:
        raw_fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
        assert isinstance(raw_fields, dict)
        values = {logical: _plain(raw_fields.get(field_id)) for logical, field_id in self.managed.items()}
        labels = frozenset(str(label) for label in raw_fields.get("labels") or [])
        project = raw_fields.get("project")
        container = str(project.get("key")) if isinstance(project, dict) and project.get("key") else None
        rank = raw_fields.get(self.rank_order_field) if self.rank_order_field else None
        return ItemState(
            item=ref,
            key=str(issue.get("key") or ref.remote_id),
            fields=values,
            labels=labels,
            container=container,
            position=str(rank) if rank else None,
        )

    def _links(self, issue_id: str) -> dict[str, LinkTarget] | None:
        answer = self._request("get", f"issue/{issue_id}/remotelink", None)
        if isinstance(answer, _Rejected):
            if answer.status == 404:
                return None  # deleted since it was read
            raise FatalAPIError(answer.text(self.name), status=answer.status, tracker=self.name)
        links: dict[str, LinkTarget] = {}
        for link in answer or []:
            global_id = link.get("globalId") if isinstance(link, dict) else None
            if not isinstance(global_id, str) or not global_id.startswith(GLOBAL_ID_PREFIX):
                continue
            target = link.get("object") or {}
            links[global_id] = LinkTarget(
                global_id=global_id, url=str(target.get("url") or ""), title=str(target.get("title") or "")
            )
        return links

    # ---- writing -------------------------------------------------------------------------------------

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        plan = list(writes)
        outcomes: list[WriteOutcome | None] = [None] * len(plan)
        self._retriable_in_a_row = 0

        def done(index: int, error: str | None = None) -> None:
            outcomes[index] = WriteOutcome(plan[index], ok=error is None, at=datetime.now(UTC), error=error)

        edits: dict[str, _Edit] = {}
        links: list[tuple[int, FieldWrite]] = []
        moves: list[_Move] = []
        for index, write in enumerate(plan):
            problem = self._invalid(write)
            if problem is not None:
                done(index, problem)
            elif write.kind in (WriteKind.FIELD, WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE):
                edits.setdefault(write.item.remote_id, _Edit(write.item.remote_id)).writes.append(
                    (index, write)
                )
            elif write.kind is WriteKind.LINK:
                links.append((index, write))
            else:
                after, before = _anchors(write.value)
                item = write.item.remote_id
                if moves and moves[-1].accepts(item, after, before):
                    moves[-1].issues.append((index, item))
                else:
                    anchor = after if after is not None else before
                    assert anchor is not None
                    moves.append(_Move(anchor=anchor, before=after is None, issues=[(index, item)]))
        for edit in edits.values():
            self._edit(edit, done)
        for index, write in links:
            done(index, self._link(write))
        for move in moves:
            self._move(move, done)
        return [outcome for outcome in outcomes if outcome is not None]

    def _invalid(self, write: FieldWrite) -> str | None:
        """Why `write` cannot be sent at all (None when it can)."""
        if write.item.source != self.name:
            return f"{self.name}: the item belongs to tracker {write.item.source!r}"
        if not write.item.remote_id.isdigit():
            return f"{self.name}: {write.item.remote_id} is not an issue (fix versions are not written)"
        write_config = self.config.write
        adding = write.value is not None  # removals stay allowed, so what was written can be taken back
        if write.kind is WriteKind.LABEL_ADD and not write_config.labels:
            return f"{self.name}: labels are not managed here (write.labels is off)"
        if write.kind is WriteKind.LINK and adding and not write_config.okr_links:
            return f"{self.name}: links are not managed here (write.okr_links is off)"
        if write.kind is WriteKind.ORDER and not write_config.native_order:
            return f"{self.name}: the backlog order is not managed here (write.native_order is off)"
        if write.kind is WriteKind.FIELD and write.field not in self.managed:
            return f"{self.name}: field {write.field!r} is not managed (set write.{write.field}_field)"
        if write.kind in (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE) and (
            not write.field or any(ch.isspace() for ch in write.field)
        ):
            return f"{self.name}: {write.field!r} is not a Jira label (labels cannot contain spaces)"
        if write.kind is WriteKind.LINK:
            if not write.field.startswith(GLOBAL_ID_PREFIX):
                return (
                    f"{self.name}: link {write.field!r} is not the bridge's (no {GLOBAL_ID_PREFIX!r} prefix)"
                )
            if write.value is not None and not isinstance(write.value, LinkTarget):
                return f"{self.name}: a link's value is a LinkTarget or None"
        if write.kind is WriteKind.ORDER:
            try:
                after, before = _anchors(write.value)
            except ValueError as exc:
                return f"{self.name}: {exc}"
            if after is None and before is None:
                return f"{self.name}: a move needs an issue to go after or before"
            if write.item.remote_id in (after, before):
                return f"{self.name}: an issue cannot be ranked relative to itself"
        return None

    def _edit(self, edit: _Edit, done: Callable[[int, str | None], None]) -> None:
        pending = list(edit.writes)
        while pending:
            body = _edit_body([w for _, w in pending], self.managed)
            answer = self._request("put", f"issue/{edit.item}", body)
            if not isinstance(answer, _Rejected):
                for index, _ in pending:
                    done(index, None)
                return
            text = answer.text(self.name)
            named = {self._field_of(w) for _, w in pending} & set(answer.fields)
            if answer.status != 400 or not named or len(pending) == 1:
                for index, _ in pending:
                    done(index, text)
                return
            # Jira named the fields it refused: fail their writes, send the rest again.
            kept = []
            for index, write in pending:
                if self._field_of(write) in named:
                    done(index, text)
                else:
                    kept.append((index, write))
            pending = kept

    def _field_of(self, write: FieldWrite) -> str:
        return self.managed.get(write.field, write.field) if write.kind is WriteKind.FIELD else "labels"

    def _link(self, write: FieldWrite) -> str | None:
        issue = write.item.remote_id
        target = write.value
        if target is None:
            answer = self._request("delete", f"issue/{issue}/remotelink", None, {"globalId": write.field})
            if isinstance(answer, _Rejected) and answer.status == 404:
                return None  # no such link: removing it again is removing it once
        else:
            assert isinstance(target, LinkTarget)
            body = {"globalId": write.field, "object": {"url": target.url, "title": target.title}}
            answer = self._request("post", f"issue/{issue}/remotelink", body)
        return answer.text(self.name) if isinstance(answer, _Rejected) else None

    def _move(self, move: _Move, done: Callable[[int, str | None], None]) -> None:
        body: dict[str, Any] = {"issues": [issue for _, issue in move.issues]}
        body["rankBeforeIssue" if move.before else "rankAfterIssue"] = move.anchor
        answer = self._request("put", "/rest/agile/1.0/issue/rank", body)
        if isinstance(answer, _Rejected):
            for index, _ in move.issues:
                done(index, answer.text(self.name))
            return
        failed: dict[str, str] = {}
        entries = answer.get("entries") if isinstance(answer, dict) else None  # a 207; 204 has no body
        for entry in entries if isinstance(entries, list) else []:
            status = int(entry.get("status") or 200) if isinstance(entry, dict) else 200
            if status < 300:
                continue
            errors = "; ".join(str(e) for e in entry.get("errors") or []) or "not ranked"
            text = redact(f"{self.name}: HTTP {status}: {errors}")
            for name in (entry.get("issueId"), entry.get("issueKey")):
                if name not in (None, 0, ""):
                    failed[str(name)] = text
        for index, issue in move.issues:
            done(index, failed.get(issue))

    # ---- HTTP ----------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any, params: dict[str, Any] | None = None
    ) -> Any | _Rejected:
        """One request through the session (rate limit, retries, counting); a refusal of this item only
        comes back as `_Rejected`, credentials refused or a tracker that stays down raise.
        """
        session = self.session

        def attempt() -> Any:
            send = getattr(session.session, method)
            data = json.dumps(body) if body is not None else None
            try:
                return _json(send(session.url(path), data=data, params=params))
            except JIRAError as exc:
                status = exc.status_code or 0
                if status in RETRIABLE_STATUSES or status in (0, 401, 403):
                    raise
                return _rejection(status, exc)

        try:
            answer = session.call(attempt)
        except RetriableAPIError:
            self._retriable_in_a_row += 1
            if self._retriable_in_a_row >= MAX_RETRIABLE_IN_A_ROW:
                raise
            log.warning("%s: %s %s failed after every retry; the write is reported failed", self.name,
                        method.upper(), path)  # fmt: skip
            return _Rejected(503, ["the tracker did not answer after every retry"], {})
        self._retriable_in_a_row = 0
        return answer


def _rejection(status: int, error: JIRAError) -> _Rejected:
    messages: list[str] = []
    fields: dict[str, str] = {}
    try:
        body = json.loads(error.response.text) if error.response is not None else {}
    except ValueError:
        body = {}
    if isinstance(body, dict):
        messages = [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors")
        if isinstance(errors, dict):
            fields = {str(k): str(v) for k, v in errors.items()}
    if not messages and not fields:
        messages = [str(error.text or "")[:300]]
    return _Rejected(status, messages, fields)


def _edit_body(writes: Sequence[FieldWrite], managed: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    labels: list[dict[str, str]] = []
    for write in writes:
        if write.kind is WriteKind.FIELD:
            fields[managed[write.field]] = write.value
        elif write.kind is WriteKind.LABEL_ADD:
            labels.append({"add": write.field})
        else:
            labels.append({"remove": write.field})
    body: dict[str, Any] = {}
    if fields:
        body["fields"] = fields
    if labels:
        body["update"] = {"labels": labels}
    return body


def _anchors(value: Any) -> tuple[str | None, str | None]:
    """(after, before) issue ids of an `order` write's value."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"a move's value is (after, before), not {value!r}")
    ids: list[str | None] = []
    for ref in value:
        if ref is None:
            ids.append(None)
        elif isinstance(ref, Ref) and ref.remote_id.isdigit():
            ids.append(ref.remote_id)
        else:
            raise ValueError(f"{ref!r} is not an issue to rank against")
    return ids[0], ids[1]


def _plain(value: Any) -> Any:
    """A field's value as the plan compares it: numbers and text as they are, options by their value."""
    if isinstance(value, dict):
        return value.get("value") or value.get("name") or value.get("id")
    return value
