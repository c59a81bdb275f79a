"""Cycle times per work type, bottleneck verdicts, ageing work and time in status."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bridge.analytics import analyse
from bridge.analytics.bottlenecks import StatusTime, judge, time_in_status, work_type_stats
from bridge.analytics.snapshot import Index, build_index
from bridge.config import AnalyticsConfig
from bridge.domain import Dependency, Snapshot, StatusCategory, StatusChange, StatusName, Task
from bridge.flow_facts import micros
from bridge.report.html import render_html
from bridge.report.terminal import render
from tests.analytics.build import (
    DOING,
    DONE,
    NOW,
    SOURCE,
    TODO,
    WAITING,
    finished,
    flatten,
    history,
    milestone,
    task,
)

MW = AnalyticsConfig(bottleneck_test="mann_whitney")


def core_team() -> Snapshot:
    pairs = [finished(f"r{i}", "core", "review", days) for i, days in enumerate([4, 6, 7, 8], start=1)]
    pairs += [finished(f"b{i}", "core", "build", days) for i, days in enumerate([1, 2, 3, 4, 5], start=1)]
    tasks, changes = flatten(pairs)
    # r5: 9 days from start to finish, 4 of them waiting -> active time 5
    tasks.append(task("r5", team="core", work_type="review", category=DONE))
    changes += history("r5", (11, TODO), (10, DOING), (7, WAITING), (3, DOING), (1, DONE))
    # open work: two untyped items waiting on review, two builds in progress for 5 and 4 days
    tasks += [task("x1", team="core"), task("x2", team="core")]
    tasks += [
        task("a1", team="core", work_type="build", category=DOING, raw_status="In Progress"),
        task("a2", team="core", work_type="build", category=DOING, raw_status="In Progress"),
    ]
    changes += history("a1", (6, TODO), (5, DOING)) + history("a2", (4, DOING))
    deps = [Dependency(SOURCE, "r1", "x1"), Dependency(SOURCE, "x1", "x2"), Dependency(SOURCE, "b1", "gone")]
    return Snapshot(tasks=tasks, status_changes=changes, dependencies=deps)


def test_work_type_figures_worked_example() -> None:
    stats = {s.work_type: s for s in work_type_stats(build_index(core_team()), NOW, MW)}
    review, build = stats["review"], stats["build"]
    # review cycle times 4 6 7 8 9: median 7; P85 at position 4 * 0.85 = 3.4 -> 8 + 0.4 * (9 - 8) = 8.4
    assert review.cycle_time is not None and review.active_time is not None
    assert (review.cycle_time.count, review.cycle_time.median_days) == (5, 7.0)
    assert review.cycle_time.percentile_days == pytest.approx(8.4)
    # active times 4 6 7 8 and 9 - 4 waiting = 5 -> sorted 4 5 6 7 8, median 6
    assert review.active_time.median_days == 6.0
    # build 1 2 3 4 5: median 3, P85 = 4 + 0.4 * 1 = 4.4
    assert build.cycle_time is not None
    assert build.cycle_time.percentile_days == pytest.approx(4.4)
    # a1 has been in progress 5 days (> 4.4: ageing), a2 4 days (not)
    assert build.in_progress == 2
    assert [(a.key, a.age_days, a.basis) for a in build.ageing] == [("a1", 5.0, "work type")]
    assert None not in stats  # the untyped items have neither finished nor started


def test_verdict_worked_example_with_mann_whitney() -> None:
    snapshot = core_team()
    verdicts = {v.work_type: v for v in judge(build_index(snapshot), snapshot.dependencies, NOW, MW)}
    review = verdicts["review"]
    # medians 7 against 3: ratio 2.333 >= 1.5; p = 0.0139 (worked in test_stats) < 0.05
    assert review.bottleneck
    assert review.ratio == pytest.approx(7 / 3)
    assert review.p_value == pytest.approx(0.0139, abs=1e-4)
    # r1 blocks x1, which blocks x2: two later tasks, of the 14 current and recent items in core
    assert review.blocks == 2
    assert review.blocked_share == pytest.approx(2 / 14)
    assert review.weight == pytest.approx(7 / 3 * (1 + 2 / 14))
    assert review.evidence[0] == "5 finished in the window (at least 5 needed)"
    assert (
        "median cycle time 7.00 d against 3.00 d for the team's other work: ratio 2.33" in review.evidence[2]
    )
    assert review.evidence[3] == "Mann-Whitney one-sided p = 0.0139 (below 0.05)"
    assert review.status == "bottleneck" and review.basis == "speed and holding up"
    assert review.reason == (
        "review work takes 7.0 d against 3.0 d for the team's other work (2.3x) and holds up 2 later tasks "
        "through dependency links (14% of the team's current and recent work); "
        "ranked by 2.3 x (1 + 14%) = 2.67"
    )
    build = verdicts["build"]
    assert not build.bottleneck and build.ratio == pytest.approx(3 / 7) and build.p_value is None


def test_too_small_a_sample_is_no_bottleneck() -> None:
    snapshot = core_team()
    strict = AnalyticsConfig(bottleneck_test="mann_whitney", bottleneck_min_sample=6)
    verdicts = judge(build_index(snapshot), snapshot.dependencies, NOW, strict)
    assert not any(v.bottleneck for v in verdicts)
    assert "5 finished in the window (at least 6 needed)" in verdicts[0].evidence


def test_bootstrap_verdict_on_a_clear_difference() -> None:
    pairs = [finished(f"s{i}", "t", "slow", 10.0 + i) for i in range(8)]
    pairs += [finished(f"f{i}", "t", "fast", 1.0 + i % 3) for i in range(8)]
    tasks, changes = flatten(pairs)
    snapshot = Snapshot(tasks=tasks, status_changes=changes)
    verdicts = judge(build_index(snapshot), (), NOW, AnalyticsConfig(seed=3))
    slow = next(v for v in verdicts if v.work_type == "slow")
    # every resampled median of slow is >= 10 and of fast <= 3, so the bound is at least 10 / 3
    assert slow.bottleneck and slow.lower_bound is not None and slow.lower_bound >= 10 / 3
    assert verdicts[0] is slow  # bottlenecks come first


def test_items_finished_outside_the_window_do_not_count() -> None:
    pairs = [finished(f"r{i}", "t", "review", 9, ended_ago=100) for i in range(6)]
    pairs += [finished(f"b{i}", "t", "build", 1) for i in range(6)]
    tasks, changes = flatten(pairs)
    stats = {
        s.work_type: s
        for s in work_type_stats(build_index(Snapshot(tasks=tasks, status_changes=changes)), NOW, MW)
    }
    assert "review" not in stats and stats["build"].finished == 6


def test_time_in_status_worked_example() -> None:
    tasks = [
        task("o1", team="core", category=DOING),
        task("d1", team="core", category=DONE),
        task("old", team="core", category=DONE),
    ]
    changes = history("o1", (10, TODO), (8, DOING, "Doing"), (5, WAITING, "Blocked"), (2, DOING, "Doing"))
    changes += history("d1", (100, DOING, "Doing"), (91, DOING, "Review"), (88, DONE))
    changes += history("old", (300, DOING, "Doing"), (200, DONE))
    rows = time_in_status(build_index(Snapshot(tasks=tasks, status_changes=changes)), NOW, timedelta(days=90))
    found = {r.status: (r.category, r.days, r.items) for r in rows}
    # o1: Doing 8 -> 5 days ago and 2 days ago -> now = 3 + 2 = 5 days; Blocked 5 -> 2 = 3 days; To Do
    # before starting is backlog, not counted. d1: Review from 91 to 88 days ago, clipped to the
    # 90-day window = 2 days; its Doing (100 -> 91 days ago) lies wholly before the window.
    assert found == {"Doing": (DOING, 5.0, 1), "Blocked": (WAITING, 3.0, 1), "Review": (DOING, 2.0, 1)}
    shares = {r.status: r.share for r in rows}
    assert shares == pytest.approx({"Doing": 0.5, "Blocked": 0.3, "Review": 0.2})
    assert [r.status for r in rows] == ["Doing", "Review", "Blocked"]  # stage order, then longest first


cycle_lists = st.lists(st.integers(1, 30), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["api", "ui", "qa", "sec"]), cycle_lists, min_size=2, max_size=4),
    st.permutations(["alpha", "beta", "gamma", "delta"]),
    st.sampled_from(["bootstrap", "mann_whitney"]),
)
def test_renaming_work_types_does_not_change_the_bottlenecks(
    groups: dict[str, list[int]], names: list[str], test: str
) -> None:
    rename = dict(zip(["api", "ui", "qa", "sec"], names, strict=True))
    config = AnalyticsConfig(bottleneck_test=test, bootstrap_runs=300)  # type: ignore[arg-type]

    def verdicts(naming: dict[str, str]) -> set[str]:
        pairs = [
            finished(f"{work_type}{i}", "team", naming[work_type], days, ended_ago=1 + i % 5)
            for work_type, values in groups.items()
            for i, days in enumerate(values)
        ]
        tasks, changes = flatten(pairs)
        snapshot = Snapshot(tasks=tasks, status_changes=changes)
        return {v.work_type for v in judge(build_index(snapshot), (), NOW, config) if v.bottleneck}

    identity = {name: name for name in rename}
    assert {rename[name] for name in verdicts(identity)} == verdicts(rename)


def test_a_task_without_a_team_takes_its_milestones() -> None:
    _, changes = finished("t1", "unused", "api", 2)
    orphan = task("t1", milestone_id="M", work_type="api", category=DONE)
    snapshot = Snapshot(milestones=[milestone("M", team="web")], tasks=[orphan], status_changes=changes)
    assert [(s.team, s.work_type) for s in work_type_stats(build_index(snapshot), NOW, MW)] == [
        ("web", "api")
    ]


def slow_reviews(**review_fields: object) -> list[tuple[Task, list[StatusChange]]]:
    """Reviews clearly slower than builds, in one team: 8 of each."""
    pairs = [finished(f"r{i}", "core", "review", 10.0 + i, **review_fields) for i in range(8)]
    pairs += [finished(f"b{i}", "core", "build", 1.0 + i % 3) for i in range(8)]
    return pairs


def test_a_slower_type_that_holds_up_nothing_is_slow_not_a_bottleneck() -> None:
    tasks, changes = flatten(slow_reviews())
    # the team's data has links (one build waits on another), none from the reviews
    snapshot = Snapshot(tasks=tasks, status_changes=changes, dependencies=[Dependency(SOURCE, "b0", "b1")])
    review = next(
        v for v in judge(build_index(snapshot), snapshot.dependencies, NOW, MW) if v.work_type == "review"
    )
    assert (review.status, review.bottleneck, review.basis) == ("slow", False, "speed and holding up")
    assert review.reason.endswith("but holds up no later work: slow, not a bottleneck")
    assert review.reason.startswith("review work takes 13.5 d against 2.0 d")


def test_without_links_or_milestones_the_verdict_rests_on_speed_alone() -> None:
    tasks, changes = flatten(slow_reviews())
    snapshot = Snapshot(tasks=tasks, status_changes=changes)
    review = next(v for v in judge(build_index(snapshot), (), NOW, MW) if v.work_type == "review")
    assert (review.status, review.bottleneck, review.basis) == ("bottleneck", True, "speed alone")
    assert "rests on speed alone" in review.reason
    assert "rests on speed alone" in review.evidence[-1]


def test_the_last_task_to_finish_in_a_milestone_held_its_delivery() -> None:
    pairs = slow_reviews()
    # two milestones, each a build finished early and a review finished last
    pairs += [finished("mb1", "core", "build", 1, ended_ago=5, milestone_id="M1")]
    pairs += [finished("mr1", "core", "review", 12, ended_ago=2, milestone_id="M1")]
    pairs += [finished("mb2", "core", "build", 2, ended_ago=6, milestone_id="M2")]
    pairs += [finished("mr2", "core", "review", 11, ended_ago=3, milestone_id="M2")]
    # a milestone still open (its second task is not done) was not delivered: it counts for nobody
    pairs += [finished("mb3", "core", "build", 2, ended_ago=6, milestone_id="M3")]
    tasks, changes = flatten(pairs)
    tasks.append(task("open3", team="core", work_type="review", milestone_id="M3"))
    milestones = [milestone(m, team="core") for m in ("M1", "M2", "M3")]
    snapshot = Snapshot(milestones=milestones, tasks=tasks, status_changes=changes)
    verdicts = {v.work_type: v for v in judge(build_index(snapshot), (), NOW, MW)}
    review, build = verdicts["review"], verdicts["build"]
    assert (review.held_milestones, review.delivered_milestones, review.blocks) == (2, 2, 0)
    assert review.bottleneck and review.basis == "speed and holding up"
    # the two builds of M1 and M2 waited on reviews: 2 of the 22 current and recent tasks
    assert review.blocked_share == pytest.approx(2 / 22)
    assert "was the last to finish in 2 of the 2 milestones delivered in the window" in review.reason
    assert build.held_milestones == 0


def test_bottlenecks_are_ordered_by_slowdown_times_the_share_held_up() -> None:
    pairs = [finished(f"s{i}", "t", "slow", 6.0 + i % 2) for i in range(8)]
    pairs += [finished(f"v{i}", "t", "slower", 8.0 + i % 2) for i in range(5)]
    pairs += [finished(f"f{i}", "t", "fast", 1.0 + i % 2) for i in range(32)]
    tasks, changes = flatten(pairs)
    tasks += [task(f"w{i}", team="t") for i in range(30)]
    # "slow" (3.25x) holds up 29 of the 75 tasks, "slower" (4x) just one: 3.25 x (1 + 29/75) = 4.51
    # against 4 x (1 + 1/75) = 4.05, so holding up outweighs the extra slowdown
    deps = [Dependency(SOURCE, "s0", f"w{i}") for i in range(29)] + [Dependency(SOURCE, "v0", "w29")]
    snapshot = Snapshot(tasks=tasks, status_changes=changes, dependencies=deps)
    verdicts = [v for v in judge(build_index(snapshot), deps, NOW, MW) if v.bottleneck]
    assert [v.work_type for v in verdicts] == ["slow", "slower"]
    assert [round(v.weight, 2) for v in verdicts] == [4.51, 4.05]
    assert verdicts[0].reason.endswith("ranked by 3.2 x (1 + 39%) = 4.51")


def test_the_terminal_and_html_reports_give_each_verdicts_reason() -> None:
    tasks, changes = flatten(slow_reviews())
    slow = Snapshot(tasks=tasks, status_changes=changes, dependencies=[Dependency(SOURCE, "b0", "b1")])
    report = analyse(slow, MW, NOW)
    console = Console(record=True, width=200)
    render(report, console)
    shown = console.export_text()
    assert "core / review: review work takes 13.5 d against 2.0 d" in shown
    assert "slow, not a bottleneck" in shown
    assert (
        '<span class="tag warn">slow</span> <strong>core / review</strong>: review work takes'
        in render_html(report)
    )


def test_a_milestone_whose_first_task_finished_long_ago_is_delivered_when_its_last_one_is() -> None:
    pairs = slow_reviews()
    pairs += [finished("early", "core", "build", 2, ended_ago=200, milestone_id="M1")]
    pairs += [finished("late", "core", "review", 12, ended_ago=2, milestone_id="M1")]
    tasks, changes = flatten(pairs)
    snapshot = Snapshot(milestones=[milestone("M1", team="core")], tasks=tasks, status_changes=changes)
    # the index keeps no flow for a task finished before the window: it still finished, and early
    index = build_index(snapshot, since=NOW - timedelta(days=90))
    review = next(v for v in judge(index, (), NOW, MW) if v.work_type == "review")
    assert (review.held_milestones, review.delivered_milestones) == (1, 1)
    assert "was the last to finish in the one milestone delivered in the window" in review.reason


def test_a_type_that_is_no_bottleneck_on_speed_says_why() -> None:
    tasks, changes = flatten(slow_reviews())
    verdicts = {
        v.work_type: v for v in judge(build_index(Snapshot(tasks=tasks, status_changes=changes)), (), NOW, MW)
    }
    assert verdicts["build"].reason.endswith("(0.1x): no slower than the rest")
    few = [finished(f"r{i}", "core", "review", 10.0 + i) for i in range(3)]
    few += [finished(f"b{i}", "core", "build", 1.0 + i % 3) for i in range(8)]
    tasks, changes = flatten(few)
    review = next(
        v
        for v in judge(build_index(Snapshot(tasks=tasks, status_changes=changes)), (), NOW, MW)
        if v.work_type == "review"
    )
    assert review.reason.endswith("too few finished items to tell (at least 5 a side)")


def _time_in_status_one_task_at_a_time(index: Index, now: datetime, window: timedelta) -> list[StatusTime]:
    """Time in status as it was first written, span by span into one dict of rows: the reference the
    faster `time_in_status` must match to the last bit."""
    since, until = micros(now - window), micros(now)
    totals: defaultdict[tuple[str, str], float] = defaultdict(float)
    visitors: defaultdict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    categories: dict[tuple[str, str], StatusCategory] = {}
    for key, facts in index.facts.items():
        if not facts.spans:
            continue
        task = index.tasks[key]
        if task.category is DONE:
            flow = index.flows.get(key)
            if flow is None or micros(flow.finished) < since:
                continue
            open_until: int | None = None
        else:
            open_until = until
        spent_in: dict[str, int] = {}
        category_of: dict[str, StatusCategory] = {}
        for status, category, at, left in facts.spans:
            end = left if left is not None else (open_until or at)
            end, at = min(end, until), max(at, since)
            if end <= at:
                continue
            name = index.status_name(key[0], status) or status
            spent_in[name] = spent_in.get(name, 0) + (end - at)
            category_of[name] = category
        for name, in_status in spent_in.items():
            slot = (index.team_of(task), name)
            totals[slot] += in_status / 1_000_000 / 86400.0
            visitors[slot].add(key)
            categories[slot] = category_of[name]
    team_totals: defaultdict[str, float] = defaultdict(float)
    for (team, _), spent in totals.items():
        team_totals[team] += spent
    order = {category: i for i, category in enumerate(StatusCategory)}
    rows = [
        StatusTime(
            team,
            name,
            categories[(team, name)],
            spent,
            len(visitors[(team, name)]),
            spent / team_totals[team],
        )
        for (team, name), spent in totals.items()
    ]
    rows.sort(key=lambda r: (r.team, order[r.category], -r.days, r.status))
    return rows


_RAW_STATUSES = [("Doing", DOING), ("Review", DOING), ("Blocked", WAITING), ("QA", DOING), ("Held", WAITING)]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["web", "app", None]),
            st.booleans(),
            st.lists(st.tuples(st.integers(0, len(_RAW_STATUSES) - 1), st.floats(0.0, 40.0)), max_size=6),
            st.floats(0.0, 160.0),
        ),
        max_size=25,
    ),
    st.booleans(),
)
def test_time_in_status_matches_the_task_by_task_sums_to_the_bit(
    items: list[tuple[str | None, bool, list[tuple[int, float]], float]], named: bool
) -> None:
    tasks, changes = [], []
    for n, (team, is_done, steps, ago) in enumerate(items):
        # histories that start before the window, cross its start, end in it or stay open; repeated
        # and zero-length stays; where `named`, two raw statuses share a name across categories
        entered: list[tuple[float, StatusCategory, str]] = [
            (ago + sum(d for _, d in steps) + 1, TODO, "To Do")
        ]
        at = entered[0][0] - 1
        for status, stay in steps:
            raw, category = _RAW_STATUSES[status]
            entered.append((at, category, raw))
            at -= stay
        if is_done:
            entered.append((max(at, 0.0), DONE, "Done"))
        tasks.append(task(f"t{n}", team=team, category=DONE if is_done else entered[-1][1]))
        changes += history(f"t{n}", *entered)
    statuses = [StatusName(SOURCE, "Review", "Doing"), StatusName(SOURCE, "Held", "QA")] if named else []
    snapshot = Snapshot(tasks=tasks, status_changes=changes, statuses=statuses)
    index = build_index(snapshot, since=NOW - timedelta(days=120))
    window = timedelta(days=90)
    assert time_in_status(index, NOW, window) == _time_in_status_one_task_at_a_time(index, NOW, window)
