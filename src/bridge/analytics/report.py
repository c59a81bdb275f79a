"""The whole analysis of one snapshot, and its JSON document."""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from bridge.analysis_window import analysis_since
from bridge.analytics import shapes
from bridge.analytics.bottlenecks import (
    Distribution,
    StatusTime,
    Verdict,
    WorkTypeStats,
    judge,
    time_in_status,
    work_type_stats,
)
from bridge.analytics.coherence import CoherenceWarning, ItemWarning, item_warnings, warnings
from bridge.analytics.flow import TeamFlow, flow_dict, team_flows
from bridge.analytics.forecast import Forecast, forecast
from bridge.analytics.okr import (
    ObjectiveProgress,
    Suggestion,
    catalogue,
    effective_links,
    okr_tree,
    okr_weights,
    suggest_for_unlinked,
)
from bridge.analytics.ranks import Rank, rank_milestones
from bridge.analytics.snapshot import as_ref, build_index, parent_key
from bridge.config import AnalyticsConfig, BridgeConfig
from bridge.domain import LinkOrigin, Ref, Snapshot, Task, display_name, require_utc


@dataclass(frozen=True, slots=True)
class Report:
    now: datetime
    milestones: tuple[Rank, ...]
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]]
    okrs: tuple[ObjectiveProgress, ...]
    suggestions: tuple[Suggestion, ...]
    work_types: tuple[WorkTypeStats, ...]
    bottlenecks: tuple[Verdict, ...]
    time_in_status: tuple[StatusTime, ...]
    forecasts: tuple[Forecast, ...]
    warnings: tuple[CoherenceWarning, ...]
    flows: tuple[TeamFlow, ...] = ()
    """Per team, the figures of the flow charts (`bridge.analytics.flow`)."""
    item_warnings: tuple[ItemWarning, ...] = ()
    """The milestones and tasks the method warns about one by one (`coherence.item_warnings`)."""
    warning_labels: Mapping[str, str] = field(default_factory=dict)
    """Kind of item warning -> the label the bridge writes for it, where some tracker is configured to
    take the bridge's labels (empty otherwise)."""
    _ranks_by_milestone: dict[Ref, int] = field(default_factory=dict, repr=False, compare=False)
    _key_result_titles: dict[Ref, str] = field(default_factory=dict, repr=False, compare=False)

    def key_result_title(self, key_result: Ref) -> str:
        """A key result as people read it: its title (its id only for one the catalogue does not hold)."""
        if not self._key_result_titles:
            self._key_result_titles.update(
                {kr.key_result: kr.title for objective in self.okrs for kr in objective.key_results}
            )
        return self._key_result_titles.get(key_result, str(key_result))

    def task_rank(self, task: Task) -> int | None:
        """A task's rank: its milestone's (tasks inherit it); None without an open milestone."""
        if task.milestone_id is None:
            return None
        if not self._ranks_by_milestone:
            self._ranks_by_milestone.update({r.milestone: r.rank for r in self.milestones})
        return self._ranks_by_milestone.get(Ref(task.source, task.milestone_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "milestones": [
                _rank(r, self.links.get(r.milestone, {}), self.key_result_title) for r in self.milestones
            ],
            "okrs": {
                "objectives": [_objective(o) for o in self.okrs],
                "suggestions": [_suggestion(s, self.key_result_title) for s in self.suggestions],
            },
            "work_types": [_work_type(w) for w in self.work_types],
            "bottlenecks": [_verdict(v) for v in self.bottlenecks],
            "time_in_status": [_status_time(t) for t in self.time_in_status],
            "forecasts": [_forecast(f) for f in self.forecasts],
            "warnings": [_warning(w) for w in self.warnings],
            "item_warnings": [_item_warning(w, self.warning_labels) for w in self.item_warnings],
            "flow": [flow_dict(f) for f in self.flows],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON, indented by two spaces or (`indent=None`) compact. Written by orjson: the
        reports' several megabytes twenty times as fast as `json`, the same text but for exponents
        (`1e-6` where `json` writes `1e-06`)."""
        if indent not in (2, None):
            raise ValueError(f"indent must be 2 or None, got {indent!r}")
        option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent == 2 else 0)
        return orjson.dumps(self.to_dict(), option=option).decode()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold back the cyclic garbage collector while millions of small tuples are made.

    They hold no cycles, yet each allocation burst triggers full collections that scan the whole
    snapshot: measured at 1M status changes, grouping the history took three to four times longer
    with the collector running. Its previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyse(
    snapshot: Snapshot, config: BridgeConfig | AnalyticsConfig, now: datetime, *, flow: bool = False
) -> Report:
    """Ranks, OKR links and progress, bottlenecks, time in status, forecasts and warnings; with `flow`,
    also each team's flow-chart figures (only the reports show them: a sync cycle leaves them out)."""
    with _collector_paused():
        return _analyse(snapshot, config, now, flow=flow)


def _analyse(
    snapshot: Snapshot, config: BridgeConfig | AnalyticsConfig, now: datetime, *, flow: bool
) -> Report:
    now = require_utc(now, "now")
    settings = config.analytics if isinstance(config, BridgeConfig) else config
    okrs = catalogue(
        snapshot.objectives, snapshot.key_results, config.okrs if isinstance(config, BridgeConfig) else None
    )
    index = build_index(snapshot, since=analysis_since(settings, now))
    links = effective_links(snapshot.links)
    ranks = rank_milestones(
        index.milestones.values(),
        strategy=settings.rank_strategy,
        scope=settings.rank_scope,
        teams=index.milestone_team,
        okr_weights=okr_weights(links, okrs) if settings.rank_strategy == "okr" else None,
    )
    suggestions = suggest_for_unlinked(
        index.milestones.values(), links, okrs, min_score=settings.suggest_min_score
    )
    work_types = work_type_stats(index, now, settings)
    forecasts = tuple(forecast(ranks, index, now, settings))
    # done = all less open: the open tasks are few, the done ones most of a long-lived store's
    open_of = Counter(parent_key(task) for task in index.open_tasks.values())
    tasks_done = {
        as_ref(key): (len(tasks) - open_of[key], len(tasks)) for key, tasks in index.tasks_of.items()
    }
    tree = okr_tree(
        okrs,
        links,
        {as_ref(k): m for k, m in index.milestones.items()},
        tasks_done=tasks_done,
        forecasts=forecasts,
        now=now,
    )
    return Report(
        now=now,
        milestones=tuple(ranks),
        links=links,
        okrs=tuple(tree),
        suggestions=tuple(suggestions),
        work_types=tuple(work_types),
        bottlenecks=tuple(judge(index, snapshot.dependencies, now, settings)),
        time_in_status=tuple(time_in_status(index, now, settings.window)),
        forecasts=forecasts,
        warnings=tuple(
            warnings(
                index,
                links,
                settings.max_milestones_in_progress,
                suggested={s.milestone for s in suggestions},
            )
        ),
        flows=tuple(team_flows(index, now, settings)) if flow else (),
        item_warnings=tuple(
            item_warnings(
                index,
                ranks,
                work_types,
                strategy=settings.rank_strategy,
                max_in_progress=settings.max_milestones_in_progress,
                percentile=settings.percentile,
            )
        ),
        warning_labels=_warning_labels(config),
    )


def _warning_labels(config: BridgeConfig | AnalyticsConfig) -> dict[str, str]:
    """The labels the item warnings are written as, when the config has a tracker taking them."""
    if not isinstance(config, BridgeConfig) or not config.push.enabled:
        return {}
    if not any(tracker.write.labels for tracker in config.trackers.values()):
        return {}
    return config.push.warning_labels()


# --- JSON shapes -------------------------------------------------------------------------------------


def _num(value: float | None, places: int = 3) -> float | None:
    if value is None:
        return None
    if math.isinf(value):
        return None  # JSON has no infinity; the evidence text says "inf"
    return round(value, places)


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ref(ref: Ref) -> str:
    return str(ref)


def _rank(rank: Rank, links: Mapping[Ref, LinkOrigin], titles: Callable[[Ref], str]) -> dict[str, Any]:
    return {
        "id": _ref(rank.milestone),
        "key": rank.key,
        "title": rank.title,
        "name": display_name(rank.key, rank.title),
        "team": rank.team,
        "rank": rank.rank,
        "portfolio_rank": rank.portfolio_rank,
        "team_rank": rank.team_rank,
        "score": _num(rank.score, 6),
        "flag": rank.flag,
        "explanation": rank.explanation,
        "key_results": [
            {"id": _ref(kr), "title": titles(kr), "origin": str(origin)}
            for kr, origin in sorted(links.items(), key=str)
        ],
    }


def _objective(objective: ObjectiveProgress) -> dict[str, Any]:
    return {
        "id": _ref(objective.objective),
        "title": objective.title,
        "weight": objective.weight,
        "progress": _num(objective.progress),
        "key_results": [shapes.key_result_dict(kr, objective.title) for kr in objective.key_results],
    }


def _suggestion(suggestion: Suggestion, titles: Callable[[Ref], str]) -> dict[str, Any]:
    return {
        "milestone": _ref(suggestion.milestone),
        "key_result": _ref(suggestion.key_result),
        "key_result_title": titles(suggestion.key_result),
        "score": _num(suggestion.score),
        "shared_terms": list(suggestion.shared_terms),
    }


def _distribution(found: Distribution | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "count": found.count,
        "median_days": _num(found.median_days),
        "percentile_days": _num(found.percentile_days),
    }


def _work_type(stats: WorkTypeStats) -> dict[str, Any]:
    return {
        "team": stats.team,
        "work_type": stats.work_type,
        "finished": stats.finished,
        "in_progress": stats.in_progress,
        "cycle_time": _distribution(stats.cycle_time),
        "active_time": _distribution(stats.active_time),
        "ageing": [
            {
                "id": _ref(a.task),
                "key": a.key,
                "name": a.name,
                "status": a.status,
                "age_days": _num(a.age_days),
                "limit_days": _num(a.limit_days),
                "basis": a.basis,
            }
            for a in stats.ageing
        ],
    }


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {
        "team": verdict.team,
        "work_type": verdict.work_type,
        "bottleneck": verdict.bottleneck,
        "sample": verdict.sample,
        "other_sample": verdict.other_sample,
        "median_days": _num(verdict.median_days),
        "other_median_days": _num(verdict.other_median_days),
        "ratio": _num(verdict.ratio),
        "test": verdict.test,
        "p_value": _num(verdict.p_value, 6),
        "lower_bound": _num(verdict.lower_bound),
        "blocks": verdict.blocks,
        "blocked_share": _num(verdict.blocked_share),
        "weight": _num(verdict.weight),
        "held_milestones": verdict.held_milestones,
        "delivered_milestones": verdict.delivered_milestones,
        "basis": verdict.basis,
        "status": verdict.status,
        "reason": verdict.reason,
        "evidence": list(verdict.evidence),
    }


def _status_time(row: StatusTime) -> dict[str, Any]:
    return {
        "team": row.team,
        "status": row.status,
        "category": str(row.category),
        "days": _num(row.days),
        "items": row.items,
        "share": _num(row.share),
    }


def _forecast(found: Forecast) -> dict[str, Any]:
    return {
        "milestone": _ref(found.milestone),
        "key": found.key,
        "name": found.name,
        "team": found.team,
        "due": _when(found.due),
        "remaining": found.remaining,
        "p50": _when(found.p50),
        "high": _when(found.high),
        "chance_by_due": _num(found.chance_by_due),
        "at_risk": found.at_risk,
        "explanation": found.explanation,
    }


def _warning(warning: CoherenceWarning) -> dict[str, Any]:
    return {
        "kind": warning.kind,
        "team": warning.team,
        "message": warning.message,
        "items": list(warning.items),
    }


def _item_warning(warning: ItemWarning, labels: Mapping[str, str]) -> dict[str, Any]:
    return shapes.item_warning_dict(warning, labels.get(warning.kind))
