"""The message of a milestone reached, as an `Announcement`: what was delivered, the key results it moves
and their progress before and after, how long it took against its first and its last forecast, and the
team. Pure: the milestone, its tasks, its key results and its forecast history in, the message out.

Tracker text (titles, names) goes in as it is: each medium escapes it (`bridge.announcement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge.analytics.okr import LinkedMilestone, metric_progress, milestone_progress
from bridge.analytics.snapshot import NO_TEAM
from bridge.announcement import Announcement, AnnouncementKind
from bridge.domain import KeyResult, LinkOrigin, Milestone, Ref, StatusCategory, Task, display_name
from bridge.store.forecast_history import REACHED, Point
from bridge.text import plural

_ORDINALS = {2: "2nd", 3: "3rd"}


@dataclass(frozen=True, slots=True)
class KeyResultMove:
    """A key result the milestone moves: its progress with the milestone counted open, then done."""

    title: str
    before: float | None
    after: float | None
    unit: str
    """`%`-free text saying what the progress counts ("of the linked milestones' value", a metric)."""


def reached_key(milestone: Ref, completion: int) -> str:
    """The announcement's key: the same parts as the comment's marker (`bridge.written.comment_marker`)."""
    return f"reached:{milestone.source}:{milestone.remote_id}:{completion}"


def key_result_moves(
    milestone: Ref,
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    key_results: Mapping[Ref, KeyResult],
    milestones: Mapping[Ref, Milestone],
) -> list[KeyResultMove]:
    """The key results `milestone` moves, each with its progress before (this milestone counted open)
    and after (counted done), reckoned as the report does (`bridge.analytics.okr`): a key result with a
    metric keeps its metric's progress, which no milestone moves; the others count the share of their
    linked milestones' value that is done."""
    moves: list[KeyResultMove] = []
    targets = sorted(
        (ref for ref in links.get(milestone, {}) if ref in key_results),
        key=lambda ref: (-key_results[ref].weight, key_results[ref].title, str(ref)),
    )
    for target in targets:
        kr = key_results[target]
        metric = metric_progress(kr)
        if metric is not None:
            unit = kr.unit or ""
            what = f"its metric, {kr.current:g}{unit} towards {kr.target:g}{unit}"
            moves.append(KeyResultMove(kr.title, metric, metric, what))
            continue
        linked = [
            LinkedMilestone(ref, m.key, m.title, origins[target], m.category is StatusCategory.DONE, m.value)
            for ref, origins in sorted(links.items(), key=lambda item: str(item[0]))
            if target in origins and (m := milestones.get(ref)) is not None and not m.deleted
        ]
        before, _ = milestone_progress(
            [_counted(m, done=False) if m.milestone == milestone else m for m in linked]
        )
        after, _ = milestone_progress(
            [_counted(m, done=True) if m.milestone == milestone else m for m in linked]
        )
        what = f"share of the value of its {plural(len(linked), 'linked milestone')} done"
        moves.append(KeyResultMove(kr.title, before, after, what))
    return moves


def _counted(linked: LinkedMilestone, *, done: bool) -> LinkedMilestone:
    return LinkedMilestone(linked.milestone, linked.key, linked.title, linked.origin, done, linked.value)


def reached_announcement(
    milestone: Milestone,
    completion: int,
    *,
    done_at: datetime,
    tasks: Sequence[Task],
    key_results: Sequence[KeyResultMove],
    forecasts: Sequence[Point],
    team: str | None,
) -> Announcement:
    """The announcement of `milestone`'s `completion`-th completion, seen at `done_at`.

    `tasks` are its tasks, `key_results` what it moves (`key_result_moves`), `forecasts` its forecast
    history oldest first (`bridge.store.forecast_history`), `team` its team's name.
    """
    ref = Ref(milestone.source, milestone.remote_id)
    name = display_name(milestone.key, milestone.title)
    again = completion > 1
    if again:
        headline = f"Milestone reached again: {name} (the {_ordinal(completion)} time; it was re-opened)"
    else:
        headline = f"Milestone reached: {name}"
    facts: list[tuple[str, str]] = [("Delivered", _delivered(tasks))]
    facts.extend(("Key result", _key_result(move)) for move in key_results)
    facts.append(("Took", _took(milestone, tasks, done_at)))
    points = [p for p in forecasts if p.reason != REACHED and p.p50 is not None]
    if points:
        facts.append(("First forecast", _against(points[0], done_at)))
        if len(points) > 1:
            facts.append(("Last forecast", _against(points[-1], done_at)))
    else:
        facts.append(("Forecast", "none was made (the bridge never forecast it while it was open)"))
    known = team if team and team != NO_TEAM else milestone.team
    facts.append(("Team", known or "none set (no team in the config claims it)"))
    return Announcement(
        kind=AnnouncementKind.MILESTONE_REACHED,
        key=reached_key(ref, completion),
        subject=ref,
        headline=headline,
        facts=tuple(facts),
        url=milestone.url,
        occurrence=completion,
    )


def _ordinal(n: int) -> str:
    return _ORDINALS.get(n, f"{n}th")


def _delivered(tasks: Sequence[Task]) -> str:
    """`3 tasks done`: the headline names the milestone already."""
    live = [t for t in tasks if not t.deleted]
    done = sum(1 for t in live if t.category is StatusCategory.DONE)
    if not live:
        return "the milestone itself (it has no tasks)"
    if done == len(live):
        return f"{plural(done, 'task')} done"
    return f"{done} of {plural(len(live), 'task')} done"


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0%}"


def _key_result(move: KeyResultMove) -> str:
    if move.before == move.after:
        return f"{move.title}: {_percent(move.after)} ({move.unit}; this milestone does not change it)"
    return f"{move.title}: {_percent(move.before)} before, {_percent(move.after)} now ({move.unit})"


def _took(milestone: Milestone, tasks: Sequence[Task], done_at: datetime) -> str:
    started = [t.started for t in tasks if t.started is not None and not t.deleted]
    if started:
        start, since = min(started), "its first task started"
    elif milestone.created is not None:
        start, since = milestone.created, "it was created"
    else:
        return f"done {done_at.date().isoformat()} (when it started is not known)"
    days = max(0, (done_at.date() - start.date()).days)
    return f"{plural(days, 'day')}, from {start.date().isoformat()} ({since}) to {done_at.date().isoformat()}"


def _against(point: Point, done_at: datetime) -> str:
    """`P50 2026-10-20, P85 2026-10-27 (made 2026-10-01); done 2 days after its P50 and 5 days before its
    P85`."""
    assert point.p50 is not None
    parts = [f"P50 {point.p50.date().isoformat()}"]
    if point.p85 is not None:
        parts.append(f"P85 {point.p85.date().isoformat()}")
    versus = [_versus(done_at, point.p50, "P50")]
    if point.p85 is not None:
        versus.append(_versus(done_at, point.p85, "P85"))
    return f"{', '.join(parts)} (made {point.at.date().isoformat()}); done {' and '.join(versus)}"


def _versus(done_at: datetime, date: datetime, what: str) -> str:
    days = (done_at.date() - date.date()).days
    if days == 0:
        return f"on its {what}"
    return f"{plural(abs(days), 'day')} {'after' if days > 0 else 'before'} its {what}"
