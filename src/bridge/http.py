"""One retry policy, client-side rate limiting, HTTP status mapping and secret redaction.

Every connector turns SDK failures into `RetriableAPIError` / `FatalAPIError` / `AuthError` through
`error_for_status`, and every call that may be retried goes through `RetryPolicy.call`: tenacity waits
the server's `Retry-After` (seconds or an HTTP date) when it gives one, else backs off exponentially with
jitter, and gives up with a clear error. The SDKs' own retries are switched off so nothing retries twice.
Waits are interruptible (`stop_event`), so a daemon shutting down is not held by a long Retry-After.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from queue import Full, Queue
from typing import Any, Generic, TypeVar

import orjson
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from bridge.errors import APIError, AuthError, FatalAPIError, RetriableAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|token|access_token|api_key|apikey)=)[^&#\s'\"]+")
_AUTH_HEADER = re.compile(r"(?i)('?authorization'?\s*[:=]\s*'?)(basic|bearer)\s+[A-Za-z0-9+/=._-]+")
REDACTED = "***"


class ShutdownRequested(Exception):
    """A wait was cut short because the process is stopping."""


E = TypeVar("E")


class Listeners(Generic[E]):
    """Listeners told of events deep inside connectors: every retriable failure any `RetryPolicy` sees
    (`RETRY_EVENTS`), every request any session makes (`REQUEST_EVENTS`).

    Policies and sessions are made inside connectors; this is how the daemon counts requests and 429s
    per tracker, as they happen, without reaching into them. A listener that raises is logged and never
    disturbs the request or the call being retried.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[E], None]] = []
        self._lock = threading.Lock()

    def add(self, listener: Callable[[E], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove(self, listener: Callable[[E], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def after_fork(self) -> None:
        """In a forked child: forget the parent's listeners (they count for the parent) and make the lock
        anew (another thread of the parent may have held it at the fork)."""
        self._listeners = []
        self._lock = threading.Lock()

    def notify(self, event: E) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a listener to connector events failed")


RETRY_EVENTS: Listeners[RetriableAPIError] = Listeners()
"""Every retriable failure, last attempt included."""
REQUEST_EVENTS: Listeners[str] = Listeners()
"""Every request a tracker session makes (setup reads included), as the tracker's name."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    status: int,
    message: str,
    *,
    tracker: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> APIError:
    """The error to raise for an HTTP status: retriable, authentication, or fatal."""
    where = f"{tracker}: " if tracker else ""
    text = redact(f"{where}HTTP {status}: {message}".strip())
    if status in RETRIABLE_STATUSES:
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        wait = parse_retry_after(lowered.get("retry-after"))
        return RetriableAPIError(text, status=status, tracker=tracker, retry_after=wait)
    if status in (401, 403):
        hint = "the credentials were refused" if status == 401 else "the credentials lack a permission"
        return AuthError(f"{where}{hint} (HTTP {status}): {redact(message)}", status=status, tracker=tracker)
    return FatalAPIError(text, status=status, tracker=tracker)


@dataclass
class RetryPolicy:
    """How often and how long to retry a call that failed in a retriable way."""

    attempts: int = 6
    max_delay: float = 300.0
    """Give up once this many seconds have passed since the first try."""
    base_wait: float = 1.0
    max_wait: float = 60.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    sleep: Callable[[float], None] | None = None
    rng: random.Random = field(default_factory=random.Random)

    def wait_for(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RetriableAPIError) and error.retry_after is not None:
            return min(error.retry_after, self.max_delay)
        backoff = min(self.max_wait, self.base_wait * 2.0 ** (state.attempt_number - 1))
        return float(backoff / 2 + self.rng.uniform(0, backoff / 2))  # "equal jitter"

    def _sleep(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
            return
        if self.stop_event.wait(seconds):
            raise ShutdownRequested()

    def _log(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("retrying in %.1fs after attempt %d: %s", wait, state.attempt_number, redact(str(error)))

    def _retriable(self, error: BaseException) -> bool:
        if not isinstance(error, RetriableAPIError):
            return False
        RETRY_EVENTS.notify(error)
        return True

    def call(self, function: Callable[[], T]) -> T:
        """Run `function`, retrying `RetriableAPIError` by this policy; the last error is re-raised.

        Each retriable failure, the last included, is reported to `RETRY_EVENTS`.
        """
        retrying = Retrying(
            retry=retry_if_exception(self._retriable),
            wait=self.wait_for,
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_delay),
            sleep=self._sleep,
            before_sleep=self._log,
            reraise=True,
        )
        return retrying(function)


class RateLimiter:
    """A token bucket: at most `rate` requests a second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: int | None = None, stop_event: threading.Event | None = None
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = float(burst if burst is not None else max(1, int(rate)))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self._stop = stop_event or threading.Event()
        self.waited = 0.0

    def spend(self) -> None:
        """Start from an empty bucket, as if a burst had just been made: after another process made this
        tracker's requests (a pull's worker), whose spending this bucket did not see."""
        with self._lock:
            self._tokens = 0.0
            self._stamp = time.monotonic()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self.waited += wait
            if self._stop.wait(wait):
                raise ShutdownRequested()


def tracker_limiter(
    configured: float | None, vendor_rate: float, *, vendor_burst: int, stop_event: threading.Event
) -> RateLimiter:
    """The client-side limiter of one tracker: the configured rate (bursts up to one second of it), or
    the vendor's published rate with the burst that keeps every window of the vendor's within its quota."""
    if configured:
        return RateLimiter(configured, burst=max(1, int(configured)), stop_event=stop_event)
    return RateLimiter(vendor_rate, burst=vendor_burst, stop_event=stop_event)


def tls_verify(tracker: str, verify_tls: bool, ca_bundle: str | None) -> bool | str:
    """`verify` for an HTTP client of `tracker`: a CA bundle's path, True, or False with a loud warning."""
    if not verify_tls:
        log.warning(
            "%s: TLS certificate verification is OFF (verify_tls = false); the connection can be read "
            "and altered by anyone on the network path",
            tracker,
        )
        return False
    return ca_bundle or True


_CERT_FAILURE = re.compile(
    r"(?i)(certificate verify failed|hostname mismatch|ip address mismatch|doesn't match|"
    r"self[- ]signed certificate|unable to get local issuer|certificate has expired)"
)
_SSL_REASON = re.compile(r"(?i)\[SSL[^\]]*\]\s*([^(\n'\"]+)")


def tls_failure(tracker: str, url: str, detail: str, ca_bundle: str | None) -> APIError:
    """The error for a failed TLS handshake with `url`, naming the tracker and what to do.

    A certificate that does not verify is fatal (trying again will not help); any other TLS failure
    (a connection cut during the handshake) may pass and is retriable.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    site = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
    found = _SSL_REASON.search(detail)
    reason = redact((found.group(1) if found else detail).strip())[:300]
    if _CERT_FAILURE.search(detail):
        if ca_bundle:
            hint = f"the certificate is not signed by an authority in ca_bundle {ca_bundle}"
        else:
            hint = (
                f"if {parts.hostname or site} uses a private certificate authority, set "
                f"trackers.{tracker}.ca_bundle to its PEM file"
            )
        return FatalAPIError(
            f"{tracker}: TLS certificate verification failed for {site}: {reason}; {hint}",
            tracker=tracker,
        )
    return RetriableAPIError(f"{tracker}: TLS handshake with {site} failed: {reason}", tracker=tracker)


class Secrets:
    """Secret values seen by this process, so every log line and error can be scrubbed of them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._values.update(v for v in values if v and len(v) >= 4)

    def values(self) -> list[str]:
        with self._lock:
            return sorted(self._values, key=len, reverse=True)

    def after_fork(self) -> None:
        """In a forked child: the lock made anew (another thread of the parent may have held it)."""
        self._lock = threading.Lock()


SECRETS = Secrets()


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with known secrets, tokens in query strings and Authorization headers replaced by ***."""
    for secret in [*SECRETS.values(), *extra]:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _SECRET_QUERY.sub(rf"\1{REDACTED}", text)
    return _AUTH_HEADER.sub(rf"\1\2 {REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Scrub secrets from every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def response_json(response: requests.Response) -> Any:
    """The body as JSON, decoded by orjson straight from the response bytes (several times faster than
    the standard library on a large search page); a body that is not UTF-8 JSON falls back to
    `requests`, which detects other encodings and raises its own `JSONDecodeError`."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


_DONE = object()


class Prefetched(Iterator[T]):
    """What `prefetched` returns: an iterator that can also tell whether its next item is already there."""

    def __init__(self, items: Iterator[T], queue: Queue[Any]) -> None:
        self._items = items
        self._queue = queue

    def __next__(self) -> T:
        return next(self._items)

    def ready(self) -> bool:
        """Whether the next item (or the end, or an error) is fetched: taking it will not wait."""
        return not self._queue.empty()

    def close(self) -> None:
        """Stop the fetching thread (an iterator not read to its end should be closed)."""
        close = getattr(self._items, "close", None)
        if callable(close):
            close()


def prefetched(
    items: Iterable[T], depth: int = 1, stop_event: threading.Event | None = None
) -> Prefetched[T]:
    """Iterate `items` while a thread already fetches the next `depth` of them.

    A pull then stores page k while page k+1 is on the wire. Errors raised while fetching surface at
    the consumer, in order; closing the iterator early stops the fetching thread.
    """
    queue: Queue[Any] = Queue(maxsize=max(1, depth))
    closing = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not closing.is_set():
                    try:
                        queue.put(("item", item), timeout=0.2)
                        break
                    except Full:
                        continue
                if closing.is_set() or (stop_event is not None and stop_event.is_set()):
                    break
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put_final(queue, closing, ("error", exc))
            return
        finally:  # a stage that itself reads a prefetching iterator stops that one's thread too
            close = getattr(items, "close", None)
            if callable(close):
                close()
        _put_final(queue, closing, ("done", _DONE))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    return Prefetched(_consume(queue, closing, worker), queue)


def _consume(queue: Queue[Any], closing: threading.Event, worker: threading.Thread) -> Iterator[Any]:
    try:
        while True:
            kind, value = queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        closing.set()
        worker.join(timeout=30)


def _put_final(queue: Queue[Any], closing: threading.Event, message: tuple[str, Any]) -> None:
    while not closing.is_set():
        try:
            queue.put(message, timeout=0.2)
            return
        except Full:
            continue


class RequestCounter:
    """Requests a session made, with setup reads (server info, fields, lists) counted apart; each one is
    also told to `REQUEST_EVENTS` under the session's `name` (the tracker's).

    Thread-safe: pages are prefetched on another thread while the current one is stored.
    """

    name: str = "unknown"

    def __init__(self, *, in_setup: bool = False) -> None:
        self.requests = 0
        self.setup_requests = 0
        self._in_setup = in_setup
        self._count_lock = threading.Lock()

    @contextlib.contextmanager
    def setup(self) -> Iterator[None]:
        """Requests made inside are counted as setup."""
        previous, self._in_setup = self._in_setup, True
        try:
            yield
        finally:
            self._in_setup = previous

    def count(self) -> None:
        with self._count_lock:
            if self._in_setup:
                self.setup_requests += 1
            else:
                self.requests += 1
        REQUEST_EVENTS.notify(self.name)
