"""py-trello's `TrelloClient`, wrapped: one retry policy, Trello's rate limit, counted requests, the
bridge's errors, and no key or token in any message.

py-trello hard-codes its base URL, sets no timeout, keeps no headers on errors and puts the key and the
token in every URL (so every message it makes is a secret). Here a `requests.Session` is handed to it
(`http_service=`) with `BaseURLAdapter` mounted on Trello's prefix (another base URL, and a timeout), and
a response hook that turns any failed answer into `RetriableAPIError` / `AuthError` / `FatalAPIError`
before py-trello sees it, Retry-After included. Each call then runs under `RetryPolicy`, after
`RateLimiter` lets it through, and is counted (setup reads apart).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from trello import ResourceUnavailable, TrelloClient

from bridge.errors import APIError, RetriableAPIError
from bridge.http import (
    RetryPolicy,
    error_for_status,
    redact,
    tls_failure,
)
from bridge.kit.session import TrackerSession
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.transport import TRELLO_API, BaseURLAdapter

log = logging.getLogger(__name__)

DEFAULT_RATE = 100 / 10.0  # Trello's published limit: 100 requests per 10 seconds per token
MAX_BATCH = 10  # GETs in one `batch` request (Trello refuses more)


class TrelloSession(TrackerSession[TrelloTrackerConfig]):
    """A connected Trello account: GETs retried, rate limited, counted and translated."""

    vendor_rate = DEFAULT_RATE
    vendor_burst = 1  # keeps any 10-second window at Trello's 100 (plus the one in hand)

    def __init__(
        self,
        name: str,
        config: TrelloTrackerConfig,
        secrets: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        key, token = secrets["api_key_env"], secrets["token_env"]
        super().__init__(name, config, [key, token], policy=policy)
        self.http = _VerifyingSession()
        self.http.verify = self.verify
        # The adapter carries the timeout py-trello never sets; for Trello's own URL it rewrites nothing.
        self.http.mount(TRELLO_API, BaseURLAdapter(config.url, timeout=config.timeout.total_seconds()))
        self.http.hooks["response"].append(self._check)
        self.client = TrelloClient(key, api_secret=token, http_service=self.http)

    # ---- the response hook -------------------------------------------------------------------------

    def _check(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Raise the bridge's error for a failed answer, with its headers (py-trello would drop them)."""
        if response.status_code < 400:
            return response
        body = redact(response.text[:300].strip())
        message = f"{body} ({_describe(response.request.method, response.url)})"
        raise error_for_status(
            response.status_code, message, tracker=self.name, headers=dict(response.headers)
        )

    # ---- calls ---------------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One GET of `/1/<path>`, retried and translated; the decoded JSON body."""
        return self.policy.call(lambda: self._fetch("GET", path, params, None))

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One write (`PUT`, `POST`, `DELETE`) of `/1/<path>`, with a JSON body or query parameters (as
        trello.json declares each operation's); the decoded answer.

        An idempotent write is retried like a GET. One that creates something (an attachment, a label)
        is retried only after a 429, which Trello answers before doing anything: after a 5xx or a lost
        connection it may have landed, and sending it again could make a second one.
        """

        def attempt() -> Any:
            try:
                return self._fetch(method, path, params, body)
            except RetriableAPIError as exc:
                if idempotent or exc.status == 429:
                    raise
                raise _NotRetried(exc) from None

        try:
            return self.policy.call(attempt)
        except _NotRetried as wrapped:
            raise wrapped.error from None

    def _fetch(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Mapping[str, Any] | None
    ) -> Any:
        """One attempt, after the rate limiter lets it through, counted; errors are the bridge's."""
        what = _describe(method, f"/1/{path}")
        self.limiter.acquire()
        self.count()
        try:
            return self.client.fetch_json(
                path,
                http_method=method,
                query_params=dict(params or {}),
                post_args=dict(body) if body is not None else None,
            )
        except APIError:
            raise
        except ResourceUnavailable as exc:  # not expected (the hook answers first), but never leak it
            status = int(getattr(exc, "_status", 0) or 0)
            raise error_for_status(status, what, tracker=self.name) from None
        except requests.exceptions.SSLError as exc:
            url = exc.request.url if exc.request is not None else None
            raise tls_failure(self.name, url or self.config.url, str(exc), self.config.ca_bundle) from None
        except requests.RequestException as exc:
            reason = redact(f"{type(exc).__name__}: {exc}")
            raise RetriableAPIError(f"{self.name}: {reason} ({what})", tracker=self.name) from None
        except ValueError:
            # A body that is not JSON is most likely a proxy or an outage page: worth another try.
            raise RetriableAPIError(f"{self.name}: unexpected answer to {what}", tracker=self.name) from None

    def batch(self, urls: Sequence[str]) -> list[Any]:
        """Up to ten GETs in one request, bodies in order; None where one answered 400 or 404 (gone)."""
        if not urls:
            return []
        if len(urls) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} urls")
        results = self.get("batch", {"urls": ",".join(urls)})
        if not isinstance(results, list) or len(results) != len(urls):
            raise RetriableAPIError(f"{self.name}: unexpected answer to a batch", tracker=self.name)
        return [self._batch_body(url, result) for url, result in zip(urls, results, strict=True)]

    def batches(self, urls: Sequence[str]) -> list[Any]:
        """Any number of GETs, `MAX_BATCH` to a `batch` request; bodies in order, None where one is gone."""
        bodies: list[Any] = []
        for start in range(0, len(urls), MAX_BATCH):
            bodies.extend(self.batch(urls[start : start + MAX_BATCH]))
        return bodies

    def _batch_body(self, url: str, result: Any) -> Any:
        if not isinstance(result, dict) or len(result) != 1:
            raise RetriableAPIError(f"{self.name}: unexpected answer to a batch", tracker=self.name)
        ((status, body),) = result.items()
        code = int(status) if str(status).isdigit() else 0
        if code == 200:
            return body
        if code in (400, 404):
            return None
        # A 429 or 5xx inside the batch: the whole batch is retried (every part is a read).
        raise error_for_status(code, f"{str(body)[:200]} (GET {url})", tracker=self.name)

    def forget_connections(self) -> None:
        # closing the pools closes this process's copy of each socket, not the connection: no shutdown
        self.http.close()

    def close(self) -> None:
        self.http.close()


class _VerifyingSession(requests.Session):
    """A session whose own `verify` is what every request uses.

    py-trello passes no `verify`, and for such a request `requests` prefers `REQUESTS_CA_BUNDLE` or
    `CURL_CA_BUNDLE` from the environment over the session's setting, which would silently drop a
    tracker's `ca_bundle` (or its `verify_tls = false`). With `verify` given per request, the environment
    is consulted only when the session's setting is plain True.
    """

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)


class _NotRetried(Exception):
    """Carries a retriable error past the retry policy, for a write that must not be sent twice."""

    def __init__(self, error: RetriableAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _describe(method: str | None, url: str | None) -> str:
    """`GET /1/boards/x` without the query string, which holds the key and the token."""
    parts = urlsplit(url or "")
    return f"{method or 'GET'} {parts.path}"


def batch_url(path: str, params: Mapping[str, str] | None = None) -> str:
    """One GET of a batch: `/path?query` (no commas in it: the batch splits its list on them)."""
    query = urlencode(dict(params or {}))
    return f"/{path.lstrip('/')}" + (f"?{query}" if query else "")
