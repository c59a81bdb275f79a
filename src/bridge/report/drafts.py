"""`bridge okr draft`, and the drafts' section of `bridge report` (terminal, JSON and HTML).

Drafting reads the store, groups the chosen milestones (`bridge.analytics.drafts`) and stores the drafts
(`bridge.store.drafts`); the report shows what is stored, so both print the same drafts the same way.
Nothing is written to a tracker until a draft is adopted (`bridge okr adopt`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console

from bridge.analytics.drafts import (
    SELECTIONS,
    Drafts,
    PlannedMilestone,
    draft_okrs,
    draft_title,
    planned_milestones,
)
from bridge.analytics.okr import effective_links
from bridge.config import BridgeConfig
from bridge.domain import Milestone, Ref, Snapshot
from bridge.errors import UserError
from bridge.report.json_sections import with_section
from bridge.report.teams import milestone_team_map
from bridge.store import Store
from bridge.store.drafts import SavedDrafts, StoredDraft, read_drafts, save_drafts
from bridge.store.snapshot import read_links, read_milestones, read_tasks
from bridge.text import html_escape as escape
from bridge.text import json_terminal_safe
from bridge.text import terminal_markup as safe

ADOPT_HINT = (
    "Adopt one with `bridge okr adopt DRAFT_ID [--objective ID | --new-objective TITLE] [--target N]`"
)
"""Told after the drafts: `N` in a title stands for the target the owner sets."""


@dataclass(frozen=True, slots=True)
class DraftView:
    """The stored drafts with the milestones they name, for showing them."""

    drafts: Sequence[StoredDraft]
    milestones: Mapping[str, Milestone]
    """By `source:remote_id`."""

    @property
    def objectives(self) -> list[StoredDraft]:
        return [d for d in self.drafts if d.kind == "objective"]

    @property
    def key_results(self) -> dict[str, StoredDraft]:
        return {d.id: d for d in self.drafts if d.kind == "key_result"}


def make_drafts(
    milestones: Sequence[Milestone],
    snapshot: Snapshot,
    *,
    which: str,
    team: str | None,
    now: datetime,
    seed: int = 0,
) -> Drafts:
    """Draft from the store's milestones (each with its team as the analysis reckons it)."""
    teams = milestone_team_map(snapshot)
    placed = [replace(m, team=teams.get(Ref(m.source, m.remote_id), m.team)) for m in milestones]
    placed_snapshot = replace(snapshot, milestones=placed)
    links = effective_links(snapshot.links)
    known = sorted({m.team for m in placed if m.team})
    if team is not None and team not in known:
        raise UserError(f"no team named {team!r} among the milestones; teams: {', '.join(known) or 'none'}")
    chosen = planned_milestones(placed_snapshot, links, which=which, team=team)
    corpus: list[PlannedMilestone] = planned_milestones(placed_snapshot, links, which="all")
    return draft_okrs(chosen, now=now, seed=seed, corpus=corpus, portfolio=placed)


def to_stored(drafts: Drafts, now: datetime) -> list[StoredDraft]:
    """The drafts as rows: objectives and key results, each in the drafts' order."""
    rows = [
        StoredDraft(
            id=o.id, kind="objective", position=i, title=o.title, measure=None, unit=None, parent_id=None,
            members=o.key_results, value=o.value, share=o.share, reasons=o.reasons, created_at=now,
            updated_at=now,
        )
        for i, o in enumerate(drafts.objectives)
    ]  # fmt: skip
    rows.extend(
        StoredDraft(
            id=k.id, kind="key_result", position=i, title=k.title, measure=k.measure, unit=k.unit,
            parent_id=k.objective_id, members=tuple(str(m.milestone) for m in k.members), value=k.value,
            share=k.share, reasons=k.reasons, created_at=now, updated_at=now, terms=k.terms,
        )
        for i, k in enumerate(drafts.key_results)
    )  # fmt: skip
    return rows


def draft_command(
    cfg: BridgeConfig,
    *,
    now: datetime,
    as_json: bool,
    team: str | None = None,
    which: str = "unlinked",
    out: TextIO | None = None,
) -> None:
    """Draft key results and objectives from the store's milestones, store them and print them."""
    out = out or sys.stdout
    if which not in SELECTIONS:
        raise UserError(f"--milestones must be one of {', '.join(SELECTIONS)}, not {which!r}")
    store = Store.open(cfg, create=False)
    try:
        with store.read() as conn:
            milestones = read_milestones(conn)
            snapshot = Snapshot(milestones=milestones, tasks=read_tasks(conn), links=read_links(conn))
        drafts = make_drafts(milestones, snapshot, which=which, team=team, now=now)
        with store.write() as conn:
            saved = save_drafts(conn, to_stored(drafts, now), now=now)
            stored = read_drafts(conn)
    finally:
        store.close()
    wanted = {o.id for o in drafts.objectives} | {k.id for k in drafts.key_results}
    view = DraftView(
        [d for d in stored if d.id in wanted], {f"{m.source}:{m.remote_id}": m for m in milestones}
    )
    if as_json:
        document = {"milestones": which, "team": team, **drafts_json(view), **_summary_json(drafts, saved)}
        out.write(json_terminal_safe(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
        return
    console = Console(file=out, highlight=False, soft_wrap=False, width=None if out.isatty() else 160)
    chosen = {
        "unlinked": "open milestones without a key result",
        "open": "open milestones",
        "all": "milestones",
    }
    scope = f" of team {team}" if team else ""
    console.print(
        f"[bold]Drafted from {drafts.considered} {chosen[which]}{safe(scope)}[/bold] "
        f"(the open portfolio's value: {drafts.portfolio_value:g})"
    )
    render_drafts(view, console)
    if drafts.ungrouped:
        names = "; ".join(f"{m.key} {m.title}" for m in drafts.ungrouped)
        console.print(f"\nnot grouped (they share too little with the others): {safe(names)}")
    console.print(
        f"\n{len(drafts.key_results)} key results and {len(drafts.objectives)} objectives drafted; stored "
        f"({saved.kept} kept their ids, {saved.added} new, {saved.dropped} dropped). {ADOPT_HINT}."
    )


def _summary_json(drafts: Drafts, saved: SavedDrafts) -> dict[str, Any]:
    return {
        "made_at": drafts.made_at.isoformat(),
        "considered": drafts.considered,
        "portfolio_value": drafts.portfolio_value,
        "ungrouped": [
            {"milestone": str(m.milestone), "key": m.key, "title": m.title, "team": m.team, "value": m.value}
            for m in drafts.ungrouped
        ],
        "stored": {"kept": saved.kept, "added": saved.added, "dropped": saved.dropped},
    }


# --- showing stored drafts ---------------------------------------------------------------------------


def load_view(store: Store) -> DraftView:
    """The stored drafts and the milestones they name (none when the store has no drafts yet)."""
    with store.read() as conn:
        stored = read_drafts(conn)
        milestones = read_milestones(conn) if stored else []
    return DraftView(stored, {f"{m.source}:{m.remote_id}": m for m in milestones})


def _member(view: DraftView, ref: str) -> tuple[str, str, str | None, float | None]:
    """A member's key (empty when it is its title, as for Trello's label milestones), title, team and
    value."""
    milestone = view.milestones.get(ref)
    if milestone is None:
        return ref, "(no longer in the store)", None, None
    key = "" if milestone.key == milestone.title else milestone.key
    return key, milestone.title, milestone.team, milestone.value


def _value(value: float | None) -> str:
    return "no value" if value is None else f"value {value:g}"


def _adopted(draft: StoredDraft) -> str:
    return f" — adopted as {draft.adopted_as}" if draft.adopted_as else ""


def _ordered_key_results(view: DraftView) -> list[tuple[StoredDraft | None, list[StoredDraft]]]:
    """Each drafted objective with its key results; key results without a stored objective last."""
    results = view.key_results
    placed: set[str] = set()
    groups: list[tuple[StoredDraft | None, list[StoredDraft]]] = []
    for objective in view.objectives:
        mine = sorted((results[i] for i in objective.members if i in results), key=lambda d: d.position)
        placed.update(d.id for d in mine)
        groups.append((objective, mine))
    rest = sorted((d for d in results.values() if d.id not in placed), key=lambda d: d.position)
    if rest:
        groups.append((None, rest))
    return groups


def render_drafts(view: DraftView, console: Console) -> None:
    """Objectives, their key results, each key result's milestones and reasons."""
    if not view.drafts:
        console.print("no drafts stored: run `bridge okr draft`")
        return
    for objective, results in _ordered_key_results(view):
        console.print()
        if objective is not None:
            console.print(
                f"[bold]Objective {objective.id}: {safe(objective.title)}[/bold]  "
                f"({_value(objective.value)}, {objective.share:.0%} of the open portfolio's; "
                f"{safe('; '.join(objective.reasons))}){safe(_adopted(objective))}"
            )
        for draft in results:
            measure = f"measure: {draft.measure} ({draft.unit})" if draft.measure else "no measure named"
            console.print(
                f"  [bold]{draft.id}[/bold] {safe(draft_title(draft.title))}{safe(_adopted(draft))}\n"
                f"    {measure}; {_value(draft.value)}, {draft.share:.0%} of the open portfolio's; "
                f"{len(draft.members)} milestones"
            )
            for ref in draft.members:
                key, title, team, value = _member(view, ref)
                shown = f"{title} [{key}]" if key else title
                console.print(f"      {safe(shown)}  ({safe(team or 'no team')}, {_value(value)})")
            for reason in draft.reasons:
                console.print(f"    [dim]why: {safe(reason)}[/dim]")


def render_drafts_section(view: DraftView, console: Console) -> None:
    """The drafts as a section of `bridge report`."""
    console.print()
    console.print(
        "[bold underline]Drafted key results[/bold underline]  [dim]from planned milestones, "
        "not yet written anywhere; `bridge okr draft` refreshes them[/dim]"
    )
    render_drafts(view, console)


def with_drafts(report_json: str, view: DraftView) -> str:
    """The report's JSON document (`Report.to_json`: indented by two) with the stored drafts under
    `okr_drafts`, added last.

    The drafts are written in before the document's closing brace, as `json.dumps(..., indent=2)` of the
    whole would place them (a JSON string holds no raw line break, so indenting by lines is safe): the
    same text, without decoding and encoding the megabytes of a large report again."""
    return with_section(report_json, "okr_drafts", drafts_json(view))


def drafts_json(view: DraftView) -> dict[str, Any]:
    def members(draft: StoredDraft) -> list[dict[str, Any]]:
        found = []
        for ref in draft.members:
            key, title, team, value = _member(view, ref)
            found.append({"milestone": ref, "key": key, "title": title, "team": team, "value": value})
        return found

    def common(draft: StoredDraft) -> dict[str, Any]:
        return {
            "id": draft.id,
            "title": draft_title(draft.title),
            "value": draft.value,
            "share": round(draft.share, 4),
            "reasons": list(draft.reasons),
            "first_drafted": draft.created_at.isoformat(),
            "adopted_as": draft.adopted_as,
        }

    return {
        "objectives": [{**common(o), "key_results": list(o.members)} for o in view.objectives],
        "key_results": [
            {
                **common(k),
                "measure": k.measure,
                "unit": k.unit,
                "objective": k.parent_id,
                "terms": list(k.terms),
                "members": members(k),
            }
            for k in sorted(view.key_results.values(), key=lambda d: d.position)
        ],
    }


def drafts_html(view: DraftView) -> str:
    """The drafts' section body for the HTML report: one table per drafted objective."""
    if not view.drafts:
        return '<p class="no-data">No drafts stored: run <code>bridge okr draft</code>.</p>'
    parts = [
        "<p>Key results drafted from planned milestones that aim at the same outcome; nothing is written "
        "to a tracker until one is adopted (<code>bridge okr adopt</code>). <em>N</em> stands for the "
        "target still to be set.</p>"
    ]
    for objective, results in _ordered_key_results(view):
        if objective is not None:
            parts.append(
                f"<h3>{escape(objective.title)} <small>({escape(objective.id)}, {_value(objective.value)}, "
                f"{objective.share:.0%} of the open portfolio's){escape(_adopted(objective))}</small></h3>"
            )
        parts.append(
            '<table><tr><th>draft</th><th>key result</th><th class="num">value</th>'
            '<th class="num">share</th><th>milestones</th><th>why</th></tr>'
        )
        for draft in results:
            members = "<br>".join(
                escape(f"{f'{title} [{key}]' if key else title} ({team or 'no team'}, {_value(value)})")
                for key, title, team, value in (_member(view, ref) for ref in draft.members)
            )
            parts.append(
                f"<tr><td><code>{escape(draft.id)}</code></td><td>{escape(draft_title(draft.title))}"
                f"{escape(_adopted(draft))}<br><small>{escape(draft.measure or 'no measure named')}"
                f"</small></td><td class='num'>{draft.value:g}</td><td class='num'>{draft.share:.0%}</td>"
                f"<td>{members}</td><td>{'<br>'.join(escape(r) for r in draft.reasons)}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)
