"""The `okr_draft` table: drafts kept by id while their members stay, dropped when they go, unless adopted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.store import Store
from bridge.store.drafts import StoredDraft, mark_adopted, read_drafts, save_drafts

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def draft(draft_id: str, position: int, members: tuple[str, ...], kind: str = "key_result") -> StoredDraft:
    return StoredDraft(
        id=draft_id, kind=kind, position=position, title=f"Reach {{target}} visitors ({draft_id})",
        measure="visitors", unit="visitors", parent_id=None, members=members, value=10.0 * len(members),
        share=0.25, reasons=("shared words: blog (2 of 2)",), created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_drafts_keep_their_first_time_and_adoption_and_go_when_no_longer_drafted(store_url: str) -> None:
    store = Store(store_url)
    store.upgrade()
    try:
        with store.write() as conn:
            first = save_drafts(
                conn, [draft("KRD-a", 0, ("j:1", "j:2")), draft("KRD-b", 1, ("j:3", "j:4"))], now=NOW
            )
            mark_adopted(conn, "KRD-b", "config:KR1.1", now=NOW)
        assert (first.kept, first.added, first.dropped) == (0, 2, 0)
        later = NOW + timedelta(days=1)
        with store.write() as conn:
            again = save_drafts(
                conn, [draft("KRD-a", 1, ("j:1", "j:2")), draft("KRD-c", 0, ("j:5", "j:6"))], now=later
            )
        # KRD-b is no longer drafted but was adopted: it stays, as the record of what it became
        assert (again.kept, again.added, again.dropped) == (1, 1, 0)
        with store.read() as conn:
            stored = {d.id: d for d in read_drafts(conn)}
        assert set(stored) == {"KRD-a", "KRD-b", "KRD-c"}
        assert stored["KRD-a"].created_at == NOW and stored["KRD-a"].updated_at == later
        assert stored["KRD-a"].position == 1 and stored["KRD-a"].members == ("j:1", "j:2")
        assert stored["KRD-b"].adopted_as == "config:KR1.1" and stored["KRD-b"].adopted_at == NOW
        assert stored["KRD-c"].reasons == ("shared words: blog (2 of 2)",)
        with store.write() as conn:
            gone = save_drafts(conn, [], now=later)
        assert gone.dropped == 2
        with store.read() as conn:
            assert [d.id for d in read_drafts(conn)] == ["KRD-b"]
    finally:
        store.close()
