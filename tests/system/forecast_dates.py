"""One story for every tracker: forecast dates written into date fields over real HTTP.

The first cycle writes each open milestone's P50 and P85 days; an unchanged cycle writes nothing; a day
later, dates that moved less than `write.forecast_min_move` stay as written; ten days later the moved
dates are written once, the dry run having said from where to where and why; purge clears them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bridge.domain import FieldWrite
from bridge.sync.cycle import CycleResult

DATE_FIELDS = ("forecast_p50", "forecast_p85")
MIN_MOVE = timedelta(days=3)

Days = tuple[str | None, str | None]


@dataclass
class Rig:
    """What the story needs of one tracker's test setup."""

    run: Callable[..., CycleResult]
    """`run(now, dry_run=False)`: one cycle at `now`, asserted ok."""
    held: Callable[[], Mapping[str, Days]]
    """Milestone remote id -> the (P50, P85) days its date fields hold in the sandbox."""
    writes: Callable[[], int]
    """Write requests the sandbox got since `forget`."""
    forget: Callable[[], None]
    purge: Callable[[], None]


def forecast_days(result: CycleResult, source: str) -> dict[str, Days]:
    assert result.report is not None
    return {
        f.milestone.remote_id: (_day(f.p50), _day(f.high))
        for f in result.report.forecasts
        if f.milestone.source == source and f.p50 is not None
    }


def date_writes(result: CycleResult) -> list[FieldWrite]:
    return [w for entry in result.trackers if entry.plan for w in entry.plan.writes if w.field in DATE_FIELDS]


def _day(moment: datetime | None) -> str | None:
    return moment.date().isoformat() if moment is not None else None


def _apart(a: str | None, b: str | None) -> timedelta:
    assert a is not None and b is not None
    return abs(date.fromisoformat(a) - date.fromisoformat(b))


def story(rig: Rig, source: str, start: datetime) -> None:
    first = rig.run(start)
    wanted = forecast_days(first, source)
    assert wanted, "the sandbox's milestones have forecasts"
    held = rig.held()
    for milestone, days in wanted.items():
        if milestone in held:
            assert held[milestone] == days, milestone
    dated = {m for m in wanted if m in held}
    assert dated, "some forecast milestone has a place to hold its dates"
    assert all(days == (None, None) for m, days in held.items() if m not in wanted)
    written_first = date_writes(first)
    assert len(written_first) == 2 * len(dated), "both dates, once each"
    assert all(w.reason.startswith(("P50 forecast ", "P85 forecast ")) for w in written_first)

    rig.forget()
    second = rig.run(start)
    assert date_writes(second) == [] and rig.writes() == 0, "an unchanged cycle writes nothing"

    rig.forget()
    next_day = rig.run(start + timedelta(days=1))
    moved = forecast_days(next_day, source)
    small = {
        (m, i)
        for m in dated
        for i in range(2)
        if m in moved and moved[m][i] != wanted[m][i] and _apart(moved[m][i], wanted[m][i]) < MIN_MOVE
    }
    assert small, "a day later some date moved, by less than the minimum"
    written = {(w.item.remote_id, DATE_FIELDS.index(w.field)) for w in date_writes(next_day)}
    assert not small & written
    after = rig.held()
    for m, i in small:
        assert after[m][i] == wanted[m][i], "a move under the minimum is not written"

    later = start + timedelta(days=10)
    rig.forget()
    preview = rig.run(later, dry_run=True)
    assert rig.writes() == 0
    planned = date_writes(preview)
    assert planned, "ten days on, the dates moved by more than the minimum"
    for write in planned:
        label = "P50" if write.field == "forecast_p50" else "P85"
        assert write.reason.startswith(f"{label} moved from {write.previous} to {write.value}: "), (
            write.reason
        )

    rig.forget()
    moving = rig.run(later)
    done = date_writes(moving)
    assert sorted((w.item.remote_id, w.field, w.value) for w in done) == sorted(
        (w.item.remote_id, w.field, w.value) for w in planned
    ), "written once, as the dry run said"
    now_held = rig.held()
    for write in done:
        assert now_held[write.item.remote_id][DATE_FIELDS.index(write.field)] == write.value

    rig.forget()
    again = rig.run(later)
    assert date_writes(again) == [], "written once a day at most, and only when moved"

    rig.purge()
    assert all(days == (None, None) for days in rig.held().values()), rig.held()
