"""The forecast history: each change of an open milestone's P50/P85 finish dates, with its reason.

A new analysis records, for each forecast milestone whose P50 or P85 day differs from its last recorded
one, a point saying why it moved: milestones of its team reached since, tasks added or done, its teams'
throughput rising or falling, only the days going by, or, with nothing changed, the simulation's own
drift.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, select, tuple_

from bridge.domain import Ref, StatusCategory, require_utc
from bridge.store.chunks import chunked
from bridge.store.models import ForecastHistoryRow, MilestoneRow
from bridge.text import plural

if TYPE_CHECKING:
    from bridge.analytics.forecast import Forecast


@dataclass(frozen=True, slots=True)
class Point:
    """A milestone's forecast from `at` on, and why it moved there."""

    milestone: Ref
    at: datetime
    name: str
    team: str
    p50: datetime | None
    p85: datetime | None
    remaining: int
    weekly_throughput: float | None
    reason: str


def _table() -> Any:
    return ForecastHistoryRow.__table__  # type: ignore[attr-defined]


def _point(row: Any) -> Point:
    return Point(
        Ref(row.source, row.milestone_id),
        row.at,
        row.name,
        row.team,
        row.p50,
        row.p85,
        row.remaining,
        row.weekly_throughput,
        row.reason,
    )


def latest(conn: Connection) -> dict[Ref, Point]:
    """Each milestone's most recent point."""
    t = _table()
    newest = (
        select(t.c.source, t.c.milestone_id, func.max(t.c.at).label("at"))
        .group_by(t.c.source, t.c.milestone_id)
        .subquery()
    )
    joined = t.join(
        newest,
        and_(t.c.source == newest.c.source, t.c.milestone_id == newest.c.milestone_id, t.c.at == newest.c.at),
    )
    return {p.milestone: p for p in map(_point, conn.execute(select(t).select_from(joined)))}


def history(conn: Connection, milestone: Ref) -> list[Point]:
    """The milestone's points, oldest first."""
    t = _table()
    rows = conn.execute(
        select(t)
        .where(and_(t.c.source == milestone.source, t.c.milestone_id == milestone.remote_id))
        .order_by(t.c.at)
    )
    return list(map(_point, rows))


def since(conn: Connection, start: datetime) -> dict[Ref, list[Point]]:
    """The points of every milestone whose forecast moved at `start` or later, each oldest first,
    with the point before the first of them (where it moved from)."""
    t = _table()
    moved_refs = select(t.c.source, t.c.milestone_id).where(t.c.at >= start).distinct().subquery()
    same = and_(t.c.source == moved_refs.c.source, t.c.milestone_id == moved_refs.c.milestone_id)
    rows = conn.execute(select(t).join(moved_refs, same).order_by(t.c.source, t.c.milestone_id, t.c.at))
    found: dict[Ref, list[Point]] = {}
    for point in map(_point, rows):
        found.setdefault(point.milestone, []).append(point)
    for ref, points in found.items():
        first = next(i for i, p in enumerate(points) if p.at >= start)
        found[ref] = points[max(0, first - 1) :]
    return found


def slipping(conn: Connection, now: datetime, window: timedelta, share: float) -> dict[Ref, str]:
    """The open milestones whose P85 date moved later, within `window` before now, by more than `share`
    of the time they had left at the window's start; each with the reason, for its label."""
    start = require_utc(now, "now") - window
    found: dict[Ref, str] = {}
    for ref, points in since(conn, start).items():
        slip = _slip([p for p in points if p.at <= now], start, share)
        if slip:
            found[ref] = slip
    return found


def _slip(points: Sequence[Point], start: datetime, share: float) -> str | None:
    """Why the last of these points slipped against the one in force at `start`, or None."""
    if len(points) < 2:
        return None
    last, base = points[-1], points[0]
    if last.reason == REACHED or last.p85 is None or base.p85 is None:
        return None
    if last.remaining == 0:
        return None  # all its tasks are done: its "forecast" is today, moving with the days, no slip
    left = base.p85 - max(base.at, start)
    moved = last.p85 - base.p85
    if moved <= timedelta(0) or moved <= share * max(left, timedelta(days=1)):
        return None
    days = moved.days + (1 if moved.seconds else 0)
    why = "; ".join(dict.fromkeys(p.reason for p in points[1:]))
    return (
        f"its P85 date moved {plural(days, 'day')} later since {_date(max(base.at, start))}, more than "
        f"{share:.0%} of the {plural(max(left.days, 1), 'day')} it had left: {why}"
    )


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def moved(before: Point | None, found: Forecast) -> bool:
    if before is None:
        return True
    return (_day(before.p50), _day(before.p85)) != (_day(found.p50), _day(found.high))


REACHED = "milestone reached"
"""The reason of a milestone's last point: it was done when the forecast was re-evaluated."""
WAITING = "all its tasks are done: it waits to be marked done"
"""Why the forecast of a milestone with no open task moves with the days (it is never a slip)."""


DAYS_WENT_BY = "the days went by with no change in its work or its teams' pace"
"""Why a forecast moved later after a day or more with nothing changed: the days passed unworked."""


def reason(
    before: Point | None,
    found: Forecast,
    reached: Sequence[Point],
    ahead: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> str:
    """Why the forecast moved from `before` (re-evaluated at `now`): what changed in the work and the
    pace behind it. `ahead` says what grew in the milestones its team works on before it (`4 tasks added
    to MOB-3 Onboarding`): the team takes its milestones in rank order, so their new work delays this one
    too. With nothing changed, see `unchanged`."""
    if before is None:
        return "first forecast"
    parts = [f"milestone {p.name} reached" for p in reached if p.team == found.team]
    if found.remaining == 0 and before.remaining == 0 and not parts:
        return WAITING
    change = found.remaining - before.remaining
    if change > 0:
        parts.append(f"{plural(change, 'task')} added")
    elif change < 0:
        parts.append(f"{plural(-change, 'task')} done or removed")
    parts.extend(f"{grown}, ranked ahead of it in team {found.team}" for grown in ahead)
    old, new = before.weekly_throughput, found.weekly_throughput
    if old is not None and new is not None and round(old, 1) != round(new, 1):
        verb = "fell" if new < old else "rose"
        parts.append(f"throughput {verb} from {old:.1f} to {new:.1f} a week")
    return "; ".join(parts) or unchanged(before, found, now)


def unchanged(before: Point, found: Forecast, now: datetime | None) -> str:
    """Why a forecast moved when neither its work nor its teams' weekly pace changed.

    Days going by unworked move a finish date later: that is `DAYS_WENT_BY`. A move within a day, or a
    move sooner, is the Monte Carlo simulation's own drift: its trials replay a sample of daily
    throughput whose days are counted back from the moment of the analysis, so as the clock moves the
    same finished tasks fall into other days, a task leaves or enters the window (too few to change the
    weekly pace as shown, to a tenth), or the hour crosses midnight, and a date moves a day or so with
    nothing changed. That is said as it is, with the span from P50 to P85 to judge it by (the forecast's
    usual spread).
    """
    moves = [m for m in (_days_moved(before.p50, found.p50), _days_moved(before.p85, found.high)) if m]
    if now is None or not moves:
        return DAYS_WENT_BY
    elapsed = max(require_utc(now, "now") - before.at, timedelta(0))
    if elapsed >= timedelta(days=1) and all(m > 0 for m in moves):
        return DAYS_WENT_BY
    days = max(abs(m) for m in moves)
    text = (
        "no change in its work or its teams' pace: the simulated forecast drifted "
        f"{plural(days, 'day')} in {_span(elapsed)}"
    )
    spread = _days_moved(found.p50, found.high)
    if spread is not None and days <= spread:
        text += f", within its usual spread ({plural(spread, 'day')} from P50 to P85)"
    return text


def _days_moved(start: datetime | None, end: datetime | None) -> int | None:
    """Calendar days from `start`'s date to `end`'s (negative when sooner); None without both."""
    if start is None or end is None:
        return None
    return (end.date() - start.date()).days


def _span(elapsed: timedelta) -> str:
    """`40 minutes`, `2 hours`, `3 days`: how long, as a person says it (rounded down)."""
    if elapsed < timedelta(hours=1):
        return plural(max(1, elapsed // timedelta(minutes=1)), "minute")
    if elapsed < timedelta(days=1):
        return plural(elapsed // timedelta(hours=1), "hour")
    return plural(elapsed.days, "day")


def _done(conn: Connection, refs: Collection[Ref]) -> set[Ref]:
    """Which of these milestones the store holds as done."""
    if not refs:
        return set()
    t: Any = MilestoneRow.__table__  # type: ignore[attr-defined]
    rows = conn.execute(
        select(t.c.source, t.c.remote_id).where(
            tuple_(t.c.source, t.c.remote_id).in_([(r.source, r.remote_id) for r in refs]),
            t.c.category == StatusCategory.DONE.value,
            t.c.deleted.is_(False),
        )
    )
    return {Ref(row.source, row.remote_id) for row in rows}


def record(conn: Connection, forecasts: Iterable[Forecast], *, now: datetime) -> list[Point]:
    """Add a point for every forecast whose P50 or P85 day moved since its last point; returns them.

    A milestone forecast before and done now gets a last point, `REACHED`, and is named in the reasons
    of the milestones of its team that moved at the same re-evaluation; so is one given more tasks, in
    the reasons of those its team works on after it (`forecasts` come in rank order). Run by every
    cycle: a forecast that did not move adds nothing.
    """
    now = require_utc(now, "now")
    last = latest(conn)
    found = list(forecasts)
    current = {f.milestone for f in found}
    gone = [ref for ref, p in last.items() if ref not in current and p.reason != REACHED]
    done = _done(conn, gone)
    reached = [
        replace(last[ref], at=now, p50=None, p85=None, remaining=0, reason=REACHED)
        for ref in sorted(done, key=str)
    ]
    added: list[Point] = []
    grown: dict[str, list[str]] = {}  # per team, what grew in its milestones so far (in rank order)
    for f in found:
        before = last.get(f.milestone)
        if f.p50 is not None and moved(before, f):
            why = reason(before, f, reached, grown.get(f.team, ()), now=now)
            added.append(
                Point(f.milestone, now, f.name or f.key, f.team, f.p50, f.high, f.remaining,
                      f.weekly_throughput, why)
            )  # fmt: skip
        if before is not None and f.remaining > before.remaining:
            more = plural(f.remaining - before.remaining, "task")
            grown.setdefault(f.team, []).append(f"{more} added to {f.name or f.key}")
    _save(conn, [*reached, *added])
    return reached + added


def _save(conn: Connection, points: Sequence[Point]) -> None:
    """Insert the points; one already kept for the same milestone and instant (two replicas' cycles)
    gives way. Written through the column types, so stored times compare with bound ones."""
    if not points:
        return
    t = _table()
    by_time: dict[datetime, list[tuple[str, str]]] = {}
    for point in points:  # one re-evaluation's points share its time
        by_time.setdefault(point.at, []).append((point.milestone.source, point.milestone.remote_id))
    for at, keys in by_time.items():
        for chunk in chunked(keys):
            conn.execute(
                t.delete().where(and_(t.c.at == at, tuple_(t.c.source, t.c.milestone_id).in_(chunk)))
            )
    conn.execute(t.insert(), [_row(p) for p in points])


def _row(point: Point) -> dict[str, Any]:
    return {
        "source": point.milestone.source,
        "milestone_id": point.milestone.remote_id,
        "at": point.at,
        "name": point.name,
        "team": point.team,
        "p50": point.p50,
        "p85": point.p85,
        "remaining": point.remaining,
        "weekly_throughput": point.weekly_throughput,
        "reason": point.reason,
    }


def _date(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "none"


def describe(point: Point, before: Point | None = None) -> str:
    """`P50 2026-07-01, P85 2026-07-09 (P85 12 days later)`: where the forecast went, and how far."""
    if point.reason == REACHED:
        return "done"
    text = f"P50 {_date(point.p50)}, P85 {_date(point.p85)}"
    if before is not None and before.p85 is not None and point.p85 is not None:
        days = (point.p85.date() - before.p85.date()).days
        if days:
            text += f" (P85 {plural(abs(days), 'day')} {'later' if days > 0 else 'sooner'})"
    return text


def when(at: datetime) -> str:
    """`2026-12-07 10:35 UTC`: the time of a point as a person reads it."""
    return require_utc(at, "at").strftime("%Y-%m-%d %H:%M UTC")


def moves(points: Sequence[Point], *, readable: bool = False) -> list[tuple[str, str, str]]:
    """(when, where the forecast went, why) for each point, oldest first; when as ISO 8601 to the
    minute, or with `readable` as a person reads it (`when`)."""
    return [
        (
            when(p.at) if readable else p.at.isoformat(timespec="minutes"),
            describe(p, points[i - 1] if i else None),
            p.reason,
        )
        for i, p in enumerate(points)
    ]
