"""Why an item has its rank, OKR link and labels, and how a key result stands: `bridge explain ITEM`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.analytics.okr import KeyResultProgress, LinkedMilestone, catalogue
from bridge.analytics.report import Report
from bridge.analytics.shapes import forecast_move_dict, key_result_dict
from bridge.config import BridgeConfig
from bridge.domain import KeyResult, Milestone, Ref, Snapshot, Task, display_name, is_person_key
from bridge.errors import UserError
from bridge.sync.desired import STATUS_TYPES, desired_state
from bridge.text import plural
from bridge.written import STATUS_UPDATE_FIELD, Written, value_text

Found = Milestone | Task | KeyResult
"""What `bridge explain` can be asked about."""


@dataclass
class Explanation:
    item: Ref
    key: str
    kind: str
    title: str

    @property
    def heading(self) -> str:
        """`PAY-1 Title (milestone, jira:10001)`: the key or gid is shown here, for whoever needs it."""
        name = display_name(self.key, self.title)
        shown = name.startswith(self.key) or self.key in (self.item.remote_id, self.title)
        return f"{name} ({self.kind}, {self.item}{'' if shown else f', key {self.key}'})"

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    """(what, value, why)"""
    written: list[tuple[str, str, str]] = field(default_factory=list)
    """(field, value last written, when)"""
    forecast_moves: list[tuple[str, str, str]] = field(default_factory=list)
    """(when, where the milestone's forecast went, why), oldest first (`bridge.store.forecast_history`)"""
    key_result: dict[str, Any] | None = None
    """For a key result: its objective, progress (and how it is reckoned), status with its reason and
    period end, and its linked milestones (`key_result_facts`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "name": display_name(self.key, self.title),
            "wanted": [{"what": w, "value": v, "why": y} for w, v, y in self.lines],
            "written": [{"field": f, "value": v, "at": a} for f, v, a in self.written],
            "forecast_history": [forecast_move_dict(*move) for move in self.forecast_moves],
            **({"key_result": self.key_result} if self.key_result is not None else {}),
        }


def find_item(snapshot: Snapshot, wanted: str, key_results: Iterable[KeyResult] | None = None) -> Found:
    """An item by its key (`PAY-12`), `tracker:remote_id`, or its title when no other item has it.

    Key results count as items too (`key_results`, by default the snapshot's; `key_result_catalogue`
    adds the config's): by the key of a Jira key-result issue, the config's id (`KR1.1`, or
    `config:KR1.1`), `tracker:id` or title. Keys and titles match without regard to case; several items
    of one key or title are listed, each by the `tracker:id` that picks it.
    """
    live: list[Milestone | Task] = [*snapshot.milestones, *snapshot.tasks]
    items: list[Found] = [i for i in live if not i.deleted]
    items += list(snapshot.key_results if key_results is None else key_results)
    by_ref = [i for i in items if f"{i.source}:{i.remote_id}" == wanted]
    if by_ref:
        return by_ref[0]
    folded = wanted.strip().casefold()
    for what, matches in (
        ("key", [i for i in items if item_key(i).casefold() == folded]),
        ("title", [i for i in items if i.title.strip().casefold() == folded]),
    ):
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UserError(
                f"{wanted!r} is the {what} of {len(matches)} items; give one as tracker:id:\n"
                + "\n".join(sorted(_candidate(i) for i in matches))
            )
    raise UserError(
        f"no milestone, task or key result has the key or title {wanted!r} in the store "
        "(run `bridge pull` first?)"
    )


def key_result_catalogue(snapshot: Snapshot, config: BridgeConfig) -> list[KeyResult]:
    """The key results `bridge explain` can be asked about: the trackers' and the config's."""
    return list(catalogue(snapshot.objectives, snapshot.key_results, config.okrs).key_results.values())


def item_key(item: Found) -> str:
    """The key people use for `item`: a Jira key-result issue's (`PAY-9`, the end of its address), else
    a key result's id (the config's `KR1.1`, a card's or goal's id)."""
    if not isinstance(item, KeyResult):
        return item.key
    last = (item.url or "").rstrip("/").rsplit("/", 1)[-1]
    return last if is_person_key(last) else item.remote_id


def _kind(item: Found) -> str:
    return "milestone" if isinstance(item, Milestone) else "task" if isinstance(item, Task) else "key result"


def _candidate(item: Found) -> str:
    return f"  {item.source}:{item.remote_id}  {_kind(item)} {display_name(item_key(item), item.title)}"


def explain(
    report: Report,
    snapshot: Snapshot,
    config: BridgeConfig,
    wanted: str,
    written: Written,
    forecast_moves: Sequence[tuple[str, str, str]] = (),
    slipping: Mapping[Ref, str] | None = None,
) -> Explanation:
    """Why the item is as the bridge wants it; `forecast_moves` is a milestone's forecast history,
    `slipping` the milestones whose forecast slipped (`forecast_history.slipping`)."""
    item = find_item(snapshot, wanted, key_result_catalogue(snapshot, config))
    if isinstance(item, KeyResult):
        return explain_key_result(report, snapshot, config, item, written)
    ref = Ref(item.source, item.remote_id)
    kind = _kind(item)
    result = Explanation(ref, item.key, kind, item.title, forecast_moves=list(forecast_moves))
    rank = next((r for r in report.milestones if r.milestone == ref), None)
    if isinstance(item, Milestone):
        if rank is not None:
            result.lines.append(("rank", str(rank.rank), rank.explanation))
        else:
            result.lines.append(("rank", "none", "not ranked (done, or not scored)"))
        for kr, origin in sorted(report.links.get(ref, {}).items(), key=lambda pair: str(pair[0])):
            result.lines.append(
                ("key result", f"{report.key_result_title(kr)} ({kr})", f"linked by {origin.value}")
            )
        forecast = next((f for f in report.forecasts if f.milestone == ref), None)
        if forecast is not None:
            state = "at risk" if forecast.at_risk else "on track" if forecast.p50 is not None else "none"
            if forecast.p50 is not None:
                state += (
                    f", P50 {forecast.p50.date()}, P85 {forecast.high.date() if forecast.high else 'none'}"
                )
            result.lines.append(("forecast", state, forecast.explanation))
    else:
        task_rank = report.task_rank(item)
        parent = next(
            (
                display_name(r.key, r.title)
                for r in report.milestones
                if r.milestone == Ref(item.source, item.milestone_id or "")
            ),
            "",
        )
        result.lines.append(
            (
                "rank",
                "none" if task_rank is None else str(task_rank),
                f"inherited from its milestone {parent}".rstrip()
                if task_rank
                else "it belongs to no open, ranked milestone",
            )
        )
        verdict = next(
            (
                v
                for v in report.bottlenecks
                if v.team == (item.team or "") and v.work_type == (item.work_type or "")
            ),
            None,
        )
        if verdict is not None:
            result.lines.append(
                (
                    "work type",
                    f"{verdict.work_type} in {verdict.team}",
                    ("bottleneck: " if verdict.bottleneck else f"not a bottleneck ({verdict.status}): ")
                    + "; ".join((verdict.reason, *verdict.evidence)),
                )
            )
    wish = (
        desired_state(report, snapshot, item.source, config, slipping).get(ref)
        if item.source in config.trackers
        else None
    )
    labelled = wish.labels if wish is not None else frozenset()
    for warning in report.item_warnings:
        # A warning the bridge labels is shown with its label below; others (labels not written) here.
        if warning.item == ref and config.push.warning_labels()[warning.kind] not in labelled:
            result.lines.append(("warning", warning.kind.replace("_", " "), warning.reason))
    if wish is not None:
        for name, value in sorted(wish.fields.items()):
            result.lines.append(
                (f"field {name}", "" if value is None else str(value), wish.reasons.get(name, ""))
            )
        for label in sorted(wish.labels):
            result.lines.append(("label", label, wish.reasons.get(label, "")))
        for gid, target in sorted(wish.links.items()):
            where = target.url or f"{item.source}'s own link to {target.title.removeprefix('Key result: ')}"
            result.lines.append(("link", where, wish.reasons.get(gid, "")))
    for (r, name), value in sorted(written.rows.items(), key=lambda pair: pair[0][1]):
        if r == ref:
            result.written.append((name, value_text(value.value) or "", value.at.isoformat()))
    return result


def explain_key_result(
    report: Report, snapshot: Snapshot, config: BridgeConfig, kr: KeyResult, written: Written
) -> Explanation:
    """How a key result stands and what the bridge writes on it: its objective, its progress and how it
    is reckoned, its status with the reason and the period's end, its linked milestones (done, or how many
    of their tasks are), the label, field or status update it gets, and what was last written there."""
    ref = Ref(kr.source, kr.remote_id)
    result = Explanation(ref, item_key(kr), "key result", kr.title)
    okrs = catalogue(snapshot.objectives, snapshot.key_results, config.okrs)
    objective = okrs.objectives.get(okrs.objective_of(kr))
    objective_title = objective.title if objective is not None else kr.objective_id or "none"
    missing = "not in the store or the config" if kr.objective_id else "it belongs to no objective"
    result.lines.append(("objective", objective_title, "" if objective else missing))
    found, in_objective = next(
        ((k, o) for o in report.okrs for k in o.key_results if k.key_result == ref), (None, None)
    )
    if found is None or in_objective is None:
        result.lines.append(("progress", "none", "the analysis does not have this key result"))
        return result
    result.lines.append(("progress", _percent(found.progress), _progress_why(found)))
    status = found.status.words if found.status is not None else "none"
    result.lines.append(("status", status, found.status_reason))
    period_end = found.period_end.isoformat() if found.period_end is not None else "none"
    result.lines.append(("period end", period_end, _period_why(kr, found, snapshot, config)))
    for linked in found.milestones:
        result.lines.append(
            ("milestone", linked.name, f"{_milestone_state(linked)}; linked by {linked.origin.value}")
        )
    if not found.milestones:
        result.lines.append(("milestone", "none", "no milestone is linked to it"))
    result.key_result = key_result_dict(found, in_objective.title)
    if kr.source not in config.trackers:
        result.lines.append(
            (
                "writes",
                "nothing",
                "a key result of the config lives in no tracker, so nothing is written on it",
            )
        )
        return result
    wish = desired_state(report, snapshot, kr.source, config).get(ref)
    tracker = config.tracker(kr.source)
    if wish is None or not (wish.fields or wish.labels):
        if tracker.status_updates or tracker.write.kr_status_field or tracker.write.labels:
            why = "no status, so no status label (one the bridge wrote is taken back)"
        else:
            why = f"{kr.source} takes no status: no labels, no write.kr_status_field, no status updates"
        result.lines.append(("writes", "nothing", why))
    else:
        # the status's reason is on the status line already: the writes say where it goes, not why again
        for name, value in sorted(wish.fields.items()):
            what = "goal status update" if name == STATUS_UPDATE_FIELD else f"field {name}"
            why = _said_above(wish.reasons.get(name, ""), found.status_reason)
            if name == STATUS_UPDATE_FIELD:
                why += "; posted only when the status changes, never taken back"
                value = STATUS_WORDS.get(str(value), value) if value is not None else None
            result.lines.append((what, "" if value is None else str(value), why))
        for label in sorted(wish.labels):
            result.lines.append(
                ("label", label, _said_above(wish.reasons.get(label, ""), found.status_reason))
            )
    for (r, name), value in sorted(written.rows.items(), key=lambda pair: pair[0][1]):
        if r == ref:
            result.written.append((name, value_text(value.value) or "", value.at.isoformat()))
    return result


STATUS_WORDS = {status_type: status.words for status, status_type in STATUS_TYPES.items()}
"""An Asana goal status update's type as people say it (`achieved`: met)."""


def _said_above(reason: str, status_reason: str) -> str:
    """A write's reason, or "its status, as above" when it only repeats the status line's reason."""
    return "its status, as above" if status_reason and status_reason in reason else reason


def _percent(progress: float | None) -> str:
    return "none" if progress is None else f"{progress:.0%}"


def _progress_why(found: KeyResultProgress) -> str:
    if found.basis == "metric":
        return f"by its metric: {found.explanation}"
    if found.basis == "milestones":
        return (
            "by its linked milestones (no metric), a milestone under way counting the share of its tasks "
            f"done: {found.explanation}"
        )
    return f"neither a metric nor a linked milestone measures it: {found.explanation}"


def _period_why(kr: KeyResult, found: KeyResultProgress, snapshot: Snapshot, config: BridgeConfig) -> str:
    """Where the key result's period end comes from."""
    if found.period_end is None:
        return "no period end: set period_end on its objective in [okrs], or [okrs] period_end"
    own = next(
        (k for k in snapshot.key_results if (k.source, k.remote_id) == (kr.source, kr.remote_id)), None
    )
    if own is not None and own.period_end is not None:
        return "the tracker's own: the goal's time period, else its due date"
    if own is None and config.okrs is not None:
        objective = next((o for o in config.okrs.objectives if o.id == kr.objective_id), None)
        if objective is not None and objective.period_end is not None:
            return f"period_end of its objective {objective.id} in [okrs]"
    return "[okrs] period_end"


def _milestone_state(linked: LinkedMilestone) -> str:
    if linked.done:
        return "done"
    if not linked.tasks_total:
        return "open, no tasks yet"
    state = "in progress" if linked.tasks_done else "open"
    return f"{state}, {linked.tasks_done} of {plural(linked.tasks_total, 'task')} done"
