"""The index every part of the analysis shares: tasks by key, their milestones and flows, open work."""

from __future__ import annotations

from datetime import timedelta

from bridge.analytics.snapshot import build_index
from bridge.domain import Snapshot
from bridge.flow_facts import facts_of, steps_of
from tests.analytics.build import DOING, DONE, NOW, SOURCE, TODO, WAITING, history, milestone, task


def test_the_index_groups_tasks_keeps_open_ones_and_flows_of_recent_finishes() -> None:
    tasks = [
        task("a", milestone_id="M", category=DONE),
        task("b", milestone_id="M", category=DOING),
        task("c", milestone_id="", category=WAITING),  # no milestone, not even one whose id is ""
        task("d", milestone_id="gone", category=TODO),
        task("e", milestone_id="M", category=DONE, deleted=True),
        task("old", milestone_id="M", category=DONE),
        task("dated", category=DONE, started=NOW - timedelta(days=3), done=NOW - timedelta(days=1)),
        task("b", title="Task b again", milestone_id="M", category=DOING),  # the same key: the later one
    ]
    changes = history("a", (10, TODO), (6, DOING), (2, DONE)) + history("b", (4, DOING))
    changes += history("old", (300, DOING), (200, DONE)) + history("e", (5, DOING), (1, DONE))
    snapshot = Snapshot(milestones=[milestone("M"), milestone("")], tasks=tasks, status_changes=changes)
    index = build_index(snapshot, since=NOW - timedelta(days=120))
    assert list(index.tasks) == [(SOURCE, k) for k in ("a", "b", "c", "d", "old", "dated")]
    assert [t.remote_id for t in index.tasks_of[(SOURCE, "M")]] == ["a", "b", "old"]
    assert index.tasks_of[(SOURCE, "M")][1].title == index.open_tasks[(SOURCE, "b")].title == "Task b again"
    assert (SOURCE, "") not in index.tasks_of
    assert list(index.open_tasks) == [(SOURCE, "b"), (SOURCE, "c"), (SOURCE, "d")]
    # flows of tasks done since `since`: from the history's facts, or from the task's own dates
    assert list(index.flows) == [(SOURCE, "a"), (SOURCE, "dated")]
    assert index.flows[(SOURCE, "a")].cycle_time == timedelta(days=4)
    assert index.flows[(SOURCE, "dated")].cycle_time == timedelta(days=2)


def test_stored_facts_of_tasks_not_in_the_snapshot_are_left_out() -> None:
    steps = steps_of(history("x", (4, DOING), (1, DONE)))
    facts = facts_of(steps)
    assert facts is not None
    snapshot = Snapshot(
        tasks=[task("x", category=DONE)], flow_facts={(SOURCE, "x"): facts, (SOURCE, "deleted"): facts}
    )
    index = build_index(snapshot)
    assert index.facts == {(SOURCE, "x"): facts}
    assert index.flows[(SOURCE, "x")].cycle_time == timedelta(days=3)
