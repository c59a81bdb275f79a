"""What `bridge report` and `bridge okr ...` do, from the store alone: no tracker is contacted."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from bridge.analytics import Report, Snapshot, analyse
from bridge.analytics.okr import Catalogue, Suggestion, catalogue, effective_links, suggest_for_unlinked
from bridge.config import CONFIG_SOURCE, BridgeConfig
from bridge.domain import LinkOrigin, Milestone, Ref, StatusCategory, display_name
from bridge.errors import UserError
from bridge.report.drafts import DraftView, drafts_html, load_view, render_drafts_section, with_drafts
from bridge.report.forecast_moves import Moves, load_moves, moves_html, render_moves_section, with_moves
from bridge.report.html import page_data, render_html
from bridge.report.reached import (
    ReachedMilestone,
    load_reached,
    reached_html,
    render_reached_section,
    with_reached,
)
from bridge.report.teams import for_team, milestone_team_map, team_names
from bridge.report.terminal import render
from bridge.shared_analysis import shared_analysis, stored_document
from bridge.store import Store, redact_url
from bridge.store.okr_links import (
    confirm_link,
    find_milestones,
    store_suggestions,
    stored_key_result,
    stored_key_result_ids,
)
from bridge.store.snapshot import (
    is_empty,
    read_key_results,
    read_links,
    read_milestones,
    read_objectives,
)
from bridge.text import json_terminal_safe, plural, terminal_safe
from bridge.text import terminal_markup as safe


def _console(out: TextIO) -> Console:
    # Piped output keeps wide tables readable instead of folding them to 80 columns.
    return Console(file=out, highlight=False, soft_wrap=False, width=None if out.isatty() else 160)


def _empty_message(store: Store) -> str:
    return (
        f"the store at {redact_url(store.url)} holds no milestones or tasks yet: "
        "run `bridge pull` first to bring the trackers' work in"
    )


# --- bridge report -----------------------------------------------------------------------------------


def report_command(
    cfg: BridgeConfig,
    *,
    now: datetime,
    as_json: bool,
    team: str | None,
    out: TextIO | None = None,
    html: Path | None = None,
) -> None:
    """Print the report (tables, or JSON with `as_json`); with `html`, also write it as an HTML page there
    and print the path written (to stderr when stdout carries the JSON)."""
    out = out or sys.stdout
    settings = cfg.analytics
    flow = as_json or html is not None
    document: str | None = None
    made: str | None = None
    store = Store.open(cfg, upgrade=False)  # a report never creates or migrates the store it reads
    try:
        empty = is_empty(store)
        if empty:
            # --json still prints the (empty) document, so scripts read the same shape
            (sys.stderr if as_json or html is not None else out).write(_empty_message(store) + "\n")
            if not as_json and html is None:
                return
            snapshot = Snapshot()
            report = analyse(snapshot, cfg, now, flow=flow)
        else:
            document = stored_document(store, cfg, now) if as_json and team is None and html is None else None
            if document is None:
                # an unchanged store answers from the stored analysis; the contents are read only for
                # what needs them (a team's view, the HTML page)
                analysed = shared_analysis(store, cfg, now, flow=flow)
                report = analysed.report
                made = analysed.document if team is None else None
                snapshot = analysed.snapshot if team is not None or html is not None else Snapshot()
        drafts = load_view(store)
        if team is not None:
            report = for_team(report, _known_team(report, team), milestone_team_map(snapshot))
        moves = load_moves(store, now, None if team is None else {f.milestone for f in report.forecasts})
        # (the stored document is read only for the whole organisation: no report is needed then)
        reached = (
            load_reached(store, cfg, now) if team is None else _team_reached(store, cfg, now, report, team)
        )
    finally:
        store.close()
    if document is not None:  # an unchanged store's JSON, printed as it was made
        out.write(
            json_terminal_safe(with_reached(with_moves(with_drafts(document, drafts), moves), reached)) + "\n"
        )
        return
    if html is not None:
        stored = (drafts, moves, reached)
        page = _html_page(cfg, store, snapshot, report, now=now, team=team, empty=empty, stored=stored)
        written = _write_page(html, page)
        (sys.stderr if as_json else out).write(f"{written}\n")
        if not as_json:
            return
    if as_json:
        text = made if made is not None else report.to_json()  # the new analysis's, stored with it
        document = with_moves(with_drafts(text, drafts), moves)
        out.write(json_terminal_safe(with_reached(document, reached)) + "\n")
    else:
        console = _console(out)

        def beside_forecasts(console: Console) -> None:
            render_moves_section(moves, console)
            render_reached_section(reached, console)

        render(report, console, team=team, percentile=settings.percentile, after_forecasts=beside_forecasts)
        render_drafts_section(drafts, console)


def html_report(cfg: BridgeConfig, store: Store, *, now: datetime, team: str | None = None) -> str:
    """The HTML report of the store's contents at `now` (the daemon's `/report.html`); an empty store
    gives the page with its "no data" notes and a line saying to pull first."""
    empty = is_empty(store)
    if empty:
        snapshot = Snapshot()
        report = analyse(snapshot, cfg, now, flow=True)
    else:
        analysed = shared_analysis(store, cfg, now, flow=True)
        snapshot, report = analysed.snapshot, analysed.report
    if team is not None:
        report = for_team(report, _known_team(report, team), milestone_team_map(snapshot))
    drafts = load_view(store)
    moves = load_moves(store, now, None if team is None else {f.milestone for f in report.forecasts})
    reached = load_reached(store, cfg, now) if team is None else _team_reached(store, cfg, now, report, team)
    stored = (drafts, moves, reached)
    return _html_page(cfg, store, snapshot, report, now=now, team=team, empty=empty, stored=stored)


def _team_reached(
    store: Store, cfg: BridgeConfig, now: datetime, report: Report, team: str
) -> list[ReachedMilestone]:
    """The milestones of `team` reached lately (its milestones as the report ranks them)."""
    found = load_reached(store, cfg, now)
    mine = {r.milestone for r in report.milestones} | {f.milestone for f in report.forecasts}
    return [row for row in found if row.milestone in mine]


def _html_page(
    cfg: BridgeConfig,
    store: Store,
    snapshot: Snapshot,
    report: Report,
    *,
    now: datetime,
    team: str | None,
    empty: bool,
    stored: tuple[DraftView, Moves, list[ReachedMilestone]],
) -> str:
    """The HTML page; `stored` are the stored OKR drafts, the forecasts' recent moves and the milestones
    reached lately."""
    okr_drafts, moves, reached = stored
    return render_html(
        report,
        page_data(snapshot, cfg, now),
        generated=now,
        store_url=store.url,
        team=team,
        percentile=cfg.analytics.percentile,
        strategy=cfg.analytics.rank_strategy,
        notice=_empty_message(store) if empty else None,
        extra=[
            ("forecast-history", "How the forecasts moved", moves_html(moves)),
            ("milestones-reached", "Milestones reached", reached_html(reached)),
            ("okr-drafts", "Drafted key results", drafts_html(okr_drafts)),
        ],
    )


def _write_page(path: Path, page: str) -> Path:
    """Write the page beside its final name, then move it there, so a reader never sees half a page."""
    target = path.expanduser()
    if target.is_dir():
        raise UserError(f"--html {path}: is a directory; give a file name such as {path / 'report.html'}")
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UserError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from exc
    return target


def _known_team(report: Report, team: str) -> str:
    names = team_names(report)
    if team in names:
        return team
    folded = [name for name in names if name.casefold() == team.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise UserError(f"no team named {team!r} in the store; teams: {', '.join(names) or 'none'}")


# --- bridge okr suggest ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Okrs:
    milestones: dict[Ref, Milestone]
    catalogue: Catalogue


def suggest_command(cfg: BridgeConfig, *, now: datetime, as_json: bool, out: TextIO | None = None) -> None:
    """List and store suggestions for the open milestones without a key result."""
    out = out or sys.stdout
    store = Store.open(cfg, create=False)
    try:
        with store.read() as conn:
            milestones = read_milestones(conn)
            okrs = catalogue(read_objectives(conn), read_key_results(conn), cfg.okrs)
            links = effective_links(read_links(conn))
        found = suggest_for_unlinked(milestones, links, okrs, min_score=cfg.analytics.suggest_min_score)
        with store.write() as conn:
            stored = store_suggestions(conn, ((s.milestone, s.key_result, s.score) for s in found), now=now)
        empty = not milestones and is_empty(store)
    finally:
        store.close()
    by_ref = _Okrs({Ref(m.source, m.remote_id): m for m in milestones}, okrs)
    if as_json:
        document = {
            "suggestions": [_suggestion(s, by_ref) for s in found],
            "stored": {"added": stored.added, "removed": stored.removed},
        }
        out.write(json_terminal_safe(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
        return
    console = _console(out)
    if empty:
        console.print(safe(_empty_message(store)))
        return
    if not okrs.key_results:
        console.print(
            "no key results to suggest: add [[okrs.objectives]] to the config, or pull a tracker's goals"
        )
        return
    unlinked = sum(1 for m in milestones if _open_and_unlinked(m, links))
    if not found:
        console.print(
            f"no suggestions: {plural(unlinked, 'open milestone')} without a key result, none scoring at "
            f"least {cfg.analytics.suggest_min_score:g} (analytics.suggest_min_score)"
        )
    else:
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for column in ("milestone", "title", "key result", "score", "shared terms"):
            table.add_column(column, justify="right" if column == "score" else "left", overflow="fold")
        for s in found:
            milestone = by_ref.milestones[s.milestone]
            kr = okrs.key_results.get(s.key_result)
            table.add_row(
                safe(_milestone_name(milestone, by_ref)),
                safe(milestone.title),
                safe(
                    f"{kr.title} ({key_result_name(s.key_result)})" if kr else key_result_name(s.key_result)
                ),
                f"{s.score:.2f}",
                safe(", ".join(s.shared_terms)),
            )
        console.print(table)
    console.print(
        f"{plural(len(found), 'suggestion')} for {len({s.milestone for s in found})} of "
        f"{plural(unlinked, 'open milestone')} "
        f"without a key result; stored as suggested ({stored.added} new or changed, {stored.removed} "
        "withdrawn). Confirm one with `bridge okr confirm MILESTONE KR`."
    )


def _open_and_unlinked(milestone: Milestone, links: dict[Ref, dict[Ref, LinkOrigin]]) -> bool:
    return milestone.category is not StatusCategory.DONE and not links.get(
        Ref(milestone.source, milestone.remote_id)
    )


def key_result_name(ref: Ref) -> str:
    """How a user names a key result: its config id, or `source:remote_id` for a tracker's."""
    return ref.remote_id if ref.source == CONFIG_SOURCE else str(ref)


def _milestone_name(milestone: Milestone, okrs: _Okrs) -> str:
    """The milestone's key, or `source:remote_id` when another tracker uses the same key."""
    same_key = sum(1 for m in okrs.milestones.values() if m.key == milestone.key)
    return milestone.key if same_key == 1 else f"{milestone.source}:{milestone.remote_id}"


def _suggestion(s: Suggestion, okrs: _Okrs) -> dict[str, Any]:
    milestone = okrs.milestones[s.milestone]
    kr = okrs.catalogue.key_results.get(s.key_result)
    return {
        "milestone": str(s.milestone),
        "milestone_key": milestone.key,
        "milestone_title": milestone.title,
        "key_result": str(s.key_result),
        "key_result_title": kr.title if kr else None,
        "score": round(s.score, 3),
        "shared_terms": list(s.shared_terms),
    }


# --- bridge okr confirm ------------------------------------------------------------------------------


def confirm_command(
    cfg: BridgeConfig,
    milestone_name: str,
    kr_name: str,
    *,
    now: datetime,
    out: TextIO | None = None,
    as_json: bool = False,
) -> None:
    """Link a milestone to a key result with origin `confirmed`; unknown names are user errors."""
    out = out or sys.stdout
    store = Store.open(cfg, create=False)
    try:
        with store.read() as conn:
            problems = []
            milestone: Milestone | None = None
            try:
                milestone = _one_milestone(find_milestones(conn, milestone_name), milestone_name)
            except UserError as exc:
                problems.append(str(exc))
            key_result, kr_title = _find_key_result(conn, cfg, kr_name, problems)
        if problems or milestone is None or key_result is None:
            raise UserError("; ".join(problems))
        ref = Ref(milestone.source, milestone.remote_id)
        with store.write() as conn:
            before = confirm_link(conn, ref, key_result, now=now)
    finally:
        store.close()
    if as_json:
        document = {
            "milestone": milestone.key,
            "milestone_ref": str(ref),
            "key_result": key_result_name(key_result),
            "key_result_title": kr_title,
            "before": None if before is None else str(before),
        }
        out.write(json_terminal_safe(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
        return
    name = display_name(milestone.key, milestone.title)
    what = terminal_safe(f"{name} ({ref}) -> {kr_title} ({key_result_name(key_result)})")
    if before is LinkOrigin.CONFIRMED:
        out.write(f"{what}: already confirmed\n")
    elif before is None:
        out.write(f"{what}: confirmed\n")
    else:
        out.write(f"{what}: confirmed (was {before})\n")


def _one_milestone(found: list[Milestone], name: str) -> Milestone:
    if not found:
        raise UserError(
            f"no milestone {name!r} in the store: give its key (as in the report) or source:remote_id"
        )
    if len(found) > 1:
        choices = ", ".join(f"{m.source}:{m.remote_id}" for m in found)
        raise UserError(f"milestone key {name!r} is used by {len(found)} trackers; name one of {choices}")
    return found[0]


def _find_key_result(conn: Any, cfg: BridgeConfig, name: str, problems: list[str]) -> tuple[Ref | None, str]:
    config_titles = {kr.id: kr.title for o in cfg.okrs.objectives for kr in o.key_results}
    source, _, remote_id = name.rpartition(":")
    if source in ("", CONFIG_SOURCE) and remote_id in config_titles:
        return Ref(CONFIG_SOURCE, remote_id), config_titles[remote_id]
    if source and source != CONFIG_SOURCE:
        title = stored_key_result(conn, Ref(source, remote_id))
        if title is not None:
            return Ref(source, remote_id), title
    known = [*config_titles, *(str(ref) for ref in stored_key_result_ids(conn))]
    problems.append(
        f"no key result {name!r} in the config's [okrs] or in the store; known: {', '.join(known) or 'none'}"
    )
    return None, ""
