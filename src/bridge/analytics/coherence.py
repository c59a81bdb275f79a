"""Coherence warnings: the ways a plan drifts from the method.

Every open milestone should move a key result, every open task should belong to a milestone, and a
team with many milestones in progress at once leaves deliveries half done. Warnings are grouped per
team, each naming the items concerned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sized
from dataclasses import dataclass

from bridge.analytics.snapshot import Index, as_ref, key_of, parent_key
from bridge.domain import LinkOrigin, Milestone, Ref, StatusCategory


@dataclass(frozen=True, slots=True)
class CoherenceWarning:
    kind: str
    """`milestone_without_key_result`, `task_without_milestone` or `too_many_in_progress`."""
    team: str
    message: str
    items: tuple[str, ...]
    """Keys of the milestones or tasks concerned."""


def in_progress(milestone: Milestone, index: Index) -> bool:
    """Open and under way: its own status says so, or one of its tasks has started or finished."""
    if milestone.category is StatusCategory.DONE:
        return False
    if milestone.category.started:
        return True
    tasks = index.tasks_of.get(key_of(milestone), ())
    return any(task.category is not StatusCategory.TODO for task in tasks)


def warnings(
    index: Index, links: Mapping[Ref, Mapping[Ref, LinkOrigin]], max_in_progress: int
) -> list[CoherenceWarning]:
    found = [*_unlinked_milestones(index, links), *_orphan_tasks(index), *_overloaded(index, max_in_progress)]
    found.sort(key=lambda w: (w.kind, w.team))
    return found


def _unlinked_milestones(
    index: Index, links: Mapping[Ref, Mapping[Ref, LinkOrigin]]
) -> list[CoherenceWarning]:
    by_team: defaultdict[str, list[str]] = defaultdict(list)
    for key, milestone in index.milestones.items():
        if milestone.category is not StatusCategory.DONE and not links.get(as_ref(key)):
            by_team[index.milestone_team[key]].append(milestone.key)
    return [
        CoherenceWarning(
            "milestone_without_key_result",
            team,
            f"{len(keys)} open milestone{_s(keys)} in team {team} move{'' if len(keys) != 1 else 's'} "
            "no key result (see the OKR suggestions)",
            tuple(sorted(keys)),
        )
        for team, keys in by_team.items()
    ]


def _orphan_tasks(index: Index) -> list[CoherenceWarning]:
    by_team: defaultdict[str, list[str]] = defaultdict(list)
    for task in index.tasks.values():
        if task.category is StatusCategory.DONE:
            continue
        parent = parent_key(task)
        if parent is None or parent not in index.milestones:
            by_team[index.team_of(task)].append(task.key)
    return [
        CoherenceWarning(
            "task_without_milestone",
            team,
            f"{len(keys)} open task{_s(keys)} in team {team} "
            f"belong{'' if len(keys) != 1 else 's'} to no milestone",
            tuple(sorted(keys)),
        )
        for team, keys in by_team.items()
    ]


def _overloaded(index: Index, limit: int) -> list[CoherenceWarning]:
    by_team: defaultdict[str, list[str]] = defaultdict(list)
    for key, milestone in index.milestones.items():
        if in_progress(milestone, index):
            by_team[index.milestone_team[key]].append(milestone.key)
    return [
        CoherenceWarning(
            "too_many_in_progress",
            team,
            f"team {team} has {len(keys)} milestones in progress at once (limit {limit}); "
            "finishing one before starting the next delivers value sooner",
            tuple(sorted(keys)),
        )
        for team, keys in by_team.items()
        if len(keys) > limit
    ]


def _s(items: Sized) -> str:
    return "" if len(items) == 1 else "s"
