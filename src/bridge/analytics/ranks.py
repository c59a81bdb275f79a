"""Value ranks: milestones ordered by what they are worth, per team and across the portfolio.

Strategies: `value` (the product owner's value field), `wsjf` (value / effort) and `okr` (the share of
the OKR set's weight the milestone's key results carry). Ties go to the earlier due date, then the
earlier created, then the key. Milestones the strategy cannot score come last, flagged with the reason.
Done milestones are not ranked: a rank says what to work on next.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.analytics.okr import OkrWeight
from bridge.analytics.snapshot import Key
from bridge.domain import Milestone, Ref, StatusCategory, Task, display_name, is_person_key

Strategy = Literal["value", "wsjf", "okr"]
Scope = Literal["team", "portfolio"]


@dataclass(frozen=True, slots=True)
class Score:
    value: float | None
    basis: str
    """How the score was reckoned, or why there is none."""


@dataclass(frozen=True, slots=True)
class Rank:
    milestone: Ref
    key: str
    title: str
    team: str
    score: float | None
    rank: int
    """The rank in the configured scope."""
    portfolio_rank: int
    team_rank: int
    flag: str | None
    """Why the milestone could not be scored (it is ranked after every scored one), else None."""
    explanation: str


def score(
    milestone: Milestone, strategy: Strategy, okr_weights: Mapping[Ref, OkrWeight] | None = None
) -> Score:
    value = milestone.value if milestone.value is not None and math.isfinite(milestone.value) else None
    if strategy == "value":
        if value is None:
            return Score(None, "no value set")
        return Score(value, f"value {value:g}")
    if strategy == "wsjf":
        if value is None:
            return Score(None, "no value set")
        effort = milestone.effort
        if effort is None or not math.isfinite(effort) or effort <= 0:
            return Score(None, "no effort set (wsjf divides value by effort)")
        return Score(value / effort, f"value {value:g} / effort {effort:g} = {value / effort:.3g}")
    weight = (okr_weights or {}).get(Ref(milestone.source, milestone.remote_id))
    if weight is None:
        return Score(None, "no key result linked")
    return Score(weight.score, f"key-result weight {weight.score:.3f}: {weight.explanation}")


def _order_key(item: tuple[Milestone, Score]) -> tuple[int, float, str, str, str, str, str]:
    milestone, found = item
    return (
        0 if found.value is not None else 1,
        -(found.value or 0.0),
        _when(milestone.due),
        _when(milestone.created),
        milestone.key,
        milestone.source,
        milestone.remote_id,
    )


def _when(moment: datetime | None) -> str:
    # ISO text of aware UTC datetimes sorts as time does; "~" sorts after any digit (missing = last)
    return moment.isoformat() if moment is not None else "~"


def rank_milestones(
    milestones: Iterable[Milestone],
    *,
    strategy: Strategy,
    scope: Scope = "portfolio",
    teams: Mapping[Key, str] | None = None,
    okr_weights: Mapping[Ref, OkrWeight] | None = None,
) -> list[Rank]:
    """Open milestones, best first (portfolio order), each with its team and portfolio ranks.

    `teams` gives a milestone's team when it has none of its own.
    """
    teams = teams or {}
    scored = [
        (m, score(m, strategy, okr_weights))
        for m in milestones
        if not m.deleted and m.category is not StatusCategory.DONE
    ]
    scored.sort(key=_order_key)
    total = len(scored)
    team_sizes: defaultdict[str, int] = defaultdict(int)
    team_of = [m.team or teams.get((m.source, m.remote_id)) or "(no team)" for m, _ in scored]
    for team in team_of:
        team_sizes[team] += 1
    seen: defaultdict[str, int] = defaultdict(int)
    last_in_team: dict[str, tuple[Milestone, Score]] = {}
    ranks = []
    for position, ((milestone, found), team) in enumerate(zip(scored, team_of, strict=True), start=1):
        seen[team] += 1
        team_rank = seen[team]
        before = scored[position - 2] if position > 1 else None
        primary = position if scope == "portfolio" else team_rank
        where = f"#{position} of {total} in the portfolio, #{team_rank} of {team_sizes[team]} in team {team}"
        reason = _reason(milestone, found, before, last_in_team.get(team), scope)
        ranks.append(
            Rank(
                milestone=Ref(milestone.source, milestone.remote_id),
                key=milestone.key,
                title=milestone.title,
                team=team,
                score=found.value,
                rank=primary,
                portfolio_rank=position,
                team_rank=team_rank,
                flag=None if found.value is not None else found.basis,
                explanation=f"{where}: {reason}",
            )
        )
        last_in_team[team] = (milestone, found)
    return ranks


def _reason(
    milestone: Milestone,
    found: Score,
    before: tuple[Milestone, Score] | None,
    team_before: tuple[Milestone, Score] | None,
    scope: Scope,
) -> str:
    neighbour = team_before if scope == "team" else before
    text = (
        found.basis if found.value is not None else f"{found.basis}, so ranked after every scored milestone"
    )
    if neighbour is None or neighbour[1].value != found.value:
        return text
    other = neighbour[0]
    tie = "unscored like" if found.value is None else "same score as"
    name = display_name(other.key, other.title)
    return f"{text}; {tie} {name}, placed after it by {_tie_break(other, milestone)}"


def _tie_break(first: Milestone, second: Milestone) -> str:
    if first.due != second.due:
        return f"due date ({_moments(first.due, second.due)})"
    if first.created != second.created:
        return f"creation date ({_moments(first.created, second.created)})"
    if is_person_key(first.key) and is_person_key(second.key):
        return f"key ({first.key} before {second.key})"
    return "the trackers' ids, a fixed order (same due and creation dates)"


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else "none"


def _moments(first: datetime | None, second: datetime | None) -> str:
    """`first before second`, by day, or to the minute (UTC) when both fall on one day."""
    if first is not None and second is not None and first.date() == second.date():
        return f"{first:%Y-%m-%d %H:%M} before {second:%H:%M} UTC"
    return f"{_day(first)} before {_day(second)}"


def task_ranks(ranks: Sequence[Rank], tasks: Iterable[Task]) -> dict[Ref, int]:
    """Each task's rank: its milestone's rank in the configured scope (tasks of done or unknown
    milestones have none)."""
    by_milestone = {r.milestone: r.rank for r in ranks}
    found = {}
    for task in tasks:
        if task.milestone_id is None or task.deleted:
            continue
        rank = by_milestone.get(Ref(task.source, task.milestone_id))
        if rank is not None:
            found[Ref(task.source, task.remote_id)] = rank
    return found
