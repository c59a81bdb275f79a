"""The write-back plan: a pure diff of desired, current and last-written state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteKind
from bridge.sync.plan import (
    Desired,
    PlanTooLarge,
    candidates,
    holding_items,
    longest_increasing_run,
    order_writes,
    plan,
    same,
)
from bridge.written import Written, WrittenValue

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MANAGED = frozenset({"mb-bottleneck", "mb-at-risk"})
"""The bridge's configured label names (prefix `mb-`)."""


def ref(n: int) -> Ref:
    return Ref("acme", str(n))


def make_plan(desired: list[Desired], states: list[ItemState], written: Written | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return plan(
        "acme",
        {d.item: d for d in desired},
        {s.item: s for s in states},
        written or Written(),
        opt_out_label="bridge-ignore",
        **{"managed_labels": MANAGED, **kw},  # type: ignore[arg-type]
    )


def test_a_field_is_written_only_when_it_differs() -> None:
    wish = Desired(ref(1), "A-1", fields={"rank": 3})
    assert [w.value for w in make_plan([wish], [ItemState(ref(1), "A-1", fields={"rank": None})]).writes] == [
        3
    ]
    assert make_plan([wish], [ItemState(ref(1), "A-1", fields={"rank": 3.0})]).writes == []
    assert make_plan([wish], [ItemState(ref(1), "A-1", fields={"rank": "3"})]).writes == [], "Jira text of 3"


def test_a_value_a_user_changed_is_restored_and_said_so() -> None:
    written = Written({(ref(1), "rank"): WrittenValue(3, T0)})
    result = make_plan(
        [Desired(ref(1), "A-1", fields={"rank": 3})], [ItemState(ref(1), "A-1", fields={"rank": 7})], written
    )
    (write,) = result.writes
    assert (write.value, write.previous) == (3, 7)
    assert result.restores == [write] and "restoring" in write.reason


def test_only_the_bridges_labels_are_added_or_removed() -> None:
    """`mb-old` is the bridge's because `written` says it added it (under an earlier label name)."""
    state = ItemState(ref(1), "A-1", labels=frozenset({"team-x", "mb-bottleneck", "mb-old", "bottleneck"}))
    wish = Desired(ref(1), "A-1", labels=frozenset({"mb-at-risk"}))
    written = Written({(ref(1), "labels"): WrittenValue(["mb-bottleneck", "mb-old"], T0)})
    writes = make_plan([wish], [state], written, label_colours={"mb-at-risk": "orange"}).writes
    assert [(w.kind, w.field, w.value) for w in writes] == [
        (WriteKind.LABEL_ADD, "mb-at-risk", "orange"),
        (WriteKind.LABEL_REMOVE, "mb-bottleneck", None),
        (WriteKind.LABEL_REMOVE, "mb-old", None),
    ]


def test_a_users_label_sharing_the_prefix_is_never_removed() -> None:
    """A user's `mb-mine` carries the bridge's prefix but is not one of its label names, and `written`
    never recorded the bridge adding it: it stays, while the bridge's own label that no longer applies
    goes."""
    state = ItemState(ref(1), "A-1", labels=frozenset({"mb-mine", "mb-bottleneck"}))
    written = Written({(ref(1), "labels"): WrittenValue(["mb-bottleneck"], T0)})
    for known in (Written(), written):
        writes = make_plan([Desired(ref(1), "A-1")], [state], known).writes
        assert [(w.kind, w.field) for w in writes] == [(WriteKind.LABEL_REMOVE, "mb-bottleneck")]


def test_a_prefix_colliding_with_users_labels_removes_none_of_theirs() -> None:
    """With `label_prefix = "okr-"`, users' `okr-KR1.1` labels (which the OKR rules read) share the
    prefix: only the bridge's own `okr-at-risk` is taken back, also when the bridge wants labels added."""
    managed = frozenset({"okr-bottleneck", "okr-at-risk"})
    states = [
        ItemState(ref(1), "A-1", labels=frozenset({"okr-KR1.1", "okr-at-risk"})),
        ItemState(ref(2), "A-2", labels=frozenset({"okr-KR1.2", "okr-KR2.1"})),
    ]
    wishes = [Desired(ref(1), "A-1"), Desired(ref(2), "A-2", labels=frozenset({"okr-bottleneck"}))]
    writes = make_plan(wishes, states, managed_labels=managed).writes
    assert [(w.kind, w.item, w.field) for w in writes] == [
        (WriteKind.LABEL_REMOVE, ref(1), "okr-at-risk"),
        (WriteKind.LABEL_ADD, ref(2), "okr-bottleneck"),
    ]


def test_an_opted_out_item_gets_no_write() -> None:
    state = ItemState(ref(1), "A-1", fields={"rank": 9}, labels=frozenset({"bridge-ignore", "mb-old"}))
    result = make_plan([Desired(ref(1), "A-1", fields={"rank": 1})], [state])
    assert result.writes == [] and result.opted_out == [ref(1)]


def test_links_are_added_once_and_only_the_bridges_removed() -> None:
    target = LinkTarget("milestone-bridge:kr:cfg:KR1", "https://okr.example.com/KR1", "Key result: KR1")
    old = LinkTarget("milestone-bridge:kr:cfg:KR0", "https://okr.example.com/KR0", "Key result: KR0")
    theirs = LinkTarget("milestone-bridge:kr:cfg:KR9", "https://okr.example.com/KR9", "Key result: KR9")
    wish = Desired(ref(1), "A-1", links={target.global_id: target})
    added = make_plan([wish], [ItemState(ref(1), "A-1")]).writes
    assert [(w.kind, w.field, w.value) for w in added] == [(WriteKind.LINK, target.global_id, target)]
    written = Written(
        {
            (ref(1), "link:" + target.global_id): WrittenValue(target, T0),
            (ref(1), "link:" + old.global_id): WrittenValue(old, T0),
        }
    )
    in_place = ItemState(ref(1), "A-1", links={target.global_id: target})
    assert make_plan([wish], [in_place], written).writes == []
    # The item also carries a link the bridge wrote before and one it never wrote (a user's, even if a
    # tracker cannot tell them apart): only the bridge's old one goes.
    state = ItemState(
        ref(1), "A-1", links={target.global_id: target, old.global_id: old, theirs.global_id: theirs}
    )
    (removal,) = make_plan([wish], [state], written).writes
    assert (removal.kind, removal.field, removal.value) == (WriteKind.LINK, old.global_id, None)


def test_a_link_the_item_carries_twice_is_written_again_to_keep_one_copy() -> None:
    """Two copies of the bridge's link on an item (two runs racing, a creation whose answer was lost):
    the link is written again, which leaves one; wanted no more, it is removed, every copy with it."""
    target = LinkTarget("milestone-bridge:kr:cfg:KR1", "https://okr.example.com/KR1", "Key result: KR1")
    written = Written({(ref(1), "link:" + target.global_id): WrittenValue(target, T0)})
    state = ItemState(
        ref(1), "A-1", links={target.global_id: target}, duplicates=frozenset({target.global_id})
    )
    wish = Desired(ref(1), "A-1", links={target.global_id: target})
    (write,) = make_plan([wish], [state], written).writes
    assert (write.kind, write.value) == (WriteKind.LINK, target) and "more than once" in write.reason
    (removal,) = make_plan([Desired(ref(1), "A-1")], [state], written).writes
    assert (removal.kind, removal.field, removal.value) == (WriteKind.LINK, target.global_id, None)


def test_a_link_the_tracker_shows_differently_is_still_in_place() -> None:
    """An Asana goal relationship has no title or address of its own: presence is what counts."""
    target = LinkTarget("milestone-bridge:kr:asana:77", "", "Key result: Grow")
    shown = LinkTarget("milestone-bridge:kr:asana:77", "https://app.asana.com/0/goal/77", "Grow")
    written = Written({(ref(1), "link:" + target.global_id): WrittenValue(target, T0)})
    wish = Desired(ref(1), "A-1", links={target.global_id: target})
    assert (
        make_plan([wish], [ItemState(ref(1), "A-1", links={target.global_id: shown})], written).writes == []
    )


def test_an_item_gone_from_the_tracker_is_reported_missing() -> None:
    result = make_plan([Desired(ref(1), "A-1", fields={"rank": 1})], [])
    assert result.writes == [] and result.missing == [ref(1)]


def test_writes_past_the_budget_wait() -> None:
    wishes = [Desired(ref(n), f"A-{n}", fields={"rank": n}) for n in range(5)]
    result = make_plan(wishes, [ItemState(ref(n), f"A-{n}") for n in range(5)], budget=2)
    assert len(result.writes) == 2 and len(result.deferred) == 3


def test_a_plan_changing_too_much_needs_force() -> None:
    wishes = [Desired(ref(n), f"A-{n}", fields={"rank": n}) for n in range(20)]
    states = [ItemState(ref(n), f"A-{n}") for n in range(20)]
    with pytest.raises(PlanTooLarge, match="--force"):
        make_plan(wishes, states, items_total=30, max_change_share=0.5)
    assert len(make_plan(wishes, states, items_total=30, max_change_share=0.5, force=True).writes) == 20
    assert len(make_plan(wishes, states, items_total=40, max_change_share=0.5).writes) == 20
    few = make_plan(wishes[:5], states[:5], items_total=5, max_change_share=0.5)
    assert len(few.writes) == 5, "small plans are not guarded"


def test_the_guard_weighs_changes_to_what_the_bridge_holds_against_the_items_holding_it() -> None:
    """Clearing the rank of 20 ranked items is the same change whether the tracker also lists 5 or 500
    items the bridge never wrote to and has nothing for (done items, cards no milestone claims)."""
    ranked = [Desired(ref(n), f"A-{n}", fields={"rank": None}) for n in range(20)]
    rows = {(ref(n), "rank"): WrittenValue(n + 1, T0) for n in range(20)}
    rows[(ref(20), "rank")] = WrittenValue(None, T0)  # cleared earlier: holds nothing now
    rows[(ref(21), "labels")] = WrittenValue([], T0)
    rows[(ref(22), "labels")] = WrittenValue(["mb-at-risk"], T0)
    written = Written(rows)
    assert holding_items([ref(n) for n in range(600)], written) == {*(ref(n) for n in range(20)), ref(22)}
    states = [ItemState(ref(n), f"A-{n}", fields={"rank": n + 1}) for n in range(20)]
    for bare in (5, 500):
        with pytest.raises(PlanTooLarge) as caught:
            make_plan(ranked, states, written, items_total=20 + bare, items_held=21, max_change_share=0.5)
        assert "the values of 20 of the 21 items holding the bridge's values (95%)" in str(caught.value)
    assert (
        len(make_plan(ranked, states, written, items_total=520, items_held=41, max_change_share=0.5).writes)
        == 20
    )


def test_first_writes_are_weighed_against_every_item() -> None:
    """Nothing written yet: the plan is weighed against the tracker's items, as before."""
    wishes = [Desired(ref(n), f"A-{n}", fields={"rank": n + 1}) for n in range(12)]
    states = [ItemState(ref(n), f"A-{n}") for n in range(12)]
    assert len(make_plan(wishes, states, items_total=30, max_change_share=0.5).writes) == 12
    with pytest.raises(PlanTooLarge, match=r"would change 12 of 20 items \(60%\)"):
        make_plan(wishes, states, items_total=20, max_change_share=0.5)


def test_only_items_that_may_differ_are_read() -> None:
    written = Written(
        {
            (ref(1), "rank"): WrittenValue(1, T0),
            (ref(2), "rank"): WrittenValue(2, T0),
            (ref(3), "rank"): WrittenValue(3, T0),
        }
    )
    desired = {
        ref(1): Desired(ref(1), "A-1", fields={"rank": 1}),  # as written, untouched since
        ref(2): Desired(ref(2), "A-2", fields={"rank": 5}),  # the wish moved
        ref(3): Desired(ref(3), "A-3", fields={"rank": 3}),  # as written, but edited in the tracker since
        ref(4): Desired(ref(4), "A-4"),  # nothing to say, nothing written
    }
    updated = {ref(1): T0 - timedelta(hours=1), ref(2): T0, ref(3): T0 + timedelta(minutes=5), ref(4): T0}
    assert candidates(desired, written, updated) == [ref(2), ref(3)]


def test_numbers_compare_as_the_tracker_shows_them() -> None:
    assert same(3, 3.0) and same("3", 3) and same(None, "") and not same(3, 4) and not same("x", 3)


# ---- order ---------------------------------------------------------------------------------------------


def apply_moves(order: list[Ref], writes: list[FieldWrite]) -> list[Ref]:
    """What a tracker does with the moves, one after another."""
    current = list(order)
    for write in writes:
        after, before = write.value
        current.remove(write.item)
        if after is not None:
            current.insert(current.index(after) + 1, write.item)
        else:
            current.insert(current.index(before), write.item)
    return current


def test_order_moves_only_what_is_out_of_place() -> None:
    # Tracker order a b c d e; ranks 1 3 2 4 5: moving one item (c before b, or b after c) is enough.
    ranks = [1, 3, 2, 4, 5]
    entries = [((rank,), position, ref(position), f"A-{position}") for position, rank in enumerate(ranks)]
    writes = order_writes("backlog", entries)
    assert len(writes) == 1
    assert apply_moves([ref(n) for n in range(5)], writes) == [ref(0), ref(2), ref(1), ref(3), ref(4)]


def test_an_item_first_in_the_wanted_order_moves_before_the_first_that_stays() -> None:
    entries = [((2,), 0, ref(0), "A-0"), ((3,), 1, ref(1), "A-1"), ((1,), 2, ref(2), "A-2")]
    (write,) = order_writes("backlog", entries)
    assert write.item == ref(2) and write.value == (None, ref(0))


@given(st.permutations(list(range(12))))
def test_moves_give_the_wanted_order_with_the_fewest_moves(ranks: list[int]) -> None:
    entries = [((rank,), position, ref(position), f"A-{position}") for position, rank in enumerate(ranks)]
    writes = order_writes("backlog", entries)
    result = apply_moves([ref(n) for n in range(len(ranks))], writes)
    assert [ranks[int(r.remote_id)] for r in result] == sorted(ranks)
    assert len(writes) == len(ranks) - len(longest_increasing_run(ranks))


def test_equal_ranks_keep_their_current_order() -> None:
    entries = [((1,), "0|b", ref(0), "A-0"), ((1,), "0|a", ref(1), "A-1"), ((0,), "0|c", ref(2), "A-2")]
    writes = order_writes("backlog", entries)
    assert apply_moves([ref(1), ref(0), ref(2)], writes) == [ref(2), ref(1), ref(0)]
    assert len(writes) == 1


def test_a_wished_comment_is_posted_until_written_records_its_marker_and_never_again() -> None:
    marker = "[milestone-bridge:reached:acme:1:1]"
    wish = Desired(ref(1), "A-1", comments={marker: "Milestone reached: A-1"})
    state = ItemState(ref(1), "A-1")
    (write,) = make_plan([wish], [state]).writes
    assert (write.kind, write.field, write.value) == (WriteKind.COMMENT, marker, "Milestone reached: A-1")
    assert candidates({ref(1): wish}, Written(), {}) == [ref(1)]
    posted = Written({(ref(1), marker): WrittenValue("Milestone reached: A-1", T0)})
    assert make_plan([wish], [state], posted).writes == []
    assert candidates({ref(1): wish}, posted, {}) == [], "a posted comment needs no read"
    # a comment no longer wished (the milestone re-opened) stays: it is the item's history
    assert make_plan([Desired(ref(1), "A-1")], [state], posted).writes == []
    assert holding_items([ref(1)], posted) == set(), "a comment is no value the change guard weighs"
    opted_out = ItemState(ref(1), "A-1", labels=frozenset({"bridge-ignore"}))
    assert make_plan([wish], [opted_out]).writes == []
