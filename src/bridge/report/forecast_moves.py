"""How the forecasts moved: the section of `bridge report` (terminal, JSON and HTML) showing each
milestone's forecast changes of the last weeks with their reasons (`bridge.store.forecast_history`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from bridge.analytics.shapes import forecast_move_dict
from bridge.domain import Ref
from bridge.report.json_sections import with_section
from bridge.store import Store, forecast_history
from bridge.store.forecast_history import Point
from bridge.text import html_escape as escape
from bridge.text import plural
from bridge.text import terminal_markup as safe

SHOWN = timedelta(days=28)
"""The report shows the moves of the last four weeks."""


@dataclass(frozen=True, slots=True)
class Moves:
    """Each milestone's points since `start`, with the one before them (where it moved from)."""

    points: Mapping[Ref, Sequence[Point]]
    start: datetime

    def items(self) -> list[tuple[Ref, Sequence[Point]]]:
        return sorted(self.points.items(), key=lambda item: (_name(item[1]), str(item[0])))

    def moved(self) -> list[tuple[Ref, Sequence[Point]]]:
        """The milestones whose forecast changed at least once (not only a first forecast)."""
        return [(ref, points) for ref, points in self.items() if len(points) > 1]

    def first_only(self) -> int:
        """How many milestones have only their first forecast."""
        return sum(1 for points in self.points.values() if len(points) == 1)

    def rows(self, points: Sequence[Point], *, readable: bool = False) -> list[tuple[str, str, str]]:
        """(when, where the forecast went, why) of the points since `start` (`forecast_history.moves`)."""
        described = forecast_history.moves(points, readable=readable)
        return [row for point, row in zip(points, described, strict=True) if point.at >= self.start]


def load_moves(store: Store, now: datetime, only: Collection[Ref] | None = None) -> Moves:
    """Each milestone's forecast moves since `SHOWN` before now; with `only`, of those milestones."""
    start = now - SHOWN
    with store.read() as conn:
        found = forecast_history.since(conn, start)
    return Moves({ref: points for ref, points in found.items() if only is None or ref in only}, start)


def _name(points: Sequence[Point]) -> str:
    return points[-1].name


def moves_json(moves: Moves) -> list[dict[str, Any]]:
    return [
        {
            "milestone": str(ref),
            "name": _name(points),
            "moves": [forecast_move_dict(*move) for move in moves.rows(points)],
        }
        for ref, points in moves.items()
    ]


def with_moves(report_json: str, moves: Moves) -> str:
    """The report's JSON document (indented by two) with the forecast moves under `forecast_history`,
    added last.

    Written in before the document's closing brace, as `json.dumps(..., indent=2)` of the whole would
    place them (a JSON string holds no raw line break, so indenting by lines is safe): the same text,
    without decoding and encoding the megabytes of a large report again (0.5 s of CPU at 100,000
    tasks, more than the unchanged store's whole report)."""
    return with_section(report_json, "forecast_history", moves_json(moves))


def render_moves_section(moves: Moves, console: Console) -> None:
    """The moves as a section of `bridge report`: one line per change, under its milestone."""
    console.print()
    console.print(
        f"[bold underline]How the forecasts moved[/bold underline]  [dim]the last {SHOWN.days} days; "
        "`bridge explain MILESTONE` shows the whole history[/dim]"
    )
    moved = moves.moved()
    if not moved:
        console.print(f"no forecast moved in the last {SHOWN.days} days")
    if moves.first_only():
        console.print(f"[dim]{_first_only(moves.first_only())}[/dim]")
    for _ref, points in moved:
        console.print(f"[bold]{safe(_name(points))}[/bold]")
        for at, where, why in moves.rows(points, readable=True):
            console.print(f"  {at}  {safe(where)} - {safe(why)}")


def moves_html(moves: Moves) -> str:
    """The moves' section body for the HTML report: one table of every change, by milestone."""
    moved = moves.moved()
    first = f"<p>{escape(_first_only(moves.first_only()))}</p>" if moves.first_only() else ""
    if not moved:
        return f'<p class="no-data">No forecast moved in the last {SHOWN.days} days.</p>{first}'
    rows = "".join(
        f'<tr><td>{escape(_name(points))}</td><td class="nowrap">{escape(at)}</td>'
        f'<td class="nowrap">{escape(where)}</td>'
        f"<td>{escape(why)}</td></tr>"
        for _ref, points in moved
        for at, where, why in moves.rows(points, readable=True)
    )
    return (
        f"<p>Each change of a milestone's forecast in the last {SHOWN.days} days, and why it moved.</p>"
        f"{first}"
        "<table><tr><th>milestone</th><th>when</th><th>forecast</th><th>why</th></tr>"
        f"{rows}</table>"
    )


def _first_only(count: int) -> str:
    return f"{plural(count, 'milestone')} forecast for the first time, not moved since (not listed)"
