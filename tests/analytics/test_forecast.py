"""Monte Carlo forecasts over each team's daily throughput."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.analytics.forecast import Forecast, forecast
from bridge.analytics.ranks import rank_milestones
from bridge.analytics.snapshot import build_index
from bridge.config import AnalyticsConfig
from bridge.domain import Snapshot, StatusChange, Task
from tests.analytics.build import DAY, DONE, NOW, finished, flatten, milestone, task

TEN_DAYS = AnalyticsConfig(forecast_window=timedelta(days=10), forecast_runs=2000, seed=11)


def throughput(team: str, per_day: list[int]) -> tuple[list[Task], list[StatusChange]]:
    """Tasks finished `per_day[d]` at a time, d days (and a half) before NOW."""
    pairs = [
        finished(f"{team}-done-{d}-{i}", team, "work", 1.0, ended_ago=d + 0.5)
        for d, count in enumerate(per_day)
        for i in range(count)
    ]
    return flatten(pairs)


def open_tasks(team: str, milestone_key: str, count: int) -> list[Task]:
    return [task(f"{milestone_key}-{team}-{i}", team=team, milestone_id=milestone_key) for i in range(count)]


def run(snapshot: Snapshot, config: AnalyticsConfig = TEN_DAYS) -> dict[str, Forecast]:
    index = build_index(snapshot)
    ranks = rank_milestones(index.milestones.values(), strategy="value", teams=index.milestone_team)
    return {f.key: f for f in forecast(ranks, index, NOW, config)}


def test_steady_throughput_worked_example() -> None:
    done, changes = throughput("core", [2] * 10)
    snapshot = Snapshot(
        milestones=[
            milestone("A", team="core", value=10.0, due=NOW + 2 * DAY),
            milestone("B", team="core", value=5.0, due=NOW + 3 * DAY),
        ],
        tasks=done + open_tasks("core", "A", 3) + open_tasks("core", "B", 4),
        status_changes=changes,
    )
    found = run(snapshot)
    # two tasks a day, every day: A (rank 1, 3 tasks) is done once 4 >= 3, after day 2;
    # B comes next in rank order: 3 + 4 = 7 tasks, done once 8 >= 7, after day 4
    assert (found["A"].p50, found["A"].high) == (NOW + 2 * DAY, NOW + 2 * DAY)
    assert (found["B"].p50, found["B"].high) == (NOW + 4 * DAY, NOW + 4 * DAY)
    assert found["A"].chance_by_due == 1.0 and not found["A"].at_risk
    # B is due after 3 days and always needs 4
    assert found["B"].chance_by_due == 0.0 and found["B"].at_risk
    assert found["B"].remaining == 4


def test_uneven_throughput_worked_example() -> None:
    # four tasks on alternate days, none in between: each simulated day finishes the single open task
    # with chance 1/2, so it is done by day d with chance 1 - 0.5^d: 0.5, 0.75, 0.875, ...
    done, changes = throughput("g", [4, 0] * 5)
    snapshot = Snapshot(
        milestones=[milestone("C", team="g", value=1.0, due=NOW + 2 * DAY)],
        tasks=[*done, *open_tasks("g", "C", 1)],
        status_changes=changes,
    )
    found = run(snapshot)["C"]
    # P85: the first day with chance >= 0.85 is day 3 (0.875); by the due date (day 2) 0.75
    assert found.high == NOW + 3 * DAY
    assert found.chance_by_due == pytest.approx(0.75, abs=0.03)
    assert found.at_risk  # 0.75 < 0.85


def test_a_milestone_across_teams_finishes_with_the_slowest() -> None:
    slow, slow_changes = throughput("slow", [1] * 10)
    fast, fast_changes = throughput("fast", [2] * 10)
    snapshot = Snapshot(
        milestones=[milestone("D", team="slow", value=1.0)],
        tasks=[*slow, *fast, *open_tasks("slow", "D", 3), *open_tasks("fast", "D", 2)],
        status_changes=slow_changes + fast_changes,
    )
    found = run(snapshot)["D"]
    # slow: 3 tasks at 1 a day -> day 3; fast: 2 tasks at 2 a day -> day 1; the milestone: day 3
    assert found.p50 == NOW + 3 * DAY and found.remaining == 5
    assert found.chance_by_due is None and not found.at_risk


def test_milestones_with_nothing_left_or_an_idle_team() -> None:
    snapshot = Snapshot(
        milestones=[
            milestone("E", team="core", value=2.0, due=NOW - DAY),
            milestone("F", team="idle", value=1.0, due=NOW + 5 * DAY),
            milestone("G", team="core", value=0.5, due=NOW + 5 * DAY),
        ],
        tasks=[task("e1", team="core", milestone_id="E", category=DONE), *open_tasks("idle", "F", 2)],
    )
    found = run(snapshot)
    # E's tasks are all done but E is not, and its due date has passed
    assert found["E"].p50 == NOW and found["E"].remaining == 0 and found["E"].at_risk
    assert found["F"].p50 is None and not found["F"].at_risk
    assert found["F"].explanation == "cannot forecast: idle finished no task in the last 10 days"
    # G has no tasks at all: nothing to forecast from, which is not the same as being done
    assert found["G"].p50 is None and found["G"].explanation.startswith("no tasks to forecast from")


@st.composite
def team_work(draw: st.DrawFn) -> Snapshot:
    tasks: list[Task] = []
    changes: list[StatusChange] = []
    milestones = []
    for team in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        done, history = throughput(team, draw(st.lists(st.integers(0, 3), min_size=1, max_size=10)))
        tasks += done
        changes += history
        for i in range(draw(st.integers(1, 4))):
            key = f"{team}{i}"
            milestones.append(
                milestone(
                    key,
                    team=team,
                    value=float(draw(st.integers(0, 9))),
                    due=NOW + draw(st.integers(0, 20)) * DAY,
                )
            )
            tasks += open_tasks(team, key, draw(st.integers(0, 6)))
    return Snapshot(milestones=milestones, tasks=tasks, status_changes=changes)


@settings(max_examples=30, deadline=None)
@given(team_work(), st.integers(0, 2**31), st.randoms(use_true_random=False))
def test_a_seeded_forecast_is_reproducible(snapshot: Snapshot, seed: int, rng: random.Random) -> None:
    config = AnalyticsConfig(forecast_window=timedelta(days=10), forecast_runs=200, seed=seed)
    first = run(snapshot, config)
    shuffled = list(snapshot.tasks)
    rng.shuffle(shuffled)
    again = run(
        Snapshot(milestones=snapshot.milestones, tasks=shuffled, status_changes=snapshot.status_changes),
        config,
    )
    assert again == first


def test_a_milestone_is_never_sooner_than_its_slowest_open_work_types_median_cycle_time() -> None:
    """Two tasks a day finish, so throughput alone says one open task is done on day 1; but the open
    task is a security review, whose finished ones took 12, 20 and 30 days (median 20): no sooner than
    day 20, and a due date before it is never met."""
    done, changes = throughput("core", [2] * 10)
    reviews = flatten(
        [finished(f"rev-{d}", "core", "security", d, ended_ago=1.0 + i) for i, d in enumerate((12, 20, 30))]
    )
    snapshot = Snapshot(
        milestones=[
            milestone("S", team="core", value=10.0, due=NOW + 10 * DAY),
            milestone("Q", team="core", value=5.0, due=NOW + 10 * DAY),
        ],
        tasks=[
            *done, *reviews[0],
            task("S-review", team="core", milestone_id="S", work_type="security"),
            task("Q-work", team="core", milestone_id="Q", work_type="work"),
        ],
        status_changes=[*changes, *reviews[1]],
    )  # fmt: skip
    found = run(snapshot)
    assert (found["S"].p50, found["S"].high) == (NOW + 20 * DAY, NOW + 20 * DAY)
    assert found["S"].chance_by_due == 0.0 and found["S"].at_risk
    assert "no sooner than 20 days, the median cycle time of security work in core" in found["S"].explanation
    # the milestone of ordinary work (median 1 day) keeps its throughput forecast
    assert found["Q"].p50 == NOW + 1 * DAY and "no sooner than 1 day" in found["Q"].explanation
