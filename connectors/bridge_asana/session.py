"""The `asana` v5 SDK, wrapped: one retry policy, Asana's rate limit, counted requests, the bridge's errors.

The SDK's own retries are off (see `bridge_asana.client`), and every call is made with `full_payload=True`
so that one call is one HTTP request and its paging stays in the bridge's hands: each page is retried on
its own, under `RetryPolicy`, after `RateLimiter` lets it through. `ApiException` (status, headers with
Retry-After) and urllib3's connection errors become `RetriableAPIError`, `AuthError` or `FatalAPIError`
whose message names the tracker and never carries the token.

The Batch API runs up to ten actions in one HTTP request; each action counts against Asana's quota, so the
limiter is charged once per action. A batch of reads is retried whole when one of its actions hit a 429 or
5xx (running a read twice is harmless); a batch of writes (`batch_results`) is retried only when the
request as a whole failed, and hands each action's own answer back (the writes sent are idempotent).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

import asana
import urllib3
from asana.rest import ApiException

from bridge.errors import FatalAPIError, RetriableAPIError
from bridge.http import (
    RetryPolicy,
    error_for_status,
    redact,
    tls_failure,
)
from bridge.kit import TokenPaginator
from bridge.kit.session import TrackerSession
from bridge_asana.client import make_api_client
from bridge_asana.config import AsanaTrackerConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_RATE = 150 / 60.0  # Asana's published quota on the free tier: 150 requests a minute per token
MAX_BATCH = 10  # actions in one Batch API request (Asana refuses more)
PAGE_LIMIT = 100  # the largest page Asana serves


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a batch: a path under /api/1.0 with its query parameters (a GET) or its body's
    `data` (a POST or PUT), and the fields and paging wanted back."""

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    fields: Sequence[str] = ()
    limit: int | None = None
    offset: str | None = None
    method: str = "get"

    def payload(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.fields:
            options["fields"] = list(self.fields)
        if self.limit is not None:
            options["limit"] = self.limit
        if self.offset is not None:
            options["offset"] = self.offset
        body: dict[str, Any] = {"relative_path": self.path, "method": self.method, "data": dict(self.params)}
        if options:
            body["options"] = options
        return body

    def describe(self) -> str:
        if self.method != "get":
            return f"{self.method.upper()} {self.path}"
        query = f"?{urlencode(dict(self.params))}" if self.params else ""
        return f"GET {self.path}{query}"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What one action of a batch answered: its status, body and headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class SyncTokenExpired(Exception):
    """The events endpoint answered 412: the sync token was missing, unknown or too old."""

    def __init__(self, fresh: str | None) -> None:
        super().__init__("sync token refused")
        self.fresh = fresh


class AsanaSession(TrackerSession[AsanaTrackerConfig]):
    """A connected Asana workspace: SDK calls retried, rate limited, counted and translated."""

    vendor_rate = DEFAULT_RATE
    vendor_burst = 1  # keeps any 60-second window at Asana's 150 (plus the one in hand)

    def __init__(
        self,
        name: str,
        config: AsanaTrackerConfig,
        secrets: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        token = secrets["token_env"]
        super().__init__(name, config, [token], policy=policy)
        self.batch_actions = 0
        self.client = make_api_client(config.url, token, config.timeout.total_seconds(), self.verify)
        self._tasks = asana.TasksApi(self.client)
        self._events = asana.EventsApi(self.client)
        self._batch = asana.BatchAPIApi(self.client)
        self._tags = asana.TagsApi(self.client)
        self._goals = asana.GoalsApi(self.client)
        self._stories = asana.StoriesApi(self.client)

    # ---- bookkeeping ---------------------------------------------------------------------------------

    def _count(self, batched: int) -> None:
        self.count()
        with self._count_lock:  # stories are fetched on a prefetch thread while pages are stored
            self.batch_actions += batched

    # ---- calls ---------------------------------------------------------------------------------------

    def call(
        self, function: Callable[[], T], *, batched: int = 0, what: str = "", idempotent: bool = True
    ) -> T:
        """Run one SDK call, retried and translated: one HTTP request, or a Batch of `batched` actions.

        Each attempt is charged to the rate limit once per request, or once per action of a Batch. A call
        that is not `idempotent` (one creating something, like a tag) is retried only after a 429, which
        Asana answers before doing anything: after a 5xx, a timeout or a lost connection it may have
        landed, and sending it again could make a second one.
        """

        def attempt() -> T:
            for _ in range(max(1, batched)):
                self.limiter.acquire()
            self._count(batched)
            try:
                return function()
            except ApiException as exc:
                error = self._translate(exc, what)
            except urllib3.exceptions.HTTPError as exc:
                error = RetriableAPIError(
                    f"{self.name}: {type(exc).__name__}: {redact(str(exc))}", tracker=self.name
                )
            if isinstance(error, RetriableAPIError) and not idempotent and error.status != 429:
                raise _NotRetried(error)
            raise error

        try:
            return self.policy.call(attempt)
        except _NotRetried as wrapped:
            raise wrapped.error from None

    def _translate(self, exc: ApiException, what: str) -> Exception:
        reason = str(exc.reason or "")
        if not exc.status and reason.startswith("SSLError"):  # the SDK's wrapping of urllib3's SSLError
            return tls_failure(self.name, self.config.url, reason, self.config.ca_bundle)
        headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
        message = _message(exc.body) or str(exc.reason or "")
        if what:
            message = f"{message} ({what})"
        return error_for_status(int(exc.status or 0), message, tracker=self.name, headers=headers)

    def get_tasks(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of `GET /tasks` (a fresh opts dict each call: the SDK writes into the one it gets)."""
        body = self.call(lambda: self._tasks.get_tasks(dict(params), full_payload=True), what="GET /tasks")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self._bad_answer("GET /tasks")
        return body

    def get_events(self, resource: str, sync: str | None) -> dict[str, Any]:
        """One page of events on `resource` since `sync`; `SyncTokenExpired` carries the fresh token."""
        params = {"sync": sync} if sync else {}

        def request() -> Any:
            try:
                return self._events.get_events(resource, dict(params), full_payload=True)
            except ApiException as exc:
                if exc.status == 412:
                    raise SyncTokenExpired(_sync_of(exc.body)) from None
                raise

        body = self.call(request, what=f"GET /events?resource={resource}")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self._bad_answer("GET /events")
        return body

    def create_tag(self, workspace: str, name: str, color: str | None) -> dict[str, Any]:
        """`POST /tags`: a new tag in `workspace` (with a colour of Asana's palette, or none)."""
        data: dict[str, Any] = {"name": name, "workspace": workspace}
        if color is not None:
            data["color"] = color
        tag = self.call(
            lambda: self._tags.create_tag({"data": data}, {"opt_fields": "name,color"}),
            what="POST /tags",
            idempotent=False,
        )
        if not isinstance(tag, dict) or not isinstance(tag.get("gid"), str):
            raise FatalAPIError(f"{self.name}: unexpected answer to POST /tags")
        return tag

    def create_comment(self, task: str, text: str) -> dict[str, Any]:
        """`POST /tasks/{task}/stories`: a comment story on `task`, by the token's user, in plain text.

        Not retried after an answer that may hide a post (a 5xx, a timeout, a lost connection): the
        caller reads the task's comments back instead, so a comment is never posted twice."""
        story = self.call(
            lambda: self._stories.create_story_for_task(
                {"data": {"text": text}}, task, {"opt_fields": "resource_subtype"}
            ),
            what=f"POST /tasks/{task}/stories",
            idempotent=False,
        )
        if not isinstance(story, dict) or not isinstance(story.get("gid"), str):
            raise FatalAPIError(f"{self.name}: unexpected answer to POST /tasks/{task}/stories")
        return story

    def create_goal(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /goals`: a new goal (not retried after an answer that may hide a creation)."""
        goal = self.call(
            lambda: self._goals.create_goal({"data": dict(data)}, {"opt_fields": "name,notes"}),
            what="POST /goals",
            idempotent=False,
        )
        if not isinstance(goal, dict) or not isinstance(goal.get("gid"), str):
            raise FatalAPIError(f"{self.name}: unexpected answer to POST /goals")
        return goal

    def delete_goal(self, gid: str) -> None:
        """`DELETE /goals/{gid}` (a goal already gone counts as deleted)."""
        try:
            self.call(lambda: self._goals.delete_goal(gid), what=f"DELETE /goals/{gid}")
        except FatalAPIError as exc:
            if exc.status != 404:
                raise

    def batch(self, actions: Sequence[Action], *, absent: Collection[int] = (404,)) -> list[Any]:
        """The bodies of up to ten GETs run in one request, in order; None where one answered `absent`."""

        def body(action: Action, raw: Any) -> Any:
            result = _action_result(raw)
            if result.ok:
                return result.body
            if result.status in absent:
                return None
            raise self.action_error(action, result)

        return self._batch_request(actions, body)

    def batch_results(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Up to ten actions (writes too) in one request, each answered on its own, in order.

        Only the request as a whole is retried (a 429, a 5xx or a dropped connection before any answer),
        so the actions sent this way must be safe to run twice. An action's own failure comes back in
        its result, except a 401: the credentials were refused, which stops every write.
        """
        answered = self._batch_request(actions, lambda _, raw: _action_result(raw))
        for action, result in zip(actions, answered, strict=True):
            if result.status == 401:
                raise self.action_error(action, result)
        return answered

    def _batch_request(self, actions: Sequence[Action], answer: Callable[[Action, Any], R]) -> list[R]:
        """One Batch API request of `actions`, retried whole; `answer` reads each action's result.

        An error `answer` raises (an action's 429 or 5xx, say) retries the request too."""
        if not actions:
            return []
        if len(actions) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} actions")
        payload = {"data": {"actions": [action.payload() for action in actions]}}

        def request() -> list[R]:
            body = self._batch.create_batch_request(payload, {}, full_payload=True)
            results = body.get("data") if isinstance(body, dict) else None
            if not isinstance(results, list) or len(results) != len(actions):
                raise self._bad_answer("POST /batch")
            return [answer(action, result) for action, result in zip(actions, results, strict=True)]

        return self.call(request, batched=len(actions), what="POST /batch")

    def action_error(self, action: Action, result: ActionResult) -> Exception:
        """The bridge's error for an action that failed (its message redacted, naming the tracker)."""
        message = f"{_message(result.body) or 'error'} ({action.describe()})"
        return error_for_status(result.status, message, tracker=self.name, headers=dict(result.headers))

    def batches(self, actions: Sequence[Action], *, absent: Collection[int] = (404,)) -> list[Any]:
        """`batch` over any number of actions, ten at a time."""
        bodies: list[Any] = []
        for start in range(0, len(actions), MAX_BATCH):
            bodies.extend(self.batch(actions[start : start + MAX_BATCH], absent=absent))
        return bodies

    def collect(
        self, actions: Sequence[Action], *, absent: Collection[int] = (404,), follow: bool = True
    ) -> list[list[Any] | None]:
        """Every record each listing action returns, ten actions to a Batch request; None where an
        action answered `absent`. With `follow`, `next_page` is followed to the end; else one page each."""
        results: list[list[Any] | None] = [[] for _ in actions]
        listings = [
            TokenPaginator(
                f"{self.name}: {action.describe()}",
                next_offset if follow else _last_page,
                start=action.offset,
                tracker=self.name,
            )
            for action in actions
        ]
        # Each listing pages on its own; what is batched is the next page of up to ten listings at a time.
        pending = list(range(len(actions)))
        while pending:
            batch, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            pages = [replace(actions[index], offset=listings[index].token) for index in batch]
            for index, page, body in zip(batch, pages, self.batch(pages, absent=absent), strict=True):
                bucket = results[index]
                if body is None or bucket is None:
                    results[index] = None
                    continue
                data = body.get("data") if isinstance(body, dict) else None
                if not isinstance(data, list):
                    raise FatalAPIError(f"{self.name}: unexpected answer to {page.describe()}")
                bucket.extend(data)
                listings[index].advance(body)
                if listings[index].has_more:
                    pending.append(index)
        return results

    def _bad_answer(self, what: str) -> Exception:
        # A body that is not Asana's shape is most likely a proxy or an outage page: worth another try.
        return RetriableAPIError(f"{self.name}: unexpected answer to {what}", tracker=self.name)

    def forget_connections(self) -> None:
        # closing the pools closes this process's copy of each socket, not the connection: no shutdown;
        # the client's thread pool (for its async calls) is not used by a pull
        self.client.rest_client.pool_manager.clear()

    def close(self) -> None:
        pool = getattr(self.client, "pool", None)
        with contextlib.suppress(Exception):
            if pool is not None:
                pool.close()
                pool.join()
        with contextlib.suppress(Exception):
            self.client.rest_client.pool_manager.clear()


def next_offset(body: Mapping[str, Any]) -> str | None:
    """The offset of the page after a listing's `body` (None on its last page)."""
    following = body.get("next_page")
    offset = following.get("offset") if isinstance(following, dict) else None
    return str(offset) if offset else None


def _last_page(body: Mapping[str, Any]) -> None:
    """No page after this one (a listing read one page only)."""
    return None


def _decoded(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            return None
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def _message(body: Any) -> str:
    """The messages of Asana's `{"errors": [{"message": ...}]}`, or the start of the body."""
    decoded = _decoded(body)
    if isinstance(decoded, dict) and isinstance(decoded.get("errors"), list):
        messages = [str(e.get("message")) for e in decoded["errors"] if isinstance(e, dict)]
        if messages:
            return "; ".join(messages)
    if isinstance(body, bytes | bytearray):
        return body.decode("utf-8", "replace")[:300]
    return str(body)[:300] if body else ""


def _action_result(result: Any) -> ActionResult:
    if not isinstance(result, dict):
        return ActionResult(0, None)
    headers = result.get("headers")
    return ActionResult(
        status=int(result.get("status_code") or 0),
        body=result.get("body"),
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )


def _sync_of(body: Any) -> str | None:
    decoded = _decoded(body)
    sync = decoded.get("sync") if isinstance(decoded, dict) else None
    return str(sync) if sync else None


class _NotRetried(Exception):
    """Carries a retriable error past the retry policy, for a call that must not be sent twice."""

    def __init__(self, error: RetriableAPIError) -> None:
        super().__init__(str(error))
        self.error = error
