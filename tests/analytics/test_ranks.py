"""Value ranks: strategies, tie-breaks, unscored milestones, scopes, inheritance and properties."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.analytics.okr import OkrWeight
from bridge.analytics.ranks import rank_milestones, task_ranks
from bridge.domain import Ref
from tests.analytics.build import DAY, DONE, NOW, SOURCE, milestone, task


def keys(ranks: list) -> list[str]:  # type: ignore[type-arg]
    return [r.key for r in ranks]


def test_wsjf_worked_example_with_tie_break_and_unscored_last() -> None:
    milestones = [
        milestone("M1", value=40.0, effort=8.0, due=NOW + 30 * DAY),  # 40 / 8 = 5
        milestone("M2", value=30.0, effort=3.0),  # 30 / 3 = 10
        milestone("M3", value=10.0, effort=2.0, due=NOW + 10 * DAY),  # 10 / 2 = 5, due sooner than M1
        milestone("M4", effort=1.0),  # no value: last, flagged
        milestone("M5", value=99.0, category=DONE),  # done: not ranked
    ]
    ranks = rank_milestones(milestones, strategy="wsjf")
    assert keys(ranks) == ["M2", "M3", "M1", "M4"]
    assert [r.rank for r in ranks] == [1, 2, 3, 4]
    assert [r.score for r in ranks] == [10.0, 5.0, 5.0, None]
    assert ranks[3].flag == "no value set"
    assert ranks[0].explanation == (
        "#1 of 4 in the portfolio, #1 of 4 in team (no team): value 30 / effort 3 = 10"
    )
    assert (
        "same score as Milestone M3, placed after it by due date (2025-03-11 before 2025-03-31)"
        in ranks[2].explanation
    )
    assert "no value set, so ranked after every scored milestone" in ranks[3].explanation


def test_value_strategy_ties_fall_to_created_then_key() -> None:
    milestones = [
        milestone("B", value=5.0, created=NOW - 2 * DAY),
        milestone("A", value=5.0, created=NOW - 2 * DAY),
        milestone("C", value=5.0, created=NOW - 9 * DAY),
        milestone("D", value=5.0, due=NOW + DAY),
    ]
    ranks = rank_milestones(milestones, strategy="value")
    # D has a due date (the others none); C was created first; A and B tie on everything but the key
    assert keys(ranks) == ["D", "C", "A", "B"]
    assert ranks[3].explanation.endswith(
        "same score as Milestone A, placed after it by the trackers' ids, a fixed order"
        " (same due and creation dates)"
    )


def test_wsjf_without_effort_is_flagged() -> None:
    ranks = rank_milestones(
        [milestone("M", value=3.0), milestone("N", value=1.0, effort=1.0)], strategy="wsjf"
    )
    assert keys(ranks) == ["N", "M"]
    assert ranks[1].flag == "no effort set (wsjf divides value by effort)"


def test_okr_strategy_uses_key_result_weights() -> None:
    weights = {Ref(SOURCE, "M1"): OkrWeight(0.5, "..."), Ref(SOURCE, "M2"): OkrWeight(0.1667, "...")}
    ranks = rank_milestones(
        [milestone("M2", value=100.0), milestone("M1", value=1.0), milestone("M3", value=50.0)],
        strategy="okr",
        okr_weights=weights,
    )
    assert keys(ranks) == ["M1", "M2", "M3"]
    assert ranks[2].flag == "no key result linked"


def test_team_scope_ranks_within_each_team() -> None:
    milestones = [
        milestone("P1", team="payments", value=9.0),
        milestone("M1", team="mobile", value=8.0),
        milestone("P2", team="payments", value=7.0),
        milestone("X", value=1.0),  # no team of its own: takes its tasks' team
    ]
    ranks = rank_milestones(milestones, strategy="value", scope="team", teams={(SOURCE, "X"): "mobile"})
    by_key = {r.key: r for r in ranks}
    assert [(by_key[k].rank, by_key[k].portfolio_rank) for k in ("P1", "M1", "P2", "X")] == [
        (1, 1),
        (1, 2),
        (2, 3),
        (2, 4),
    ]
    assert by_key["X"].team == "mobile"


def test_tasks_inherit_their_milestones_rank() -> None:
    ranks = rank_milestones([milestone("A", value=1.0), milestone("B", value=2.0)], strategy="value")
    found = task_ranks(ranks, [task("t1", milestone_id="A"), task("t2", milestone_id="B"), task("t3")])
    assert found == {Ref(SOURCE, "t1"): 2, Ref(SOURCE, "t2"): 1}


values = st.one_of(st.none(), st.integers(0, 20).map(float))
efforts = st.one_of(st.none(), st.integers(1, 5).map(float))
dues = st.one_of(st.none(), st.integers(0, 5).map(lambda d: NOW + d * DAY))
teams = st.sampled_from(["a", "b", "c"])


@st.composite
def milestone_sets(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    count = draw(st.integers(1, 25))
    return [
        milestone(
            f"M{i}",
            value=draw(values),
            effort=draw(efforts),
            due=draw(dues),
            created=draw(dues),
            team=draw(teams),
        )
        for i in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(milestone_sets(), st.sampled_from(["value", "wsjf"]), st.sampled_from(["team", "portfolio"]))
def test_a_rank_is_a_permutation(milestones: list, strategy: str, scope: str) -> None:  # type: ignore[type-arg]
    ranks = rank_milestones(milestones, strategy=strategy, scope=scope)  # type: ignore[arg-type]
    assert sorted(r.portfolio_rank for r in ranks) == list(range(1, len(milestones) + 1))
    for team in {r.team for r in ranks}:
        in_team = sorted(r.team_rank for r in ranks if r.team == team)
        assert in_team == list(range(1, len(in_team) + 1))


@settings(max_examples=150, deadline=None)
@given(milestone_sets(), st.sampled_from(["value", "wsjf"]), st.randoms(use_true_random=False))
def test_same_input_same_output_whatever_the_order(
    milestones: list, strategy: str, rng: random.Random
) -> None:  # type: ignore[type-arg]
    first = rank_milestones(milestones, strategy=strategy)  # type: ignore[arg-type]
    shuffled = list(milestones)
    rng.shuffle(shuffled)
    assert rank_milestones(shuffled, strategy=strategy) == first  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    milestone_sets(),
    st.data(),
    st.sampled_from(["value", "wsjf"]),
    st.sampled_from(["team", "portfolio"]),
)
def test_raising_a_value_never_lowers_the_rank(
    milestones: list,  # type: ignore[type-arg]
    data: st.DataObject,
    strategy: str,
    scope: str,
) -> None:
    chosen = data.draw(st.integers(0, len(milestones) - 1))
    before = {r.key: r.rank for r in rank_milestones(milestones, strategy=strategy, scope=scope)}  # type: ignore[arg-type]
    old = milestones[chosen].value
    raised = (old or 0.0) + data.draw(st.integers(0, 10))
    changed = list(milestones)
    changed[chosen] = dataclasses.replace(milestones[chosen], value=raised)
    after = {r.key: r.rank for r in rank_milestones(changed, strategy=strategy, scope=scope)}  # type: ignore[arg-type]
    key = milestones[chosen].key
    assert after[key] <= before[key]
