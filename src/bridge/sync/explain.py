"""Why an item has its rank, OKR link and labels: `bridge explain ITEM`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.analytics.report import Report
from bridge.config import BridgeConfig
from bridge.domain import Milestone, Ref, Snapshot, Task
from bridge.errors import UserError
from bridge.sync.desired import desired_state
from bridge.written import Written, value_text


@dataclass
class Explanation:
    item: Ref
    key: str
    kind: str
    title: str
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    """(what, value, why)"""
    written: list[tuple[str, str, str]] = field(default_factory=list)
    """(field, value last written, when)"""

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "wanted": [{"what": w, "value": v, "why": y} for w, v, y in self.lines],
            "written": [{"field": f, "value": v, "at": a} for f, v, a in self.written],
        }


def find_item(snapshot: Snapshot, wanted: str) -> Milestone | Task:
    """An item by its key (`PAY-12`) or `tracker:remote_id`."""
    items: list[Milestone | Task] = [*snapshot.milestones, *snapshot.tasks]
    by_ref = [i for i in items if f"{i.source}:{i.remote_id}" == wanted]
    if by_ref:
        return by_ref[0]
    by_key = [i for i in items if i.key == wanted or i.key.casefold() == wanted.casefold()]
    if len(by_key) > 1:
        names = ", ".join(sorted(f"{i.source}:{i.remote_id}" for i in by_key))
        raise UserError(f"{wanted!r} names several items ({names}); give one as tracker:id")
    if not by_key:
        raise UserError(f"no milestone or task {wanted!r} in the store (run `bridge pull` first?)")
    return by_key[0]


def explain(
    report: Report, snapshot: Snapshot, config: BridgeConfig, wanted: str, written: Written
) -> Explanation:
    item = find_item(snapshot, wanted)
    ref = Ref(item.source, item.remote_id)
    kind = "milestone" if isinstance(item, Milestone) else "task"
    result = Explanation(ref, item.key, kind, item.title)
    rank = next((r for r in report.milestones if r.milestone == ref), None)
    if isinstance(item, Milestone):
        if rank is not None:
            result.lines.append(("rank", str(rank.rank), rank.explanation))
        else:
            result.lines.append(("rank", "", "not ranked (done, or not scored)"))
        for kr, origin in sorted(report.links.get(ref, {}).items(), key=lambda pair: str(pair[0])):
            result.lines.append(("key result", str(kr), f"linked ({origin.value})"))
        forecast = next((f for f in report.forecasts if f.milestone == ref), None)
        if forecast is not None:
            result.lines.append(
                ("forecast", "at risk" if forecast.at_risk else "on track", forecast.explanation)
            )
    else:
        task_rank = report.task_rank(item)
        result.lines.append(
            (
                "rank",
                "" if task_rank is None else str(task_rank),
                "inherited from its milestone" if task_rank else "",
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
    if item.source in config.trackers:
        wish = desired_state(report, snapshot, item.source, config).get(ref)
        if wish is not None:
            for name, value in sorted(wish.fields.items()):
                result.lines.append(
                    (f"field {name}", "" if value is None else str(value), wish.reasons.get(name, ""))
                )
            for label in sorted(wish.labels):
                result.lines.append(("label", label, wish.reasons.get(label, "")))
            for gid, target in sorted(wish.links.items()):
                result.lines.append(("link", target.url, wish.reasons.get(gid, "")))
    for (r, name), value in sorted(written.rows.items(), key=lambda pair: pair[0][1]):
        if r == ref:
            result.written.append((name, value_text(value.value) or "", value.at.isoformat()))
    return result
