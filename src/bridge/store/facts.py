"""Flow facts in the store: written with a pulled page's history, read by the analysis, backfilled in
chunks for stores that hold history without them; and the store's data version.

A page carries each of its items' whole history (every connector reads an item's history whole), so the
facts of a task the page carries with history are computed from the page alone, in the page's
transaction. A task the page carries without history keeps the facts it has: its history did not change.

The backfill reads the history in chunks of tasks, each chunk in a short read transaction and its facts
in a short write transaction that only adds rows missing (a pull that wrote newer facts meanwhile
wins), so it never holds the store for long, can stop at any point and resumes where it stopped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, func, select, tuple_, update

from bridge.domain import RemotePage, StatusCategory, StatusChange
from bridge.flow_facts import FACTS_VERSION, FlowFacts, Step, facts_from_json, facts_of
from bridge.store.engine import Store, driver_batches, insert_new, upsert
from bridge.store.models import DataVersionRow, FlowFactRow, StatusChangeRow, TaskRow

Key = tuple[str, str]
BACKFILL_CHUNK = 10_000
"""Tasks a backfill chunk reads the history of: one scan of the history table each (it has no index
by item), with about ten changes a task in memory."""

_FETCH = 20_000
"""Rows fetched from the driver at a time when reading facts."""

FACT_COLUMNS = ("source", "item_id", "version", "facts", "computed_at")


def _table(model: Any) -> Any:
    return model.__table__


# --- data version ------------------------------------------------------------------------------------


def bump_data_version(conn: Connection, now: datetime) -> None:
    """Count one more change of what the analysis reads, in the caller's transaction."""
    t = _table(DataVersionRow)
    bump = update(t).where(t.c.id == 1).values(version=t.c.version + 1, changed_at=now)
    if conn.execute(bump).rowcount:
        return
    # the store's first change (the row is not made by the migration: a new store stays empty); a
    # writer that raced this one to it made it first, and the update then counts this change
    if not insert_new(conn, t, [(1, 1, now)], ("id", "version", "changed_at")):
        conn.execute(bump)


def data_version(conn: Connection) -> int:
    """The store's data version (0 before anything was counted)."""
    t = _table(DataVersionRow)
    found = conn.execute(select(t.c.version).where(t.c.id == 1)).scalar()
    return int(found or 0)


# --- at pull time ------------------------------------------------------------------------------------


def steps_by_item(changes: Iterable[StatusChange]) -> dict[str, list[Step]]:
    """Each item's history in a page, as steps in time order."""
    grouped: defaultdict[str, list[Step]] = defaultdict(list)
    for change in changes:
        grouped[change.item_id].append((change.at, change.to_status, change.to_category))
    for steps in grouped.values():
        steps.sort()
    return dict(grouped)


def page_flow_facts(page: RemotePage) -> Mapping[str, FlowFacts | str] | None:
    """The flow facts of the page's tasks that came with history, by task id: the connector's, or computed
    from the page's history (None when the page carries no task or no history)."""
    if not page.tasks or not page.status_changes:
        return None
    if page.flow_facts is not None:
        return page.flow_facts
    histories = steps_by_item(c for c in page.status_changes if c.source == page.source)
    return {
        task.remote_id: found for task in page.tasks if (found := facts_of(histories.get(task.remote_id, ())))
    }


def save_page_facts(conn: Connection, page: RemotePage, now: datetime) -> int:
    """Write the facts of the page's tasks that came with history; returns how many rows changed."""
    known = page_flow_facts(page)
    if known is None:
        return 0
    rows = []
    for task in page.tasks:
        facts = known.get(task.remote_id)
        if facts is not None:
            rows.append(_row(task.source, task.remote_id, facts, now))
    return upsert(conn, _table(FlowFactRow), rows, stamp="computed_at")


def _row(source: str, item_id: str, facts: FlowFacts | str, now: datetime) -> dict[str, Any]:
    return {
        "source": source,
        "item_id": item_id,
        "version": FACTS_VERSION,
        "facts": facts if isinstance(facts, str) else facts.to_json(),
        "computed_at": now,
    }


# --- reading -----------------------------------------------------------------------------------------


def has_current_facts(task: Any) -> ColumnElement[bool]:
    """SQL: the task (a `task` table) has facts of the current version."""
    f = _table(FlowFactRow)
    return exists().where(
        and_(f.c.source == task.c.source, f.c.item_id == task.c.remote_id, f.c.version == FACTS_VERSION)
    )


def read_flow_facts(conn: Connection, kept: ColumnElement[bool]) -> dict[Key, FlowFacts]:
    """The current facts of the tasks `kept` selects."""
    f = _table(FlowFactRow)
    task = _table(TaskRow)
    query = (
        select(f.c.source, f.c.item_id, f.c.facts)
        .join(task, and_(task.c.source == f.c.source, task.c.remote_id == f.c.item_id))
        .where(and_(kept, f.c.version == FACTS_VERSION))
    )
    found: dict[Key, FlowFacts] = {}
    decode = facts_from_json
    # fetched in large batches as the driver's tuples: row by row, the driver's per-row call was a third
    # of the read, and SQLAlchemy's rows much of the rest
    for rows in driver_batches(conn, query, _FETCH):
        for source, item_id, text in rows:
            facts = decode(text)
            if facts is not None:
                found[(source, item_id)] = facts
    return found


# --- backfill ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backfilled:
    tasks: int
    """Tasks that got facts in this run."""
    remaining: int
    """Tasks still without facts when it stopped (those without any history never get any)."""
    seconds: float


def missing_facts(conn: Connection, after: Key | None, limit: int) -> list[Key]:
    """Up to `limit` tasks without current facts, in key order, after `after`."""
    task = _table(TaskRow)
    query = select(task.c.source, task.c.remote_id).where(~has_current_facts(task))
    if after is not None:
        query = query.where(tuple_(task.c.source, task.c.remote_id) > tuple_(*after))
    query = query.order_by(task.c.source, task.c.remote_id).limit(limit)
    return [(source, remote_id) for source, remote_id in conn.execute(query)]


def count_missing(conn: Connection) -> int:
    task = _table(TaskRow)
    query = select(func.count()).select_from(task).where(~has_current_facts(task))
    return int(conn.execute(query).scalar() or 0)


def _histories(conn: Connection, keys: Sequence[Key]) -> dict[Key, list[Step]]:
    """The histories of these tasks, in one scan of the history table."""
    wanted = set(keys)
    t = _table(StatusChangeRow)
    ids = sorted({item_id for _, item_id in keys})
    grouped: defaultdict[Key, list[Step]] = defaultdict(list)
    query = select(t.c.source, t.c.item_id, t.c.at, t.c.to_status, t.c.to_category).where(
        t.c.item_id.in_(ids)
    )
    for source, item_id, at, status, category in conn.execute(query):
        key = (source, item_id)
        if key in wanted:
            grouped[key].append((at, status, StatusCategory(category)))
    for steps in grouped.values():
        steps.sort()
    return dict(grouped)


def backfill_chunk(store: Store, now: datetime, after: Key | None, chunk: int) -> tuple[list[Key], int]:
    """Compute and write the facts of one chunk of tasks without them, after `after`; returns the tasks
    looked at and how many got facts."""
    with store.read() as conn:
        keys = missing_facts(conn, after, chunk)
        histories = _histories(conn, keys) if keys else {}
    rows = [
        tuple(_row(key[0], key[1], facts, now).values())
        for key, facts in ((key, facts_of(steps)) for key, steps in histories.items())
        if facts is not None
    ]
    if rows:
        f = _table(FlowFactRow)
        with store.write() as conn:
            # facts of an older version give way; facts a pull wrote meanwhile stay
            stale = tuple_(f.c.source, f.c.item_id).in_([row[:2] for row in rows])
            conn.execute(delete(f).where(and_(f.c.version != FACTS_VERSION, stale)))
            insert_new(conn, f, rows, FACT_COLUMNS)
    return keys, len(rows)


def backfill(
    store: Store,
    now: datetime,
    *,
    chunk: int = BACKFILL_CHUNK,
    budget_seconds: float | None = None,
    report: Callable[[int], None] | None = None,
) -> Backfilled:
    """Give facts to the tasks whose history has none, chunk by chunk, until none is left or the time
    budget is spent (what is done stays done: a later run resumes)."""
    started = time.monotonic()
    written = 0
    after: Key | None = None
    while True:
        keys, wrote = backfill_chunk(store, now, after, chunk)
        written += wrote
        if report is not None and wrote:
            report(written)
        if len(keys) < chunk:
            break
        after = keys[-1]
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            break
    with store.read() as conn:
        remaining = count_missing(conn)
    return Backfilled(written, remaining, time.monotonic() - started)
