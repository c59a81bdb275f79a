"""Writing back to Jira: managed fields, the bridge's labels, its remote links, and backlog order.

Reading state (`read_state`) costs one request per 100 issues: Cloud's `POST issue/bulkfetch`, or on Data
Center a search `id in (...)` with `validateQuery=false` (a strict query naming an issue that was deleted
since the last pull would fail whole; bulk fetch and the lenient search just leave it out). Remote links
cost one `GET issue/{id}/remotelink` per issue, and only when `write.okr_links` is on.

An item's container is its project key: Jira's Rank field is one order over the whole site (each board
shows it filtered), so there is no per-board position to read; the project is where the bridge's moves
keep items together. Its position is the Rank field's LexoRank string (`0|i000db:`), which sorts as text.

Pushing (`push`) takes the fewest requests Jira allows:
- on Cloud, with the Bulk Change permission, a change given to many issues alike (a label added, a number
  or text field set to one value) goes in one bulk edit of up to 1,000 issues, with bulk notifications
  off (see quiet.py); a bulk edit Jira refuses whole (400) falls back to single edits;
- a date picker field (the forecast dates) is always a single edit: the bulk edit's `datePickerFields`
  takes its date as `d/mmm/yy` or `dd-mm-yyyy`, formats that depend on the site's settings, while an
  issue edit takes the day as `YYYY-MM-DD` whatever they are;
- every other field and label write on one issue goes into one `PUT issue/{id}` (`fields` for the managed
  fields, `update.labels` add/remove operations for labels, which are idempotent and have no colour),
  with `notifyUsers=false` where the account may say it (asked once per project and cycle, see
  quiet.py); when Jira rejects that edit for one field (400 naming it, e.g. a field not on the edit
  screen), that field's writes fail and the rest are sent again without it;
- a link is `POST issue/{id}/remotelink` keyed by its `globalId` (Jira updates the link with that id
  rather than adding one), a removed link `DELETE issue/{id}/remotelink?globalId=` (404: already gone);
- moves go to `PUT /rest/agile/1.0/issue/rank`, up to 50 issues a call: consecutive moves that chain
  (B after A after X, or A and B both before Y) become one call; a 207 answer fails only the issues it
  names.

A request that gets no answer after every retry leaves its writes unknown: the kit's template reads
those issues back (the same bulk fetch or search, and their remote links) and settles each write as
Jira holds it. Every write here is idempotent (a field set, a label operation, a link keyed by its
`globalId`, a rank), so a retry never doubles anything.

Only links whose global id starts with `LINK_ID_PREFIX` are the bridge's: `read_state` reports only
those and `push` refuses to write any other, so a user's links are never touched. What the tracker's
`write` table does not manage is refused by the kit's write template, as for every connector.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import Any, TypeVar

from jira import JIRAError

from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteCost, WriteKind
from bridge.errors import FatalAPIError, OutcomeUnknown
from bridge.http import RETRIABLE_STATUSES, redact
from bridge.kit import EDIT_KINDS, Outcomes, Writer, WriteRefused
from bridge.written import LINK_ID_PREFIX, with_marker
from bridge_jira.client import JiraSession, _json, error_parts, error_text
from bridge_jira.config import JiraTrackerConfig
from bridge_jira.mapping import HeldFields
from bridge_jira.quiet import (
    BULK_MIN,
    BULK_PATH,
    FINISHED,
    QUEUE_PATH,
    TEXT_FIELD,
    BulkEdit,
    Permissions,
    ask_permissions,
    bulk_groups,
    bulk_waves,
    task_outcomes,
)

log = logging.getLogger(__name__)

READ_BATCH = 100
RANK_BATCH = 50
RANK_PATH = "/rest/agile/1.0/issue/rank"
T = TypeVar("T")
COMMENT_PAGE = 100
"""Comments listed a request when looking for the bridge's marker."""
POLL_FIRST = 0.2
POLL_LONGEST = 5.0


class JiraRefusal(WriteRefused):
    """A request Jira refused for this item only (400, 404, 409...): its status, and the fields it named
    (a 400 naming some fields of an edit lets the rest be sent again without them)."""

    def __init__(self, status: int, messages: Sequence[str], fields: dict[str, str]) -> None:
        self.status = status
        self.fields = fields
        super().__init__(f"HTTP {status}: {error_text(messages, fields) or 'rejected'}")


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


class JiraWriter(Writer[JiraTrackerConfig]):
    """The write side of one Jira site, sharing the puller's session and field list."""

    def __init__(
        self, name: str, config: JiraTrackerConfig, session: JiraSession, fields: Sequence[Any]
    ) -> None:
        super().__init__(name, config)
        self.session = session
        self.held = HeldFields.resolve(name, config, fields)
        self.managed: dict[str, str] = self.held.managed
        """Logical field (`rank`, `okr`) -> Jira field id, for the fields the config tells us to manage."""
        self.rank_order_field = self.held.rank_order_field
        described = [f for f in fields if isinstance(f, dict) and f.get("id")]
        types = {str(f["id"]): str((f.get("schema") or {}).get("type") or "") for f in described}
        self.types: dict[str, str] = {found: types.get(found, "") for found in self.managed.values()}
        """Jira field id -> its schema type (`number`, `string`, `option`...), for the managed fields."""
        self.kinds = {str(f["id"]): _kind(f) for f in described}
        """Field id -> `number`, `text` (single-line) or None: what a bulk edit can set it as."""
        self._permissions: Permissions | None = None
        self._loud_issues: set[str] = set()
        """Issues whose project turned out not to allow `notifyUsers=false` (Data Center's 403)."""
        self.poll_timeout = 120.0
        """Seconds to wait for a bulk edit task; after that its writes are read back."""
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def permissions(self) -> Permissions:
        """What the account may do quietly, asked on first need (once per project and cycle: the writer
        lives as long as the cycle's connection)."""
        if self._permissions is None:
            with self.session.setup():  # a read of the account's settings, like the field list's
                self._permissions = ask_permissions(
                    self.name, self.config.projects, self.session.get, self.session.cloud
                )
        return self._permissions

    # ---- reading -------------------------------------------------------------------------------------

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        wanted: dict[str, Ref] = {}
        for ref in items:
            if ref.source == self.name and ref.remote_id.isdigit():  # fix versions (`version:...`) have none
                wanted.setdefault(ref.remote_id, ref)
        ids = list(wanted)
        fields = self.held.names()
        raw: list[dict[str, Any]] = []
        for start in range(0, len(ids), READ_BATCH):
            raw.extend(self._fetch(ids[start : start + READ_BATCH], fields))
        states: dict[Ref, ItemState] = {}
        for issue in raw:
            found = wanted.get(str(issue.get("id")))
            if found is not None and found not in states:
                states[found] = self.held.state(found, issue)
        if self.config.write.okr_links:
            self._add_links(states, links)
        return states

    def _add_links(self, states: dict[Ref, ItemState], wanted: Collection[Ref] | None) -> None:
        """The bridge's links of the issues in `wanted` (all when None): one request per issue."""
        for ref, state in list(states.items()):
            if wanted is not None and ref not in wanted:
                continue
            bridge_links = self._links(ref.remote_id)
            if bridge_links is None:
                del states[ref]  # deleted since it was read
            else:
                states[ref] = replace(state, links=bridge_links)

    def _fetch(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        if self.session.cloud:
            body = self.session.post("issue/bulkfetch", {"issueIdsOrKeys": ids, "fields": fields})
            return [i for i in (body or {}).get("issues") or [] if isinstance(i, dict)]
        params = {"jql": f"id in ({', '.join(ids)})", "fields": ",".join(fields), "maxResults": READ_BATCH,
                  "validateQuery": "false"}  # fmt: skip
        pages = self.session.search(f"{self.name}: {len(ids)} issues by id", params)
        return [i for page in pages for i in page.issues if isinstance(i, dict)]

    def _links(self, issue_id: str) -> dict[str, LinkTarget] | None:
        try:
            answer = self._request("get", f"issue/{issue_id}/remotelink")
        except JiraRefusal as refused:
            if refused.status == 404:
                return None  # deleted since it was read
            text = redact(f"{self.name}: {refused}")
            raise FatalAPIError(text, status=refused.status, tracker=self.name) from None
        except WriteRefused as refused:  # no answer after every retry
            raise FatalAPIError(str(refused), status=503, tracker=self.name) from None
        links: dict[str, LinkTarget] = {}
        for link in answer or []:
            global_id = link.get("globalId") if isinstance(link, dict) else None
            if not isinstance(global_id, str) or not global_id.startswith(LINK_ID_PREFIX):
                continue
            target = link.get("object") or {}
            links[global_id] = LinkTarget(
                global_id=global_id, url=str(target.get("url") or ""), title=str(target.get("title") or "")
            )
        return links

    # ---- writing -------------------------------------------------------------------------------------

    def refuse(self, write: FieldWrite) -> None:
        """What Jira cannot take as given: a fix version, a label with a space, a link that is not the
        bridge's, a move with no issue to go after or before."""
        if not write.item.remote_id.isdigit():
            raise WriteRefused(f"{write.item.remote_id} is not an issue (fix versions are not written)")
        if write.kind in (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE) and (
            not write.field or any(ch.isspace() for ch in write.field)
        ):
            raise WriteRefused(f"{write.field!r} is not a Jira label (labels cannot contain spaces)")
        if write.kind is WriteKind.LINK:
            if not write.field.startswith(LINK_ID_PREFIX):
                raise WriteRefused(f"link {write.field!r} is not the bridge's (no {LINK_ID_PREFIX!r} prefix)")
            if write.value is not None and not isinstance(write.value, LinkTarget):
                raise WriteRefused("a link's value is a LinkTarget or None")
        if write.kind is WriteKind.FIELD and write.field in self.managed:
            _field_value(self.types[self.managed[write.field]], write.value)  # refuses what cannot go
        if write.kind is WriteKind.ORDER:
            try:
                after, before = _anchors(write.value)
            except ValueError as exc:
                raise WriteRefused(str(exc)) from None
            if after is None and before is None:
                raise WriteRefused("a move needs an issue to go after or before")
            if write.item.remote_id in (after, before):
                raise WriteRefused("an issue cannot be ranked relative to itself")

    def send(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Edits first (bulk edits on Cloud, then one per issue), then links (one request each), then
        moves (chained, 50 a call)."""
        changes: list[tuple[int, FieldWrite]] = []
        links: list[tuple[int, FieldWrite]] = []
        moves: list[_Move] = []
        for index, write in writes:
            if write.kind in (WriteKind.LINK, WriteKind.COMMENT):
                links.append((index, write))
            elif write.kind is WriteKind.ORDER:
                _add_move(moves, index, write)
            else:
                changes.append((index, write))
        if changes:
            self._change(changes, outcomes)
        for index, write in links:
            send = self._comment if write.kind is WriteKind.COMMENT else self._link
            _settle(outcomes, [index], partial(send, write))
        for move in moves:
            _settle(outcomes, [index for index, _ in move.issues], partial(self._move, move, outcomes))

    def _change(self, changes: list[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Field and label writes: bulk edits where the account may make them, single edits for the rest
        (and for a bulk edit Jira refused whole)."""
        single = changes
        if self.permissions.bulk:
            smallest = 1 if self.permissions.loud else BULK_MIN  # single edits would email someone
            bulk, single = bulk_groups(changes, self._bulk_field, smallest)
            single.extend(self._bulk(bulk, outcomes))
        edits: dict[str, _Edit] = {}
        for index, write in sorted(single, key=lambda pair: pair[0]):
            edits.setdefault(write.item.remote_id, _Edit(write.item.remote_id)).writes.append((index, write))
        for edit in edits.values():
            self._edit(edit, outcomes)

    def _bulk_field(self, write: FieldWrite) -> tuple[str, str | None]:
        field_id = self._field_of(write)
        return field_id, self.kinds.get(field_id)

    def _bulk(self, edits: Sequence[BulkEdit], outcomes: Outcomes) -> list[tuple[int, FieldWrite]]:
        """Submit the bulk edits a wave at a time (no issue twice in a wave, so Jira runs them side by
        side), wait for each wave's tasks, and settle their writes as the tasks report them; returns the
        writes to send as single edits instead (a bulk edit Jira refused whole)."""
        fallback: list[tuple[int, FieldWrite]] = []
        for wave in bulk_waves(edits):
            started = [(edit, task) for edit in wave if (task := self._submit(edit, outcomes, fallback))]
            progress = self._wait([task for _, task in started])
            for edit, task in started:
                self._settle_task(edit, task, progress[task], outcomes)
        return fallback

    def _submit(self, edit: BulkEdit, outcomes: Outcomes, fallback: list[tuple[int, FieldWrite]]) -> str:
        """The task id of a submitted bulk edit; "" when it was not (its writes failed, or joined
        `fallback` when Jira refused the bulk edit whole)."""
        try:
            answer = self._request("post", BULK_PATH, edit.body())
        except JiraRefusal as refused:
            log.warning("%s: a bulk edit of %d issues was refused (%s); they are edited one by one",
                        self.name, len(edit.writes), redact(str(refused)))  # fmt: skip
            fallback.extend(edit.writes)
            return ""
        except WriteRefused as refused:  # no answer: the writes are read back
            for index, _ in edit.writes:
                outcomes.fail(index, refused)
            return ""
        task = str((answer or {}).get("taskId") or "") if isinstance(answer, dict) else ""
        if not task:
            for index, _ in edit.writes:
                outcomes.unknown(index, "Jira named no task for the bulk edit")
        return task

    def _wait(self, tasks: Sequence[str]) -> dict[str, dict[str, Any] | OutcomeUnknown]:
        """Each task's progress once finished, polling the unfinished ones in rounds (waiting longer
        between rounds); `OutcomeUnknown` for one that cannot be read or does not finish in
        `poll_timeout` seconds (its edits may have been made)."""
        found: dict[str, dict[str, Any] | OutcomeUnknown] = {}
        waited, delay = 0.0, POLL_FIRST
        while True:
            for task in [t for t in tasks if t not in found]:
                try:
                    progress = self._request("get", QUEUE_PATH.format(task))
                except WriteRefused as refused:
                    found[task] = OutcomeUnknown(f"the bulk edit task {task} could not be read: {refused}")
                    continue
                if not isinstance(progress, dict) or progress.get("status") in FINISHED:
                    found[task] = progress if isinstance(progress, dict) else {}
            pending = [t for t in tasks if t not in found]
            if not pending:
                return found
            if waited >= self.poll_timeout:
                for task in pending:
                    found[task] = OutcomeUnknown(
                        f"the bulk edit task {task} had not finished after {waited:.0f} s"
                    )
                return found
            self.sleep(delay)
            waited, delay = waited + delay, min(delay * 2, POLL_LONGEST)

    def _settle_task(
        self, edit: BulkEdit, task: str, progress: dict[str, Any] | OutcomeUnknown, outcomes: Outcomes
    ) -> None:
        if isinstance(progress, OutcomeUnknown):
            for index, _ in edit.writes:
                outcomes.fail(index, progress)
            return
        done, failed = task_outcomes(progress)
        status = str(progress.get("status"))
        for index, write in edit.writes:
            issue = write.item.remote_id
            if issue in done:
                outcomes.ok(index)
            elif issue in failed:
                outcomes.fail(index, failed[issue])
            elif status == "COMPLETE":
                outcomes.fail(
                    index, "the bulk edit did not find the issue (deleted, or hidden from the account)"
                )
            else:
                outcomes.unknown(index, f"the bulk edit task {task} ended {status}")

    def cost(self, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost:
        """One `PUT issue` per issue edited, which emails each of its watchers unless the account may
        edit quietly in every configured project (asked once, as before the first edit); a link a
        request each; moves chained 50 a call (see `send`). Bulk edits, where the account may make them,
        take fewer requests than counted here."""
        edited = {w.item for w in writes if w.kind in EDIT_KINDS}
        moves: list[_Move] = []
        for index, write in enumerate(writes):
            if write.kind is WriteKind.ORDER:
                _add_move(moves, index, write)
        links = sum(1 for w in writes if w.kind is WriteKind.LINK)
        posted = [w.item for w in writes if w.kind is WriteKind.COMMENT and w.value is not None]
        loud = edited if self.permissions.loud else set()
        return WriteCost(
            edits=len(writes),
            items=len({w.item for w in writes}),
            requests=len(edited) + links + len(moves) + 2 * len(posted),  # a comment: look, then post
            emails=sum(watchers.get(item, 0) for item in [*loud, *posted]),  # comments always notify
        )

    def _edit(self, edit: _Edit, outcomes: Outcomes) -> None:
        """One `PUT issue` (quiet where the account may); when Jira names fields it refuses (400), their
        writes fail and the rest are sent again without them."""
        pending = list(edit.writes)
        while pending:
            try:
                self._put_issue(edit.item, _edit_body([w for _, w in pending], self.managed, self.types))
            except WriteRefused as refused:
                sent = {self._field_of(w) for _, w in pending}
                named = sent & _fields_refused(refused)
                if not named or len(pending) == 1:  # nothing that could go again on its own
                    named = sent
                for index, write in pending:
                    if self._field_of(write) in named:
                        outcomes.fail(index, refused)
                pending = [(index, write) for index, write in pending if self._field_of(write) not in named]
            else:
                for index, _ in pending:
                    outcomes.ok(index)
                return

    def _put_issue(self, issue: str, body: dict[str, Any]) -> None:
        """`PUT issue` with `notifyUsers=false` where the account may; sent again without the flag when
        Data Center refuses it for the issue's project."""
        if not self.permissions.notify_flag or issue in self._loud_issues:
            self._request("put", f"issue/{issue}", body)
            return
        try:
            self._request("put", f"issue/{issue}", body, params={"notifyUsers": "false"})
        except JiraRefusal as refused:
            if refused.status != 403:
                raise
            self._loud_issues.add(issue)
            self._request("put", f"issue/{issue}", body)

    def _field_of(self, write: FieldWrite) -> str:
        return self.managed.get(write.field, write.field) if write.kind is WriteKind.FIELD else "labels"

    def _link(self, write: FieldWrite) -> None:
        issue, target = write.item.remote_id, write.value
        if target is None:
            try:
                self._request("delete", f"issue/{issue}/remotelink", params={"globalId": write.field})
            except JiraRefusal as refused:
                if refused.status != 404:  # 404: no such link, and removing it again is removing it once
                    raise
            return
        assert isinstance(target, LinkTarget)
        body = {"globalId": write.field, "object": {"url": target.url, "title": target.title}}
        self._request("post", f"issue/{issue}/remotelink", body)

    def _comment(self, write: FieldWrite) -> None:
        """Post the comment unless one carrying its marker is there already (a post whose answer was
        lost, another replica's): every attempt looks before it posts, so the session's retries never
        post twice. With no text, delete the bridge's comments carrying the marker."""
        issue, marker = write.item.remote_id, write.field
        if write.value is None:
            for comment_id in self._marked_comments(issue, marker, self._request):
                try:
                    self._request("delete", f"issue/{issue}/comment/{comment_id}")
                except JiraRefusal as refused:
                    if refused.status != 404:  # gone already: deleting it again is deleting it once
                        raise
            return
        body = {"body": with_marker(write.value, marker)}

        def look_then_post() -> None:
            if not self._marked_comments(issue, marker, self._answer):
                self._answer("post", f"issue/{issue}/comment", body, None)

        self._call(look_then_post, f"POST issue/{issue}/comment")

    def _marked_comments(self, issue: str, marker: str, request: Callable[..., Any]) -> list[str]:
        """The ids of the issue's comments carrying `marker` (REST v2: bodies are plain text), listed
        through `request` (`_request`, or `_answer` inside an attempt of its own)."""
        found: list[str] = []
        start = 0
        while True:
            params = {"startAt": start, "maxResults": COMMENT_PAGE}
            page = request("get", f"issue/{issue}/comment", None, params) or {}
            comments = [c for c in page.get("comments") or [] if isinstance(c, dict)]
            found.extend(str(c.get("id")) for c in comments if marker in str(c.get("body") or ""))
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return found

    def comment_found(self, write: FieldWrite) -> bool:
        return bool(self._marked_comments(write.item.remote_id, write.field, self._request))

    def _move(self, move: _Move, outcomes: Outcomes) -> None:
        """One call to the rank API; a 207 answer fails only the issues it names."""
        body: dict[str, Any] = {"issues": [issue for _, issue in move.issues]}
        body["rankBeforeIssue" if move.before else "rankAfterIssue"] = move.anchor
        failed = _unranked(self._request("put", RANK_PATH, body))
        for index, issue in move.issues:
            outcomes.settle(index, failed.get(issue))

    # ---- HTTP ----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One request through the session (rate limit, retries, counting) and the retry breaker.

        Raises `JiraRefusal` when Jira refuses it for this item only, `WriteRefused` when it failed after
        every retry (below the breaker's limit); refused credentials and a tracker that stays down raise
        out of the push.
        """
        return self._call(partial(self._answer, method, path, body, params), f"{method.upper()} {path}")

    def _call(self, attempt: Callable[[], T], what: str) -> T:
        """`attempt` through the session (retried as a whole) and the retry breaker (see `_request`)."""
        try:
            return self.breaker.call(partial(self.session.call, attempt), what)
        except JiraRefusal:
            self.breaker.reset()  # Jira answered: only failures after every retry, in a row, count
            raise

    def _answer(self, method: str, path: str, body: Any, params: dict[str, Any] | None) -> Any:
        """Jira's answer to one request, or `JiraRefusal`; errors about more than the item are raised
        as they are, for the session to retry or translate."""
        send = getattr(self.session.session, method)
        data = json.dumps(body) if body is not None else None
        try:
            return _json(send(self.session.url(path), data=data, params=params))
        except JIRAError as exc:
            status = exc.status_code or 0
            if status == 403 and params is not None and params.get("notifyUsers") == "false":
                raise _refusal(status, exc) from None  # the flag refused, not the credentials
            if status in RETRIABLE_STATUSES or status in (0, 401, 403):
                raise
            raise _refusal(status, exc) from None


def _settle(outcomes: Outcomes, indices: Sequence[int], request: Callable[[], None]) -> None:
    """Run `request` for the writes at `indices`: those it has not settled succeed, or all fail."""
    try:
        request()
    except WriteRefused as refused:
        for index in indices:
            outcomes.fail(index, refused)
    else:
        for index in indices:
            outcomes.ok(index)


def _fields_refused(refused: WriteRefused) -> set[str]:
    """The fields a 400 named; none for any other refusal."""
    return set(refused.fields) if isinstance(refused, JiraRefusal) and refused.status == 400 else set()


def _add_move(moves: list[_Move], index: int, write: FieldWrite) -> None:
    """Add an `order` write to the last call when it chains on, else start a call of its own."""
    after, before = _anchors(write.value)
    item = write.item.remote_id
    if moves and moves[-1].accepts(item, after, before):
        moves[-1].issues.append((index, item))
    else:
        anchor = after if after is not None else before
        assert anchor is not None
        moves.append(_Move(anchor=anchor, before=after is None, issues=[(index, item)]))


def _unranked(answer: Any) -> dict[str, str]:
    """Issue id or key -> the error, for each issue a rank answer names as not ranked (a 207)."""
    failed: dict[str, str] = {}
    entries = answer.get("entries") if isinstance(answer, dict) else None  # a 207; 204 has no body
    for entry in entries if isinstance(entries, list) else []:
        status = int(entry.get("status") or 200) if isinstance(entry, dict) else 200
        if status < 300:
            continue
        errors = "; ".join(str(e) for e in entry.get("errors") or []) or "not ranked"
        for name in (entry.get("issueId"), entry.get("issueKey")):
            if name not in (None, 0, ""):
                failed[str(name)] = f"HTTP {status}: {errors}"
    return failed


def _refusal(status: int, error: JIRAError) -> JiraRefusal:
    messages, fields = error_parts(error)
    if not messages and not fields:
        messages = [str(error.text or "")[:300]]
    return JiraRefusal(status, messages, fields)


def _edit_body(
    writes: Sequence[FieldWrite], managed: dict[str, str], types: dict[str, str]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    labels: list[dict[str, str]] = []
    for write in writes:
        if write.kind is WriteKind.FIELD:
            field_id = managed[write.field]
            fields[field_id] = _field_value(types.get(field_id, ""), write.value)
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


def _field_value(kind: str, value: Any) -> Any:
    """`value` as a field of schema type `kind` takes it: a number field a number, a text field text, a
    date picker its day (`YYYY-MM-DD`), a select field its option by value; None clears any of them.
    Raises `WriteRefused` for a value the field cannot hold (a band such as "top 5" in a number field)."""
    if value is None:
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WriteRefused(
                f"a number field cannot hold {value!r}; write.rank_value must be score or position"
            )
        return value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise WriteRefused(f"a date field holds a day (YYYY-MM-DD), not {value!r}") from None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return {"value": text} if kind == "option" else text


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


def _kind(described: dict[str, Any]) -> str | None:
    """`number`, `text` (a single-line text field) or None: how a bulk edit could set the field."""
    schema = described.get("schema") or {}
    if schema.get("type") == "number":
        return "number"
    if schema.get("type") == "string" and schema.get("custom") == TEXT_FIELD:
        return "text"
    return None
