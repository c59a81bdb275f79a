"""A page and its cursor land together or not at all; dependencies and tracker links follow the tracker;
any text lands, NUL alone replaced (property-based on SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bridge.domain import (
    Dependency,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Ref,
    RemotePage,
    StatusCategory,
    StatusChange,
    Task,
)
from bridge.store import Store, upsert
from bridge.store.models import DependencyRow, MilestoneKeyResultRow, MilestoneRow, StatusChangeRow, TaskRow
from bridge.store.pages import get_cursor, mark_deleted, save_page

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
SRC = "acme-jira"


def _task(n: int, **extra: object) -> Task:
    return Task(source=SRC, remote_id=str(n), key=f"PAY-{n}", title=f"Task {n}", milestone_id="100",
                category=StatusCategory.IN_PROGRESS, created=T0, updated=T0, **extra)  # type: ignore[arg-type]  # fmt: skip


def _change(n: int, task: int) -> StatusChange:
    return StatusChange(SRC, f"h{n}", str(task), T0 + timedelta(hours=n), "10000", "3",
                        StatusCategory.TODO, StatusCategory.IN_PROGRESS)  # fmt: skip


def _page(
    tasks: list[Task], deps: list[Dependency] = (), cursor: str | None = "c1", **extra: object
) -> RemotePage:  # type: ignore[assignment]
    milestone = Milestone(SRC, "100", "PAY-100", "Checkout v2", value=40.0)
    return RemotePage(source=SRC, stream="issues", milestones=[milestone], tasks=tasks,
                      dependencies=list(deps), cursor=cursor, **extra)  # type: ignore[arg-type]  # fmt: skip


def _count(store: Store, model: object) -> int:
    with store.read() as conn:
        return len(conn.execute(select(model.__table__)).all())  # type: ignore[attr-defined]


def test_rows_and_cursor_land_together(store: Store) -> None:
    page = _page([_task(1), _task(2)], status_changes=[_change(1, 1), _change(2, 2)])
    with store.write() as conn:
        counts = save_page(conn, page, now=T0, signpost=T0)
    assert counts.items == 3 and counts.changed >= 5
    with store.read() as conn:
        cursor = get_cursor(conn, SRC, "issues")
    assert cursor is not None and cursor.value == "c1" and cursor.signpost == T0
    assert _count(store, TaskRow) == 2 and _count(store, StatusChangeRow) == 2


def test_a_failing_page_leaves_neither_rows_nor_cursor(store: Store) -> None:
    with store.write() as conn:
        save_page(conn, _page([_task(1)], cursor="c1"), now=T0)
    bad = _page([_task(2)], cursor="c2", status_changes=[_change(1, 2), _change(1, 2)])
    object.__setattr__(bad.status_changes[1], "to_category", "sideways")  # violates the CHECK constraint
    with pytest.raises(Exception), store.write() as conn:  # noqa: B017 - any database error will do
        save_page(conn, bad, now=T0)
    with store.read() as conn:
        cursor = get_cursor(conn, SRC, "issues")
    assert cursor is not None and cursor.value == "c1", "the cursor did not move past rows that did not land"
    assert _count(store, TaskRow) == 1


def test_dependencies_follow_the_tracker(store: Store) -> None:
    first = [Dependency(SRC, "1", "3"), Dependency(SRC, "2", "3")]
    with store.write() as conn:
        save_page(conn, _page([_task(1), _task(2), _task(3)], first), now=T0)
    with store.write() as conn:
        save_page(conn, _page([_task(3)], [Dependency(SRC, "2", "3")]), now=T0)
    with store.read() as conn:
        rows = conn.execute(select(DependencyRow.__table__)).all()  # type: ignore[attr-defined]
    assert [(r.blocker_id, r.blocked_id) for r in rows] == [("2", "3")]


def test_tracker_links_are_replaced_but_admin_links_kept(store: Store) -> None:
    milestone, kr = Ref(SRC, "100"), Ref("config", "KR1.1")
    confirmed = {"milestone_source": SRC, "milestone_id": "100", "kr_source": "config", "kr_id": "KR2.1",
                 "origin": "confirmed", "score": None, "synced_at": T0}  # fmt: skip
    with store.write() as conn:
        upsert(conn, MilestoneKeyResultRow.__table__, [confirmed])  # type: ignore[attr-defined]
        save_page(conn, _page([], links=[KeyResultLink(milestone, kr, LinkOrigin.TRACKER)]), now=T0)
    with store.write() as conn:
        save_page(conn, _page([], links=[]), now=T0)
    with store.read() as conn:
        rows = conn.execute(select(MilestoneKeyResultRow.__table__)).all()  # type: ignore[attr-defined]
    assert [(r.kr_id, r.origin) for r in rows] == [("KR2.1", "confirmed")]


def test_census_marks_missing_items_deleted(store: Store) -> None:
    with store.write() as conn:
        save_page(conn, _page([_task(1), _task(2), _task(3)]), now=T0)
    with store.write() as conn:
        assert mark_deleted(conn, SRC, ["1", "3", "100"], now=T0) == 1
    with store.read() as conn:
        deleted = (
            conn.execute(select(TaskRow.__table__.c.remote_id).where(TaskRow.__table__.c.deleted))
            .scalars()
            .all()
        )  # type: ignore[attr-defined]
    assert deleted == ["2"]


def test_status_history_round_trips_times_and_is_written_once(store: Store) -> None:
    from datetime import timezone

    local = datetime(2026, 3, 8, 1, 59, 59, 999000, tzinfo=timezone(timedelta(hours=-5)))
    change = StatusChange(SRC, "h9", "1", local, None, "3", None, StatusCategory.IN_PROGRESS)
    with store.write() as conn:
        assert save_page(conn, _page([_task(1)], status_changes=[change]), now=T0).changed >= 1
    with store.write() as conn:
        again = save_page(conn, _page([_task(1)], status_changes=[change]), now=T0)
    assert again.changed == 0
    with store.read() as conn:
        row = conn.execute(select(StatusChangeRow.__table__)).one()  # type: ignore[attr-defined]
    assert row.at == local and row.at.utcoffset() == timedelta(0)
    assert row.from_category is None and row.to_category == "in_progress"


def _roles(store: Store, remote_id: str) -> tuple[bool | None, bool | None]:
    """(milestone row deleted?, task row deleted?), None where there is no row."""
    found: list[bool | None] = []
    with store.read() as conn:
        for model in (MilestoneRow, TaskRow):
            table = model.__table__  # type: ignore[attr-defined]
            row = conn.execute(select(table.c.deleted).where(table.c.remote_id == remote_id)).first()
            found.append(None if row is None else bool(row.deleted))
    return found[0], found[1]


def test_an_item_holds_one_role_whichever_page_says_so(store: Store) -> None:
    """A task that became a milestone (or the reverse), seen by any pull, a whole one included."""
    with store.write() as conn:
        save_page(conn, _page([_task(7)]), now=T0)
    assert _roles(store, "100") == (False, None) and _roles(store, "7") == (None, False)

    promoted = RemotePage(source=SRC, stream="issues", milestones=[Milestone(SRC, "7", "PAY-7", "Task 7")],
                          tasks=[], cursor="c2")  # fmt: skip
    with store.write() as conn:
        counts = save_page(conn, promoted, now=T0 + timedelta(minutes=1))
    assert counts.changed >= 2
    assert _roles(store, "7") == (False, True), "the task row gives way to the milestone"

    demoted = RemotePage(source=SRC, stream="issues", milestones=[], tasks=[_task(7)], cursor="c3")
    with store.write() as conn:
        save_page(conn, demoted, now=T0 + timedelta(minutes=2))
    assert _roles(store, "7") == (True, False), "and back"
    assert _roles(store, "100") == (False, None), "other items keep their role"

    gone = RemotePage(source=SRC, stream="issues", milestones=[], tasks=[_task(7, deleted=True)], cursor="c4")
    with store.write() as conn:
        save_page(conn, gone, now=T0 + timedelta(minutes=3))
    assert _roles(store, "7") == (True, True), "a deleted row in one role revives nothing in the other"


def test_history_is_read_for_kept_tasks_of_each_source_alone(store: Store) -> None:
    """Task ids are unique per source only: a deleted task's id held live by another source must not
    bring the deleted one's history back."""
    from dataclasses import replace

    from bridge.store.snapshot import read_status_changes

    other = "acme-trello"
    with store.write() as conn:
        save_page(conn, _page([_task(1)], status_changes=[_change(1, 1)]), now=T0)
        gone = replace(_task(1, deleted=True), source=other)
        change = replace(_change(2, 1), source=other)
        save_page(
            conn, RemotePage(source=other, stream="cards", tasks=[gone], status_changes=[change]), now=T0
        )
    with store.read() as conn:
        changes = read_status_changes(conn)
        recent = read_status_changes(conn, since=T0 - timedelta(days=1))
    assert [(c.source, c.remote_id) for c in changes] == [(SRC, "h1")]
    assert [(c.source, c.remote_id) for c in recent] == [(SRC, "h1")]


def test_each_stored_domain_value_has_a_column_per_field() -> None:
    """A field added to a domain value needs its column (and the reverse): none is silently dropped."""
    from dataclasses import fields

    from bridge.store.pages import ITEM_ROWS, ITEM_TABLES

    for kind, model in ITEM_TABLES.items():
        table = model.__table__
        columns = {column.name for column in table.columns} - {"synced_at"}
        assert {f.name for f in fields(kind)} == columns, f"{kind.__name__} against table {table.name}"
    assert set(ITEM_ROWS) | {StatusChange} == set(ITEM_TABLES)


def test_rows_are_built_from_every_field() -> None:
    from bridge.store.pages import ITEM_ROWS

    task = Task(SRC, "1", "T-1", "Build", milestone_id="M", labels=("a", "b"), category=StatusCategory.DONE)
    (row,) = ITEM_ROWS[Task]([task], T0)
    assert row["labels"] == ["a", "b"] and row["milestone_id"] == "M" and row["synced_at"] == T0
    assert row["category"] == "done" and row["deleted"] is False


def test_chunks_cover_every_value_once_in_order() -> None:
    from bridge.store.chunks import IN_LIST_CHUNK, chunked

    values = list(range(2 * IN_LIST_CHUNK + 3))
    pieces = list(chunked(values))
    assert [len(p) for p in pieces] == [IN_LIST_CHUNK, IN_LIST_CHUNK, 3]
    assert [v for p in pieces for v in p] == values
    assert list(chunked([])) == []


def test_nul_in_any_text_is_replaced_counted_and_logged_once_per_item(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.domain import KeyResult, Objective, Team
    from bridge.store.models import KeyResultRow, ObjectiveRow, TeamRow

    nul = "\x00"
    task = _task(1, raw_status=f"In{nul}Progress", url=f"https://x/{nul}", labels=("a", f"b{nul}"))
    task = dataclasses.replace(task, title=f"Ti{nul}tle")
    clean = _task(2)
    page = RemotePage(
        source=SRC,
        stream="issues",
        milestones=[Milestone(SRC, "100", f"PAY-1{nul}00", f"Checkout{nul}v2")],
        tasks=[task, clean],
        status_changes=[
            StatusChange(
                SRC, "h1", "1", T0, f"To{nul}Do", "3", StatusCategory.TODO, StatusCategory.IN_PROGRESS
            )
        ],
        teams=[Team(SRC, "t1", f"web{nul}")],
        objectives=[Objective(SRC, "o1", f"Grow{nul}")],
        key_results=[KeyResult(SRC, "kr1", "o1", f"Conversion{nul}70%")],
        cursor="c1",
    )
    with caplog.at_level("WARNING", logger="bridge.store.pages"), store.write() as conn:
        counts = save_page(conn, page, now=T0)
    assert counts.cleaned == 5, (
        "the task (title, status, url, label, its history), milestone, team, objective, KR"
    )
    with store.read() as conn:
        stored_task = conn.execute(
            select(TaskRow.__table__).where(TaskRow.__table__.c.remote_id == "1")
        ).one()
        milestone = conn.execute(select(MilestoneRow.__table__)).one()
        change = conn.execute(select(StatusChangeRow.__table__)).one()
        team = conn.execute(select(TeamRow.__table__)).one()
        objective = conn.execute(select(ObjectiveRow.__table__)).one()
        key_result = conn.execute(select(KeyResultRow.__table__)).one()
    assert stored_task.title == "Ti\ufffdtle" and stored_task.raw_status == "In\ufffdProgress"
    assert stored_task.url == "https://x/\ufffd" and list(stored_task.labels) == ["a", "b\ufffd"]
    assert (milestone.key, milestone.title) == ("PAY-1\ufffd00", "Checkout\ufffdv2")
    assert change.from_status == "To\ufffdDo" and team.name == "web\ufffd"
    assert objective.title == "Grow\ufffd" and key_result.title == "Conversion\ufffd70%"
    warnings = [r.getMessage() for r in caplog.records if "NUL" in r.getMessage()]
    assert len(warnings) == 5, warnings
    assert sum(": PAY-1 holds NUL" in w for w in warnings) == 1, "one warning per item, named by its key"
    assert not any("PAY-2 " in w for w in warnings), "an item without NUL is not logged"
    assert not any(nul in w for w in warnings)


def test_a_page_without_nul_is_stored_as_it_came(store: Store) -> None:
    from bridge.store.pages import clean_page

    page = _page([_task(1), _task(2)])
    assert clean_page(page) == (page, 0)
    with store.write() as conn:
        assert save_page(conn, page, now=T0).cleaned == 0


# ---- hostile text, property-based --------------------------------------------------------------------

EXAMPLES = settings(
    max_examples=int(os.environ.get("HOSTILE_STORE_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""A few seconds per store; set HOSTILE_STORE_EXAMPLES for a deeper search."""

hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.lists(
    st.sampled_from(["\x00", "\x1b[2J", "\x1b]0;pwned\x07", "\u202e", "\U000e0041", "\x9b", "'", "\\"])
    | st.text(max_size=5),
    max_size=8,
).map("".join)
"""Any text (lone surrogates aside, which no JSON document from a tracker decodes to), or pieces of
hostile text run together."""


@EXAMPLES
@given(titles=st.lists(hostile, min_size=1, max_size=4), milestone=hostile, label=hostile, status=hostile)
def test_any_text_lands_with_nul_alone_replaced_and_counted(
    store: Store, titles: list[str], milestone: str, label: str, status: str
) -> None:
    tasks = [
        Task(source=SRC, remote_id=str(n), key=f"PAY-{n}", title=title, milestone_id="100",
             category=StatusCategory.IN_PROGRESS, created=T0, updated=T0, labels=(label,), raw_status=status)
        for n, title in enumerate(titles, start=1)
    ]  # fmt: skip
    page = RemotePage(
        source=SRC, stream="issues", milestones=[Milestone(SRC, "100", "PAY-100", milestone)], tasks=tasks
    )
    with store.write() as conn:
        counts = save_page(conn, page, now=T0)
    with store.read() as conn:
        stored = {row.remote_id: row for row in conn.execute(select(TaskRow.__table__))}
        (stored_milestone,) = conn.execute(select(MilestoneRow.__table__))

    def kept(text: str) -> str:
        return text.replace("\x00", "\ufffd")

    for task in tasks:
        row = stored[task.remote_id]
        assert (row.title, row.raw_status) == (kept(task.title), kept(status))
        assert list(row.labels) == [kept(label)]
    assert stored_milestone.title == kept(milestone)
    with_nul = sum("\x00" in t.title + label + status for t in tasks) + ("\x00" in milestone)
    assert counts.cleaned == with_nul


def test_a_task_with_every_field_set_loads_equal_to_the_task_saved(store: Store) -> None:
    """The loader builds tasks without `Task`'s checks (its values are already aware UTC): what it
    builds equals the task as saved, field by field, and compares, hashes and reads as one built
    the usual way."""
    from bridge.store.snapshot import load_snapshot

    saved = Task(
        SRC, "7", "PAY-7", "Refunds \u00e9t\u00e9", milestone_id="100", team="payments", work_type="backend",
        raw_status="3", category=StatusCategory.DONE, created=T0, updated=T0 + timedelta(days=2),
        started=T0 + timedelta(hours=5, microseconds=7), done=T0 + timedelta(days=2),
        url="https://example.test/PAY-7", labels=("a", "b"), watchers=4,
    )  # fmt: skip
    with store.write() as conn:
        save_page(conn, _page([saved]), now=T0)
    (loaded,) = load_snapshot(store).tasks
    assert loaded == saved and hash(loaded) == hash(saved) and repr(loaded) == repr(saved)
    assert all(getattr(loaded, f.name) == getattr(saved, f.name) for f in dataclasses.fields(Task))
    assert loaded.done is not None and loaded.done.tzinfo is UTC
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.title = "changed"  # type: ignore[misc]
