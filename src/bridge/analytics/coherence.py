"""Coherence warnings: the ways a plan drifts from the method.

Every open milestone should move a key result, every open task should belong to a milestone, and a
team with many milestones in progress at once leaves deliveries half done. Warnings are grouped per
team, each naming the items concerned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sized
from dataclasses import dataclass

from bridge.analytics.snapshot import Index, as_ref, key_of, parent_key
from bridge.domain import LinkOrigin, Milestone, Ref, StatusCategory, Task, display_name


@dataclass(frozen=True, slots=True)
class CoherenceWarning:
    kind: str
    """`milestone_without_key_result`, `task_without_milestone` or `too_many_in_progress`."""
    team: str
    message: str
    items: tuple[str, ...]
    """The milestones or tasks concerned, as people read them (`bridge.domain.display_name`)."""


def in_progress(milestone: Milestone, index: Index) -> bool:
    """Open and under way: its own status says so, or one of its tasks has started or finished."""
    if milestone.category is StatusCategory.DONE:
        return False
    if milestone.category.started:
        return True
    tasks = index.tasks_of.get(key_of(milestone), ())
    return any(task.category is not StatusCategory.TODO for task in tasks)


def warnings(
    index: Index,
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    max_in_progress: int,
    suggested: Collection[Ref] = (),
) -> list[CoherenceWarning]:
    """Every warning, by kind and team; `suggested` are the milestones `bridge okr suggest` has a key
    result for, which the warning about milestones without one points at."""
    found = [
        *_unlinked_milestones(index, links, suggested),
        *_orphan_tasks(index),
        *_overloaded(index, max_in_progress),
    ]
    found.sort(key=lambda w: (w.kind, w.team))
    return found


def _unlinked_milestones(
    index: Index, links: Mapping[Ref, Mapping[Ref, LinkOrigin]], suggested: Collection[Ref]
) -> list[CoherenceWarning]:
    by_team: defaultdict[str, list[str]] = defaultdict(list)
    with_suggestion: defaultdict[str, int] = defaultdict(int)
    for key, milestone in index.milestones.items():
        if milestone.category is not StatusCategory.DONE and not links.get(as_ref(key)):
            team = index.milestone_team[key]
            by_team[team].append(_name(milestone))
            with_suggestion[team] += as_ref(key) in suggested
    return [
        CoherenceWarning(
            "milestone_without_key_result",
            team,
            f"{len(names)} open milestone{_s(names)} in team {team} move{'' if len(names) != 1 else 's'} "
            f"no key result ({_unlinked_hint(len(names), with_suggestion[team])})",
            tuple(sorted(names)),
        )
        for team, names in by_team.items()
    ]


def _unlinked_hint(milestones: int, suggested: int) -> str:
    """What to do about milestones without a key result: a suggestion only where there is one."""
    link = (
        "link it to one in its tracker or with an okr_rules entry in the config"
        if milestones == 1
        else "link them to one in their tracker or with okr_rules entries in the config"
    )
    if not suggested:
        return link
    which = "it" if milestones == 1 else f"{suggested} of them" if suggested < milestones else "them"
    return f"{link}; `bridge okr suggest` has a key result for {which}"


def _name(item: Milestone | Task) -> str:
    return display_name(item.key, item.title)


def _orphan_tasks(index: Index) -> list[CoherenceWarning]:
    by_team: defaultdict[str, list[str]] = defaultdict(list)
    for task in index.tasks.values():
        if task.category is StatusCategory.DONE:
            continue
        parent = parent_key(task)
        if parent is None or parent not in index.milestones:
            by_team[index.team_of(task)].append(_name(task))
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
            by_team[index.milestone_team[key]].append(_name(milestone))
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
