"""The pull step: each tracker's streams into the store, page by page, cursor with its page.

A tracker that fails is recorded (its `run` row carries the error) and the others go on. Each page is
stored in its own transaction together with the cursor that covers it, so a process killed between pages
resumes from the last page that landed and loses nothing. A stream read from its start (a first pull,
`--full`) is fetched and mapped in a worker process while this one stores its pages
(`bridge.sync.pull_worker`); what lands is the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from bridge.config import BridgeConfig
from bridge.connector import Connector, ConnectorRegistry
from bridge.domain import RemotePage, require_utc
from bridge.errors import BridgeError, ConfigError, StoreLost
from bridge.gc_pacing import fewer_collections
from bridge.http import Prefetched, redact
from bridge.store import Store
from bridge.store.pages import (
    PageCounts,
    get_cursor,
    holds_items,
    live_items,
    mark_deleted,
    save_page,
    set_cursor,
)
from bridge.store.runs import finish_pull, start_pull
from bridge.sync.connection import TrackerConnection
from bridge.sync.pull_worker import RequestsHeard, WorkerPages, worker_pages, worker_wanted
from bridge.text import plural

if TYPE_CHECKING:
    from bridge.progress import Progress

log = logging.getLogger(__name__)

CENSUS_STREAM = "census"
PAGES_PER_COMMIT = 10
"""On SQLite, at most this many pages are stored in one transaction, when they are waiting to be stored.
Each commit writes the database pages it touched to the write-ahead log again, and a first pull touches
the same index pages page after page: measured with `bench/pull.py`'s data at 10,000 issues, ten pages
a commit cut the store's CPU time by a tenth. Other writers wait for the lock meanwhile, hence the bound.
PostgreSQL commits every page (its writers do not wait for one another)."""

Guard = Callable[[Connection], None]
"""Run inside a transaction that stores results, before it commits; raises to abort it."""


@dataclass
class PullResult:
    tracker: str
    pages: int = 0
    items: int = 0
    changed: int = 0
    skipped: int = 0
    cleaned: int = 0
    """Items stored with characters no store can hold (NUL) replaced; each is logged by its key."""
    deleted: int = 0
    requests: int = 0
    setup_requests: int = 0
    census: bool = False
    error: str | None = None
    skipped_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def pull_all(
    store: Store,
    config: BridgeConfig,
    *,
    now: datetime,
    tracker: str | None = None,
    full: bool = False,
    stop: threading.Event | None = None,
    registry: ConnectorRegistry | None = None,
    guard: Guard | None = None,
    progress: Progress | None = None,
    connections: Mapping[str, TrackerConnection] | None = None,
) -> list[PullResult]:
    """Pull every enabled tracker (or the one named); one failing does not stop the others.

    `progress`, when given, hears of every page stored (see `bridge.progress`). A tracker with a
    connection in `connections` is pulled through it and it is left open (the cycle pushes through it
    next); the others open and close a connector of their own."""
    connections = connections or {}
    return [
        pull_tracker(
            store,
            config,
            name,
            now=now,
            full=full,
            stop=stop,
            registry=registry,
            guard=guard,
            progress=progress,
            connection=connections.get(name),
        )
        for name in pull_targets(config, tracker)
    ]


def pull_targets(config: BridgeConfig, tracker: str | None = None) -> list[str]:
    """The trackers a pull reads: the one named (a clear error when it is unknown), else every enabled."""
    if tracker:
        config.tracker(tracker)
        return [tracker]
    return [name for name, settings in config.trackers.items() if settings.enabled]


def pull_tracker(
    store: Store,
    config: BridgeConfig,
    name: str,
    *,
    now: datetime,
    full: bool = False,
    stop: threading.Event | None = None,
    registry: ConnectorRegistry | None = None,
    guard: Guard | None = None,
    progress: Progress | None = None,
    connection: TrackerConnection | None = None,
) -> PullResult:
    """Pull one tracker. `guard(conn)`, when given, runs inside every transaction that stores results
    before it commits (the daemon checks its lease's fencing token there) and raises to abort it.
    `progress`, when given, hears of each stream started and each page stored. Through `connection`
    when given (opened here if it is not yet, and left open), else through a connector opened and
    closed here; the pull's requests are those its connection counts until the pull ends."""
    now = require_utc(now, "now")
    result = PullResult(name)
    run_id = start_pull(store, name, now)
    if progress is not None:
        progress.pull_started(name)
    own = connection is None
    if connection is None:
        connection = TrackerConnection(config, name, registry=registry, stop=stop)
    try:
        tracker = config.tracker(name)
        connector = connection.connector()
        # Asked before the streams: a store that held none of the tracker's items has none to mark.
        census_due, held_items = _census_due(store, name, now, tracker.census_interval)
        census_due = census_due or full
        nothing_to_census = census_due and not full and not held_items
        for stream in connector.streams():
            _pull_stream(
                store, connector, name, stream, now, full, result, stop, guard, progress, connection.heard
            )
        if nothing_to_census:
            _census_needless(store, name, now, guard)
        elif census_due:
            if progress is not None:
                progress.stream_started(name, CENSUS_STREAM)
            _census(store, connector, name, now, result, guard)
    except ConfigError as exc:
        _finish_run(store, run_id, now, result, "config")
        if progress is not None:
            progress.pull_finished(name, result.pages, result.items, str(exc))
        raise
    except StoreLost:
        raise  # nothing can be recorded: the command stops with the one message that names the fix
    except BridgeError as exc:
        result.error = redact(str(exc))
        log.error("%s: pull failed: %s", name, result.error, extra={"tracker": name, "error": result.error})
    finally:
        counts = connection.counts()
        result.requests, result.setup_requests = counts.requests, counts.setup_requests
        if own:
            connection.close()
    _finish_run(store, run_id, now, result, "ok" if result.ok else "failed")
    if progress is not None:
        progress.pull_finished(name, result.pages, result.items, result.error)
    log.info(
        "%s: pulled %s in %s (%d rows changed, %d skipped, %d deleted%s), %d requests + %d setup%s",
        name, plural(result.items, "item"), plural(result.pages, "page"), result.changed, result.skipped,
        result.deleted,
        f", {result.cleaned} with NUL replaced" if result.cleaned else "", result.requests,
        result.setup_requests, f"; error: {result.error}" if result.error else "",
        extra={"tracker": name, "items": result.items, "requests": result.requests + result.setup_requests,
               "error": result.error},
    )  # fmt: skip
    return result


def _pull_stream(
    store: Store,
    connector: Connector,
    name: str,
    stream: str,
    now: datetime,
    full: bool,
    result: PullResult,
    stop: threading.Event | None,
    guard: Guard | None = None,
    progress: Progress | None = None,
    heard: RequestsHeard | None = None,
) -> None:
    if progress is not None:
        progress.stream_started(name, stream)
    cursor = None
    if not full:
        with store.read() as conn:
            stored = get_cursor(conn, name, stream)
        cursor = stored.value if stored is not None else None
    with fewer_collections():  # a page makes hundreds of thousands of short-lived objects
        pages: Iterator[RemotePage]
        # a stream read from its start is read in a worker process (see `bridge.sync.pull_worker`)
        pages = _worker_pages(store, connector, name, stream, cursor, now, heard, stop) or iter(
            connector.pull(stream, cursor, now)
        )
        # Pages are stored several to a transaction only on SQLite, and only when they are fetched ahead
        # (so a page waiting to be stored is seen without waiting on the network with the lock held).
        together = store.dialect == "sqlite" and isinstance(pages, Prefetched | WorkerPages)
        per_commit = PAGES_PER_COMMIT if together else 1
        try:
            while _store_pages(store, pages, per_commit, name, stream, now, result, stop, guard, progress):
                pass
        finally:
            if isinstance(pages, WorkerPages):
                pages.close()
                finished = getattr(connector, "worker_finished", None)
                if callable(finished):
                    finished()


def _worker_pages(
    store: Store,
    connector: Connector,
    name: str,
    stream: str,
    cursor: str | None,
    now: datetime,
    heard: RequestsHeard | None,
    stop: threading.Event | None,
) -> WorkerPages | None:
    """The stream's pages from a worker process when it is read from its start (see
    `bridge.sync.pull_worker`); None to read it here (also when the process cannot be made)."""
    if heard is None or not worker_wanted(connector, cursor):
        return None
    try:
        return worker_pages(
            connector, stream, cursor, now, dialect=store.dialect, tracker=name, heard=heard, stop=stop
        )
    except OSError as exc:  # no process to be had (memory, a process limit): read in this one
        log.warning("%s: %s read in this process: no worker process (%s)", name, stream, exc)
        return None


def _store_pages(
    store: Store,
    pages: Iterator[RemotePage],
    per_commit: int,
    name: str,
    stream: str,
    now: datetime,
    result: PullResult,
    stop: threading.Event | None,
    guard: Guard | None,
    progress: Progress | None,
) -> bool:
    """Store the next pages of `pages` in one transaction, each page's cursor after its rows: up to
    `per_commit` of them, as long as the next one is already fetched (the store is behind the network:
    a first pull). Returns whether the stream has more.

    The transaction starts once a page is in hand and never waits for the network, and every page in
    it lands together with the cursor of the last. A failure reading the next page commits the pages
    already stored before it is raised (their cursor covers exactly them); a failure storing a page
    rolls the transaction back."""
    page = next(pages, None)
    if page is None:
        return False
    stored: list[tuple[RemotePage, PageCounts]] = []
    failure: Exception | None = None
    more = True
    with store.write() as conn:
        while True:
            if guard is not None:
                guard(conn)
            stored.append((page, save_page(conn, page, now=now, signpost=now)))
            if stop is not None and stop.is_set():
                log.info(
                    "%s: stopping after page %d of %s as asked", name, result.pages + len(stored), stream
                )
                more = False
                break
            ahead = isinstance(pages, Prefetched | WorkerPages) and pages.ready()
            if len(stored) >= per_commit or not ahead:
                break
            try:
                page = next(pages)
            except StopIteration:
                more = False
                break
            except Exception as exc:  # raised again once the pages before it are committed
                failure = exc
                break
    for page, counts in stored:
        result.pages += 1
        result.items += counts.items
        result.changed += counts.changed
        result.skipped += counts.skipped
        result.cleaned += counts.cleaned
        result.skipped_keys.extend(item.key for item in page.skipped)
        if progress is not None:
            progress.pulled(name, stream, result.pages, result.items)
    if failure is not None:
        raise failure
    return more


def _census_due(store: Store, name: str, now: datetime, interval: timedelta) -> tuple[bool, bool]:
    """Whether the tracker's census is due, and whether the store holds any of its items."""
    with store.read() as conn:
        last = get_cursor(conn, name, CENSUS_STREAM)
        due = last is None or now - last.updated_at >= interval
        return due, holds_items(conn, name) if due else True


def _census_needless(store: Store, name: str, now: datetime, guard: Guard | None) -> None:
    """Record a census as done without asking the tracker, after a pull into a store that held none of
    its items: every item stored now was read by this pull as present, so a census could mark nothing
    deleted (on a 50,000-issue Jira site it would be 52 more searches of 1,000 ids). An item deleted on
    the tracker meanwhile is found by the next census, as one deleted just after a census would be."""
    with store.write() as conn:
        if guard is not None:
            guard(conn)
        present = live_items(conn, name)
        set_cursor(conn, name, CENSUS_STREAM, str(present), signpost=now, now=now)
    log.info("%s: no census on a first pull: the store held none of its items before it", name)


def _census(
    store: Store,
    connector: Connector,
    name: str,
    now: datetime,
    result: PullResult,
    guard: Guard | None = None,
) -> None:
    present = list(connector.census())
    with store.write() as conn:
        if guard is not None:
            guard(conn)
        result.deleted = mark_deleted(conn, name, present, now=now)
        set_cursor(conn, name, CENSUS_STREAM, str(len(present)), signpost=now, now=now)
    result.census = True


def _finish_run(store: Store, run_id: int, now: datetime, result: PullResult, status: str) -> None:
    finish_pull(
        store,
        run_id,
        now,
        status=status,
        items_pulled=result.items,
        items_skipped=result.skipped,
        requests=result.requests + result.setup_requests,
        error=result.error,
    )
