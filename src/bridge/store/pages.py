"""Storing a pulled page and advancing its cursor in one transaction.

A page's rows and the cursor that covers them land together or not at all: `save_page` runs inside the
caller's `Store.write()` transaction. A page is complete for the items it carries: their dependencies and
tracker-held OKR links are replaced by the page's (links from rules or confirmed by an admin stay).

Text a store cannot hold (NUL: PostgreSQL refuses it in any text column) is replaced by U+FFFD on the
way in, on every store alike, and each item it touched is logged by its key and counted: one item's
title must not fail its whole tracker's pull.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from sqlalchemy import BindParameter, Connection, and_, bindparam, delete, func, select, update

from bridge.domain import (
    KeyResult,
    LinkOrigin,
    Milestone,
    Objective,
    RemotePage,
    StatusChange,
    StatusName,
    Task,
    Team,
    require_utc,
)
from bridge.store.chunks import chunked
from bridge.store.engine import insert_new, sqlite_time, upsert
from bridge.store.facts import bump_data_version, save_page_facts
from bridge.store.held import save_held
from bridge.store.models import (
    CursorRow,
    DependencyRow,
    KeyResultRow,
    MilestoneKeyResultRow,
    MilestoneRow,
    ObjectiveRow,
    StatusChangeRow,
    StatusNameRow,
    TaskRow,
    TeamRow,
)
from bridge.store.packed import PackedChanges

log = logging.getLogger(__name__)

UNSTORABLE = "\x00"
"""The character no store keeps in text (PostgreSQL refuses it; SQLite would hold what PostgreSQL cannot,
so both replace it and hold the same)."""
REPLACEMENT = "\ufffd"


@dataclass(frozen=True, slots=True)
class Cursor:
    value: str | None
    signpost: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PageCounts:
    """Rows a page carried, and how many of them were new or changed."""

    items: int
    changed: int
    skipped: int
    cleaned: int = 0
    """Items stored with characters replaced (see `UNSTORABLE`)."""


def _table(model: Any) -> Any:
    return model.__table__


class _ItemRows:
    """Builds a table's rows from domain values: one column per dataclass field, named alike, then
    `synced_at`. That the fields and the columns match is a test of the store, so none is dropped."""

    def __init__(self, kind: type, converters: Mapping[str, Callable[[Any], Any]] | None = None) -> None:
        self.names = tuple(f.name for f in fields(kind))
        self._values = attrgetter(*self.names)
        self._converted = [(self.names.index(name), convert) for name, convert in (converters or {}).items()]

    def __call__(self, items: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
        rows = []
        for item in items:
            values: Sequence[Any] = self._values(item)
            if self._converted:
                converted = list(values)
                for index, convert in self._converted:
                    converted[index] = convert(converted[index])
                values = converted
            row = dict(zip(self.names, values, strict=True))
            row["synced_at"] = now
            rows.append(row)
        return rows


ITEM_TABLES: dict[type, type[Any]] = {
    Team: TeamRow,
    StatusName: StatusNameRow,
    Objective: ObjectiveRow,
    KeyResult: KeyResultRow,
    Milestone: MilestoneRow,
    Task: TaskRow,
    StatusChange: StatusChangeRow,
}
"""Each domain value a page carries, and the table holding it: the value's fields are the table's
columns (besides `synced_at`)."""
ITEM_ROWS: dict[type, _ItemRows] = {
    Team: _ItemRows(Team),
    StatusName: _ItemRows(StatusName),
    Objective: _ItemRows(Objective),
    KeyResult: _ItemRows(KeyResult),
    Milestone: _ItemRows(Milestone, {"labels": list}),
    Task: _ItemRows(Task, {"labels": list}),
}


def save_page(
    conn: Connection, page: RemotePage, *, now: datetime, signpost: datetime | None = None
) -> PageCounts:
    """Upsert everything in `page`, then move its stream's cursor to `page.cursor` (when it has one)."""
    now = require_utc(now, "now")
    page, cleaned = clean_page(page)
    source = page.source
    changed = 0
    carried: tuple[tuple[type, Sequence[Any]], ...] = (
        (Team, page.teams),
        (StatusName, page.statuses),
        (Objective, page.objectives),
        (KeyResult, page.key_results),
        (Milestone, page.milestones),
        (Task, page.tasks),
    )
    for kind, values in carried:
        changed += upsert(conn, _table(ITEM_TABLES[kind]), ITEM_ROWS[kind](values, now))
    changed += _one_role(conn, page, now)
    history, table = page.status_changes, _table(StatusChangeRow)
    if isinstance(history, PackedChanges) and history.dialect == conn.dialect.name:
        # packed by the pull's worker process as this store's rows, times already its text
        changed += insert_new(conn, table, history.rows, CHANGE_COLUMNS, times_as_text=True)
    else:
        changed += insert_new(conn, table, [_status_change(c) for c in history], CHANGE_COLUMNS)
    save_page_facts(conn, page, now)
    changed += _replace_dependencies(conn, page, now)
    changed += _replace_tracker_links(conn, page, now)
    if changed:
        bump_data_version(conn, now)
    if page.held:
        save_held(conn, source, page.held, at=now, links_known=page.held_links)
    if page.cursor is not None:
        set_cursor(conn, source, page.stream, page.cursor, signpost=signpost, now=now)
    items = len(page.milestones) + len(page.tasks) + len(page.key_results) + len(page.objectives)
    return PageCounts(items=items, changed=changed, skipped=len(page.skipped), cleaned=cleaned)


def clean_page(page: RemotePage) -> tuple[RemotePage, int]:
    """`page` with `UNSTORABLE` replaced in every text it carries, and how many items that touched.

    Each touched item is logged once by its key (a status change, dependency or link counts for the item
    it belongs to). A page without the character is returned as it is, after one pass over its text."""
    touched: dict[str, None] = {}
    keys = {m.remote_id: m.key for m in page.milestones} | {t.remote_id: t.key for t in page.tasks}

    def clean(values: Sequence[ItemT], owner: Callable[[ItemT], str]) -> Sequence[ItemT]:
        if not values or _packed_clean(values) or not _holds_unstorable(values):
            return values
        cleaned: list[ItemT] | None = None
        for index, value in enumerate(values):
            scrubbed = _scrubbed(value)
            if scrubbed is None:
                continue
            if cleaned is None:
                cleaned = list(values)
            cleaned[index] = scrubbed
            touched.setdefault(owner(scrubbed), None)
        return values if cleaned is None else cleaned

    def key_of(remote_id: str) -> str:
        return keys.get(remote_id, f"{page.source}:{remote_id}")

    history = _unpacked_if_unclean(page.status_changes)
    changes: dict[str, Any] = {
        "milestones": clean(page.milestones, lambda milestone: milestone.key),
        "tasks": clean(page.tasks, lambda task: task.key),
        "teams": clean(page.teams, lambda team: key_of(team.remote_id)),
        "statuses": clean(page.statuses, lambda status: f"status {status.remote_id}"),
        "objectives": clean(page.objectives, lambda objective: key_of(objective.remote_id)),
        "key_results": clean(page.key_results, lambda key_result: key_of(key_result.remote_id)),
        "status_changes": clean(history, lambda change: key_of(change.item_id)),
        "dependencies": clean(page.dependencies, lambda dependency: key_of(dependency.blocked_id)),
        "links": clean(page.links, lambda link: key_of(link.milestone.remote_id)),
    }
    if changes["status_changes"] is not page.status_changes:
        changes["flow_facts"] = None  # facts computed from the history as it was: from the cleaned one
    if page.cursor is not None and UNSTORABLE in page.cursor:
        changes["cursor"] = page.cursor.replace(UNSTORABLE, REPLACEMENT)
        touched.setdefault(f"{page.source} {page.stream} cursor", None)
    if not touched:
        return page, 0
    for key in touched:
        log.warning(
            "%s: %s holds NUL characters, which no store can keep; stored with U+FFFD in their place",
            page.source,
            key.replace(UNSTORABLE, REPLACEMENT),
        )
    return replace(page, **changes), len(touched)


ItemT = TypeVar("ItemT")


def _packed_clean(values: Sequence[Any]) -> bool:
    """Whether `values` is a packed history found clean as it was packed (so not scanned again)."""
    return isinstance(values, PackedChanges) and not values.holds_unstorable


def _unpacked_if_unclean(values: Sequence[StatusChange]) -> Sequence[StatusChange]:
    """A packed history that holds `UNSTORABLE` as a list of changes, to be cleaned as any other."""
    return list(values) if isinstance(values, PackedChanges) and values.holds_unstorable else values


@dataclass(frozen=True, slots=True)
class _TextFields:
    """A dataclass's fields that hold text: plain (`str`, `str | None`), tuples of text, and nested
    dataclasses (a `Ref`) whose own text is cleaned the same way."""

    texts: tuple[str, ...]
    text_tuples: tuple[str, ...]
    nested: tuple[str, ...]

    def all_text(self, values: Sequence[Any]) -> Iterable[str | None]:
        """Every text of `values` in one stream (tuples and nested values included), for one scan."""
        streams: list[Iterable[str | None]] = [map(attrgetter(name), values) for name in self.texts]
        streams.extend(chain.from_iterable(map(attrgetter(name), values)) for name in self.text_tuples)
        for name in self.nested:
            inner = [getattr(value, name) for value in values]
            if inner:
                kind: type = type(inner[0])
                streams.append(_text_fields(kind).all_text(inner))
        return chain.from_iterable(streams)


def _holds_unstorable(values: Sequence[Any]) -> bool:
    """Whether any text of `values` (all of one kind) holds `UNSTORABLE`: one join and one search, so the
    common page without it (status histories run to millions of rows) costs little."""
    kind: type = type(values[0])
    return UNSTORABLE in "".join(filter(None, _text_fields(kind).all_text(values)))


@functools.cache
def _text_fields(kind: type) -> _TextFields:
    hints = get_type_hints(kind)
    texts, text_tuples, nested = [], [], []
    for item in fields(kind):
        hint = hints[item.name]
        args = get_args(hint)
        if hint is str or (get_origin(hint) in (Union, types.UnionType) and str in args):
            texts.append(item.name)
        elif get_origin(hint) is tuple and args and args[0] is str:
            text_tuples.append(item.name)
        elif isinstance(hint, type) and is_dataclass(hint):
            nested.append(item.name)
    return _TextFields(tuple(texts), tuple(text_tuples), tuple(nested))


def _scrubbed(value: ItemT) -> ItemT | None:
    """`value` with `UNSTORABLE` replaced in its text fields, or None when it holds none."""
    kind: type = type(value)
    spec = _text_fields(kind)
    changes: dict[str, Any] = {}
    for name in spec.texts:
        text = getattr(value, name)
        if text is not None and UNSTORABLE in text:
            changes[name] = text.replace(UNSTORABLE, REPLACEMENT)
    for name in spec.text_tuples:
        texts = getattr(value, name)
        if any(UNSTORABLE in text for text in texts):
            changes[name] = tuple(text.replace(UNSTORABLE, REPLACEMENT) for text in texts)
    for name in spec.nested:
        inner = _scrubbed(getattr(value, name))
        if inner is not None:
            changes[name] = inner
    return replace(value, **changes) if changes else None  # type: ignore[type-var]


def _one_role(conn: Connection, page: RemotePage, now: datetime) -> int:
    """An item is a milestone or a task, never both: one the page carries live in one role is marked
    deleted in the other (a task that became a milestone, or the reverse, is seen this way on any pull,
    a whole one included, without knowing its earlier role)."""
    changed = 0
    for rows, other in (
        ([m.remote_id for m in page.milestones if not m.deleted], _table(TaskRow)),
        ([t.remote_id for t in page.tasks if not t.deleted], _table(MilestoneRow)),
    ):
        if not rows:
            continue
        if conn.dialect.name == "sqlite":
            changed += _sqlite_one_role(conn, other, page.source, rows, now)
            continue
        stmt = (
            update(other)
            .where(other.c.source == page.source, other.c.remote_id.in_(_IDS), other.c.deleted.is_(False))
            .values(deleted=True, synced_at=now)
        )
        for chunk in chunked(rows):
            result = conn.execute(stmt, {"ids": list(chunk)})
            changed += max(result.rowcount, 0)
    return changed


def _sqlite_one_role(conn: Connection, other: Any, source: str, ids: Sequence[str], now: datetime) -> int:
    """`_one_role`'s update on SQLite: one statement text to the driver, the ids bound as they are
    (SQLAlchemy's expanding `IN` costs more than SQLite's own work here, on every page of a pull)."""
    target = conn.dialect.identifier_preparer.format_table(other)
    stamp = sqlite_time(now)
    changed = 0
    for chunk in chunked(ids):
        marks = ", ".join("?" * len(chunk))
        result = conn.exec_driver_sql(
            f"UPDATE {target} SET deleted = 1, synced_at = ? "
            f"WHERE source = ? AND remote_id IN ({marks}) AND deleted IS 0",
            (stamp, source, *chunk),
        )
        changed += max(result.rowcount, 0)
    return changed


def set_cursor(
    conn: Connection, source: str, stream: str, value: str | None, *, signpost: datetime | None, now: datetime
) -> None:
    row = {"source": source, "stream": stream, "value": value, "signpost": signpost, "updated_at": now}
    upsert(conn, _table(CursorRow), [row], stamp="updated_at")


def get_cursor(conn: Connection, source: str, stream: str) -> Cursor | None:
    table = _table(CursorRow)
    row = conn.execute(select(table).where(and_(table.c.source == source, table.c.stream == stream))).first()
    if row is None:
        return None
    return Cursor(value=row.value, signpost=row.signpost, updated_at=row.updated_at)


def _replace_dependencies(conn: Connection, page: RemotePage, now: datetime) -> int:
    """Make the stored blockers of the page's items equal the page's; returns rows added or removed."""
    table = _table(DependencyRow)
    covered = {t.remote_id for t in page.tasks} | {d.blocked_id for d in page.dependencies}
    wanted = {(d.blocker_id, d.blocked_id) for d in page.dependencies}
    if conn.dialect.name == "sqlite":  # as `_sqlite_one_role`: the statement text straight to the driver
        stored: set[tuple[Any, ...]] = set()
        target = conn.dialect.identifier_preparer.format_table(table)
        for chunk in chunked(sorted(covered)):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT blocker_id, blocked_id FROM {target} WHERE source = ? AND blocked_id IN ({marks})"
            stored.update(tuple(r) for r in conn.exec_driver_sql(sql, (page.source, *chunk)))
    else:
        stored = _stored_pairs(
            conn,
            table,
            table.c.source == page.source,
            table.c.blocked_id,
            covered,
            (table.c.blocker_id, table.c.blocked_id),
        )
    gone = stored - wanted
    for blocker, blocked in gone:
        conn.execute(
            delete(table).where(
                and_(
                    table.c.source == page.source,
                    table.c.blocker_id == blocker,
                    table.c.blocked_id == blocked,
                )
            )
        )
    rows = [
        {"source": page.source, "blocker_id": a, "blocked_id": b, "synced_at": now}
        for a, b in wanted - stored
    ]
    return len(gone) + upsert(conn, table, rows)


def _replace_tracker_links(conn: Connection, page: RemotePage, now: datetime) -> int:
    """Links read from the tracker or derived from rules follow the tracker; admins' links stay."""
    table = _table(MilestoneKeyResultRow)
    covered = {m.remote_id for m in page.milestones}
    derived = (LinkOrigin.TRACKER.value, LinkOrigin.RULE.value)
    scope = and_(table.c.milestone_source == page.source, table.c.origin.in_(derived))
    stored = _stored_pairs(
        conn,
        table,
        scope,
        table.c.milestone_id,
        covered,
        (table.c.milestone_id, table.c.kr_source, table.c.kr_id, table.c.origin),
    )
    wanted = {
        (link.milestone.remote_id, link.key_result.source, link.key_result.remote_id, link.origin.value)
        for link in page.links
    }
    gone = stored - wanted
    for milestone_id, kr_source, kr_id, _origin in gone:
        conn.execute(
            delete(table).where(
                and_(
                    scope,
                    table.c.milestone_id == milestone_id,
                    table.c.kr_source == kr_source,
                    table.c.kr_id == kr_id,
                )
            )
        )
    rows = [
        {
            "milestone_source": page.source,
            "milestone_id": m,
            "kr_source": ks,
            "kr_id": k,
            "origin": o,
            "score": None,
            "synced_at": now,
        }
        for m, ks, k, o in wanted - stored
    ]
    return len(gone) + upsert(conn, table, rows)


def _stored_pairs(
    conn: Connection, table: Any, scope: Any, column: Any, values: set[str], columns: tuple[Any, ...]
) -> set[tuple[Any, ...]]:
    found: set[tuple[Any, ...]] = set()
    if not values:
        return found
    stmt = select(*columns).where(and_(scope, column.in_(_IDS)))
    for chunk in chunked(sorted(values)):
        found.update(tuple(r) for r in conn.execute(stmt, {"ids": list(chunk)}))
    return found


_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
"""The ids of an `IN` list, bound as one parameter: SQLAlchemy then coerces no id on its own (a pull's
pages each ask about a few hundred)."""


CHANGE_COLUMNS = tuple(f.name for f in fields(StatusChange))
_status_change = attrgetter(*CHANGE_COLUMNS)
"""A status change as the tuple `insert_new` binds (the largest table: no dict per row). StatusCategory
is a str enum: the member binds as its text, without the slow `.value`."""


def holds_items(conn: Connection, source: str) -> bool:
    """Whether the store holds any task or milestone of `source`, deleted or not."""
    for model in (TaskRow, MilestoneRow):
        table = _table(model)
        if conn.execute(select(table.c.remote_id).where(table.c.source == source).limit(1)).first():
            return True
    return False


def live_items(conn: Connection, source: str) -> int:
    """How many tasks and milestones of `source` the store holds that are not marked deleted."""
    total = 0
    for model in (TaskRow, MilestoneRow):
        table = _table(model)
        where = and_(table.c.source == source, table.c.deleted.is_(False))
        total += int(conn.execute(select(func.count()).select_from(table).where(where)).scalar() or 0)
    return total


def mark_deleted(conn: Connection, source: str, present: Sequence[str], *, now: datetime) -> int:
    """After a full census: flag every task and milestone of `source` not in `present` as deleted."""
    seen = set(present)
    flagged = 0
    for model in (TaskRow, MilestoneRow):
        table = _table(model)
        stored = conn.execute(
            select(table.c.remote_id).where(and_(table.c.source == source, table.c.deleted.is_(False)))
        ).scalars()
        gone = [remote_id for remote_id in stored if remote_id not in seen]
        for chunk in chunked(gone):
            result = conn.execute(
                table.update()
                .where(and_(table.c.source == source, table.c.remote_id.in_(chunk)))
                .values(deleted=True, synced_at=now)
            )
            flagged += max(result.rowcount, 0)
    if flagged:
        bump_data_version(conn, now)
    return flagged
