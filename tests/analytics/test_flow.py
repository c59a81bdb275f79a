"""The flow charts' figures: scatter percentiles, cumulative flow, weekly throughput, ageing work and
"how many by a date", on worked examples."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.analytics import flow as flow_module
from bridge.analytics.flow import (
    cumulative_flow,
    how_many,
    percentiles_of,
    team_flows,
    weekly_throughput,
)
from bridge.analytics.snapshot import build_index
from bridge.config import AnalyticsConfig
from bridge.domain import Snapshot
from tests.analytics.build import DAY, DOING, DONE, NOW, TODO, WAITING, finished, flatten, history, task

SETTINGS = AnalyticsConfig(bottleneck_min_sample=3, forecast_runs=500)


def test_cumulative_flow_counts_each_category_at_the_end_of_each_day() -> None:
    tasks = [task("a", team="t", category=DONE), task("b", team="t", category=WAITING)]
    changes = history("a", (5, TODO), (3, DOING), (1, DONE))
    changes += history("b", (10, TODO), (2.5, WAITING))
    index = build_index(Snapshot(tasks=tasks, status_changes=changes))
    days = cumulative_flow(index, index.tasks.values(), NOW, timedelta(days=5))
    # samples at the ends of days: 4, 3, 2 and 1 day ago, and now; b entered To Do before the window
    assert [d.day for d in days] == [NOW - 4 * DAY, NOW - 3 * DAY, NOW - 2 * DAY, NOW - DAY, NOW]
    assert [d.counts for d in days] == [
        (2, 0, 0, 0),
        (1, 1, 0, 0),
        (0, 1, 1, 0),
        (0, 0, 1, 1),
        (0, 0, 1, 1),
    ]


def test_cumulative_flow_counts_tasks_without_history_by_their_dates() -> None:
    """Tasks with no stored history (done long ago, outside the analysis window) stand where their
    dates put them: in their last category from the first day when every date is before the window."""
    old = dict(team="t", created=NOW - 90 * DAY, started=NOW - 60 * DAY)
    tasks = [
        task("done-long-ago", category=DONE, done=NOW - 30 * DAY, **old),
        task("started-long-ago", category=DOING, **old),
        task("created-long-ago", team="t", category=TODO, created=NOW - 90 * DAY),
        task("done-in-the-window", category=DONE, done=NOW - 1.5 * DAY, **old),
        task("created-in-the-window", team="t", category=TODO, created=NOW - 2.5 * DAY),
    ]
    index = build_index(Snapshot(tasks=tasks))
    days = cumulative_flow(index, index.tasks.values(), NOW, timedelta(days=4))
    assert [d.counts for d in days] == [
        (1, 2, 0, 1),
        (2, 2, 0, 1),
        (2, 1, 0, 2),
        (2, 1, 0, 2),
    ]


def test_weekly_throughput_ends_now() -> None:
    pairs = [finished("a", "t", "x", 2, ended_ago=1), finished("b", "t", "x", 2, ended_ago=8)]
    pairs += [finished("c", "t", "x", 2, ended_ago=9), finished("old", "t", "x", 2, ended_ago=15)]
    tasks, changes = flatten(pairs)
    index = build_index(Snapshot(tasks=tasks, status_changes=changes))
    weeks = weekly_throughput(index, index.tasks.values(), NOW, timedelta(days=14))
    assert [(w.start, w.end, w.finished) for w in weeks] == [
        (NOW - 14 * DAY, NOW - 7 * DAY, 2),
        (NOW - 7 * DAY, NOW, 1),
    ]


def test_scatter_ageing_and_the_work_types_lines() -> None:
    pairs = [finished(f"r{i}", "core", "review", float(i), ended_ago=1 + i / 10) for i in range(1, 11)]
    pairs += [finished("b1", "core", "build", 1.0)]
    tasks, changes = flatten(pairs)
    tasks += [
        task("o1", team="core", work_type="review", category=DOING, raw_status="Review"),
        task("o2", team="core", work_type="build", category=WAITING, raw_status="Blocked"),
    ]
    changes += history("o1", (9, TODO), (6, DOING, "Review"))
    changes += history("o2", (3, DOING, "Doing"), (2, WAITING, "Blocked"))
    (flow,) = team_flows(build_index(Snapshot(tasks=tasks, status_changes=changes)), NOW, SETTINGS)
    # 11 cycle times: 1 (b1), 1..10 (reviews) -> P50 5, P85 at 8.5 -> 8.5, P95 at 9.5 -> 9.5
    assert flow.cycle is not None and flow.cycle.count == 11
    assert flow.cycle.days == pytest.approx((5.0, 8.5, 9.5))
    assert [p.key for p in flow.finished][-2:] == ["r1", "b1"]  # by finish time
    assert [(a.key, a.status, a.age_days) for a in flow.ageing] == [
        ("o1", "Review", 6.0),
        ("o2", "Blocked", 3.0),
    ]
    assert [s for s, _ in flow.statuses] == ["Review", "Blocked"]  # in progress before waiting
    lines = {t.work_type: t for t in flow.type_lines}
    # review has ten finished (its own lines: 1..10 -> 5.5, 8.65, 9.55); build one (the team's)
    assert lines["review"].basis == "work type" and lines["review"].percentiles is not None
    assert lines["review"].percentiles.days == pytest.approx((5.5, 8.65, 9.55))
    assert lines["build"].basis == "team" and lines["build"].percentiles == flow.cycle


def test_how_many_by_a_date_from_a_steady_throughput() -> None:
    # two a day, every day: exactly 14 a week whatever the draws
    found = how_many([2] * 30, NOW, SETTINGS, "t")
    assert [(h.by, h.counts) for h in found[:3]] == [
        (NOW + 7 * DAY, (14, 14)),
        (NOW + 14 * DAY, (28, 28)),
        (NOW + 21 * DAY, (42, 42)),
    ]
    assert len(found) == 8
    assert how_many([0] * 30, NOW, SETTINGS, "t") == []


def test_how_many_is_seeded_and_the_85_percent_count_is_the_lower() -> None:
    samples = [0, 0, 1, 3, 0, 2, 5, 0, 1, 0] * 3
    first = how_many(samples, NOW, SETTINGS, "t")
    assert first == how_many(samples, NOW, SETTINGS, "t")
    assert first != how_many(samples, NOW, AnalyticsConfig(seed=9, forecast_runs=500), "t")
    assert all(h.counts[1] <= h.counts[0] for h in first)
    # 1.2 a day on average: about 8.4 a week at 50 %, fewer at 85 %
    assert 6 <= first[0].counts[0] <= 10 and first[0].counts[1] < first[0].counts[0]


def test_a_large_scatter_has_one_dot_per_day_and_cycle_time_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond `SCATTER_DOTS` tasks, the tasks finished the same day in the same 1 % band of the longest
    cycle time share a dot, at the slowest of them; the percentile lines still count every task."""
    monkeypatch.setattr(flow_module, "SCATTER_DOTS", 4)
    # the longest cycle is 10 d, so a band is 0.1 d: 2.01 and 2.05 share one, 2.5 has its own
    pairs = [finished("a", "t", "x", 2.01, ended_ago=1.2), finished("b", "t", "y", 2.05, ended_ago=1.4)]
    pairs += [finished("c", "t", "x", 2.5, ended_ago=1.3), finished("d", "t", "x", 10.0, ended_ago=1.3)]
    pairs += [finished("e", "t", "x", 2.05, ended_ago=3.5), finished("f", "t", "x", 2.05, ended_ago=3.6)]
    tasks, changes = flatten(pairs)
    (flow,) = team_flows(build_index(Snapshot(tasks=tasks, status_changes=changes)), NOW, SETTINGS)
    assert [(p.key, p.tasks) for p in flow.finished] == [("e", 2), ("b", 2), ("c", 1), ("d", 1)]
    assert flow.cycle is not None and flow.cycle.count == 6
    assert flow.cycle == percentiles_of([2.01, 2.05, 2.5, 10.0, 2.05, 2.05])
    assert [t.work_type for t in flow.type_lines] == []  # nothing in progress: no ageing lines
    monkeypatch.setattr(flow_module, "SCATTER_DOTS", 6)
    (whole,) = team_flows(build_index(Snapshot(tasks=tasks, status_changes=changes)), NOW, SETTINGS)
    assert [p.tasks for p in whole.finished] == [1] * 6 and whole.cycle == flow.cycle
