"""The report in a terminal: rich tables and a tree, one section for each part of the analysis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from bridge.analytics import Report
from bridge.analytics.bottlenecks import AgeingItem, Distribution, Verdict, WorkTypeStats
from bridge.analytics.coherence import ITEM_WARNING_TITLES, item_warning_groups
from bridge.analytics.okr import KeyResultProgress
from bridge.domain import display_name
from bridge.text import plural
from bridge.text import terminal_markup as safe

_DONE = "[green]done[/green]"


def render(
    report: Report,
    console: Console,
    *,
    team: str | None = None,
    percentile: float = 85.0,
    after_forecasts: Callable[[Console], None] | None = None,
) -> None:
    """Print every section of `report`; sections with nothing to show say so in one line.

    `percentile` is the configured one, which the cycle-time and forecast columns are named after;
    `after_forecasts` prints what belongs beside the forecasts (how they moved, the milestones reached),
    before the warnings.
    """
    scope = f" for team {team}" if team else ""
    console.print(f"[bold]Milestone Bridge report{safe(scope)}[/bold], as of {_day(report.now)}")
    pct = f"{percentile:g}"
    sections: list[Callable[[Report, Console, str], None]] = [
        _milestones, _okrs, _work_types, _bottlenecks, _time_in_status, _forecasts, _warnings,
    ]  # fmt: skip
    for section in sections:
        console.print()
        section(report, console, pct)
        if section is _forecasts and after_forecasts is not None:
            after_forecasts(console)


def _heading(console: Console, title: str, hint: str = "") -> None:
    console.print(
        f"[bold underline]{title}[/bold underline]" + (f"  [dim]{safe(hint)}[/dim]" if hint else "")
    )


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(show_edge=False, pad_edge=False, header_style="bold", expand=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return table


def _milestones(report: Report, console: Console, pct: str) -> None:
    _heading(console, "Milestones by value", "open milestones, most valuable first; their tasks follow them")
    if not report.milestones:
        console.print("no open milestones")
        return
    table = _table("rank", "milestone", "team", "score", "key results", "why", right=("rank", "score"))
    for rank in report.milestones:
        linked = report.links.get(rank.milestone, {})
        results = "; ".join(
            f"{report.key_result_title(kr)} (linked by {origin})"
            for kr, origin in sorted(linked.items(), key=str)
        )
        table.add_row(
            str(rank.rank),
            safe(display_name(rank.key, rank.title)),
            safe(rank.team),
            _number(rank.score) if rank.flag is None else "[yellow]none[/yellow]",
            safe(results) or "[yellow]none[/yellow]",
            safe(rank.explanation),
        )
    console.print(table)


def _okrs(report: Report, console: Console, pct: str) -> None:
    _heading(console, "Objectives and key results", "progress from linked milestones unless a metric is set")
    if not report.okrs:
        console.print("no objectives: add [[okrs.objectives]] to the config, or pull a tracker's goals")
    tree = Tree("OKRs", hide_root=True)
    for objective in report.okrs:
        # "title: 35%": a title's own figures ("from 61% to 70%") stay apart from the progress
        branch = tree.add(f"[bold]{safe(objective.title)}[/bold]: {_percent(objective.progress)}")
        for kr in objective.key_results:
            leaf = branch.add(f"{safe(kr.title)}: {_percent(kr.progress)}  [dim]{safe(kr.explanation)}[/dim]")
            leaf.add(_kr_status(kr))
            for m in kr.milestones:
                state = _DONE if m.done else "open"
                if not m.done and m.tasks_total:
                    state += f", {m.tasks_done} of {plural(m.tasks_total, 'task')} done"
                leaf.add(f"{safe(display_name(m.key, m.title))}  [dim]linked by {m.origin}[/dim]  {state}")
    if report.okrs:
        console.print(tree)
    if report.suggestions:
        milestones = len({s.milestone for s in report.suggestions})
        console.print(
            f"{plural(len(report.suggestions), 'suggested link')} for {plural(milestones, 'milestone')} "
            "without a key result: see `bridge okr suggest`, then `bridge okr confirm MILESTONE KR`"
        )


_STATUS_STYLE = {"on_track": "green", "met": "green", "at_risk": "yellow", "off_track": "red"}


def _kr_status(kr: KeyResultProgress) -> str:
    """A key result's status line: the status (or why it has none) and the reason naming what decides it."""
    if kr.status is None:
        return f"[dim]no status: {safe(kr.status_reason)}[/dim]"
    style = _STATUS_STYLE.get(kr.status.value, "")
    # the period's end, unless the reason says it already ("... before the period ends 2026-12-31")
    end = kr.period_end.isoformat() if kr.period_end is not None else None
    ends = f" (period ends {end})" if end is not None and end not in kr.status_reason else ""
    return f"[{style}]{kr.status.words}[/{style}]{ends}: {safe(kr.status_reason)}"


def _work_types(report: Report, console: Console, pct: str) -> None:
    _heading(console, "Work types", "cycle time: first start to last done; active time leaves waiting out")
    if not report.work_types:
        console.print("no finished or started work in the window")
        return
    verdicts = {(v.team, v.work_type): v for v in report.bottlenecks}
    table = _table(
        "team", "work type", "finished", "in progress", "cycle median", f"cycle p{pct}", "active median",
        "ageing", "bottleneck",
        right=("finished", "in progress", "cycle median", f"cycle p{pct}", "active median", "ageing"),
    )  # fmt: skip
    for stats in report.work_types:
        verdict = verdicts.get((stats.team, stats.work_type or ""))
        table.add_row(
            safe(stats.team),
            safe(stats.work_type or "(none)"),
            str(stats.finished),
            str(stats.in_progress),
            _days(stats.cycle_time, median=True),
            _days(stats.cycle_time, median=False),
            _days(stats.active_time, median=True),
            str(len(stats.ageing)) if stats.ageing else "",
            _verdict_cell(verdict),
        )
    console.print(table)
    ageing = [(s, a) for s in report.work_types for a in s.ageing]
    if ageing:
        console.print(f"{plural(len(ageing), 'item')} in progress longer than is usual for their type:")
        for stats, item in ageing[:10]:
            console.print(f"  {safe(_ageing_line(stats, item, pct))}")
        if len(ageing) > 10:
            console.print(f"  ... and {len(ageing) - 10} more (see --json)")


def _ageing_line(stats: WorkTypeStats, item: AgeingItem, pct: str) -> str:
    where = f", now in status {item.status}" if item.status else ""
    return (
        f"{item.name or item.key} ({stats.team}, {stats.work_type or '(none)'}{where}): "
        f"{item.age_days:.1f} d in flight, usual limit {item.limit_days:.1f} d "
        f"(the {item.basis}'s p{pct} cycle time)"
    )


def _verdict_cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return ""
    if verdict.bottleneck:
        return "[bold red]yes[/bold red]"
    return "no"


def _bottlenecks(report: Report, console: Console, pct: str) -> None:
    _heading(
        console,
        "Bottlenecks",
        "work types reliably slower than the rest of their team's work that hold up later work",
    )
    found = sorted((v for v in report.bottlenecks if v.bottleneck), key=lambda v: (-v.weight, v.team))
    for verdict in (v for v in report.bottlenecks if v.status == "slow"):
        console.print(
            f"[yellow]{safe(verdict.team)} / {safe(verdict.work_type)}[/yellow]: {safe(verdict.reason)}"
        )
    if not found:
        judged = len(report.bottlenecks)
        console.print(f"none found ({judged} team work types judged)")
        return
    for verdict in found:
        console.print(
            f"[bold red]{safe(verdict.team)} / {safe(verdict.work_type)}[/bold red]: {safe(verdict.reason)}"
        )
        for line in verdict.evidence:
            console.print(f"  - {safe(line)}")


def _time_in_status(report: Report, console: Console, pct: str) -> None:
    _heading(
        console,
        "Time in status",
        "where work in flight spent its time in the window; item-days add up each item's days",
    )
    if not report.time_in_status:
        console.print("no work in flight in the window")
        return
    table = _table(
        "team", "status", "category", "item-days", "items", "share", right=("item-days", "items", "share")
    )
    for row in report.time_in_status:
        table.add_row(
            safe(row.team),
            safe(row.status),
            row.category.label,
            f"{row.days:.1f}",
            str(row.items),
            _percent(row.share),
        )
    console.print(table)


def _forecasts(report: Report, console: Console, pct: str) -> None:
    _heading(console, "Forecasts", "Monte Carlo over each team's daily throughput, milestones in rank order")
    if not report.forecasts:
        console.print("no open milestones to forecast")
        return
    table = _table(
        "milestone", "team", "due", "open tasks", "P50", f"P{pct}", "chance by due", "at risk",
        right=("open tasks", "chance by due"),
    )  # fmt: skip
    for found in report.forecasts:
        table.add_row(
            safe(found.name or found.key),
            safe(found.team),
            _day(found.due),
            str(found.remaining),
            _day(found.p50),
            _day(found.high),
            _percent(found.chance_by_due),
            "[bold red]yes[/bold red]" if found.at_risk else "",
        )
    console.print(table)
    unknown = [f for f in report.forecasts if f.p50 is None]
    if unknown:
        console.print(
            f"{len(unknown)} without a date, such as {safe(unknown[0].name or unknown[0].key)}: "
            f"{safe(unknown[0].explanation)}"
        )
    at_risk = sum(1 for f in report.forecasts if f.at_risk)
    if at_risk:
        console.print(f"{at_risk} of {len(report.forecasts)} milestones at risk of missing their due date")


def _warnings(report: Report, console: Console, pct: str) -> None:
    _heading(console, "Warnings")
    if not report.warnings and not report.item_warnings:
        console.print("none: every open milestone moves a key result and every open task has a milestone")
        return
    for warning in report.warnings:
        items = ", ".join(warning.items[:12]) + (" ..." if len(warning.items) > 12 else "")
        console.print(f"[yellow]![/yellow] {safe(warning.message)}: {safe(items)}")
    for kind, found in item_warning_groups(report.item_warnings):
        label = report.warning_labels.get(kind)
        where = f", labelled {label} in their trackers" if label else ""
        console.print(f"[yellow]![/yellow] {safe(ITEM_WARNING_TITLES[kind])}{safe(where)}:")
        for item in found[:12]:
            console.print(f"  {safe(item.name)} ({safe(item.team)}): {safe(item.reason)}")
        if len(found) > 12:
            console.print(f"  ... and {len(found) - 12} more (see --json)")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _days(found: Distribution | None, *, median: bool) -> str:
    if found is None:
        return ""
    return f"{found.median_days if median else found.percentile_days:.1f} d"


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "-"
