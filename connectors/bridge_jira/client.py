"""The `jira` package, wrapped: one retry policy, a rate limit, counted requests, errors the bridge knows.

The client's own retries are off (`max_retries=0`): its ResilientSession would otherwise retry 429/503
itself, sleeping up to a minute per try, and retry connection errors on POST too. Every request goes
through `RetryPolicy`, and every `JIRAError` or `requests` failure becomes a `RetriableAPIError`,
`AuthError` or `FatalAPIError` whose message names the tracker and carries no secret.

Search is the one listing whose paging differs between the flavours: Cloud's `search/jql` names the next
page by token, Data Center's `search` by offset. `JiraSession.search_page` reads one page of either and
`JiraSession.search` walks a whole query with the kit's paginator for the flavour.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from jira import JIRA, JIRAError

from bridge.errors import RetriableAPIError
from bridge.http import (
    RetryPolicy,
    error_for_status,
    redact,
    response_json,
    tls_failure,
)
from bridge.kit import OffsetPaginator, TokenPaginator
from bridge.kit.session import TrackerSession
from bridge_jira.config import JiraTrackerConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_RATE = 10.0  # requests a second: well inside what Jira Cloud tolerates for one user


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a JQL search, Cloud or Data Center alike."""

    issues: list[dict[str, Any]]
    last: bool
    """No page of the same query follows."""
    next: str | None
    """Where the next page of the same query starts: Cloud's `nextPageToken`, Data Center's `startAt`."""


class JiraSession(TrackerSession[JiraTrackerConfig]):
    """A connected Jira site: `get`/`post`/`put` JSON through the client's session, retried and counted."""

    vendor_rate = DEFAULT_RATE
    vendor_burst = int(DEFAULT_RATE)

    def __init__(
        self,
        name: str,
        config: JiraTrackerConfig,
        secrets: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(name, config, [secrets["token_env"]], policy=policy, in_setup=True)
        arguments = self._client_arguments(secrets)
        self.client: JIRA = self.call(lambda: JIRA(**arguments))
        self.count()  # serverInfo, made by the constructor before hooks could count it (a setup read)
        self.session = self.client._session
        self.session.hooks["response"].append(self._count)
        self.cloud = self._is_cloud()
        self.zone = self._user_zone()
        self._in_setup = False

    def _client_arguments(self, secrets: Mapping[str, str]) -> dict[str, Any]:
        """The SDK client's arguments: basic auth with the account's email (Cloud), else a bearer token
        (Data Center); its own retries off (see the module's docstring)."""
        token = secrets["token_env"]
        email = secrets.get("email_env")
        auth: dict[str, Any] = {"basic_auth": (email, token)} if email else {"token_auth": token}
        options = {"verify": self.verify}
        timeout = self.config.timeout.total_seconds()
        return {"server": self.config.url, "options": options, "max_retries": 0, "timeout": timeout, **auth}

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.count()

    def _is_cloud(self) -> bool:
        if self.config.flavour != "auto":
            return self.config.flavour == "cloud"
        return bool(self.client.deploymentType == "Cloud")

    def _user_zone(self) -> ZoneInfo:
        """Jira reads JQL dates in the API user's zone; every cursor is converted to it."""
        me = self.get("myself")
        name = str(me.get("timeZone") or "UTC")
        try:
            return ZoneInfo(name)
        except ZoneInfoNotFoundError:
            log.warning("%s: unknown time zone %r for the API user; assuming UTC", self.name, name)
            return ZoneInfo("UTC")

    def call(self, function: Callable[[], T]) -> T:
        """Run one SDK call under the rate limit and the retry policy, with errors translated."""

        def attempt() -> T:
            self.limiter.acquire()
            try:
                return function()
            except JIRAError as exc:
                headers = dict(exc.response.headers) if exc.response is not None else {}
                raise error_for_status(
                    exc.status_code or 0, _message(exc), tracker=self.name, headers=headers
                ) from None
            except requests.exceptions.SSLError as exc:
                url = exc.request.url if exc.request is not None else None
                raise tls_failure(
                    self.name, url or self.config.url, str(exc), self.config.ca_bundle
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.count()  # no response for the hook to count: a request made all the same
                raise RetriableAPIError(
                    f"{self.name}: {type(exc).__name__}: {redact(str(exc))}", tracker=self.name
                ) from None

        return self.policy.call(attempt)

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return f"{self.config.url}{path}"
        return f"{self.config.url}/rest/api/2/{path}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call(lambda: _json(self.session.get(self.url(path), params=params)))

    def post(self, path: str, body: Any) -> Any:
        return self.call(lambda: _json(self.session.post(self.url(path), data=json.dumps(body))))

    def put(self, path: str, body: Any) -> Any:
        return self.call(lambda: _json(self.session.put(self.url(path), data=json.dumps(body))))

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call(lambda: _json(self.session.delete(self.url(path), params=params)))

    def search_page(self, params: Mapping[str, Any], token: str | None) -> SearchPage:
        """The page of the search `params` (jql, fields, maxResults...) that starts at `token`."""
        query = dict(params)
        if self.cloud:
            if token:
                query["nextPageToken"] = token
            body = self.get("search/jql", query) or {}
            issues = list(body.get("issues") or [])
            return SearchPage(issues, bool(body.get("isLast", True)), body.get("nextPageToken"))
        start_at = int(token or 0)
        query["startAt"] = start_at
        body = self.get("search", query) or {}
        issues = list(body.get("issues") or [])
        last = start_at + len(issues) >= int(body.get("total") or 0) or not issues
        return SearchPage(issues, last, str(start_at + len(issues)))

    def search(self, listing: str, params: Mapping[str, Any]) -> Iterator[SearchPage]:
        """Every page of the search `params`, by token (Cloud) or offset (Data Center); `listing` names it
        in the error raised when the server hands out a page token twice."""
        paginator: TokenPaginator[SearchPage] | OffsetPaginator[SearchPage]
        if self.cloud:
            paginator = TokenPaginator(
                listing, lambda page: None if page.last else page.next, tracker=self.name
            )
        else:  # `search_page` read where the listing ends from Data Center's `total`
            paginator = OffsetPaginator(
                listing, lambda page: len(page.issues), lambda page, _: page.last, tracker=self.name
            )
        return paginator.pages(lambda token: self.search_page(params, None if token is None else str(token)))

    def forget_connections(self) -> None:
        # closing the pools closes this process's copy of each socket, not the connection: no shutdown
        self.session.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.session.close()


def _json(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    return response_json(response)


def error_parts(error: JIRAError) -> tuple[list[str], dict[str, str]]:
    """The messages of a Jira error body (`errorMessages`) and the fields it names (`errors`)."""
    try:
        body = json.loads(error.response.text) if error.response is not None else {}
    except ValueError:
        return [], {}
    if not isinstance(body, dict):
        return [], {}
    errors = body.get("errors")
    fields = {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}
    return [str(m) for m in body.get("errorMessages") or []], fields


def error_text(messages: Sequence[str], fields: Mapping[str, str]) -> str:
    """What Jira said, as one line: its messages, then each field it named with its message."""
    return "; ".join([*messages, *(f"{name}: {message}" for name, message in fields.items())])


def _message(error: JIRAError) -> str:
    return error_text(*error_parts(error)) or str(error.text or "")[:500]
