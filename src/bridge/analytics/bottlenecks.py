"""Where work is slow and where it waits: cycle times per team and work type, bottleneck verdicts with
their evidence, time in each status, and ageing work in progress.

A work type is a bottleneck in its team when, over items finished within the window, its median cycle
time is at least `bottleneck_ratio` times that of the team's other work, both sides have at least
`bottleneck_min_sample` items, and the difference holds up: a one-sided Mann-Whitney test at
`bottleneck_confidence`, or the lower end of a bootstrap interval of the ratio of medians above 1.

Such a type is only a bottleneck when it also holds up later work, measured two ways: the later tasks
that wait on its items through dependency links (directly or through others), and the milestones whose
delivery waited on it (its task was the last of the milestone to finish, within the window). Where a
team's data has neither dependency links nor delivered milestones of two tasks or more, the verdict
rests on speed alone and says so; where it has either, a slower type that holds up nothing is `slow`,
not a bottleneck. Bottlenecks are ordered by slowdown x (1 + the share of the team's current and recent
work they hold up).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.analytics.snapshot import Index, Key, first_start, key_of
from bridge.analytics.stats import (
    bootstrap_ratio_lower,
    mann_whitney_greater,
    median,
    percentile,
    ratio,
)
from bridge.config import AnalyticsConfig
from bridge.domain import Dependency, Ref, StatusCategory, Task, display_name, unchecked_constructor
from bridge.flow_facts import micros

DAY = 86400.0
SPEED_AND_HOLDING = "speed and holding up"
SPEED_ALONE = "speed alone"
GroupKey = tuple[str, str | None]
"""(team, work type); work of no type is None."""


def days(span: timedelta) -> float:
    return span.total_seconds() / DAY


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    median_days: float
    percentile_days: float


def distribution(values: Iterable[float], pct: float) -> Distribution | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return Distribution(len(ordered), median(ordered), percentile(ordered, pct))


@dataclass(frozen=True, slots=True)
class AgeingItem:
    task: Ref
    key: str
    status: str | None
    age_days: float
    limit_days: float
    basis: str
    """Whose percentile the age is held against: `work type` or, with too few of those, `team`."""
    name: str = ""
    """How a person reads the item (`bridge.domain.display_name`); `status` is a name likewise."""


@dataclass(frozen=True, slots=True)
class WorkTypeStats:
    team: str
    work_type: str | None
    finished: int
    in_progress: int
    cycle_time: Distribution | None
    active_time: Distribution | None
    ageing: tuple[AgeingItem, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    team: str
    work_type: str
    bottleneck: bool
    sample: int
    other_sample: int
    median_days: float | None
    other_median_days: float | None
    ratio: float | None
    test: str
    p_value: float | None
    lower_bound: float | None
    """Bootstrap: the lower end of the one-sided interval of the ratio of medians."""
    blocks: int
    """Distinct later tasks that wait, directly or through others, on this type's items."""
    blocked_share: float
    """Share of the team's current and recent work held up: tasks waiting through links, and the other
    tasks of the milestones whose delivery waited on this type."""
    weight: float
    """Ratio scaled up by the share of the team's work it holds up; orders the bottlenecks."""
    evidence: tuple[str, ...]
    held_milestones: int = 0
    """Milestones delivered in the window whose last task to finish was of this type."""
    delivered_milestones: int = 0
    """The team's milestones of two tasks or more delivered in the window."""
    basis: str = SPEED_AND_HOLDING
    """`speed and holding up`, or `speed alone` where the team's data has no links nor milestones."""
    status: str = "not slower"
    """`bottleneck`, `slow` (slower, but holds up nothing), or `not slower` (not shown to be)."""
    reason: str = ""
    """One line: the slowdown and what it holds up, with the figure that orders the bottlenecks."""


@dataclass(frozen=True, slots=True)
class StatusTime:
    team: str
    status: str
    """The status's name (raw statuses of one name, such as two boards' "Doing" lists, are one row)."""
    category: StatusCategory
    days: float
    items: int
    share: float
    """Of the team's in-flight time within the window."""


@dataclass(frozen=True, slots=True)
class Flow:
    """One finished task's figures, in days."""

    task: Key
    cycle: float
    active: float


def finished_flows(index: Index, now: datetime, window: timedelta) -> dict[GroupKey, list[Flow]]:
    """Tasks finished within the window, by team and work type; computed once per index, since the
    work types, the bottlenecks and the flow charts all read it (callers must not change it)."""
    memo = ("finished_flows", now, window)
    found: dict[GroupKey, list[Flow]] | None = index.derived.get(memo)
    if found is None:
        found = index.derived[memo] = _finished_flows(index, now, window)
    return found


def _finished_flows(index: Index, now: datetime, window: timedelta) -> dict[GroupKey, list[Flow]]:
    since, until = micros(now - window), micros(now)
    groups: defaultdict[GroupKey, list[Flow]] = defaultdict(list)
    team_of, build = index.team_of, _build_flow
    # `days` inline, in microseconds (`timedelta.total_seconds` is the count over 10**6, so the days are
    # the same to the bit), and `Flow` built without the frozen class's `__init__`: once per task
    # finished in the window, tens of thousands in a big store (a task's own team is `team_of`'s answer)
    for key, (task, started, finished, active) in index.finish.items():
        if since <= finished <= until:
            groups[(task.team or team_of(task), task.work_type)].append(
                build(key, (finished - started) / 1_000_000 / DAY, active / 1_000_000 / DAY)
            )
    return dict(groups)


_build_flow: Callable[..., Flow] = unchecked_constructor(Flow)


def work_type_stats(index: Index, now: datetime, settings: AnalyticsConfig) -> list[WorkTypeStats]:
    """Cycle and active time per team and work type, with the open items older than is usual."""
    groups = finished_flows(index, now, settings.window)
    pct = settings.percentile
    cycle = {key: distribution((f.cycle for f in flows), pct) for key, flows in groups.items()}
    team_cycle: dict[str, Distribution | None] = {}
    by_team: defaultdict[str, list[float]] = defaultdict(list)
    for (team, _), flows in groups.items():
        by_team[team].extend(f.cycle for f in flows)
    for team, values in by_team.items():
        team_cycle[team] = distribution(values, pct)
    open_items = _open_started(index)
    stats = []
    for key in sorted(set(groups) | set(open_items), key=_group_order):
        team, work_type = key
        limit, basis = _age_limit(cycle.get(key), team_cycle.get(team), settings.bottleneck_min_sample)
        ageing = []
        for task, started, status in open_items.get(key, ()):
            age = days(now - started)
            if limit is not None and age > limit:
                ageing.append(
                    AgeingItem(
                        Ref(task.source, task.remote_id),
                        task.key,
                        index.status_name(task.source, status),
                        age,
                        limit,
                        basis,
                        display_name(task.key, task.title),
                    )
                )
        ageing.sort(key=lambda a: (-a.age_days, a.key))
        flows = groups.get(key, [])
        stats.append(
            WorkTypeStats(
                team=team,
                work_type=work_type,
                finished=len(flows),
                in_progress=len(open_items.get(key, ())),
                cycle_time=cycle.get(key),
                active_time=distribution((f.active for f in flows), pct),
                ageing=tuple(ageing),
            )
        )
    return stats


def _group_order(key: GroupKey) -> tuple[str, int, str]:
    return (key[0], 1 if key[1] is None else 0, key[1] or "")


def _age_limit(
    own: Distribution | None, team: Distribution | None, min_sample: int
) -> tuple[float | None, str]:
    if own is not None and own.count >= min_sample:
        return own.percentile_days, "work type"
    if team is not None and team.count >= min_sample:
        return team.percentile_days, "team"
    return None, "too few finished items"


def _open_started(index: Index) -> dict[GroupKey, list[tuple[Task, datetime, str | None]]]:
    """Tasks in progress or waiting now, with when they first started."""
    found: defaultdict[GroupKey, list[tuple[Task, datetime, str | None]]] = defaultdict(list)
    for key, task in index.open_tasks.items():
        if not task.category.started:
            continue
        started = first_start(task, index.facts.get(key))
        if started is not None:
            found[(index.team_of(task), task.work_type)].append((task, started, task.raw_status))
    return dict(found)


# --- verdicts ----------------------------------------------------------------------------------------


def blocked_later_work(
    sources: Mapping[GroupKey, Sequence[Key]], dependencies: Iterable[Dependency], known: Mapping[Key, Task]
) -> dict[GroupKey, set[Key]]:
    """For each group, the distinct tasks reachable from its items along `blocker -> blocked` links."""
    blocked = _blocked_by(dependencies, known)
    found: dict[GroupKey, set[Key]] = {}
    for group, starts in sources.items():
        reached: set[Key] = set()
        frontier = [r for r in starts if r in blocked]
        while frontier:
            following = []
            for item in frontier:
                for nxt in blocked.get(item, ()):
                    if nxt not in reached:
                        reached.add(nxt)
                        following.append(nxt)
            frontier = following
        found[group] = reached
    return found


def _blocked_by(dependencies: Iterable[Dependency], known: Mapping[Key, Task]) -> dict[Key, list[Key]]:
    blocked: defaultdict[Key, list[Key]] = defaultdict(list)
    for dep in dependencies:
        target = (dep.source, dep.blocked_id)
        if target in known:
            blocked[(dep.source, dep.blocker_id)].append(target)
    return dict(blocked)


@dataclass(frozen=True, slots=True)
class Deliveries:
    """Milestones of two tasks or more whose last task finished within the window, by team."""

    delivered: dict[str, int]
    held: dict[GroupKey, int]
    """Per group, the milestones whose last task to finish was one of its items."""
    waited: dict[GroupKey, set[Key]]
    """Per group, the other tasks of those milestones: their delivery waited on the group's item."""


def last_to_finish(index: Index, now: datetime, window: timedelta) -> Deliveries:
    """Which work type held each milestone delivered in the window: the type of its last task to finish."""
    since, until = micros(now - window), micros(now)
    delivered: defaultdict[str, int] = defaultdict(int)
    held: defaultdict[GroupKey, int] = defaultdict(int)
    waited: defaultdict[GroupKey, set[Key]] = defaultdict(set)
    for tasks in index.tasks_of.values():
        if len(tasks) < 2 or any(t.category is not StatusCategory.DONE for t in tasks):
            continue  # open, or a single task that waits on nothing
        # a done task without a flow finished before the index reaches (or has no dates): not the last;
        # finishes compared in exact microseconds
        finishes = [(index.finish.get(key_of(t)), t) for t in tasks]
        last = max((flow[2] for flow, _ in finishes if flow is not None), default=None)
        if last is None or not since <= last <= until:
            continue
        holders = {(index.team_of(t), t.work_type) for flow, t in finishes if flow and flow[2] == last}
        for group in holders:
            held[group] += 1
            waited[group].update(key_of(t) for _, t in finishes if (index.team_of(t), t.work_type) != group)
        for team in {team for team, _ in holders}:
            delivered[team] += 1
    return Deliveries(dict(delivered), dict(held), dict(waited))


def judge(
    index: Index, dependencies: Iterable[Dependency], now: datetime, settings: AnalyticsConfig
) -> list[Verdict]:
    """A verdict for every typed work type with finished items in the window, bottlenecks first."""
    dependencies = list(dependencies)
    groups = finished_flows(index, now, settings.window)
    members = _members(index, now, settings.window)
    blocks = blocked_later_work(members, dependencies, index.tasks)
    deliveries = last_to_finish(index, now, settings.window)
    linked = _linked_teams(index, dependencies)
    team_size: defaultdict[str, int] = defaultdict(int)
    for (team, _), refs in members.items():
        team_size[team] += len(refs)
    by_team: defaultdict[str, list[GroupKey]] = defaultdict(list)
    for key in groups:
        by_team[key[0]].append(key)
    verdicts = []
    for team, keys in by_team.items():
        cycles = {key: sorted(f.cycle for f in groups[key]) for key in keys}
        for key in keys:
            if key[1] is None:
                continue
            other = sorted(v for k in keys if k != key for v in cycles[k])
            held_up = Holding(
                blocks=len(blocks.get(key, ())),
                held=deliveries.held.get(key, 0),
                delivered=deliveries.delivered.get(team, 0),
                tasks=len(blocks.get(key, set()) | deliveries.waited.get(key, set())),
                team_size=team_size[team],
                measurable=team in linked or deliveries.delivered.get(team, 0) > 0,
            )
            verdicts.append(_verdict(team, key[1], cycles[key], other, held_up, settings))
    verdicts.sort(key=lambda v: (not v.bottleneck, -v.weight, v.team, v.work_type))
    return verdicts


def _linked_teams(index: Index, dependencies: Iterable[Dependency]) -> set[str]:
    """Teams with a dependency link between two of the store's tasks, on either end."""
    teams: set[str] = set()
    for dep in dependencies:
        ends = [index.tasks.get((dep.source, dep.blocker_id)), index.tasks.get((dep.source, dep.blocked_id))]
        if all(ends):
            teams.update(index.team_of(t) for t in ends if t is not None)
    return teams


def _members(index: Index, now: datetime, window: timedelta) -> dict[GroupKey, list[Key]]:
    """Each group's items that count for blocking: open now, or finished within the window (those of
    `finished_flows`)."""
    found: defaultdict[GroupKey, list[Key]] = defaultdict(list)
    team_of = index.team_of
    for key, task in index.open_tasks.items():
        found[(team_of(task), task.work_type)].append(key)
    for group, flows in finished_flows(index, now, window).items():
        found[group].extend(flow.task for flow in flows)
    return dict(found)


@dataclass(frozen=True, slots=True)
class Holding:
    """What one work type holds up in its team."""

    blocks: int
    held: int
    delivered: int
    tasks: int
    """Distinct tasks held up: waiting through links, or in a milestone whose delivery waited."""
    team_size: int
    measurable: bool
    """The team's data has dependency links or delivered milestones to measure holding up by."""

    @property
    def share(self) -> float:
        return self.tasks / self.team_size if self.team_size else 0.0

    @property
    def anything(self) -> bool:
        return self.blocks > 0 or self.held > 0

    def deliveries(self) -> str:
        """How often the type was the last to finish in its team's delivered milestones."""
        if not self.delivered:
            return "no milestone of two tasks or more delivered in the window"
        if self.delivered == 1:
            last = "the last to finish" if self.held else "not the last to finish"
            return f"{last} in the one milestone delivered in the window"
        return f"the last to finish in {self.held} of the {self.delivered} milestones delivered in the window"

    def describe(self) -> str:
        """What it holds up, in words."""
        parts = []
        if self.blocks:
            parts.append(f"holds up {plural(self.blocks, 'later task')} through dependency links")
        if self.held:
            parts.append(f"was {self.deliveries()}")
        if not parts:
            return "holds up no later work"
        return " and ".join(parts) + f" ({self.share:.0%} of the team's current and recent work)"


def plural(count: int, noun: str) -> str:
    """`1 later task`, `3 later tasks`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _verdict(
    team: str,
    work_type: str,
    sample: list[float],
    other: list[float],
    holding: Holding,
    settings: AnalyticsConfig,
) -> Verdict:
    need = settings.bottleneck_min_sample
    evidence = []
    own_median = median(sample) if sample else None
    other_median = median(other) if other else None
    found_ratio = (
        ratio(own_median, other_median) if own_median is not None and other_median is not None else None
    )
    evidence.append(f"{len(sample)} finished in the window (at least {need} needed)")
    if other_median is None:
        evidence.append("the team finished no other work in the window to compare with")
    else:
        evidence.append(
            f"{len(other)} of the team's other items finished in the window (at least {need} needed)"
        )
        evidence.append(
            f"median cycle time {own_median:.2f} d against {other_median:.2f} d for the team's other work: "
            f"ratio {found_ratio:.2f} (bottleneck from {settings.bottleneck_ratio:g})"
        )
    enough = len(sample) >= need and len(other) >= need
    slower = found_ratio is not None and found_ratio >= settings.bottleneck_ratio
    p_value = lower = None
    holds = False
    if enough and slower:
        holds, p_value, lower, line = _significance(sample, other, settings)
        evidence.append(line)
    evidence.append(_holding_evidence(holding))
    status = "not slower"
    if enough and slower and holds:
        status = "bottleneck" if holding.anything or not holding.measurable else "slow"
    weight = (found_ratio if found_ratio is not None else 0.0) * (1.0 + holding.share)
    return Verdict(
        team=team,
        work_type=work_type,
        bottleneck=status == "bottleneck",
        sample=len(sample),
        other_sample=len(other),
        median_days=own_median,
        other_median_days=other_median,
        ratio=found_ratio,
        test=settings.bottleneck_test,
        p_value=p_value,
        lower_bound=lower,
        blocks=holding.blocks,
        blocked_share=holding.share,
        weight=weight,
        evidence=tuple(evidence),
        held_milestones=holding.held,
        delivered_milestones=holding.delivered,
        basis=SPEED_AND_HOLDING if holding.measurable else SPEED_ALONE,
        status=status,
        reason=_reason(
            work_type,
            own_median,
            other_median,
            found_ratio,
            holding,
            status,
            _not_slower(enough, found_ratio, settings),
        ),
    )


def _significance(
    sample: list[float], other: list[float], settings: AnalyticsConfig
) -> tuple[bool, float | None, float | None, str]:
    """Whether the slowdown holds up statistically: (holds, p-value, bootstrap bound, evidence line)."""
    if settings.bottleneck_test == "mann_whitney":
        alpha = 1.0 - settings.bottleneck_confidence
        p_value = mann_whitney_greater(sample, other)
        holds = p_value < alpha
        line = f"Mann-Whitney one-sided p = {p_value:.4f} ({'below' if holds else 'not below'} {alpha:.2f})"
        return holds, p_value, None, line
    # seeded by the figures, not the names, so renaming a work type changes nothing
    rng = random.Random(f"{settings.seed}|{len(sample)}|{len(other)}|{sum(sample)!r}|{sum(other)!r}")
    lower = bootstrap_ratio_lower(sample, other, settings.bottleneck_confidence, settings.bootstrap_runs, rng)
    holds = lower > 1.0
    line = (
        f"bootstrap {settings.bottleneck_confidence:.0%} lower bound of the ratio of medians "
        f"{lower:.2f} ({'above' if holds else 'not above'} 1, {settings.bootstrap_runs} resamples)"
    )
    return holds, None, lower, line


def _holding_evidence(holding: Holding) -> str:
    if not holding.measurable:
        return (
            "the team's data has no dependency links nor delivered milestones: "
            "the verdict rests on speed alone"
        )
    return (
        f"blocks {plural(holding.blocks, 'later task')} through dependency links; {holding.deliveries()}; "
        f"{plural(holding.tasks, 'task')} held up, {holding.share:.0%} of the team's current and recent work"
    )


def _not_slower(enough: bool, found_ratio: float | None, settings: AnalyticsConfig) -> str:
    """Why a work type is no bottleneck on speed."""
    if found_ratio is not None and found_ratio <= 1.0:
        return "no slower than the rest"
    if found_ratio is None or found_ratio < settings.bottleneck_ratio:
        return f"less than the {settings.bottleneck_ratio:g}x a bottleneck takes"
    if not enough:
        return f"too few finished items to tell (at least {settings.bottleneck_min_sample} a side)"
    return "the difference does not hold up statistically"


def _reason(
    work_type: str,
    own: float | None,
    other: float | None,
    found_ratio: float | None,
    holding: Holding,
    status: str,
    not_slower: str,
) -> str:
    """The one-line reason: the slowdown, what it holds up, and the figure that orders bottlenecks."""
    if own is None or other is None or found_ratio is None:
        return f"{work_type} work: the team finished no other work in the window to compare with"
    speed = (
        f"{work_type} work takes {own:.1f} d against {other:.1f} d for the team's other work "
        f"({found_ratio:.1f}x)"
    )
    if status == "not slower":
        return f"{speed}: {not_slower}"
    if not holding.measurable:
        return (
            f"{speed}; the team's data has no dependency links nor milestones, so this rests on speed alone"
        )
    # "ranked by 3.2 x (1 + 12%)": the slowdown times one plus the share held up, without "3.2x x"
    ranked = found_ratio * (1 + holding.share)
    order = f"ranked by {found_ratio:.1f} x (1 + {holding.share:.0%}) = {ranked:.2f}"
    if status == "slow":
        return f"{speed} but holds up no later work: slow, not a bottleneck"
    return f"{speed} and {holding.describe()}; {order}"


# --- time in status ----------------------------------------------------------------------------------


def time_in_status(index: Index, now: datetime, window: timedelta) -> list[StatusTime]:
    """Time items spent in each raw status between starting and finishing, within the window.

    An open item's current status counts up to now. Time before an item first started (the backlog)
    and time in `done` statuses are left out: this is where work in flight spends its time.
    """
    since = micros(now - window)
    until = micros(now)
    # per team, per status name: days, items, and the category of the last span counted
    team_rows: dict[str, dict[str, _StatusRow]] = {}
    names = _names_by_source(index)
    tasks, finish, done, team_of = index.tasks, index.finish.get, StatusCategory.DONE, index.team_of
    # The loop runs once per span (a few hundred thousand in a large store): each task's time is summed
    # per status name in exact microseconds first, then added to its team's row once.
    for key, facts in index.facts.items():
        spans = facts.spans
        if not spans:
            continue  # never started: no in-flight time
        finished = finish(key)  # a done task with a flow (its task beside it: one lookup, not two)
        open_until: int | None
        if finished is not None:
            # the index's flow of a task is made from these very facts: it finished at `facts.flow[1]`
            if facts.flow is None or facts.flow[1] < since:
                continue
            task, open_until = finished[0], None
        else:
            task = tasks[key]
            if task.category is done:
                continue  # done with no flow: finished before the index reaches
            open_until = until
        named = names.get(key[0])  # None where the tracker's statuses have no stored names
        spent_in: dict[str, int] = {}
        category_of: dict[str, StatusCategory] = {}
        for status, category, at, left in spans:
            end = left if left is not None else (open_until or at)
            if end > until:
                end = until
            if at < since:
                at = since
            if end <= at:
                continue
            name = status if named is None else (named.get(status) or status)
            spent_in[name] = spent_in.get(name, 0) + (end - at)
            category_of[name] = category
        if not spent_in:
            continue
        team = task.team or team_of(task)
        rows_of = team_rows.get(team)
        if rows_of is None:
            rows_of = team_rows[team] = {}
        # one lookup a row, its three figures updated in place (not three dicts read and written)
        for name, in_status in spent_in.items():
            row = rows_of.get(name)
            if row is None:
                rows_of[name] = _StatusRow(in_status / 1_000_000 / DAY, 1, category_of[name])
            else:
                row.days += in_status / 1_000_000 / DAY
                row.items += 1  # a task adds to each of its team's rows once
                row.category = category_of[name]
    order = {category: i for i, category in enumerate(StatusCategory)}
    rows: list[StatusTime] = []
    for team, rows_of in team_rows.items():
        total = 0.0
        for row in rows_of.values():
            total += row.days
        rows.extend(
            StatusTime(team, name, row.category, row.days, row.items, row.days / total)
            for name, row in rows_of.items()
        )
    rows.sort(key=lambda r: (r.team, order[r.category], -r.days, r.status))
    return rows


class _StatusRow:
    """One team's time in one status as it is summed: days, items, the last span's category."""

    __slots__ = ("category", "days", "items")

    def __init__(self, days: float, items: int, category: StatusCategory) -> None:
        self.days = days
        self.items = items
        self.category = category


def _names_by_source(index: Index) -> dict[str, dict[str, str]]:
    """Per source, raw status -> the name `Index.status_name` gives it (where the pull stored one)."""
    found: defaultdict[str, dict[str, str]] = defaultdict(dict)
    for (source, status), name in index.status_names.items():
        found[source][status] = name
    return dict(found)
