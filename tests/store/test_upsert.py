"""Bulk upserts insert, update, and leave unchanged rows alone; datetimes stay aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from bridge.domain import StatusCategory
from bridge.store import Store, upsert
from bridge.store.engine import SQLITE_VALUES, insert_new
from bridge.store.models import StatusChangeRow, TaskRow
from bridge.store.pages import CHANGE_COLUMNS

TASK = TaskRow.__table__  # type: ignore[attr-defined]
CHANGE = StatusChangeRow.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _task(n: int, *, title: str | None = None, synced: datetime = T0, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source": "acme-jira",
        "remote_id": str(10000 + n),
        "key": f"PAY-{n}",
        "title": title or f"Task {n}",
        "milestone_id": "9000",
        "team": "payments",
        "work_type": "backend",
        "raw_status": "3",
        "category": "in_progress",
        "created": T0 - timedelta(days=n),
        "updated": T0,
        "started": None,
        "done": None,
        "url": None,
        "labels": ["ui", "mb-bottleneck"],
        "deleted": False,
        "synced_at": synced,
    }
    row.update(extra)
    return row


def _rows(store: Store) -> dict[str, dict[str, object]]:
    with store.read() as conn:
        return {r.remote_id: dict(r._mapping) for r in conn.execute(select(TASK))}


def test_insert_update_and_unchanged(store: Store) -> None:
    with store.write() as conn:
        assert upsert(conn, TASK, [_task(1), _task(2), _task(3)]) == 3
    later = T0 + timedelta(hours=1)
    with store.write() as conn:
        changed = upsert(
            conn,
            TASK,
            [
                _task(1, synced=later),  # same content
                _task(2, title="Task 2, renamed", synced=later),  # changed
                _task(3, synced=later, labels=["ui"]),  # changed list
                _task(4, synced=later),  # new
            ],
        )
    assert changed == 3
    rows = _rows(store)
    assert rows["10001"]["synced_at"] == T0, "an unchanged row must not be rewritten"
    assert rows["10002"]["title"] == "Task 2, renamed" and rows["10002"]["synced_at"] == later
    assert rows["10003"]["labels"] == ["ui"] and rows["10003"]["synced_at"] == later
    assert rows["10004"]["synced_at"] == later
    assert len(rows) == 4


def test_null_to_value_and_back_counts_as_change(store: Store) -> None:
    with store.write() as conn:
        upsert(conn, TASK, [_task(1)])
    done = T0 + timedelta(days=2)
    with store.write() as conn:
        assert upsert(conn, TASK, [_task(1, done=done, category="done")]) == 1
    with store.write() as conn:
        assert upsert(conn, TASK, [_task(1, done=None)]) == 1
    with store.write() as conn:
        assert upsert(conn, TASK, [_task(1, done=None)]) == 0
    assert _rows(store)["10001"]["done"] is None


def test_many_rows_in_chunks(store: Store) -> None:
    rows = [_task(n) for n in range(12_345)]
    with store.write() as conn:
        assert upsert(conn, TASK, rows) == len(rows)
    with store.write() as conn:
        assert upsert(conn, TASK, rows) == 0
    assert len(_rows(store)) == len(rows)


def test_aware_datetimes_round_trip_as_utc(store: Store) -> None:
    plus_eight = timezone(timedelta(hours=8))
    local = datetime(2020, 6, 12, 8, 13, 13, 360000, tzinfo=plus_eight)  # Jira's "+0800" timestamps
    with store.write() as conn:
        upsert(conn, TASK, [_task(1, created=local)])
    created = _rows(store)["10001"]["created"]
    assert isinstance(created, datetime)
    assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    assert created == local
    assert created.hour == 0 and created.microsecond == 360000


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises((StatementError, ValueError), match="naive datetime"), store.write() as conn:
        upsert(conn, TASK, [_task(1, created=datetime(2026, 1, 1))])  # noqa: DTZ001
    assert _rows(store) == {}, "the failed transaction leaves nothing behind"


def test_status_changes_are_deduplicated_by_id(store: Store) -> None:
    change = {
        "source": "acme-jira",
        "remote_id": "5001:0",
        "item_id": "10001",
        "at": T0,
        "from_status": "10000",
        "to_status": "3",
        "from_category": "todo",
        "to_category": "in_progress",
    }
    with store.write() as conn:
        assert upsert(conn, CHANGE, [change, {**change, "remote_id": "5002:0", "at": T0 + timedelta(1)}]) == 2
    with store.write() as conn:
        assert upsert(conn, CHANGE, [change]) == 0
    with store.read() as conn:
        assert len(conn.execute(select(CHANGE)).all()) == 2


def _history(n: int, at: datetime = T0) -> tuple[object, ...]:
    done, doing = StatusCategory.DONE, StatusCategory.IN_PROGRESS
    return ("acme-jira", f"{5000 + n}:status", "10001", at + timedelta(hours=n), "3", "10001", doing, done)


def test_history_rows_are_written_once_in_bulk(store: Store) -> None:
    """`insert_new` (multi-row statements on SQLite, COPY through a staging table on PostgreSQL) counts only
    new rows, skips stored ones and repeats within a call, and keeps every value as given."""
    with store.write() as conn:
        assert insert_new(conn, CHANGE, [_history(n) for n in range(3)], CHANGE_COLUMNS) == 3
    with store.write() as conn:  # twice in one transaction too: the staging table is gone after each
        assert insert_new(conn, CHANGE, [_history(n) for n in range(5)], CHANGE_COLUMNS) == 2
        assert insert_new(conn, CHANGE, [_history(5), _history(5), _history(1)], CHANGE_COLUMNS) == 1
    with store.read() as conn:
        rows = sorted(conn.execute(select(CHANGE)).all(), key=lambda r: r.remote_id)
    assert [r.remote_id for r in rows] == [f"{5000 + n}:status" for n in range(6)]
    assert rows[2].at == T0 + timedelta(hours=2) and rows[2].at.tzinfo is not None
    assert (rows[0].from_category, rows[0].to_category) == ("in_progress", "done")
    naive = _history(9, datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises((StatementError, ValueError), match="naive datetime"), store.write() as conn:
        insert_new(conn, CHANGE, [naive], CHANGE_COLUMNS)


def test_a_key_twice_in_one_call_keeps_the_last_row(store: Store) -> None:
    """PostgreSQL cannot update one row twice in a statement; both stores keep the later row."""
    with store.write() as conn:
        upsert(conn, TASK, [_task(1), _task(2), _task(1, title="Task 1, later")])
    rows = _rows(store)
    assert set(rows) == {"10001", "10002"} and rows["10001"]["title"] == "Task 1, later"


def test_rows_spanning_several_statements_count_and_repeat_as_in_one(store: Store) -> None:
    """SQLite binds at most `SQLITE_VALUES` values a statement, so a long call runs several statements:
    what they count adds up, and a key met again in a later statement is a conflict there as well (a
    history row is kept as first written, an upserted row as last given)."""
    per_task = SQLITE_VALUES // len(_task(0))
    history = [_history(n) for n in range(300)] + [_history(7, T0 + timedelta(days=9))]
    tasks = [_task(n) for n in range(per_task + 5)]
    with store.write() as conn:
        assert insert_new(conn, CHANGE, history, CHANGE_COLUMNS) == 300
        assert insert_new(conn, CHANGE, [_history(n) for n in range(350)], CHANGE_COLUMNS) == 50
        assert upsert(conn, TASK, tasks) == per_task + 5
        assert upsert(conn, TASK, [*tasks, _task(1, title="Task 1, later")]) == 1
    with store.read() as conn:
        kept = conn.execute(select(CHANGE.c.at).where(CHANGE.c.remote_id == "5007:status")).scalar_one()
    assert kept == T0 + timedelta(hours=7)
    rows = _rows(store)
    assert len(rows) == per_task + 5 and rows["10001"]["title"] == "Task 1, later"


def test_a_database_error_in_a_transaction_is_a_store_error(store: Store) -> None:
    """Not only lost connections: a constraint the database refuses fails the transaction as a StoreError,
    so one tracker's failure is recorded and the others go on."""
    from bridge.errors import StoreError

    with pytest.raises(StoreError, match="failed"), store.write() as conn:
        upsert(conn, TASK, [_task(1, category="not-a-category")])
    assert _rows(store) == {}
