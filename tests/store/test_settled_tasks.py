"""Tasks done before the analysis window load light (`SettledTask`) and read the rest on demand."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bridge.analysis_window import analysis_since
from bridge.analytics import analyse
from bridge.config import AnalyticsConfig
from bridge.domain import Milestone, RemotePage, StatusCategory, Task
from bridge.store import Store
from bridge.store.models import TaskRow
from bridge.store.pages import save_page
from bridge.store.snapshot import SettledTask, load_snapshot
from bridge.sync.explain import find_item

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SETTINGS = AnalyticsConfig(forecast_runs=100, bootstrap_runs=100)
SINCE = analysis_since(SETTINGS, NOW)
LONG_AGO = SINCE - timedelta(days=40)


def _task(n: int, *, done: datetime | None, updated: datetime) -> Task:
    return Task(
        source="t",
        remote_id=f"{n}",
        key=f"T-{n}",
        title=f"Task number {n}",
        milestone_id="m1",
        team="payments",
        work_type="backend",
        raw_status="Done" if done else "Doing",
        category=StatusCategory.DONE if done else StatusCategory.IN_PROGRESS,
        created=LONG_AGO - timedelta(days=10),
        updated=updated,
        started=LONG_AGO - timedelta(days=5),
        done=done,
        url=f"https://example.test/T-{n}",
        labels=("api", f"n{n}"),
        watchers=n,
    )


def _fill(url: str) -> tuple[Store, list[Task]]:
    store = Store(url)
    store.upgrade()
    tasks = [
        _task(1, done=LONG_AGO, updated=LONG_AGO),  # settled
        _task(2, done=LONG_AGO, updated=NOW - timedelta(days=1)),  # done long ago, edited lately
        _task(3, done=NOW - timedelta(days=2), updated=NOW - timedelta(days=2)),  # done in the window
        _task(4, done=None, updated=NOW - timedelta(days=3)),  # open
        _task(5, done=LONG_AGO - timedelta(days=1), updated=LONG_AGO),  # settled
    ]
    milestone = Milestone("t", "m1", "T-M1", "Checkout", team="payments", created=LONG_AGO)
    page = RemotePage("t", "issues", milestones=[milestone], tasks=tasks)
    with store.write() as conn:
        save_page(conn, page, now=NOW)
    return store, tasks


def test_settled_tasks_load_light_and_read_the_rest_on_first_access(store_url: str) -> None:
    store, stored = _fill(store_url)
    try:
        snapshot = load_snapshot(store, since=SINCE)
        settled = [t for t in snapshot.tasks if isinstance(t, SettledTask)]
        assert sorted(t.remote_id for t in settled) == ["1", "5"]
        # what the analysis reads is there without a query; the report leaves the rest unread
        assert {(t.milestone_id, t.team, t.work_type, t.category, t.done) for t in settled} == {
            ("m1", "payments", "backend", StatusCategory.DONE, LONG_AGO),
            ("m1", "payments", "backend", StatusCategory.DONE, LONG_AGO - timedelta(days=1)),
        }
        analyse(snapshot, SETTINGS, NOW, flow=True)
        assert all(t._details is not None for t in settled)
        # one access reads every settled task's other fields: each task equals the one stored
        assert settled[0].title.startswith("Task number")
        assert all(t._details is None for t in settled)
        by_id = {t.remote_id: t for t in stored}
        for task in snapshot.tasks:
            assert task == by_id[task.remote_id]
            assert hash(task) == hash(by_id[task.remote_id])
        assert repr(settled[0]) == repr(by_id[settled[0].remote_id])
        # the same tasks as a load without the window (which builds every one whole)
        assert sorted(snapshot.tasks, key=lambda t: t.remote_id) == sorted(
            load_snapshot(store).tasks, key=lambda t: t.remote_id
        )
    finally:
        store.close()


def test_a_settled_task_changed_after_the_load_reads_its_row_as_it_is_now(store_url: str) -> None:
    store, _ = _fill(store_url)
    try:
        snapshot = load_snapshot(store, since=SINCE)
        with store.write() as conn:  # reopened after the load: no longer done
            conn.execute(
                update(TaskRow.__table__)  # type: ignore[arg-type]
                .where(TaskRow.__table__.c.remote_id == "5")  # type: ignore[attr-defined]
                .values(category=StatusCategory.TODO.value, title="Reopened")
            )
        titles = {t.remote_id: t.title for t in snapshot.tasks}
        assert titles["5"] == "Reopened"
        assert titles["1"] == "Task number 1"
    finally:
        store.close()


def test_a_settled_task_pickles_and_copies_as_a_plain_task(tmp_path: Path) -> None:
    store, stored = _fill(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        settled = [t for t in load_snapshot(store, since=SINCE).tasks if isinstance(t, SettledTask)]
        copied = pickle.loads(pickle.dumps(settled[0]))
        assert type(copied) is Task
        assert copied == next(t for t in stored if t.remote_id == settled[0].remote_id)
        assert type(copy.copy(settled[1])) is Task
    finally:
        store.close()


def test_explain_finds_a_settled_task_by_its_title(tmp_path: Path) -> None:
    store, _ = _fill(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        snapshot = load_snapshot(store, since=SINCE)
        found = find_item(snapshot, "task number 5")
        assert isinstance(found, SettledTask)
        assert (found.key, found.url, found.labels, found.watchers) == (
            "T-5",
            "https://example.test/T-5",
            ("api", "n5"),
            5,
        )
    finally:
        store.close()
