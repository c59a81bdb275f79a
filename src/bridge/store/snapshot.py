"""Reading the store into the `Snapshot` the analytics take: the inverse of `pages.py`.

The status history is by far the largest table (a million rows for a hundred thousand tasks), so it is
read with Core selects, rows straight into domain values, and the strings repeated on every row (item
ids, raw statuses) are shared rather than copied a million times. Objectives and key results come from
the store only: the analysis merges the config's own `[okrs]` itself.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    String,
    Table,
    and_,
    false,
    func,
    null,
    or_,
    select,
    type_coerce,
)

from bridge.domain import (
    Dependency,
    KeyResult,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    Snapshot,
    StatusCategory,
    StatusChange,
    StatusName,
    Task,
    Team,
    display_name,
    require_utc,
    slot_builder,
    unchecked_constructor,
)
from bridge.flow_facts import FACTS_VERSION, FlowFacts, facts_from_json
from bridge.gc_pacing import hold_loaded, release_loaded
from bridge.store.engine import Store, driver_batches
from bridge.store.facts import Key, has_current_facts, read_flow_facts
from bridge.store.models import (
    DependencyRow,
    FlowFactRow,
    KeyResultRow,
    MilestoneKeyResultRow,
    MilestoneRow,
    ObjectiveRow,
    StatusChangeRow,
    StatusNameRow,
    TaskRow,
    TeamRow,
)

_CATEGORY: dict[str | None, StatusCategory | None] = {c.value: c for c in StatusCategory}
_CATEGORY[None] = None
_FETCH = 20_000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def load_snapshot(store: Store, *, since: datetime | None = None) -> Snapshot:
    """Everything the analysis reads, in one read transaction.

    Deleted milestones and tasks are left out. With `since`, the histories of tasks that were done and
    last updated before it are left out too (the tasks themselves stay): no analysis window reaches
    back that far, and in a long-lived store they are most of the history.
    """
    since = require_utc(since, "since") if since is not None else None
    with store.read() as conn, _collector_paused():
        if conn.dialect.name == "sqlite":
            tasks, flow_facts, analysed = _read_tasks(conn, since, store, facts=True)
        else:
            tasks = read_tasks(conn, settled_before=since, store=store)
            flow_facts = read_flow_facts(conn, analysed_tasks(since))
            analysed = count_analysed(conn, since)
        # the history is read only for analysed tasks without facts; where every one has them (a store
        # whose pulls wrote them, or whose backfill finished), the query that looks for such tasks
        # would only find none, at the cost of probing the facts of every task
        # (the facts read are those of analysed tasks only: fewer of them than analysed tasks means some
        # lack facts; counted by the database, not by a million lookups of the loaded tasks)
        lacking = len(flow_facts) < analysed
        return Snapshot(
            milestones=read_milestones(conn),
            tasks=tasks,
            status_changes=read_status_changes(conn, since=since, facts=True) if lacking else [],
            flow_facts=flow_facts,
            dependencies=read_dependencies(conn),
            objectives=read_objectives(conn),
            key_results=read_key_results(conn),
            links=read_links(conn),
            teams=read_teams(conn),
            statuses=read_status_names(conn),
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold back the cyclic garbage collector while a million rows become values: none of them holds
    a cycle, yet each burst of allocations would start a full collection over all loaded so far. Once
    loaded, they are left out of collections until the next load (`bridge.gc_pacing.hold_loaded`)."""
    release_loaded()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        hold_loaded()
        if was_enabled:
            gc.enable()


def is_empty(store: Store) -> bool:
    """Whether the store holds no milestone and no task yet (nothing has been pulled)."""
    with store.read() as conn:
        for model in (MilestoneRow, TaskRow):
            table = _table(model)
            if conn.execute(select(table.c.source).limit(1)).first() is not None:
                return False
    return True


# --- timestamps --------------------------------------------------------------------------------------
# SQLite keeps timestamps as UTC text. Parsing that text with the zone appended gives aware UTC at a
# fraction of the cost of the column type's own path (parse, then `replace(tzinfo=...)`), which counts
# at a million rows. Other databases hand back aware values, which the column type converts to UTC.


def _time(column: Any, dialect: str) -> Any:
    """SQLite's text as it is; elsewhere the driver's datetime, without the UTC column type's call for
    each value: the domain values convert any that is not `datetime.UTC` (see `_utc_zone`)."""
    return type_coerce(column, String) if dialect == "sqlite" else type_coerce(column, _AWARE)


_AWARE = DateTime(timezone=True)


def _utc_zone(conn: Connection) -> None:
    """On PostgreSQL, the rest of the transaction in the UTC zone, in which the driver marks timestamps
    with `datetime.UTC` itself (in a zone named otherwise, even `Etc/UTC`, each must be converted)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")


def _time_reader(dialect: str) -> Callable[[Any], datetime | None]:
    if dialect != "sqlite":
        return _as_is
    parse = datetime.fromisoformat

    def read(value: str | None) -> datetime | None:
        return None if value is None else parse(value + "+00:00")

    return read


def _as_is(value: datetime | None) -> datetime | None:
    return value


def _utc_time_reader(dialect: str) -> Callable[[Any], datetime | None]:
    """`_time_reader`, with a server's values in another zone than `datetime.UTC` converted to it."""
    if dialect == "sqlite":
        return _time_reader(dialect)
    return _as_utc


def _as_utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is UTC else require_utc(value)


def read_milestones(conn: Connection, where: ColumnElement[bool] | None = None) -> list[Milestone]:
    """Milestones that are not deleted, or those `where` selects."""
    t = _table(MilestoneRow)
    dialect = conn.dialect.name
    when = _utc_time_reader(dialect)
    _utc_zone(conn)
    rows = _small_read(
        conn,
        select(
            t.c.source, t.c.remote_id, t.c.key, t.c.title, t.c.team, t.c.value, t.c.effort,
            _time(t.c.due, dialect), t.c.raw_status, t.c.category, _time(t.c.created, dialect),
            _time(t.c.updated, dialect), t.c.url, t.c.description, type_coerce(t.c.labels, String),
            t.c.watchers,
        ).where(t.c.deleted.is_(False) if where is None else where),
    )  # fmt: skip
    # the driver's tuples, built without `Milestone`'s checks: the times are made UTC here
    build = _build_milestone
    return [
        build(
            source, remote_id, key, title, team, value, effort, when(due), raw_status,
            _CATEGORY[category], when(created), when(updated), url, False, watchers, description,
            _labels(labels),
        )
        for (
            source, remote_id, key, title, team, value, effort, due, raw_status, category, created,
            updated, url, description, labels, watchers,
        ) in rows
    ]  # fmt: skip


def read_tasks(
    conn: Connection, *, settled_before: datetime | None = None, store: Store | None = None
) -> list[Task]:
    """The tasks that are not deleted.

    With `settled_before` (the analysis window's start) and the `store` read from, a task that was done
    and last updated before it is a `SettledTask`, listed after the others: only what the analysis
    reads of such a task comes from SQL (its ids, milestone, team, work type and three dates); the rest
    is read on demand, on the first access to any of it, for every settled task of the load at once
    (`SettledDetails`). In a long-lived store most tasks are settled, and no part of the report reads
    their titles."""
    tasks, _, _ = _read_tasks(conn, settled_before, store, facts=False)
    return tasks


def _read_tasks(
    conn: Connection, settled_before: datetime | None, store: Store | None, *, facts: bool
) -> tuple[list[Task], dict[Key, FlowFacts], int]:
    """`read_tasks`; with `facts` (SQLite only), also the current flow facts of the tasks an analysis
    from `settled_before` reads (`analysed_tasks`) and how many tasks it reads (more than the facts
    found where some lack current facts).

    The analysed tasks are among those read whole (a settled task is never analysed), so on SQLite the
    query that reads those looks up each one's facts too and tells whether it is analysed: one scan of
    the task table where a separate read of the facts scanned it again (measured at 100,000 tasks,
    34,169 analysed: 0.15 -> 0.13 s of SQLite's CPU, and one loop of Python less)."""
    assert not facts or conn.dialect.name == "sqlite"
    t = _table(TaskRow)
    dialect = conn.dialect.name
    kept: ColumnElement[bool] = t.c.deleted.is_(False)
    settled = None
    if settled_before is not None and store is not None:
        settled = settled_tasks(settled_before)
        kept = and_(kept, ~settled)
    time = _time if dialect == "sqlite" else _as_column
    columns = [
        t.c.source, t.c.remote_id, t.c.key, t.c.title, t.c.milestone_id, t.c.team, t.c.work_type,
        t.c.raw_status, t.c.category, time(t.c.created, dialect), time(t.c.updated, dialect),
        time(t.c.started, dialect), time(t.c.done, dialect), t.c.url, type_coerce(t.c.labels, String),
        t.c.watchers,
    ]  # fmt: skip
    found: dict[Key, FlowFacts] = {}
    analysed = 0
    if dialect == "sqlite":
        # two more columns: whether the task is analysed, and its current facts (NULL without them)
        if facts:
            f = _table(FlowFactRow)
            current = and_(
                f.c.source == t.c.source, f.c.item_id == t.c.remote_id, f.c.version == FACTS_VERSION
            )
            query = (
                select(*columns, analysed_tasks(settled_before), f.c.facts)
                .select_from(t.outerjoin(f, current))
                .where(kept)
            )
        else:
            query = select(*columns, false(), null()).where(kept)
        tasks, analysed = _read_tasks_sqlite(conn, query, found)
    else:
        tasks = _read_tasks_driver(conn, select(*columns).where(kept))
    if settled is not None and store is not None:
        light = select(
            t.c.source, t.c.remote_id, t.c.milestone_id, t.c.team, t.c.work_type, time(t.c.created, dialect),
            time(t.c.started, dialect), time(t.c.done, dialect),
        ).where(and_(t.c.deleted.is_(False), settled))  # fmt: skip
        tasks += _read_settled(conn, light, SettledDetails(store, settled_before))
    return tasks, found, analysed


def _small_read(conn: Connection, query: Any) -> Iterable[Sequence[Any]]:
    """The rows of a query of no more than thousands of rows, as tuples of the driver's values: on
    SQLite without SQLAlchemy's rows (`driver_batches`); on a server, its rows as they are, without the
    round trips of a server-side cursor."""
    if conn.dialect.name == "sqlite":
        return chain.from_iterable(driver_batches(conn, query, _FETCH))
    return conn.execute(query)


def _as_column(column: Any, dialect: str) -> Any:
    return column


def _read_tasks_sqlite(conn: Connection, query: Any, facts: dict[Key, FlowFacts]) -> tuple[list[Task], int]:
    """The tasks of `query` (`_read_tasks`), and how many of them are analysed; the facts of those put
    in `facts`, by task."""
    # One shared string for each source, milestone, team and work type, rather than one a row.
    shared = sys.intern
    category = _CATEGORY
    labels_of = _labels
    # SQLite's timestamps are UTC text, parsed inline (four a task) into aware UTC values, so its tasks
    # are built without `Task`'s checks.
    parse = datetime.fromisoformat
    build = _build_task
    decode = facts_from_json
    tasks: list[Task] = []
    append = tasks.append
    analysed = 0
    for (
        source, remote_id, key, title, milestone_id, team, work_type, raw_status, state, created,
        updated, started, done, url, labels, watchers, is_analysed, text,
    ) in chain.from_iterable(driver_batches(conn, query, _FETCH)):  # fmt: skip
        source = shared(source)
        if is_analysed:
            analysed += 1
            if text is not None and (found := decode(text)) is not None:
                facts[(source, remote_id)] = found
        created = parse(created + "+00:00") if created is not None else None
        updated = parse(updated + "+00:00") if updated is not None else None
        started = parse(started + "+00:00") if started is not None else None
        done = parse(done + "+00:00") if done is not None else None
        # positional, in `Task`'s field order: a hundred thousand keyword calls cost a quarter more
        append(
            build(
                source,
                remote_id,
                key,
                title,
                shared(milestone_id) if milestone_id is not None else None,
                shared(team) if team is not None else None,
                shared(work_type) if work_type is not None else None,
                raw_status,
                category[state],
                created,
                updated,
                started,
                done,
                url,
                labels_of(labels),
                False,
                watchers,
            )
        )
    return tasks, analysed


def _read_tasks_driver(conn: Connection, query: Any) -> list[Task]:
    """`read_tasks` on a server database: the driver's tuples (`driver_batches`). The transaction's zone
    is set to UTC, in which the driver hands back timestamps already marked UTC (`datetime.UTC` itself),
    so the tasks are built without `Task`'s checks and, measured at a million tasks, without the 2.9
    million conversions a session in another zone's name (even `Etc/UTC`) needs; any other value is
    converted still."""
    _utc_zone(conn)
    shared = sys.intern
    category = _CATEGORY
    labels_of = _labels
    build = _build_task
    utc = UTC
    tasks: list[Task] = []
    append = tasks.append
    for (
        source, remote_id, key, title, milestone_id, team, work_type, raw_status, state, created,
        updated, started, done, url, labels, watchers,
    ) in chain.from_iterable(driver_batches(conn, query)):  # fmt: skip
        append(
            build(
                shared(source),
                remote_id,
                key,
                title,
                shared(milestone_id) if milestone_id is not None else None,
                shared(team) if team is not None else None,
                shared(work_type) if work_type is not None else None,
                raw_status,
                category[state],
                created if created is None or created.tzinfo is utc else created.astimezone(utc),
                updated if updated is None or updated.tzinfo is utc else updated.astimezone(utc),
                started if started is None or started.tzinfo is utc else started.astimezone(utc),
                done if done is None or done.tzinfo is utc else done.astimezone(utc),
                url,
                labels_of(labels),
                False,
                watchers,
            )
        )
    return tasks


def _read_settled(conn: Connection, query: Any, details: SettledDetails) -> list[SettledTask]:
    """The settled tasks of `query` (`read_tasks`): eight columns a task, SQLite's text timestamps
    parsed, a server's driver's values converted to UTC where they are not already."""
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite:
        _utc_zone(conn)
    shared = sys.intern
    parse = datetime.fromisoformat
    utc = UTC
    build = _build_settled
    tasks: list[SettledTask] = []
    append = tasks.append
    for source, remote_id, milestone_id, team, work_type, created, started, done in chain.from_iterable(
        driver_batches(conn, query, _FETCH)
    ):
        if sqlite:
            created = parse(created + "+00:00") if created is not None else None
            started = parse(started + "+00:00") if started is not None else None
            done = parse(done + "+00:00")
        else:
            created = created if created is None or created.tzinfo is utc else created.astimezone(utc)
            started = started if started is None or started.tzinfo is utc else started.astimezone(utc)
            done = done if done.tzinfo is utc else done.astimezone(utc)
        append(
            build(
                shared(source),
                remote_id,
                shared(milestone_id) if milestone_id is not None else None,
                shared(team) if team is not None else None,
                shared(work_type) if work_type is not None else None,
                created,
                started,
                done,
                details,
            )
        )
    details.tasks = tasks
    return tasks


def settled_tasks(since: datetime) -> ColumnElement[bool]:
    """SQL: the tasks done and last updated before `since`; among those not deleted, those that
    `analysed_tasks` leaves out (`category` is never NULL; `done` is checked first)."""
    task = _table(TaskRow)
    return and_(
        task.c.category == StatusCategory.DONE.value,
        task.c.done.is_not(None),
        func.coalesce(task.c.updated, task.c.done) < since,
    )


class SettledTask(Task):
    """A task done and last updated before the analysis window, as `read_tasks` loads it: its source,
    id, milestone, team, work type, created, started and done dates are set; its other fields (key,
    title, raw status, updated, url, labels, watchers) are read from the store on the first access to
    any of them (`SettledDetails`), for every settled task of the same load. Otherwise a `Task`: it
    compares, hashes and prints as the `Task` of the same fields."""

    __slots__ = ("_details",)

    _details: SettledDetails | None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return astuple_of(self) == astuple_of(other)

    def __hash__(self) -> int:
        return hash(astuple_of(self))

    def __repr__(self) -> str:
        return "Task(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _TASK_FIELDS) + ")"

    def __reduce__(self) -> tuple[type[Task], tuple[Any, ...]]:
        """Pickled and copied as the plain `Task` of the same fields (no store goes with it)."""
        return (Task, astuple_of(self))


_TASK_FIELDS = tuple(f.name for f in fields(Task))
_LAZY_FIELDS = ("key", "title", "raw_status", "updated", "url", "labels", "watchers")


def astuple_of(task: Task) -> tuple[Any, ...]:
    """A task's fields in order (what a dataclass compares), settled or not."""
    return tuple(getattr(task, name) for name in _TASK_FIELDS)


def _lazy_field(name: str) -> property:
    slot = vars(Task)[name]  # the slot's descriptor: reads and sets the value itself

    def get(task: SettledTask) -> Any:
        try:
            return slot.__get__(task, Task)
        except AttributeError:
            details = task._details
            if details is None:
                raise
            details.fill()
            return slot.__get__(task, Task)

    def set_(task: SettledTask, value: Any) -> None:
        slot.__set__(task, value)

    return property(get, set_, doc=f"The task's {name}, read from the store on first access.")


for _name in _LAZY_FIELDS:
    setattr(SettledTask, _name, _lazy_field(_name))


def _slot_setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    """What sets slot `name` of a `cls` value directly (past a frozen class's `__setattr__`)."""
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


class SettledDetails:
    """The fields of the settled tasks of one load that `read_tasks` left out, read on demand in one
    query (a later read transaction of the same store) the first time any of them is asked for: a
    reader that needs one settled task whole (explain, drafts, the write-back) still gets it whole. A
    task the store no longer holds as loaded (changed or deleted since) takes the store's row as it is
    now, found by its key."""

    __slots__ = ("lock", "since", "store", "tasks")

    def __init__(self, store: Store, since: datetime | None) -> None:
        self.store = store
        self.since = since
        self.tasks: list[SettledTask] = []
        self.lock = threading.Lock()

    def fill(self) -> None:
        with self.lock:  # a second thread asking meanwhile waits for the same read
            if self.tasks:
                self._read(self.tasks)
                self.tasks = []

    def _read(self, tasks: list[SettledTask]) -> None:
        t = _table(TaskRow)
        want = {(task.source, task.remote_id): task for task in tasks}
        with self.store.read() as conn:
            dialect = conn.dialect.name
            when = _time_reader(dialect)
            _utc_zone(conn)
            query = select(
                t.c.source, t.c.remote_id, t.c.key, t.c.title, t.c.raw_status, _time(t.c.updated, dialect),
                t.c.url, type_coerce(t.c.labels, String), t.c.watchers,
            )  # fmt: skip
            narrowed = query.where(t.c.category == StatusCategory.DONE.value)
            for rows in (narrowed, query):
                for source, remote_id, key, title, raw_status, updated, url, labels, watchers in conn.execute(
                    rows
                ):
                    task = want.pop((source, remote_id), None)
                    if task is None:
                        continue
                    found = (key, title, raw_status, when(updated), url, _labels(labels), watchers)
                    for set_field, value in zip(_LAZY_SETTERS, found, strict=True):
                        set_field(task, value)
                    _set_details(task, None)
                if not want:
                    break
        if want:
            missing = ", ".join(f"{source}:{remote_id}" for source, remote_id in sorted(want)[:5])
            raise LookupError(f"settled tasks no longer in the store: {missing}")


_LAZY_SETTERS = tuple(_slot_setter(Task, name) for name in _LAZY_FIELDS)
_set_details = _slot_setter(SettledTask, "_details")
_build_settled: Callable[..., SettledTask] = slot_builder(
    SettledTask,
    ("source", "remote_id", "milestone_id", "team", "work_type", "created", "started", "done", "_details"),
    {"category": StatusCategory.DONE, "deleted": False},
)


_build_task: Callable[..., Task] = unchecked_constructor(Task)


def _labels(stored: str | None) -> tuple[str, ...]:
    if stored is None or stored == "[]":
        return ()
    loaded = json.loads(stored)
    return tuple(loaded) if isinstance(loaded, list) else (loaded,)


def analysed_tasks(since: datetime | None) -> ColumnElement[bool]:
    """SQL: the tasks whose history (or flow facts) an analysis from `since` reads: those not deleted
    and, with `since`, not already done and last updated before it."""
    task = _table(TaskRow)
    kept: ColumnElement[bool] = task.c.deleted.is_(False)
    if since is not None:
        last = func.coalesce(task.c.updated, task.c.done)
        kept = and_(kept, or_(task.c.category != StatusCategory.DONE.value, last.is_(None), last >= since))
    return kept


def count_analysed(conn: Connection, since: datetime | None) -> int:
    """How many tasks an analysis from `since` reads the history (or flow facts) of."""
    task = _table(TaskRow)
    query = select(func.count()).select_from(task).where(analysed_tasks(since))
    return int(conn.execute(query).scalar() or 0)


def is_analysed(task: Task, since: datetime | None) -> bool:
    """Whether an analysis from `since` reads the task's history: `analysed_tasks` for a loaded task."""
    if since is None or task.category is not StatusCategory.DONE:
        return True
    last = task.updated if task.updated is not None else task.done
    return last is None or last >= since


def read_status_changes(
    conn: Connection, *, since: datetime | None = None, facts: bool = False
) -> list[StatusChange]:
    """The history of tasks that are not deleted; with `since`, only of those that were not already
    done and last updated before it; with `facts`, only of those without flow facts (the analysis
    reads theirs)."""
    t = _table(StatusChangeRow)
    task = _table(TaskRow)
    dialect = conn.dialect.name
    kept = analysed_tasks(since)
    if facts:
        kept = and_(kept, ~has_current_facts(task))
    # The history table has no index by item (it would slow every pull), so it is scanned once; asking
    # for item ids IN the kept tasks lets SQLite probe a small in-memory list instead of the task table's
    # key for each of its rows. Ids are unique per source only, so the source is checked below.
    kept_keys = {(source, remote_id) for source, remote_id in conn.execute(
        select(task.c.source, task.c.remote_id).where(kept)
    )}  # fmt: skip
    if not kept_keys:
        return []  # every task's facts are stored: no scan of the history
    query = select(
        t.c.source, t.c.remote_id, t.c.item_id, _time(t.c.at, dialect), t.c.from_status, t.c.to_status,
        t.c.from_category, t.c.to_category,
    ).where(t.c.item_id.in_(select(task.c.remote_id).where(kept)))  # fmt: skip
    # Each item id and raw status becomes one shared string: a task's id repeats on each of its changes.
    shared = sys.intern
    category = _CATEGORY
    changes: list[StatusChange] = []
    append = changes.append
    sqlite = dialect == "sqlite"
    parse = datetime.fromisoformat
    for rows in conn.execute(query).partitions(_FETCH):
        for source, remote_id, item_id, at, from_status, to_status, from_category, to_category in rows:
            if (source, item_id) not in kept_keys:
                continue  # the same id held by a task of another source
            append(
                StatusChange(
                    shared(source),
                    remote_id,
                    shared(item_id),
                    parse(at + "+00:00") if sqlite else at,
                    shared(from_status) if from_status is not None else None,
                    shared(to_status),
                    category[from_category],
                    category[to_category],  # type: ignore[arg-type]
                )
            )
    return changes


def read_dependencies(conn: Connection) -> list[Dependency]:
    t = _table(DependencyRow)
    rows = _small_read(conn, select(t.c.source, t.c.blocker_id, t.c.blocked_id))
    build = _build_dependency
    return [build(source, blocker, blocked) for source, blocker, blocked in rows]


def read_objectives(conn: Connection) -> list[Objective]:
    t = _table(ObjectiveRow)
    rows = conn.execute(select(t.c.source, t.c.remote_id, t.c.title, t.c.weight, t.c.url))
    return [Objective(r.source, r.remote_id, r.title, r.weight, r.url) for r in rows]


def read_key_results(conn: Connection) -> list[KeyResult]:
    t = _table(KeyResultRow)
    rows = conn.execute(
        select(
            t.c.source, t.c.remote_id, t.c.objective_id, t.c.title, t.c.target, t.c.current, t.c.start,
            t.c.unit, t.c.weight, t.c.url, t.c.period_end,
        )
    )  # fmt: skip
    return [
        KeyResult(
            source=r.source,
            remote_id=r.remote_id,
            objective_id=r.objective_id,
            title=r.title,
            target=r.target,
            current=r.current,
            start=r.start,
            unit=r.unit,
            weight=r.weight,
            url=r.url,
            period_end=r.period_end,
        )
        for r in rows
    ]


def read_links(conn: Connection, *, origin: LinkOrigin | None = None) -> list[KeyResultLink]:
    t = _table(MilestoneKeyResultRow)
    query = select(t.c.milestone_source, t.c.milestone_id, t.c.kr_source, t.c.kr_id, t.c.origin, t.c.score)
    if origin is not None:
        query = query.where(and_(t.c.origin == origin.value))
    ref, link, origin_of = _build_ref, _build_link, _ORIGIN
    return [
        link(ref(milestone_source, milestone_id), ref(kr_source, kr_id), origin_of[origin_code], score)
        for milestone_source, milestone_id, kr_source, kr_id, origin_code, score in _small_read(conn, query)
    ]


_ORIGIN = {origin.value: origin for origin in LinkOrigin}
_build_ref: Callable[..., Ref] = unchecked_constructor(Ref)
_build_link: Callable[..., KeyResultLink] = unchecked_constructor(KeyResultLink)
_build_dependency: Callable[..., Dependency] = unchecked_constructor(Dependency)
_build_milestone: Callable[..., Milestone] = unchecked_constructor(Milestone)


def read_teams(conn: Connection) -> list[Team]:
    t = _table(TeamRow)
    return [
        Team(r.source, r.remote_id, r.name) for r in conn.execute(select(t.c.source, t.c.remote_id, t.c.name))
    ]


def read_status_names(conn: Connection) -> list[StatusName]:
    t = _table(StatusNameRow)
    query = select(t.c.source, t.c.remote_id, t.c.name)
    return [StatusName(r.source, r.remote_id, r.name) for r in conn.execute(query)]


def item_names(conn: Connection, source: str) -> dict[str, str]:
    """Remote id -> how a person reads each milestone and task of tracker `source`."""
    found: dict[str, str] = {}
    for model in (MilestoneRow, TaskRow):
        t = _table(model)
        query = select(t.c.remote_id, t.c.key, t.c.title).where(t.c.source == source)
        found.update({r.remote_id: display_name(r.key, r.title) for r in conn.execute(query)})
    return found
