"""Milestone completions kept in the store, on SQLite and PostgreSQL: a tracker's first cycle records its
milestones silently, a milestone finished afterwards is announced once, re-opened and finished again it
is announced again; a dry run records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.analytics.report import analyse
from bridge.config import BridgeConfig
from bridge.domain import Milestone, Ref, RemotePage, StatusCategory
from bridge.reached import pending_announcements, record_completions
from bridge.store import Store, completions
from bridge.store.pages import save_page
from bridge.store.snapshot import load_snapshot

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)
M1 = Ref("t", "m1")


def pulled(store: Store, now: datetime, category: StatusCategory) -> None:
    """A pull storing milestone PAY-1 in `category` (and PAY-2, done from the start)."""
    page = RemotePage(
        "t",
        "issues",
        milestones=[
            Milestone("t", "m1", "PAY-1", "Card payments", category=category, updated=now, team="alpha"),
            Milestone("t", "m2", "PAY-2", "Refunds", category=StatusCategory.DONE, updated=START - 9 * DAY),
        ],
    )
    with store.write() as conn:
        save_page(conn, page, now=now)


def announced(store: Store, now: datetime) -> list[str]:
    snapshot = load_snapshot(store)
    report = analyse(snapshot, BridgeConfig(), now)
    return [a.headline for a in pending_announcements(store, BridgeConfig(), snapshot, report, now)]


def test_completions_are_kept_and_announced_once_per_completion(store: Store) -> None:
    pulled(store, START, StatusCategory.IN_PROGRESS)
    record_completions(store, ["t"], START)
    assert announced(store, START) == []
    with store.read() as conn:
        assert completions.watched_since(conn, "t") == START
        assert completions.load(conn, "t")[Ref("t", "m2")].silent, "done before the bridge watched"

    pulled(store, START + DAY, StatusCategory.DONE)
    seen = record_completions(store, ["t"], START + 2 * DAY, dry_run=True)
    assert seen[M1].announced, "a dry run sees the completion"
    with store.read() as conn:
        assert not completions.load(conn, "t")[M1].done, "and records nothing"

    record_completions(store, ["t"], START + 2 * DAY)
    assert announced(store, START + 2 * DAY) == ["Milestone reached: PAY-1 Card payments"]
    record_completions(store, ["t"], START + 3 * DAY)  # seen done again: nothing new
    with store.read() as conn:
        assert completions.load(conn, "t")[M1].completions == 1
        assert [c.name for c in completions.recent(conn, START)] == ["PAY-1 Card payments", "PAY-2 Refunds"]

    pulled(store, START + 4 * DAY, StatusCategory.TODO)
    record_completions(store, ["t"], START + 4 * DAY)
    assert announced(store, START + 4 * DAY) == []
    pulled(store, START + 5 * DAY, StatusCategory.DONE)
    record_completions(store, ["t"], START + 5 * DAY)
    (again,) = announced(store, START + 5 * DAY)
    assert again.startswith("Milestone reached again: PAY-1 Card payments (the 2nd time")
    assert announced(store, START + 5 * DAY + 30 * DAY) == [], "not announced late"
