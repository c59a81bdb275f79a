"""Milestones reached: the section of `bridge report` (terminal, JSON and HTML) listing the milestones
reached in the last weeks and, for each, where it was announced or why it was not
(`bridge.reached`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console

from bridge.config import BridgeConfig
from bridge.domain import Ref
from bridge.reached import REACHED, RECENT, skip_reason
from bridge.report.json_sections import with_section
from bridge.store import Store, completions
from bridge.store.snapshot import read_milestones
from bridge.store.written import load_written
from bridge.text import html_escape as escape
from bridge.text import plural
from bridge.text import terminal_markup as safe
from bridge.written import comment_marker

BEFORE_WATCHED = "not announced: done before the bridge watched its tracker"


@dataclass(frozen=True, slots=True)
class ReachedMilestone:
    """A milestone reached in the last `RECENT`, and what became of its announcement."""

    milestone: Ref
    name: str
    at: datetime
    completion: int
    announced: bool
    status: str
    """`announced: comment posted in jira`, or why not (`skipped: a fix version takes no comment`)."""


def load_reached(store: Store, config: BridgeConfig, now: datetime) -> list[ReachedMilestone]:
    """The milestones reached since `RECENT` before `now`, by name: each announced (where) or why not."""
    with store.read() as conn:
        found = completions.recent(conn, now - RECENT)
        sources = {c.milestone.source for c in found}
        written = {source: load_written(conn, source) for source in sources}
        milestones = {Ref(m.source, m.remote_id): m for m in read_milestones(conn) if m.source in sources}
    rows: list[ReachedMilestone] = []
    for completion in found:
        ref = completion.milestone
        at = completion.done_at or now
        marker = comment_marker(REACHED, ref, completion.completions)
        tracker = config.trackers.get(ref.source)
        announced = written[ref.source].get(ref, marker) is not None
        if announced:
            status = f"announced: comment posted in {ref.source}"
        elif completion.silent:
            status = BEFORE_WATCHED
        elif tracker is None:
            status = f"not announced: tracker {ref.source} is no longer in the config"
        elif (why := skip_reason(tracker, ref, milestones.get(ref))) is not None:
            status = f"skipped: {why}"
        elif not config.push.enabled:
            status = "not announced: write-back is off (push.enabled = false)"
        elif ref in milestones and config.push.opt_out_label in milestones[ref].labels:
            status = f"skipped: it carries the opt-out label {config.push.opt_out_label}"
        else:
            status = "not announced yet: its comment is posted by the next sync"
        rows.append(ReachedMilestone(ref, completion.name, at, completion.completions, announced, status))
    return rows


def _again(row: ReachedMilestone) -> str:
    return f" (reached again, {plural(row.completion, 'time')})" if row.completion > 1 else ""


def reached_json(rows: list[ReachedMilestone]) -> list[dict[str, Any]]:
    return [
        {
            "milestone": str(row.milestone),
            "name": row.name,
            "reached_at": row.at.isoformat(timespec="minutes"),
            "completion": row.completion,
            "announced": row.announced,
            "status": row.status,
        }
        for row in rows
    ]


def with_reached(report_json: str, rows: list[ReachedMilestone]) -> str:
    """The report's JSON document with the milestones reached under `milestones_reached`."""
    return with_section(report_json, "milestones_reached", reached_json(rows))


def _listed(rows: list[ReachedMilestone]) -> tuple[list[ReachedMilestone], int]:
    """The rows to list one by one, and how many milestones were done before the bridge watched (counted,
    not listed: a tracker's first cycle finds all its done milestones at once)."""
    before = [row for row in rows if row.status == BEFORE_WATCHED]
    return [row for row in rows if row.status != BEFORE_WATCHED], len(before)


def _before_line(count: int) -> str:
    return f"{plural(count, 'milestone')} found done when the bridge started watching: not announced"


def render_reached_section(rows: list[ReachedMilestone], console: Console) -> None:
    """The milestones reached as a section of `bridge report`: one line each, with its announcement."""
    console.print()
    console.print(
        f"[bold underline]Milestones reached[/bold underline]  [dim]the last {RECENT.days} days[/dim]"
    )
    listed, before = _listed(rows)
    if not listed:
        console.print(f"no milestone reached in the last {RECENT.days} days")
    for row in listed:
        when = row.at.date().isoformat()
        console.print(f"{when}  [bold]{safe(row.name)}[/bold]{_again(row)} - {safe(row.status)}")
    if before:
        console.print(f"[dim]{_before_line(before)}[/dim]")


def reached_html(rows: list[ReachedMilestone]) -> str:
    """The section's body for the HTML report: one table row per milestone reached."""
    listed, before = _listed(rows)
    note = f"<p>{escape(_before_line(before))}</p>" if before else ""
    if not listed:
        return f'<p class="no-data">No milestone reached in the last {RECENT.days} days.</p>{note}'
    cells = "".join(
        f"<tr><td>{escape(row.name)}{escape(_again(row))}</td><td>{row.at.date().isoformat()}</td>"
        f"<td>{escape(row.status)}</td></tr>"
        for row in listed
    )
    return (
        f"<p>The milestones reached in the last {RECENT.days} days, and where each was announced.</p>"
        "<table><tr><th>milestone</th><th>reached (UTC)</th><th>announcement</th></tr>"
        f"{cells}</table>{note}"
    )
