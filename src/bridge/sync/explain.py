"""Why an item has its rank, OKR link and labels: `bridge explain ITEM`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.analytics.report import Report
from bridge.config import BridgeConfig
from bridge.domain import Milestone, Ref, Snapshot, Task, display_name
from bridge.errors import UserError
from bridge.sync.desired import desired_state
from bridge.written import Written, value_text


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "wanted": [{"what": w, "value": v, "why": y} for w, v, y in self.lines],
            "written": [{"field": f, "value": v, "at": a} for f, v, a in self.written],
            "forecast_history": [{"at": a, "forecast": f, "why": y} for a, f, y in self.forecast_moves],
        }


def find_item(snapshot: Snapshot, wanted: str) -> Milestone | Task:
    """An item by its key (`PAY-12`), `tracker:remote_id`, or its title when no other item has it.

    Keys and titles match without regard to case; several items of one key or title are listed, each
    by the `tracker:id` that picks it.
    """
    everything: list[Milestone | Task] = [*snapshot.milestones, *snapshot.tasks]
    items = [i for i in everything if not i.deleted]
    by_ref = [i for i in items if f"{i.source}:{i.remote_id}" == wanted]
    if by_ref:
        return by_ref[0]
    folded = wanted.strip().casefold()
    for what, matches in (
        ("key", [i for i in items if i.key.casefold() == folded]),
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


def explain_key_result(report: Report, wanted: str) -> Explanation | None:
    """Where a key result stands, when `wanted` is the title of exactly one (its progress, status and
    the milestones linked to it); None when no key result has that title."""
    folded = wanted.strip().casefold()
    found = [
        (objective, kr)
        for objective in report.okrs
        for kr in objective.key_results
        if kr.title.strip().casefold() == folded or str(kr.key_result) == wanted.strip()
    ]
    if not found:
        return None
    if len(found) > 1:
        raise UserError(
            f"{wanted!r} is the title of {len(found)} key results; give one as source:id:\n"
            + "\n".join(sorted(f"  {kr.key_result}  key result {kr.title}" for _, kr in found))
        )
    objective, kr = found[0]
    result = Explanation(kr.key_result, kr.key_result.remote_id, "key result", kr.title)
    progress = f"{kr.progress:.0%}" if kr.progress is not None else "none"
    result.lines.append(("objective", objective.title, ""))
    result.lines.append(("progress", progress, kr.explanation))
    # the period's end, unless the reason says it already ("... before the period ends 2026-12-31")
    end = kr.period_end.isoformat() if kr.period_end is not None else None
    ends = f" (period ends {end})" if end is not None and end not in kr.status_reason else ""
    status = kr.status.words + ends if kr.status is not None else "none"
    result.lines.append(("status", status, kr.status_reason))
    for m in kr.milestones:
        state = "done" if m.done else "open"
        if not m.done and m.tasks_total:
            state += f", {m.tasks_done} of {m.tasks_total} tasks done"
        result.lines.append(("milestone", m.name, f"{state}, linked by {m.origin.value}"))
    if not kr.milestones:
        result.lines.append(("milestone", "none", "no milestone is linked to it"))
    return result


def _candidate(item: Milestone | Task) -> str:
    kind = "milestone" if isinstance(item, Milestone) else "task"
    return f"  {item.source}:{item.remote_id}  {kind} {display_name(item.key, item.title)}"


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
    item = find_item(snapshot, wanted)
    ref = Ref(item.source, item.remote_id)
    kind = "milestone" if isinstance(item, Milestone) else "task"
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
