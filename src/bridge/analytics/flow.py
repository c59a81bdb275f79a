"""The flow figures teams read as charts, per team: a cycle-time scatter with its percentile lines,
cumulative flow by status category, weekly throughput, ageing work in progress by status against each
work type's percentiles, and how many items are likely finished by a date (Monte Carlo).

- Scatter: every task finished within the window, at (finish time, cycle time in days); the lines are
  the 50th, 85th and 95th percentiles of those cycle times. A team that finished more than
  `SCATTER_DOTS` tasks in the window gets one dot per cell instead: the tasks finished on the same day
  of the window whose cycle times fall in the same band (`SCATTER_BANDS` bands from 0 to the longest
  cycle time) are one dot, at its slowest task and counting them all. On the chart the tasks of a cell
  lie within a day and under 2 px of each other, so the chart looks the same, and its size is bounded
  by days times bands rather than by tasks (at a million tasks, 220,000 dots became about 31,000).
  The percentile lines are always those of every task.
- Cumulative flow: at the end of each of the window's days, how many of the team's items were in each
  category, from their status histories (an item without history by its created, started and done dates).
  Counted from each item's first known status; done items accumulate, so the bands read as a CFD.
- Throughput: tasks finished in each week of the window, the last week ending now.
- Ageing: every item in progress or waiting now, its current status and age since it first started,
  against its work type's cycle-time percentiles (the team's when the type has too few finished items).
- How many: `forecast_runs` trials replay days drawn from the team's daily throughput over
  `forecast_window`; for each of the next `HOW_MANY_WEEKS` weeks, the count finished with a 50 % chance
  (the median) and with an 85 % chance (the 15th percentile of the trials: at least that many in 85 of
  100 trials).

Pure: `now` and the seed come in; the same snapshot, settings and `now` give the same figures.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

import numpy as np

from bridge.analytics.bottlenecks import Flow, GroupKey, days, finished_flows
from bridge.analytics.forecast import daily_throughput, finished_by_day
from bridge.analytics.snapshot import Index, Key, first_start
from bridge.analytics.stats import generator, percentile
from bridge.config import AnalyticsConfig
from bridge.domain import Ref, StatusCategory, Task
from bridge.flow_facts import micros

LINES = (50.0, 85.0, 95.0)
"""The percentile lines of the scatter and the ageing chart."""
HOW_MANY_WEEKS = 8
HOW_MANY_CHANCES = (0.5, 0.85)
_DAY = timedelta(days=1)
_DAY_MICROS = 86_400_000_000
_WEEK = timedelta(days=7)
SCATTER_DOTS = 2_000
"""A team's scatter shows up to this many finished tasks one dot each; beyond, cells (see above)."""
SCATTER_BANDS = 100
"""Cycle-time bands of a cell: each 1 % of the longest cycle time of the team's window."""


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Cycle-time percentiles in days, one per `LINES` entry, over `count` finished items."""

    count: int
    days: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FinishedPoint:
    """A dot of the scatter: a finished task, or (`tasks` > 1) the slowest of the tasks of its cell."""

    task: Ref
    key: str
    title: str
    work_type: str | None
    finished: datetime
    cycle_days: float
    tasks: int = 1
    """The finished tasks this dot stands for: 1, or those of its cell (the day's and cycle-time band's)."""


@dataclass(frozen=True, slots=True)
class FlowDay:
    """Items in each category at the end of `day`."""

    day: datetime
    counts: tuple[int, ...]
    """In `StatusCategory` order: to do, in progress, waiting, done."""


@dataclass(frozen=True, slots=True)
class Week:
    start: datetime
    end: datetime
    finished: int


@dataclass(frozen=True, slots=True)
class AgeingPoint:
    task: Ref
    key: str
    title: str
    work_type: str | None
    status: str
    category: StatusCategory
    age_days: float


@dataclass(frozen=True, slots=True)
class TypeLines:
    """A work type's percentile lines for the ageing chart; `basis` says whose they are."""

    work_type: str | None
    percentiles: Percentiles | None
    basis: str


@dataclass(frozen=True, slots=True)
class HowMany:
    """Items finished by `by`: `counts[i]` with at least `HOW_MANY_CHANCES[i]` chance."""

    by: datetime
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TeamFlow:
    team: str
    cycle: Percentiles | None
    finished: tuple[FinishedPoint, ...]
    """The scatter's dots by finish time: one a task, or one a cell beyond `SCATTER_DOTS` tasks."""
    cumulative: tuple[FlowDay, ...]
    throughput: tuple[Week, ...]
    statuses: tuple[tuple[str, StatusCategory], ...]
    """The statuses of the ageing chart in stage order, then by the order items first entered them."""
    ageing: tuple[AgeingPoint, ...]
    type_lines: tuple[TypeLines, ...]
    how_many: tuple[HowMany, ...]
    how_many_basis: str
    """What the Monte Carlo drew from, or why there is no forecast."""


def percentiles_of(values: Iterable[float]) -> Percentiles | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return Percentiles(len(ordered), tuple(percentile(ordered, p) for p in LINES))


def team_flows(index: Index, now: datetime, settings: AnalyticsConfig) -> list[TeamFlow]:
    """Every team's flow figures, teams by name."""
    groups = finished_flows(index, now, settings.window)
    by_team: defaultdict[str, list[Task]] = defaultdict(list)
    for task in index.tasks.values():
        by_team[index.team_of(task)].append(task)
    throughput = daily_throughput(index, now, settings.forecast_window)
    flows = []
    for team in sorted(by_team):
        team_groups = {key: flows for key, flows in groups.items() if key[0] == team}
        cycles = _cycles_by_type(team_groups)
        finishes = _finishes(index, team_groups)
        ageing = _ageing(index, by_team[team], now)
        flows.append(
            TeamFlow(
                team=team,
                cycle=percentiles_of(chain.from_iterable(cycles.values())),
                finished=tuple(_finished_points(index, finishes, now - settings.window)),
                cumulative=tuple(cumulative_flow(index, by_team[team], now, settings.window)),
                # (every task the weeks count is among those finished in the window)
                throughput=tuple(_weeks((at for at, _ in finishes), now, settings.window)),
                statuses=tuple(_statuses(index, ageing)),
                ageing=tuple(ageing),
                type_lines=tuple(_type_lines(cycles, ageing, settings.bottleneck_min_sample)),
                how_many=tuple(how_many(throughput.get(team, []), now, settings, team)),
                how_many_basis=_how_many_basis(throughput.get(team, []), settings),
            )
        )
    return flows


def _finishes(index: Index, groups: Mapping[GroupKey, Sequence[Flow]]) -> list[tuple[datetime, Flow]]:
    """These finished flows with when each task finished."""
    finished_at = index.finished_at
    pairs = ((finished_at(flow.task), flow) for flows in groups.values() for flow in flows)
    return [(at, flow) for at, flow in pairs if at is not None]  # every grouped flow has its finish


def _cycles_by_type(groups: Mapping[GroupKey, Sequence[Flow]]) -> dict[str | None, list[float]]:
    """The cycle times (days) of a team's tasks finished in the window, by work type."""
    found: defaultdict[str | None, list[float]] = defaultdict(list)
    for (_, work_type), flows in groups.items():
        found[work_type].extend(flow.cycle for flow in flows)
    return dict(found)


def _finished_points(
    index: Index, found: Sequence[tuple[datetime, Flow]], since: datetime
) -> list[FinishedPoint]:
    """The scatter's dots by finish time (then key): a task each, or the cells of `SCATTER_DOTS`."""
    counts: dict[Key, int] = {}
    if len(found) > SCATTER_DOTS:
        found, counts = _cells(index, found, since)
    points = []
    for finished, flow in found:
        task = index.tasks[flow.task]
        points.append(
            FinishedPoint(
                Ref(*flow.task),
                task.key,
                task.title,
                task.work_type,
                finished,
                flow.cycle,
                counts.get(flow.task, 1),
            )
        )
    points.sort(key=lambda p: (p.finished, p.key))
    return points


def _cells(
    index: Index, found: Sequence[tuple[datetime, Flow]], since: datetime
) -> tuple[list[tuple[datetime, Flow]], dict[Key, int]]:
    """One dot per cell (finish day of the window, cycle-time band): the cell's slowest task (the first
    by key among equals), with how many tasks the cell holds."""
    longest = max(flow.cycle for _, flow in found)
    band = longest / SCATTER_BANDS if longest > 0 else 1.0
    cells: dict[tuple[int, int], tuple[datetime, Flow]] = {}
    counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    tasks = index.tasks
    for finished, flow in found:
        cell = ((finished - since) // _DAY, min(SCATTER_BANDS - 1, int(flow.cycle / band)))
        counts[cell] += 1
        held = cells.get(cell)
        if (
            held is None
            or flow.cycle > held[1].cycle
            or (flow.cycle == held[1].cycle and tasks[flow.task].key < tasks[held[1].task].key)
        ):
            cells[cell] = (finished, flow)
    return list(cells.values()), {flow.task: counts[cell] for cell, (_, flow) in cells.items()}


# --- cumulative flow ----------------------------------------------------------------------------------

_ORDER = {category: i for i, category in enumerate(StatusCategory)}


def cumulative_flow(index: Index, tasks: Iterable[Task], now: datetime, window: timedelta) -> list[FlowDay]:
    """Items per category at the end of each day of the window (the last day ends now)."""
    span = max(1, math.ceil(window / _DAY))
    start = now - span * _DAY
    origin = micros(start)
    deltas = [[0] * len(_ORDER) for _ in range(span)]
    order, facts_of = _ORDER, index.facts
    # in integer microseconds: exact, and no conversion of each of the hundreds of thousands of entries
    first_day = deltas[0]
    done, done_slot = StatusCategory.DONE, order[StatusCategory.DONE]
    for task in tasks:
        facts = facts_of.get((task.source, task.remote_id))
        if facts is None:
            # `_settled_before` inline for the commonest task of a large store: done before the window
            if (
                task.category is done
                and task.done is not None
                and task.done <= start
                and (task.started is None or task.started <= start)
                and (task.created is None or task.created <= start)
            ):
                first_day[done_slot] += 1
                continue
            settled = _settled_before(task, start)
            if settled is not None:
                # every dated entry falls before the window: only the last counts, on the first day
                first_day[order[settled]] += 1
                continue
        previous: int | None = None
        for at, category in facts.entries if facts is not None else _dated_entries(task, start, origin):
            if at <= origin:
                slot = 0  # before the window: only where the item stood when it began counts
            else:
                # the first sample taken at or after `at` is the end of day ceil((at - start) / 1 d) - 1
                slot = -((origin - at) // _DAY_MICROS) - 1
                if slot >= span:
                    continue
            entered = order[category]
            if entered == previous:
                continue
            row = deltas[slot]
            row[entered] += 1
            if previous is not None:
                row[previous] -= 1
            previous = entered
    running = [0] * len(_ORDER)
    found = []
    for day, change in enumerate(deltas):
        running = [a + b for a, b in zip(running, change, strict=True)]
        found.append(FlowDay(start + (day + 1) * _DAY, tuple(running)))
    return found


def _settled_before(task: Task, start: datetime) -> StatusCategory | None:
    """For a task without history whose dates all fall before the window's `start` (most tasks of a
    long-lived store: done long ago), the category of its last dated entry, which is all
    `cumulative_flow` counts of it; None otherwise. Spares building the entries of hundreds of thousands
    of old tasks."""
    created, started = task.created, task.started
    finished = task.done if task.category is StatusCategory.DONE else None
    if finished is not None:
        if (
            finished > start
            or (started is not None and started > start)
            or (created is not None and created > start)
        ):
            return None
        return StatusCategory.DONE
    if started is not None:
        return (
            None
            if started > start or (created is not None and created > start)
            else StatusCategory.IN_PROGRESS
        )
    if created is not None:
        return None if created > start else StatusCategory.TODO
    return None


def _dated_entries(task: Task, start: datetime, origin: int) -> list[tuple[int, StatusCategory]]:
    """A task without history: when it entered each category by its dates (microseconds since the
    epoch; `origin` for any date before the window's `start`, where only the order counts)."""
    dated = (
        (task.created, StatusCategory.TODO),
        (task.started, StatusCategory.IN_PROGRESS),
        (task.done if task.category is StatusCategory.DONE else None, StatusCategory.DONE),
    )
    return [(origin if at <= start else micros(at), category) for at, category in dated if at is not None]


# --- throughput ---------------------------------------------------------------------------------------


def weekly_throughput(index: Index, tasks: Iterable[Task], now: datetime, window: timedelta) -> list[Week]:
    """Tasks finished in each whole week of the window, oldest first; the last week ends now."""
    finishes = (index.finished_at((task.source, task.remote_id)) for task in tasks)
    return _weeks((at for at in finishes if at is not None), now, window)


def _weeks(finishes: Iterable[datetime], now: datetime, window: timedelta) -> list[Week]:
    """`weekly_throughput` of tasks finished at these times."""
    weeks = max(1, math.floor(window / _WEEK))
    start = now - weeks * _WEEK
    counts = [0] * weeks
    for finished in finishes:
        if start < finished <= now:
            counts[min(weeks - 1, int((finished - start) / _WEEK))] += 1
    return [Week(start + i * _WEEK, start + (i + 1) * _WEEK, n) for i, n in enumerate(counts)]


# --- ageing -------------------------------------------------------------------------------------------


def _ageing(index: Index, tasks: Iterable[Task], now: datetime) -> list[AgeingPoint]:
    points = []
    for task in tasks:
        if not task.category.started:
            continue
        started = first_start(task, index.facts.get((task.source, task.remote_id)))
        if started is None:
            continue
        points.append(
            AgeingPoint(
                Ref(task.source, task.remote_id),
                task.key,
                task.title,
                task.work_type,
                index.status_name(task.source, task.raw_status) or str(task.category),
                task.category,
                days(now - started),
            )
        )
    points.sort(key=lambda p: (-p.age_days, p.key))
    return points


def _statuses(index: Index, ageing: Sequence[AgeingPoint]) -> list[tuple[str, StatusCategory]]:
    """The in-flight statuses items sit in now, in stage order and, within a category, by when those
    items first entered them (the order of the workflow they went through)."""
    current = {(p.status, p.category) for p in ageing}
    first_seen: dict[str, int] = {}
    for point in ageing:
        facts = index.facts.get((point.task.source, point.task.remote_id))
        for raw, at in facts.first_seen if facts is not None else ():
            status = index.status_name(point.task.source, raw) or raw
            if status not in first_seen or at < first_seen[status]:
                first_seen[status] = at

    def order(item: tuple[str, StatusCategory]) -> tuple[int, float, str]:
        seen = first_seen.get(item[0])
        return (_ORDER[item[1]], seen / 1_000_000 if seen is not None else math.inf, item[0])

    return sorted(current, key=order)


def _type_lines(
    cycles: Mapping[str | None, Sequence[float]], ageing: Sequence[AgeingPoint], min_sample: int
) -> list[TypeLines]:
    """Each ageing work type's percentile lines: its own with enough finished items, else the team's;
    `cycles` are the cycle times of the team's finished tasks by work type."""
    team = percentiles_of(chain.from_iterable(cycles.values()))
    lines = []
    for work_type in sorted({p.work_type for p in ageing}, key=lambda t: (t is None, t or "")):
        own = percentiles_of(cycles.get(work_type, []))
        if own is not None and own.count >= min_sample:
            lines.append(TypeLines(work_type, own, "work type"))
        elif team is not None and team.count >= min_sample:
            lines.append(TypeLines(work_type, team, "team"))
        else:
            lines.append(TypeLines(work_type, None, "too few finished items"))
    return lines


# --- how many by a date -------------------------------------------------------------------------------


def how_many(samples: Sequence[int], now: datetime, settings: AnalyticsConfig, team: str) -> list[HowMany]:
    """Items finished by the end of each of the next `HOW_MANY_WEEKS` weeks, at each chance."""
    if not samples or sum(samples) <= 0:
        return []
    rng = random.Random(f"{settings.seed}:how-many:{team}")
    finished = finished_by_day(samples, settings.forecast_runs, HOW_MANY_WEEKS * 7, generator(rng))
    # each week's last day, sorted over the trials
    totals = np.sort(finished[:, 6::7], axis=0).T.tolist()
    found = []
    for week, values in enumerate(totals):
        counts = tuple(math.floor(percentile(values, (1.0 - chance) * 100.0)) for chance in HOW_MANY_CHANCES)
        found.append(HowMany(now + (week + 1) * _WEEK, counts))
    return found


def _how_many_basis(samples: Sequence[int], settings: AnalyticsConfig) -> str:
    window = max(1, math.ceil(settings.forecast_window / _DAY))
    if not samples or sum(samples) <= 0:
        return f"no task finished in the last {window} days: no forecast"
    return (
        f"{settings.forecast_runs} trials drawing days from the {sum(samples)} tasks finished over the last "
        f"{window} days"
    )


# --- JSON ---------------------------------------------------------------------------------------------


def _round(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 3)


def _percentiles(found: Percentiles | None) -> dict[str, object] | None:
    if found is None:
        return None
    return {
        "count": found.count,
        **{f"p{p:g}_days": _round(d) for p, d in zip(LINES, found.days, strict=True)},
    }


def _chance_key(chance: float) -> str:
    """`at_85_percent`: the count finished with at least that chance."""
    return f"at_{chance * 100:.0f}_percent"


def flow_dict(flow: TeamFlow) -> dict[str, object]:
    """A team's flow figures as the `--json` document holds them: times ISO 8601, durations in days."""
    categories = [str(c) for c in StatusCategory]
    return {
        "team": flow.team,
        "cycle_time_percentiles": _percentiles(flow.cycle),
        "cycle_times": [
            {"id": str(p.task), "key": p.key, "title": p.title, "work_type": p.work_type,
             "finished": p.finished.isoformat(), "cycle_days": _round(p.cycle_days), "tasks": p.tasks}
            for p in flow.finished
        ],
        "cumulative_flow": [
            {"day": d.day.isoformat(), **dict(zip(categories, d.counts, strict=True))}
            for d in flow.cumulative
        ],
        "weekly_throughput": [
            {"start": w.start.isoformat(), "end": w.end.isoformat(), "finished": w.finished}
            for w in flow.throughput
        ],
        "ageing": [
            {"id": str(a.task), "key": a.key, "title": a.title, "work_type": a.work_type, "status": a.status,
             "category": str(a.category), "age_days": _round(a.age_days)}
            for a in flow.ageing
        ],
        "ageing_percentiles": [
            {"work_type": t.work_type, "basis": t.basis, "percentiles": _percentiles(t.percentiles)}
            for t in flow.type_lines
        ],
        "how_many": [
            {"by": h.by.isoformat(), **dict(zip(map(_chance_key, HOW_MANY_CHANCES), h.counts, strict=True))}
            for h in flow.how_many
        ],
        "how_many_basis": flow.how_many_basis,
    }  # fmt: skip
