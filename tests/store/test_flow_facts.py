"""Flow facts at pull time, their backfill, and the one shared analysis per change of the store."""

from __future__ import annotations

import pickle
import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from bridge.analysis_window import analysis_since
from bridge.analytics import analyse
from bridge.config import AnalyticsConfig, BridgeConfig
from bridge.domain import Milestone, RemotePage, StatusCategory, StatusChange, Task
from bridge.store import Store, analyses
from bridge.store.drafts import StoredDraft, save_drafts
from bridge.store.facts import backfill, data_version
from bridge.store.models import AnalysisRow, FlowFactRow
from bridge.store.pages import save_page
from bridge.store.snapshot import load_snapshot
from tests.store.flow_facts_check import assert_facts_match_history

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SOURCE = "t"
STATUSES = {
    "To Do": StatusCategory.TODO,
    "Doing": StatusCategory.IN_PROGRESS,
    "Review": StatusCategory.IN_PROGRESS,
    "Blocked": StatusCategory.WAITING,
    "Done": StatusCategory.DONE,
}
DUE = timedelta(days=9)
TRACKER = """
[trackers.t]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "J_EMAIL"
token_env = "J_TOKEN"
projects = ["T"]
status_map = { "To Do" = "todo", "Doing" = "in_progress", "Done" = "done" }
"""
CONFIG = BridgeConfig(analytics=AnalyticsConfig(forecast_runs=100, bootstrap_runs=100))


def history(rng: random.Random, item: str, created: datetime) -> list[StatusChange]:
    """A wandering history with the awkward cases: moves at the same instant, `Done` entered twice,
    reopening, waiting before and after the start, a history still open."""
    names = ["To Do"] + [rng.choice(list(STATUSES)) for _ in range(rng.randint(0, 9))]
    if rng.random() < 0.6:
        names += ["Done"] * rng.randint(1, 2)
    at, previous, changes = created, None, []
    for i, name in enumerate(names):
        if i and rng.random() > 0.1:  # one move in ten at the same instant as the one before
            at += timedelta(hours=rng.uniform(0.01, 200), microseconds=rng.randint(0, 999_999))
        at = min(at, NOW - timedelta(minutes=1))
        changes.append(
            StatusChange(
                SOURCE, f"{item}-{i}", item, at, previous, name,
                STATUSES[previous] if previous else None, STATUSES[name],
            )
        )  # fmt: skip
        previous = name
    return changes


def page(tasks: int, seed: int = 5, first: int = 0) -> RemotePage:
    rng = random.Random(seed)
    built, changes = [], []
    for n in range(first, first + tasks):
        created = NOW - timedelta(days=rng.uniform(1, 200))
        steps = history(rng, f"i{n}", created) if n % 13 else []  # some tasks have no history at all
        last = steps[-1] if steps else None
        built.append(
            Task(
                source=SOURCE,
                remote_id=f"i{n}",
                key=f"T-{n}",
                title=f"Task {n}",
                milestone_id=f"m{n % 4}",
                team=("alpha", "beta")[n % 2],
                work_type=("api", "ui", "qa")[n % 3],
                raw_status=last.to_status if last else "To Do",
                category=last.to_category if last else StatusCategory.TODO,
                created=created,
                updated=last.at if last else created,
                done=last.at if last and last.to_category is StatusCategory.DONE else None,
            )
        )
        changes.extend(steps)
    milestones = [
        Milestone(
            SOURCE, f"m{i}", f"M-{i}", f"Milestone {i}", value=3.0, effort=2.0, due=NOW + timedelta(days=9)
        )
        for i in range(4)
    ]
    return RemotePage(SOURCE, "issues", milestones=milestones, tasks=built, status_changes=changes)


def fill(store: Store, tasks: int = 300) -> None:
    store.upgrade()
    for first in range(0, tasks, 100):  # pages, as a pull writes them
        with store.write() as conn:
            save_page(conn, page(100, seed=first, first=first), now=NOW)


def report_json(store: Store) -> str:
    snapshot = load_snapshot(store, since=analysis_since(CONFIG.analytics, NOW))
    return analyse(snapshot, CONFIG, NOW, flow=True).to_json()


def count(store: Store, model: object) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar() or 0)  # type: ignore[attr-defined]


def drop_facts(store: Store) -> None:
    with store.write() as conn:
        conn.execute(delete(FlowFactRow.__table__))  # type: ignore[attr-defined]


def test_facts_written_with_the_history_replace_it_in_the_analysis(store_url: str) -> None:
    store = Store(store_url)
    try:
        fill(store)
        assert assert_facts_match_history(store) > 250
        with_facts = load_snapshot(store)
        assert not with_facts.status_changes, "tasks with facts have their history left unread"
        assert len(with_facts.flow_facts) > 250
        from_facts = report_json(store)
        drop_facts(store)
        assert load_snapshot(store).status_changes, "tasks without facts are analysed from history"
        assert report_json(store) == from_facts, "facts and history give the same analysis, to the digit"
    finally:
        store.close()


def test_tasks_whose_facts_are_missing_or_of_another_version_are_read_from_history(store_url: str) -> None:
    store = Store(store_url)
    try:
        fill(store)
        expected = report_json(store)
        facts = FlowFactRow.__table__  # type: ignore[attr-defined]
        with store.read() as conn:
            first, second = conn.execute(select(facts.c.item_id).order_by(facts.c.item_id).limit(2)).scalars()
        with store.write() as conn:
            conn.execute(delete(facts).where(facts.c.item_id == first))
            conn.execute(facts.update().where(facts.c.item_id == second).values(version=0))
        snapshot = load_snapshot(store)
        assert {c.item_id for c in snapshot.status_changes} == {first, second}
        assert {item for _, item in snapshot.flow_facts} == {str(i) for i in all_ids(store)} - {first, second}
        assert report_json(store) == expected
    finally:
        store.close()


def all_ids(store: Store) -> list[str]:
    facts = FlowFactRow.__table__  # type: ignore[attr-defined]
    with store.read() as conn:
        return list(conn.execute(select(facts.c.item_id)).scalars())


def test_backfill_resumes_in_chunks_and_ends_where_a_pull_would(store_url: str) -> None:
    store = Store(store_url)
    try:
        fill(store)
        expected = report_json(store)
        drop_facts(store)
        partial = backfill(store, NOW, chunk=40, budget_seconds=0)
        assert 0 < partial.tasks <= 40  # one chunk, then it stopped
        assert partial.remaining > 0
        rest = backfill(store, NOW, chunk=40)  # resumes: only what the first run left
        assert partial.tasks + rest.tasks == count(store, FlowFactRow)
        assert rest.remaining == 300 - count(store, FlowFactRow)  # the tasks without any history
        assert assert_facts_match_history(store) == count(store, FlowFactRow)
        assert report_json(store) == expected
    finally:
        store.close()


def test_a_pull_that_moves_a_task_updates_its_facts(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        fill(store, 100)
        moved = page(100, seed=0)
        task = next(t for t in moved.tasks if t.category is not StatusCategory.DONE and t.remote_id != "i0")
        steps = [c for c in moved.status_changes if c.item_id == task.remote_id]
        done = StatusChange(SOURCE, f"{task.remote_id}-x", task.remote_id, NOW, steps[-1].to_status, "Done",
                            steps[-1].to_category, StatusCategory.DONE)  # fmt: skip
        again = RemotePage(
            SOURCE,
            "issues",
            tasks=[replace(task, category=StatusCategory.DONE, raw_status="Done", done=NOW)],
            status_changes=[*steps, done],
        )
        with store.write() as conn:
            save_page(conn, again, now=NOW)
        assert assert_facts_match_history(store) > 0
        with store.read() as conn:
            facts = conn.execute(
                select(FlowFactRow.__table__.c.facts).where(  # type: ignore[attr-defined]
                    FlowFactRow.__table__.c.item_id == task.remote_id  # type: ignore[attr-defined]
                )
            ).scalar()
        assert facts is not None and '"done":' in facts and "null" not in facts.split('"done":')[1][:5]
    finally:
        store.close()


def test_the_data_version_counts_changes_only(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        fill(store, 100)
        with store.read() as conn:
            before = data_version(conn)
        with store.write() as conn:
            save_page(conn, page(100, seed=0), now=NOW + timedelta(hours=1))  # the same page again
        with store.read() as conn:
            assert data_version(conn) == before, "a page that changed nothing leaves the version"
        with store.write() as conn:
            save_page(conn, page(1, seed=99, first=500), now=NOW)
        with store.read() as conn:
            assert data_version(conn) == before + 1
    finally:
        store.close()


def count_analyses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for every analysis the shared analysis runs."""
    from bridge import shared_analysis as shared

    runs: list[int] = []
    real = shared.analyse

    def counted(*args: object, **kwargs: object) -> object:
        runs.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shared, "analyse", counted)
    return runs


def test_an_unchanged_store_reuses_its_analysis(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge import shared_analysis as shared

    store = Store(store_url)
    runs = count_analyses(monkeypatch)
    try:
        fill(store, 100)
        first = shared.shared_analysis(store, CONFIG, NOW)
        again = shared.shared_analysis(store, CONFIG, NOW + timedelta(hours=3))
        assert not first.reused and again.reused and len(runs) == 1
        assert again.report == first.report, "read back as it was stored"
        assert again.report.to_json() == first.report.to_json()
        other = CONFIG.model_copy(
            update={"analytics": AnalyticsConfig(forecast_runs=101, bootstrap_runs=100)}
        )
        assert not shared.shared_analysis(store, other, NOW).reused, "other settings, other analysis"
        assert not shared.shared_analysis(store, CONFIG, NOW + timedelta(days=1)).reused, "a new UTC day"
        with store.write() as conn:
            save_page(conn, page(1, seed=99, first=500), now=NOW)
        assert not shared.shared_analysis(store, CONFIG, NOW + timedelta(days=1)).reused, "changed data"
        assert len(runs) == 4
    finally:
        store.close()


def test_replicas_on_postgresql_analyse_a_version_once(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge import shared_analysis as shared

    setup = Store(pg_url)
    fill(setup, 100)
    setup.close()
    runs: list[int] = []
    real = shared.analyse

    def slow(*args: object, **kwargs: object) -> object:
        runs.append(1)
        threading.Event().wait(0.5)  # long enough for the others to arrive while it runs
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shared, "analyse", slow)
    replicas = [Store(pg_url) for _ in range(3)]  # one engine each, as separate processes have
    found: list[bool] = []

    def replica(store: Store) -> None:
        found.append(shared.shared_analysis(store, CONFIG, NOW).reused)

    threads = [threading.Thread(target=replica, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in replicas:
        store.close()
    assert len(runs) == 1 and sorted(found) == [False, True, True]


def test_a_stored_analysis_never_runs_foreign_code(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        fill(store, 100)
        key = shared_key(store)
        with store.write() as conn:
            analyses.save(conn, key, {"x": 1}, now=NOW, seconds=0.1)
            conn.execute(
                AnalysisRow.__table__.update().values(report=pickle.dumps(print))  # type: ignore[attr-defined]
            )
        with store.read() as conn:
            assert analyses.find(conn, key) is None
    finally:
        store.close()


def shared_key(store: Store) -> analyses.AnalysisKey:
    from bridge.shared_analysis import key_for

    return key_for(store, CONFIG, NOW, flow=False)


def test_bridge_report_on_an_unchanged_store_answers_from_the_stored_analysis(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from bridge import shared_analysis as shared
    from bridge.report.commands import report_command

    store = Store(sqlite_url)
    fill(store, 100)
    store.close()
    config = CONFIG.model_copy(update={"store": CONFIG.store.model_copy(update={"url": sqlite_url})})

    def report(as_json: bool) -> str:
        out = io.StringIO()
        report_command(config, now=NOW, as_json=as_json, team=None, out=out)
        return out.getvalue()

    first_json, first_text = report(True), report(False)
    monkeypatch.setattr(shared, "analyse", None)  # any analysis now would fail
    assert report(True) == first_json
    assert report(False) == first_text
    assert '"milestones"' in first_json and "M-" in first_text


def test_a_cycles_analysis_is_never_served_where_flow_figures_are_needed(sqlite_url: str) -> None:
    from bridge import shared_analysis as shared

    store = Store(sqlite_url)
    try:
        fill(store, 100)
        cycle = shared.shared_analysis(store, CONFIG, NOW)  # a sync cycle: no flow figures
        assert not cycle.reused and cycle.report.flows == ()
        assert shared.stored_document(store, CONFIG, NOW) is None, "the cycle's analysis has no document"
        reports = shared.shared_analysis(store, CONFIG, NOW, flow=True)
        assert not reports.reused and reports.report.flows, "a report needs the flow figures"
        again = shared.shared_analysis(store, CONFIG, NOW)
        assert again.reused and again.report.flows == ()
        assert shared.shared_analysis(store, CONFIG, NOW, flow=True).reused
        assert shared.stored_document(store, CONFIG, NOW) == reports.report.to_json()
    finally:
        store.close()


def test_a_document_stored_in_an_older_json_shape_is_made_again_not_served(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an upgrade that changes the report's JSON shape, `bridge report --json` on an unchanged
    store, the same day, prints the new shape: the shape's version is part of the stored analysis's key."""
    from bridge import shared_analysis as shared

    store = Store(sqlite_url)
    try:
        fill(store, 100)
        with monkeypatch.context() as older:
            older.setattr(shared, "DOCUMENT_SHAPE", shared.DOCUMENT_SHAPE - 1)
            assert not shared.shared_analysis(store, CONFIG, NOW, flow=True).reused
            assert shared.stored_document(store, CONFIG, NOW) is not None
        assert shared.stored_document(store, CONFIG, NOW) is None, "the older shape's document is not served"
        assert not shared.shared_analysis(store, CONFIG, NOW, flow=True).reused
        assert shared.stored_document(store, CONFIG, NOW) is not None
    finally:
        store.close()


def test_a_reports_analysis_serves_the_next_cycle(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `bridge report` the daemon's next quiet cycle analyses nothing: the reports' analysis holds
    everything a cycle's does (the same figures; the flow charts besides)."""
    from bridge import shared_analysis as shared

    store = Store(sqlite_url)
    runs = count_analyses(monkeypatch)
    try:
        fill(store, 100)
        reports = shared.shared_analysis(store, CONFIG, NOW, flow=True)
        cycle = shared.shared_analysis(store, CONFIG, NOW + timedelta(hours=1))
        assert not reports.reused and cycle.reused and len(runs) == 1
        assert cycle.report.flows == () and not cycle.key.flow, "kept under the cycle's own key"
        with store.read() as conn:
            assert analyses.find(conn, cycle.key) == cycle.report, "the next cycles read the smaller one"
        fresh = analyse(load_snapshot(store, since=analysis_since(CONFIG.analytics, NOW)), CONFIG, NOW)
        assert replace(cycle.report, flows=()).to_json() == fresh.to_json()
    finally:
        store.close()


def test_the_stored_json_document_carries_the_okr_drafts_as_they_are_now(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import json

    from bridge import shared_analysis as shared
    from bridge.report.commands import report_command

    store = Store(sqlite_url)
    fill(store, 100)
    config = CONFIG.model_copy(update={"store": CONFIG.store.model_copy(update={"url": sqlite_url})})

    def drafts_shown() -> list[str]:
        out = io.StringIO()
        report_command(config, now=NOW, as_json=True, team=None, out=out)
        return [d["title"] for d in json.loads(out.getvalue())["okr_drafts"]["key_results"]]

    try:
        assert drafts_shown() == []
        with store.write() as conn:  # drafts change no data the analysis reads
            save_drafts(conn, [stored_draft()], now=NOW)
        monkeypatch.setattr(shared, "analyse", None)  # answered from the stored document
        assert drafts_shown() == ["Reach 40 visitors"]
    finally:
        store.close()


def stored_draft() -> StoredDraft:
    return StoredDraft(
        id="KRD-a", kind="key_result", position=0, title="Reach 40 visitors", measure="visitors",
        unit="visitors", parent_id=None, members=("acme:M-1",), value=10.0, share=0.25,
        reasons=("shared words: blog (2 of 2)",), created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_the_backfill_command_reports_what_it_did(
    tmp_path: object, run_cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path

    folder = Path(str(tmp_path))
    url = f"sqlite:///{folder / 'store.db'}"
    store = Store(url)
    try:
        fill(store, 100)
        drop_facts(store)
        config = folder / "bridge.toml"
        config.write_text(f'[store]\nurl = "{url}"\n' + TRACKER)
        monkeypatch.setenv("J_EMAIL", "someone@example.com")
        monkeypatch.setenv("J_TOKEN", "token")
        result = run_cli("db", "backfill-facts", "--config", str(config), "--json")  # type: ignore[operator]
        assert result.exit_code == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["tasks"] == count(store, FlowFactRow) > 0 and found["remaining"] == 100 - found["tasks"]
        assert assert_facts_match_history(store) == found["tasks"]
    finally:
        store.close()


def test_the_drafts_spliced_into_a_stored_document_give_the_same_text(sqlite_url: str) -> None:
    """`with_drafts` writes the drafts into the stored document's text; the result is exactly what
    decoding the document, adding the drafts and encoding it again gives (empty drafts and some)."""
    import json

    from bridge.report.drafts import DraftView, drafts_json, with_drafts

    store = Store(sqlite_url)
    try:
        fill(store, 100)
        document = analyse(load_snapshot(store), CONFIG, NOW, flow=True).to_json()
    finally:
        store.close()
    odd = ("a\nb", '"okr_drafts": 1')
    hostile = replace(stored_draft(), title='Reach "40"\n visitors \u202e', reasons=odd)
    milestone = Milestone(source="acme", remote_id="M-1", key="M-1", title="Blog \u00e9t\u00e9")
    for view in (DraftView((), {}), DraftView((stored_draft(), hostile), {"acme:M-1": milestone})):
        slow = json.loads(document)
        slow["okr_drafts"] = drafts_json(view)
        assert with_drafts(document, view) == json.dumps(slow, indent=2, ensure_ascii=False)
    assert json.loads(with_drafts('{"a": 1}', DraftView((), {})))["okr_drafts"]["key_results"] == []
