"""Monte Carlo forecasts: when each open milestone is likely to finish, from its teams' throughput.

Each team's history gives a daily throughput sample: how many of its tasks finished on each of the
last `forecast_window` days (quiet days count as zero). A trial replays randomly drawn days until the
team has finished all its open milestone work, taken in rank order; a milestone is finished on the day
its last remaining task in that team's queue is. Teams draw from their own seeded generators, so a
milestone spread over several teams finishes when the slowest does, and the chance that it is done by
day d is the product of each team's chance. P50 and the configured percentile come from that
distribution; a milestone is at risk when its chance of finishing by the due date is below
`at_risk_below`.
"""

from __future__ import annotations

import math
import random
import statistics
from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from bridge.analytics.ranks import Rank
from bridge.analytics.snapshot import Index, Key
from bridge.analytics.stats import generator
from bridge.config import AnalyticsConfig
from bridge.domain import Ref, StatusCategory, Task, display_name
from bridge.flow_facts import micros
from bridge.text import plural

HORIZON_DAYS = 3650
"""Trials stop after ten years; a finish date beyond that is reported as none."""
_DAY = timedelta(days=1)
_DAY_MICROS = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Forecast:
    milestone: Ref
    key: str
    team: str
    due: datetime | None
    remaining: int
    p50: datetime | None
    high: datetime | None
    """The finish date at the configured percentile (85 by default)."""
    chance_by_due: float | None
    at_risk: bool
    explanation: str
    name: str = ""
    """How a person reads the milestone (`bridge.domain.display_name`)."""
    weekly_throughput: float | None = None
    """Tasks a week the teams holding its open work finished over the forecast window (None when
    nothing is left to do)."""


def daily_throughput(index: Index, now: datetime, window: timedelta) -> dict[str, list[int]]:
    """Per team, the tasks finished on each of the `window` days before now (oldest first)."""
    span = max(1, math.ceil(window / _DAY))
    # in exact microseconds: a timedelta over a timedelta is the quotient of their microseconds
    since, until = micros(now - span * _DAY), micros(now)
    counts: defaultdict[str, list[int]] = defaultdict(lambda: [0] * span)
    team_of, day = index.team_of, _DAY_MICROS
    for task, _, finished, _ in index.finish.values():
        if since <= finished < until:
            counts[task.team or team_of(task)][int((finished - since) / day)] += 1
    return dict(counts)


@dataclass(frozen=True, slots=True)
class TeamRun:
    """One team's simulated finish days: for each of its queue's milestones, the sorted trial days."""

    days: dict[Ref, array[int]]


def finished_by_day(
    samples: Sequence[int], runs: int, days: int, draws: np.random.Generator
) -> npt.NDArray[np.int64]:
    """`runs` trials of `days` days each drawn uniformly from a daily throughput sample: row r, column d
    is how many trial r has finished after d + 1 days. Drawn in bulk: millions of simulated days cost
    milliseconds."""
    table = np.asarray(samples, dtype=np.int64)
    drawn = table[draws.integers(0, len(table), size=(runs, days))]
    finished: npt.NDArray[np.int64] = np.cumsum(drawn, axis=1)
    return finished


def simulate_team(
    samples: Sequence[int], thresholds: Mapping[Ref, int], runs: int, rng: random.Random
) -> TeamRun | None:
    """Days until the team's cumulative finished count reaches each threshold, over `runs` trials.

    None when the sample holds no finished task at all. A trial that does not reach a threshold within
    `HORIZON_DAYS` gives a day past it.
    """
    mean = sum(samples) / len(samples) if samples else 0.0
    if mean <= 0:
        return None
    order = sorted(thresholds, key=lambda m: (thresholds[m], str(m)))
    targets = np.array([thresholds[m] for m in order], dtype=np.int64)
    total = int(targets[-1]) if len(targets) else 0
    chunk = min(int(total / mean * 1.2) + 16, HORIZON_DAYS)
    draws = generator(rng)
    finished = finished_by_day(samples, runs, chunk, draws)
    # days are drawn a chunk at a time until every trial has reached the last threshold or the horizon
    while finished.shape[1] < HORIZON_DAYS and bool((finished[:, -1] < total).any()):
        more = finished_by_day(samples, runs, min(chunk, HORIZON_DAYS - finished.shape[1]), draws)
        finished = np.concatenate([finished, more + finished[:, -1:]], axis=1)
    # The first day a trial reaches each target is one more than the count of its days that end below
    # the target. Each day's count of targets reached (a search of the few targets, not of every trial's
    # days) is tallied per trial; the running sum of that tally over the targets is, for target j, the
    # days on which fewer than j + 1 targets were reached: those below target j (the targets are
    # sorted). At 2,000 trials, 70 targets and 45 days a team, a fifth of one search over all the days.
    width = len(targets) + 1
    reached_count = np.searchsorted(targets, finished, side="right")
    tally = np.bincount(
        (reached_count + (np.arange(runs, dtype=np.int64) * width)[:, None]).ravel(), minlength=runs * width
    )
    # column c is day c + 1; a target a trial never reaches comes out as the day after its last
    below = np.cumsum(tally.reshape(runs, width)[:, :-1], axis=1)
    reached = (below + 1).astype(np.int32)
    reached.sort(axis=0)
    days = {milestone: array("i", reached[:, i].tobytes()) for i, milestone in enumerate(order)}
    return TeamRun(days)


class FinishDistribution:
    """The finish day of a milestone whose work lies with several independently simulated teams."""

    def __init__(self, columns: Sequence[array[int]]) -> None:
        self.columns = columns

    def chance_by(self, day: int) -> float:
        """Chance that every team has finished the milestone's work by the end of `day`."""
        if day < 0:
            return 0.0
        chance = 1.0
        for column in self.columns:
            chance *= bisect_right(column, day) / len(column)
        return chance

    def quantile(self, share: float) -> int | None:
        """The first day by which the milestone is finished with at least this chance."""
        if self.chance_by(HORIZON_DAYS) < share:
            return None
        low, high = 0, HORIZON_DAYS
        while low < high:
            mid = (low + high) // 2
            if self.chance_by(mid) >= share:
                high = mid
            else:
                low = mid + 1
        return low


def team_queues(ranks: Sequence[Rank], index: Index) -> dict[str, dict[Ref, int]]:
    """Per team, each milestone's position in the team's remaining work taken in rank order: the
    count of open tasks up to and including the milestone's last one."""
    remaining: defaultdict[str, defaultdict[Ref, int]] = defaultdict(lambda: defaultdict(int))
    tasks_of, team_of, done = index.tasks_of, index.team_of, StatusCategory.DONE
    for rank in ranks:
        # counted per team first, by name: a `Ref` hashes in Python, a name's hash is kept
        open_in: dict[str, int] = {}
        for task in tasks_of.get(_key(rank.milestone), ()):
            if task.category is not done:
                team = task.team or team_of(task)
                open_in[team] = open_in.get(team, 0) + 1
        for team, count in open_in.items():
            remaining[team][rank.milestone] += count
    position = {rank.milestone: rank.portfolio_rank for rank in ranks}
    queues: dict[str, dict[Ref, int]] = {}
    for team, counts in remaining.items():
        running = 0
        queue = {}
        for milestone in sorted(counts, key=position.__getitem__):
            running += counts[milestone]
            queue[milestone] = running
        queues[team] = queue
    return queues


def forecast(ranks: Sequence[Rank], index: Index, now: datetime, settings: AnalyticsConfig) -> list[Forecast]:
    """A forecast for every ranked milestone, in rank order."""
    throughput = daily_throughput(index, now, settings.forecast_window)
    queues = team_queues(ranks, index)
    runs: dict[str, TeamRun | None] = {}
    for team in sorted(queues):
        rng = random.Random(f"{settings.seed}:{team}")
        runs[team] = simulate_team(throughput.get(team, []), queues[team], settings.forecast_runs, rng)
    window_days = max(1, math.ceil(settings.forecast_window / _DAY))
    weekly = {team: sum(samples) / len(samples) * 7 for team, samples in throughput.items() if samples}
    pace = Pace(window_days, weekly, median_cycle_days(index))
    return [
        _milestone_forecast(
            rank,
            index.milestones[_key(rank.milestone)].due,
            index.tasks_of.get(_key(rank.milestone), []),
            queues,
            runs,
            pace,
            now,
            settings,
        )
        for rank in ranks
    ]


def _milestone_forecast(
    rank: Rank,
    due: datetime | None,
    tasks: Sequence[Task],
    queues: Mapping[str, Mapping[Ref, int]],
    runs: Mapping[str, TeamRun | None],
    pace: Pace,
    now: datetime,
    settings: AnalyticsConfig,
) -> Forecast:
    window_days, weekly = pace.window_days, pace.weekly
    teams = sorted(team for team, queue in queues.items() if rank.milestone in queue)
    remaining = remaining_tasks(tasks)
    rate = round(sum(weekly.get(team, 0.0) for team in teams), 2) if teams else None

    def result(p50: int | None, high: int | None, chance: float | None, explanation: str) -> Forecast:
        at_risk = due is not None and chance is not None and chance < settings.at_risk_below
        return Forecast(
            milestone=rank.milestone,
            key=rank.key,
            team=rank.team,
            due=due,
            remaining=remaining,
            p50=now + p50 * _DAY if p50 is not None else None,
            high=now + high * _DAY if high is not None else None,
            chance_by_due=chance,
            at_risk=at_risk,
            explanation=explanation,
            name=display_name(rank.key, rank.title),
            weekly_throughput=rate,
        )

    due_day = math.floor((due - now) / _DAY) if due is not None else None
    if not tasks:
        return result(None, None, None, "no tasks to forecast from: cut the milestone into tasks")
    if not teams:
        chance = None if due_day is None else (1.0 if due_day >= 0 else 0.0)
        return result(0, 0, chance, "all its tasks are done")
    idle = [team for team in teams if runs.get(team) is None]
    if idle:
        names = ", ".join(idle)
        return result(
            None, None, None, f"cannot forecast: {names} finished no task in the last {window_days} days"
        )
    columns = [runs[team].days[rank.milestone] for team in teams]  # type: ignore[union-attr]
    spread = FinishDistribution(columns)
    floor, slowest = pace.floor(tasks)
    p50, high = (
        None if d is None else max(d, floor)
        for d in (spread.quantile(0.5), spread.quantile(settings.percentile / 100.0))
    )
    chance = (
        None
        if due_day is None
        else (0.0 if due_day < floor else spread.chance_by(min(due_day, HORIZON_DAYS)))
    )
    queued = "; ".join(
        f"{team} works through {plural(queues[team][rank.milestone], 'task')} in rank order to finish it"
        for team in teams
    )
    text = (
        f"{plural(remaining, 'open task')} ({queued}); "
        f"{settings.forecast_runs} trials over {window_days} days of throughput"
    )
    if chance is not None:
        text += f"; {chance:.0%} chance of finishing by the due date"
    if floor:
        text += f"; no sooner than {plural(floor, 'day')}, the median cycle time of {slowest}"
    if high is None:
        text += f"; at the {settings.percentile:g}th percentile it is not done within {HORIZON_DAYS} days"
    return result(p50, high, chance, text)


@dataclass(frozen=True, slots=True)
class Pace:
    """What the forecasts stand on besides the simulation: the throughput window in days, each team's
    tasks a week, and the median cycle time in days of each (team, work type)."""

    window_days: int
    weekly: Mapping[str, float]
    medians: Mapping[tuple[str, str], float]

    def floor(self, tasks: Iterable[Task]) -> tuple[int, str]:
        """Days no forecast of these tasks' milestone can beat: the median cycle time of its slowest
        open task's work type (whole days, rounded up), and that work type and team named."""
        found = [
            (self.medians[place], place)
            for task in tasks
            if task.category is not StatusCategory.DONE
            and (place := (task.team or "", task.work_type or "")) in self.medians
        ]
        if not found:
            return 0, ""
        days, (team, work_type) = max(found)
        return math.ceil(days), f"{work_type or 'untyped'} work in {team or 'no team'}"


def _at_least(day: int | None, floor: int) -> int | None:
    return None if day is None else max(day, floor)


def median_cycle_days(index: Index) -> dict[tuple[str, str], float]:
    """The median cycle time in days of the finished tasks of each (team, work type)."""
    cycles: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    day = _DAY_MICROS
    for task, started, finished, _ in index.finish.values():
        cycles[(task.team or "", task.work_type or "")].append((finished - started) / day)
    return {place: statistics.median(days) for place, days in cycles.items()}


def _key(ref: Ref) -> Key:
    return (ref.source, ref.remote_id)


def remaining_tasks(tasks: Iterable[Task]) -> int:
    return sum(1 for task in tasks if task.category is not StatusCategory.DONE)
