"""The JSON of the objects more than one output shows, made in one place so they keep one shape.

A key result appears in `bridge report --json` (under `okrs.objectives[].key_results[]`), in the daemon's
`/status.json` (`key_results`) and in `bridge explain KR --json` (`key_result`); an item warning in the
report's `item_warnings` and in `/status.json`'s; a forecast move in the report's `forecast_history` and in
`bridge explain MILESTONE --json`'s. Each is built by the one function here.
"""

from __future__ import annotations

from typing import Any

from bridge.analytics.coherence import ItemWarning
from bridge.analytics.okr import KeyResultProgress, LinkedMilestone

DOCUMENT_SHAPE = 3
"""The version of the report's JSON shape; part of a stored analysis's key (`bridge.shared_analysis`), so
a document stored in an older shape is made again rather than served. 2: one key result shape
(`progress_basis`, `progress_explanation`, `objective`, linked milestones' `value` and `tasks_total`);
3: each `flow[].cycle_times` dot counts its `tasks` (a team's scatter above 2,000 finished tasks has one
dot per day and cycle-time band)."""


def key_result_dict(found: KeyResultProgress, objective: str | None) -> dict[str, Any]:
    """A key result as every JSON output shows it: its id and title, its objective's title, its weight
    in the objective, its progress (0 to 1, null when nothing measures it), how the progress is reckoned
    (`progress_basis`: `metric`, `milestones` or `none`) and the reckoning in words, its status
    (`on_track`, `at_risk`, `off_track`, `met`, or null) with the reason, its period's last day, and its
    linked milestones."""
    return {
        "id": str(found.key_result),
        "title": found.title,
        "objective": objective,
        "weight": found.weight,
        "progress": round(found.progress, 3) if found.progress is not None else None,
        "progress_basis": found.basis,
        "progress_explanation": found.explanation,
        "status": str(found.status) if found.status is not None else None,
        "status_reason": found.status_reason,
        "period_end": found.period_end.isoformat() if found.period_end is not None else None,
        "milestones": [linked_milestone_dict(m) for m in found.milestones],
    }


def linked_milestone_dict(linked: LinkedMilestone) -> dict[str, Any]:
    """A milestone linked to a key result: which, how it was linked (`origin`: `tracker`, `rule`,
    `suggested`, `confirmed`), its value, whether it is done, and how many of its live tasks are."""
    return {
        "id": str(linked.milestone),
        "key": linked.key,
        "title": linked.title,
        "name": linked.name,
        "origin": str(linked.origin),
        "value": linked.value,
        "done": linked.done,
        "tasks_done": linked.tasks_done,
        "tasks_total": linked.tasks_total,
    }


def item_warning_dict(warning: ItemWarning, label: str | None) -> dict[str, Any]:
    """A milestone or task the method warns about: the warning's kind (`needs_estimate`,
    `too_many_in_progress`, `ageing`), the item (`tracker:id`) and its name, its team, the reason, and
    the label it is written as (null where no tracker takes the bridge's labels)."""
    return {
        "kind": warning.kind,
        "item": str(warning.item),
        "name": warning.name,
        "team": warning.team,
        "reason": warning.reason,
        "label": label,
    }


def forecast_move_dict(at: str, forecast: str, why: str) -> dict[str, Any]:
    """One move of a milestone's forecast: when (ISO 8601, to the minute), where it went, and why."""
    return {"at": at, "forecast": forecast, "why": why}
