"""Coherence warnings: the ways a plan drifts from the method.

Every open milestone should move a key result, every open task should belong to a milestone, and a
team with many milestones in progress at once leaves deliveries half done. Warnings are grouped per
team, each naming the items concerned.

Some warnings point at single items a team can act on in its tracker (`ItemWarning`): a milestone
missing the value or effort its rank strategy needs, the lowest-ranked milestones of a team beyond its
limit of milestones in progress, a task in progress longer than its work type usually takes. The bridge
labels those items (`bridge.sync.desired`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass

from bridge.analytics.bottlenecks import WorkTypeStats
from bridge.analytics.ranks import Rank
from bridge.analytics.snapshot import NO_TEAM, Index, Key, as_ref, key_of, parent_key
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
    for task in index.open_tasks.values():
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


@dataclass(frozen=True, slots=True)
class ItemWarning:
    """One item the method warns about, which the bridge can label in its tracker."""

    kind: str
    """`needs_estimate`, `too_many_in_progress` or `ageing` (`ITEM_WARNING_KINDS`)."""
    item: Ref
    name: str
    """How people read the item (`bridge.domain.display_name`)."""
    team: str
    reason: str
    """Why, in one line a person can act on."""


ITEM_WARNING_KINDS = ("needs_estimate", "too_many_in_progress", "ageing")
"""The kinds of `ItemWarning`, in the order reports list them."""

ITEM_WARNING_TITLES: Mapping[str, str] = {
    "needs_estimate": "open milestones missing the value or effort the rank strategy needs",
    "too_many_in_progress": "milestones in progress beyond their team's limit, the lowest-ranked",
    "ageing": "open tasks in progress longer than their work type usually takes",
}
"""Each kind of `ItemWarning` as a heading a person reads."""


def item_warning_groups(found: Iterable[ItemWarning]) -> list[tuple[str, list[ItemWarning]]]:
    """`found` by kind, in `ITEM_WARNING_KINDS` order; kinds with no warning are left out."""
    by_kind: defaultdict[str, list[ItemWarning]] = defaultdict(list)
    for warning in found:
        by_kind[warning.kind].append(warning)
    return [(kind, by_kind[kind]) for kind in ITEM_WARNING_KINDS if by_kind.get(kind)]


_NEEDS: Mapping[str, tuple[str, ...]] = {"value": ("value",), "wsjf": ("value", "effort"), "okr": ()}
"""What each rank strategy reads from a milestone (`okr` scores by linked key results instead)."""


def item_warnings(
    index: Index,
    ranks: Sequence[Rank],
    work_types: Iterable[WorkTypeStats],
    *,
    strategy: str,
    max_in_progress: int,
    percentile: float,
) -> list[ItemWarning]:
    """The milestones and tasks the method warns about one by one: open milestones missing what the rank
    strategy needs, the lowest-ranked milestones of a team with more in progress than the limit, and
    open tasks older than their work type's `percentile` cycle time (`work_type_stats` found those).
    Done items never get one."""
    found = [
        *_needs_estimate(index, strategy),
        *_beyond_the_limit(index, ranks, max_in_progress),
        *_ageing(work_types, percentile),
    ]
    found.sort(key=lambda w: (ITEM_WARNING_KINDS.index(w.kind), w.team, w.name, str(w.item)))
    return found


def _missing(milestone: Milestone, what: str) -> bool:
    amount = milestone.value if what == "value" else milestone.effort
    if amount is None or not math.isfinite(amount):
        return True
    return what == "effort" and amount <= 0


def _needs_estimate(index: Index, strategy: str) -> list[ItemWarning]:
    needs = _NEEDS.get(strategy, ())
    found = []
    for key, milestone in index.milestones.items():
        if milestone.category is StatusCategory.DONE:
            continue
        missing = [what for what in needs if _missing(milestone, what)]
        if not missing:
            continue
        what = "no " + " and no ".join(missing)
        why = (
            "the value rank strategy ranks by value"
            if strategy == "value"
            else "the wsjf rank strategy divides value by effort"
        )
        found.append(
            ItemWarning(
                "needs_estimate",
                as_ref(key),
                _name(milestone),
                index.milestone_team[key],
                f"{what} set: {why}, so it is ranked after every scored milestone",
            )
        )
    return found


def _beyond_the_limit(index: Index, ranks: Sequence[Rank], limit: int) -> list[ItemWarning]:
    position = {r.milestone: r.portfolio_rank for r in ranks}
    by_team: defaultdict[str, list[tuple[Key, Milestone]]] = defaultdict(list)
    for key, milestone in index.milestones.items():
        if in_progress(milestone, index) and as_ref(key) in position:
            by_team[index.milestone_team[key]].append((key, milestone))
    found = []
    for team, members in by_team.items():
        if len(members) <= limit:
            continue
        # Ranks within a team follow the portfolio order, so the portfolio rank orders them.
        members.sort(key=lambda pair: position[as_ref(pair[0])])
        who = "work of no team" if team == NO_TEAM else team
        for place, (key, milestone) in enumerate(members[limit:], start=limit + 1):
            found.append(
                ItemWarning(
                    "too_many_in_progress",
                    as_ref(key),
                    _name(milestone),
                    team,
                    f"{who} has {len(members)} milestones in progress, more than {limit}; "
                    f"this one ranks {ordinal(place)} of them",
                )
            )
    return found


def _ageing(work_types: Iterable[WorkTypeStats], percentile: float) -> list[ItemWarning]:
    found = []
    for stats in work_types:
        group = f"{stats.team}/{stats.work_type}" if stats.work_type else f"{stats.team}'s untyped"
        for item in stats.ageing:
            limit = f"{item.limit_days:.1f} d"
            if item.basis == "work type":
                whose = f"{group} work takes ({limit})"
            else:
                whose = (
                    f"{stats.team}'s work takes ({limit}; too few {group} items finished to judge by type)"
                )
            found.append(
                ItemWarning(
                    "ageing",
                    item.task,
                    item.name or item.key,
                    stats.team,
                    f"in progress {item.age_days:.1f} d, longer than {percentile:g}% of {whose}: "
                    "a hint to split it",
                )
            )
    return found


def ordinal(number: int) -> str:
    """`1st`, `2nd`, `3rd`, `4th`, `11th`, `22nd`."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"
