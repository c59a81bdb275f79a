"""Sending announcements to the `[announce]` chat channels by incoming webhook, at most once.

A webhook cannot be asked what it received, so each (announcement, channel) is recorded and committed
in the store BEFORE its POST is sent, and a key already recorded for a channel is never sent to it
again: a crash, a retry or a second replica never posts a message twice. The trade-off, documented: a
crash after recording and before sending loses that one message. A POST that may have reached the
server (a timeout, a connection cut after sending) is never repeated; only a connection refused before
anything was sent is tried again. One channel that is down does not stop the others, nor the cycle.

The webhook URL is a secret (whoever holds it can post): it is read from the environment variable the
channel names, and never appears in a log line, an error, a report or `--json`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from bridge.announce.render import preview, render
from bridge.announcement import Announcement
from bridge.config import AnnounceChannelConfig, BridgeConfig
from bridge.http import SECRETS, Listeners, redact
from bridge.store import Store
from bridge.store.announced import claim, finish
from bridge.text import plural, terminal_safe

log = logging.getLogger(__name__)

REFUSED_ATTEMPTS = 3
"""How often a POST whose connection was refused (so nothing was sent) is tried in all."""
REFUSED_PAUSE = 0.5
"""Seconds before the second attempt, doubled before each later one."""
_DETAIL_LIMIT = 200
ANNOUNCE_EVENTS: Listeners[tuple[str, str]] = Listeners()
"""Every message a channel was sent or failed to get, as (channel, `sent` | `failed`): the daemon
counts them on /metrics."""
_SECRET_PATH_MIN = 8
"""A path this long or longer is scrubbed from log lines as a secret; a shorter one (`/`, `/hook`) holds
none and would scrub common words."""


@dataclass(frozen=True, slots=True)
class Preview:
    """What a dry run would send to one channel."""

    channel: str
    kind: str
    announcement: Announcement

    def text(self) -> str:
        return preview(self.announcement)


@dataclass
class AnnounceResult:
    """What one round of sending did: messages sent, failed, already sent before (skipped), and with
    `dry_run` the messages it would send."""

    sent: int = 0
    failed: int = 0
    already: int = 0
    failures: list[str] = field(default_factory=list)
    """One readable line per message not sent: channel, headline, why (never the URL)."""
    previews: list[Preview] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "already_sent": self.already,
            "failures": list(self.failures),
            "would_send": [
                {"channel": p.channel, "kind": p.kind, "key": p.announcement.key, "text": p.text()}
                for p in self.previews
            ],
        }

    def line(self) -> str | None:
        """The summary line `bridge sync` prints, or None when there was nothing to announce."""
        if not (self.sent or self.failed or self.already):
            return None
        line = f"announcements: {self.sent} sent, {self.failed} failed"
        if self.already:
            line += f", {self.already} already sent before"
        return line


Post = Callable[[str, dict[str, Any], float], requests.Response]


def _post(url: str, body: dict[str, Any], timeout: float) -> requests.Response:
    # No redirects: a webhook answers where it is; following one would send the message elsewhere.
    return requests.post(url, json=body, timeout=timeout, allow_redirects=False)


def send(
    store: Store,
    config: BridgeConfig,
    announcements: Sequence[Announcement],
    *,
    now: datetime,
    dry_run: bool,
    environ: Mapping[str, str] | None = None,
    post: Post | None = None,
) -> AnnounceResult:
    """Send each announcement to every `[announce]` channel that takes its kind, at most once each.

    With `dry_run`, nothing is recorded or sent: the result's `previews` hold what would be. `environ`
    (default: the process's) holds the channels' URL variables; `post` replaces the HTTP POST in tests.
    """
    result = AnnounceResult()
    env = os.environ if environ is None else environ
    for channel in config.announce.channels:
        wanted = [a for a in announcements if a.kind.value in channel.events]
        if not wanted:
            continue
        if dry_run:
            result.previews.extend(Preview(channel.name, channel.kind, a) for a in wanted)
            continue
        problem = config.announce.url_problem(channel, env)
        if problem is not None:
            result.failed += len(wanted)
            result.failures.append(f"{channel.name}: {problem}; {plural(len(wanted), 'message')} not sent")
            for _ in wanted:
                ANNOUNCE_EVENTS.notify((channel.name, "failed"))
            log.warning("announce channel %s: %s; %d messages not sent", channel.name, problem, len(wanted))
            continue
        url = env[channel.url_env].strip()
        _keep_secret(url)
        for announcement in wanted:
            _send_one(store, channel, url, announcement, result, now=now, post=post or _post)
    return result


def _keep_secret(url: str) -> None:
    """Scrub the URL from every log line and error of this process; its path and query too, since the
    HTTP library's debug lines show those apart from the host (a Slack URL's path is its secret)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    SECRETS.add(url, *((target, parts.path) if len(parts.path) >= _SECRET_PATH_MIN else ()))


def _send_one(
    store: Store,
    channel: AnnounceChannelConfig,
    url: str,
    announcement: Announcement,
    result: AnnounceResult,
    *,
    now: datetime,
    post: Post,
) -> None:
    headline = terminal_safe(announcement.headline)
    try:
        body = render(channel.kind, announcement)
    except Exception:  # a renderer's bug must not stop the other messages
        log.exception("announce channel %s: cannot render %s", channel.name, announcement.key)
        result.failed += 1
        result.failures.append(f"{channel.name}: {headline}: could not be rendered (see the log)")
        ANNOUNCE_EVENTS.notify((channel.name, "failed"))
        return
    with store.write() as conn:
        claimed = claim(
            conn,
            announcement.key,
            channel.name,
            kind=announcement.kind.value,
            headline=announcement.headline,
            now=now,
        )
    if not claimed:
        result.already += 1
        log.debug("announce channel %s: %s was sent before", channel.name, announcement.key)
        return
    status, detail = _deliver(post, url, body, channel.timeout.total_seconds())
    sent = status is not None and 200 <= status < 300
    with store.write() as conn:
        finish(conn, announcement.key, channel.name, sent=sent, status=status, detail=detail, now=now)
    ANNOUNCE_EVENTS.notify((channel.name, "sent" if sent else "failed"))
    if sent:
        result.sent += 1
        log.info("announced %s to chat channel %s", headline, channel.name)
        return
    result.failed += 1
    result.failures.append(f"{channel.name}: {headline}: {detail}")
    log.warning("announce channel %s: %s not sent: %s", channel.name, headline, detail)


def _deliver(post: Post, url: str, body: dict[str, Any], timeout: float) -> tuple[int | None, str]:
    """POST `body`; returns the HTTP status (None when no answer came) and what happened, in words that
    never hold the URL. Only a refused connection (nothing sent) is tried again."""
    pause = REFUSED_PAUSE
    for attempt in range(1, REFUSED_ATTEMPTS + 1):
        try:
            response = post(url, body, timeout)
        except requests.ConnectionError as exc:
            if _refused(exc) and attempt < REFUSED_ATTEMPTS:
                time.sleep(pause)
                pause *= 2
                continue
            if _refused(exc):
                return None, f"connection refused ({plural(attempt, 'attempt')}); not sent"
            if isinstance(exc, requests.ConnectTimeout):
                return None, f"no connection within {timeout:g} s; not sent"
            return None, "the connection failed while sending; it may have arrived, not sent again"
        except requests.Timeout:
            return None, f"no answer within {timeout:g} s; it may have arrived, not sent again"
        except requests.RequestException as exc:
            return None, f"not sent: {type(exc).__name__}"
        status = response.status_code
        if 200 <= status < 300:
            return status, f"HTTP {status}"
        return status, f"HTTP {status}{_answer(response, url)}"
    raise AssertionError("unreachable")  # pragma: no cover


def _refused(exc: requests.ConnectionError) -> bool:
    """Whether the connection was refused, so nothing of the request left (urllib3 wraps the socket's
    error in a NewConnectionError, inside a MaxRetryError)."""
    from urllib3.exceptions import NewConnectionError

    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError):
            return True
        if isinstance(error, NewConnectionError) and "refused" in str(error).lower():
            return True
        reason = getattr(error, "reason", None)
        nested = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = (
            reason if isinstance(reason, BaseException) else nested or error.__cause__ or error.__context__
        )
    return False


def _answer(response: requests.Response, url: str) -> str:
    """The start of a refusal's body (Slack says why: `invalid_payload`), cleaned of the URL."""
    text = " ".join(terminal_safe(response.text or "").split())[:_DETAIL_LIMIT]
    return f": {redact(text, [url])}" if text else ""
