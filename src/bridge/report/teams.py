"""One team's share of a report: its milestones, key results, work types, forecasts and warnings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from bridge.analytics import Report, Snapshot
from bridge.analytics.okr import ObjectiveProgress
from bridge.analytics.snapshot import Key, key_of, milestone_teams, parent_key
from bridge.domain import Ref, Task


def team_names(report: Report) -> list[str]:
    """Every team the report mentions, sorted."""
    names = {r.team for r in report.milestones}
    names.update(w.team for w in report.work_types)
    names.update(v.team for v in report.bottlenecks)
    names.update(t.team for t in report.time_in_status)
    names.update(f.team for f in report.forecasts)
    names.update(w.team for w in report.warnings)
    names.update(f.team for f in report.flows)
    return sorted(names)


def milestone_team_map(snapshot: Snapshot) -> dict[Ref, str]:
    """Each milestone's team as the analysis reckons it (its own, else most of its tasks'), done
    milestones included, which the ranks leave out."""
    milestones = {key_of(m): m for m in snapshot.milestones if not m.deleted}
    tasks_of: defaultdict[Key, list[Task]] = defaultdict(list)
    for task in snapshot.tasks:
        parent = parent_key(task)
        if parent is not None and parent in milestones and not task.deleted:
            tasks_of[parent].append(task)
    return {Ref(*key): team for key, team in milestone_teams(milestones, tasks_of).items()}


def for_team(report: Report, team: str, teams: Mapping[Ref, str] | None = None) -> Report:
    """The report cut down to `team`.

    Ranks keep their portfolio position (a team's #1 may be #7 overall). The OKR tree keeps the key
    results the team's milestones move, with only those milestones under them; progress stays the key
    result's own, since it counts every team's work. `teams` (from `milestone_team_map`) places the
    done milestones, which have no rank.
    """
    mine = {r.milestone for r in report.milestones if r.team == team}
    mine.update(ref for ref, name in (teams or {}).items() if name == team)
    return replace(
        report,
        milestones=tuple(r for r in report.milestones if r.team == team),
        links={m: targets for m, targets in report.links.items() if m in mine},
        okrs=_okrs_of(report.okrs, mine),
        suggestions=tuple(s for s in report.suggestions if s.milestone in mine),
        work_types=tuple(w for w in report.work_types if w.team == team),
        bottlenecks=tuple(v for v in report.bottlenecks if v.team == team),
        time_in_status=tuple(t for t in report.time_in_status if t.team == team),
        forecasts=tuple(f for f in report.forecasts if f.team == team),
        warnings=tuple(w for w in report.warnings if w.team == team),
        item_warnings=tuple(w for w in report.item_warnings if w.team == team),
        flows=tuple(f for f in report.flows if f.team == team),
        _ranks_by_milestone={},
    )


def _okrs_of(objectives: tuple[ObjectiveProgress, ...], mine: set[Ref]) -> tuple[ObjectiveProgress, ...]:
    kept = []
    for objective in objectives:
        results = []
        for kr in objective.key_results:
            linked = tuple(m for m in kr.milestones if m.milestone in mine)
            if linked:
                results.append(replace(kr, milestones=linked))
        if results:
            kept.append(replace(objective, key_results=tuple(results)))
    return tuple(kept)
