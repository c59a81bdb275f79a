"""The `held` table: what a page shows of each item is stored and read back as it was; a page that does
not show links leaves the stored ones; a row older than the item's last change, or a place the bridge
moved, is known to need a read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.domain import ItemState, LinkTarget, Ref, RemotePage
from bridge.store import Store
from bridge.store.held import forget_held, load_held, save_held
from bridge.store.pages import save_page

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
SRC = "acme-jira"
LINK = LinkTarget("milestone-bridge:kr-1", "https://okr.example.com/kr/1", "Card payments")


def _state(n: int, **extra: object) -> ItemState:
    values: dict[str, object] = {
        "fields": {"rank": 3, "okr": "Card\x00 payments"},  # NUL: JSON text holds it on PostgreSQL too
        "labels": frozenset({"mb-at-risk", "ui"}),
        "container": "PAY",
        "position": "0|i000db:",
    } | extra
    return ItemState(Ref(SRC, str(n)), f"PAY-{n}", **values)  # type: ignore[arg-type]


def test_a_pages_states_are_stored_and_read_back_as_they_were(store: Store) -> None:
    page = RemotePage(SRC, "issues", held=[_state(1), _state(2, position=None, container=None)])
    with store.write() as conn:
        save_page(conn, page, now=T0)
    with store.read() as conn:
        held = load_held(conn, SRC, [Ref(SRC, "1"), Ref(SRC, "2"), Ref(SRC, "3")])
    assert held.states == {Ref(SRC, "1"): _state(1), Ref(SRC, "2"): _state(2, position=None, container=None)}
    assert held.links_at == {}, "the page did not show links"
    assert not held.stale(Ref(SRC, "1"), T0) and held.stale(Ref(SRC, "1"), T0 + timedelta(seconds=1))
    assert held.stale(Ref(SRC, "3"), None), "no row: read it"


def test_links_stay_until_a_change_and_a_moved_place_is_unknown(store: Store) -> None:
    ref = Ref(SRC, "1")
    with store.write() as conn:
        save_held(conn, SRC, [_state(1, links={LINK.global_id: LINK})], at=T0, links_known=True)
        save_page(
            conn, RemotePage(SRC, "issues", held=[_state(1, labels=frozenset())]), now=T0 + timedelta(1)
        )
    with store.read() as conn:
        held = load_held(conn, SRC, [ref])
    assert held.states[ref].labels == frozenset() and held.states[ref].links == {LINK.global_id: LINK}
    assert held.links_hold(ref, T0) and not held.links_hold(ref, T0 + timedelta(hours=1))
    with store.write() as conn:
        save_held(conn, SRC, [_state(1)], at=T0, links_known=False, unplaced=[ref])
    with store.read() as conn:
        held = load_held(conn, SRC, [ref])
    assert held.unplaced == {ref} and held.states[ref].position is None
    with store.write() as conn:
        forget_held(conn, SRC, ["1"])
    with store.read() as conn:
        assert load_held(conn, SRC, [ref]).states == {}
