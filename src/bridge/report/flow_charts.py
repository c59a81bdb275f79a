"""The HTML report's flow charts, per team: cycle-time scatter with its 50/85/95th percentile lines,
cumulative flow by category, weekly throughput, ageing work in progress by status against each work
type's percentile lines, and how many items are likely finished by each of the next weeks.

Each chart is an `<svg class="chart" id="chart-flow-<kind>-<n>" data-team="...">` (n numbers the teams
in name order) inside a `<figure>` whose caption says what it shows; a chart without data is a "no data"
note. Labels are laid out so that none overlaps another: legends flow left to right and wrap, axis labels
are spaced by their width, and every tracker text is cut to its room and escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from bridge.analytics.flow import (
    HOW_MANY_CHANCES,
    LINES,
    SCATTER_BANDS,
    SCATTER_DOTS,
    FinishedPoint,
    Percentiles,
    TeamFlow,
    TypeLines,
)
from bridge.domain import StatusCategory, display_name
from bridge.report.svg import (
    CHAR,
    cut,
    date_ticks,
    el,
    figure,
    fmt,
    line,
    nice_step,
    no_data,
    rect,
    svg,
    text,
)
from bridge.text import html_escape as escape

FLOW_KINDS = ("scatter", "cfd", "throughput", "ageing", "how-many")
"""The charts drawn for every team, in page order."""
HALF = 470
"""Width of the charts that sit two to a row; the ageing chart takes the whole row (`FULL`)."""
FULL = 960
LEFT, RIGHT, BOTTOM = 48, 14, 34
PLOT_HEIGHT = 190
LEGEND_ROW = 18
SMALL = 11
MUTED = "#5b6372"
GRID = "#e3e6eb"
LINE_STYLES = {50.0: "", 85.0: "6 3", 95.0: "2 3"}
"""Dash patterns of the percentile lines."""
CATEGORY_COLOURS = {
    StatusCategory.TODO: "#b3bac6",
    StatusCategory.IN_PROGRESS: "#2f6fde",
    StatusCategory.WAITING: "#e0892b",
    StatusCategory.DONE: "#3f9b62",
}
CATEGORY_NAMES = {
    StatusCategory.TODO: "to do",
    StatusCategory.IN_PROGRESS: "in progress",
    StatusCategory.WAITING: "waiting",
    StatusCategory.DONE: "done",
}
TYPE_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#9c755f", "#edc948")
_DAY = timedelta(days=1)

Labeller = Callable[[str], str]
"""Turns a raw status into the name to show."""


def flow_section(flows: Sequence[TeamFlow], status_name: Labeller | None = None) -> str:
    """Every team's flow charts, one block per team."""
    if not flows:
        return no_data("chart-flow-scatter-1", "no work in the store yet.")
    name = status_name or (lambda status: status)
    blocks = []
    for number, flow in enumerate(flows, start=1):
        charts = [
            _scatter(flow, number),
            _cfd(flow, number),
            _throughput(flow, number),
            _how_many(flow, number),
            _ageing(flow, number, name),
        ]
        blocks.append(
            f'<div class="flow-team" data-team="{escape(flow.team, quote=True)}">'
            f"<h3>{escape(flow.team)}</h3>"
            f'<div class="flow-grid">{"".join(charts)}</div></div>'
        )
    return "".join(blocks)


def chart_id(kind: str, number: int) -> str:
    return f"chart-flow-{kind}-{number}"


def _chart(kind: str, flow: TeamFlow, number: int, height: float, title: str, body: Iterable[str]) -> str:
    width = FULL if kind == "ageing" else HALF
    drawn = svg(chart_id(kind, number), height, f"{title} — {flow.team}", body, width=width)
    return drawn.replace("<svg ", f'<svg data-team="{escape(flow.team, quote=True)}" ', 1)


def _wide(html: str) -> str:
    return f'<div class="flow-wide">{html}</div>'


# --- shared drawing ----------------------------------------------------------------------------------


def _legend(items: Sequence[tuple[str, str]], width: float, y: float = 14) -> tuple[list[str], float]:
    """A legend of (swatch, label) pairs flowing left to right and wrapping; a swatch is a colour or a
    `dash:<pattern>` line. Returns the parts and the y below it."""
    parts = []
    x: float = LEFT
    for swatch, label in items:
        room = 22 + len(label) * CHAR * 0.92 + 14
        if x + room > width - RIGHT and x > LEFT:
            x, y = LEFT, y + LEGEND_ROW
        if swatch.startswith("dash:"):
            dash = swatch[5:] or None
            parts.append(
                line(x, y - 4, x + 16, y - 4, stroke="#1d2330", stroke_width="1.5", stroke_dasharray=dash)
            )
        else:
            parts.append(rect(x, y - 9, 14, 10, fill=swatch, rx=2))
        parts.append(text(x + 20, y, label, fill=MUTED, font_size=str(SMALL), class_="legend"))
        x += room
    return parts, y + 12


def _y_axis(top: float, height: float, high: float, width: float, unit: str) -> tuple[list[str], float]:
    """Grid lines and labels from 0 to a round maximum at least `high`; returns them and the scale."""
    step = nice_step(max(high, 1.0))
    top_value = step * max(1, math.ceil(high / step))
    scale = height / top_value
    parts = []
    value = 0.0
    while value <= top_value + 1e-9:
        y = top + height - value * scale
        parts.append(line(LEFT, y, width - RIGHT, y, stroke=GRID))
        parts.append(text(LEFT - 6, y + 4, f"{value:g}", fill=MUTED, font_size=str(SMALL), text_anchor="end"))
        value += step
    parts.append(
        text(
            12,
            top + height / 2,
            unit,
            fill=MUTED,
            font_size=str(SMALL),
            text_anchor="middle",
            transform=f"rotate(-90 12 {fmt(top + height / 2)})",
        )
    )
    return parts, scale


def _time_axis(
    start: datetime, end: datetime, top: float, height: float, width: float
) -> tuple[list[str], Callable[[datetime], float]]:
    span = max((end - start).total_seconds(), 1.0)
    plot = width - LEFT - RIGHT

    def sx(at: datetime) -> float:
        return LEFT + (at - start).total_seconds() / span * plot

    parts = [line(LEFT, top + height, width - RIGHT, top + height, stroke="#aab1bd")]
    last = -math.inf
    for at, label in date_ticks(start, end):
        x = sx(at)
        half = len(label) * CHAR / 2
        if x - half < last + 8 or x + half > width or x - half < LEFT - 20:
            continue  # leave out a label that would touch its neighbour or the edge
        parts.append(line(x, top + height, x, top + height + 4, stroke="#aab1bd"))
        parts.append(
            text(x, top + height + 16, label, fill=MUTED, font_size=str(SMALL), text_anchor="middle")
        )
        last = x + half
    return parts, sx


def _percentile_lines(
    found: Percentiles | None, x1: float, x2: float, top: float, scale: float, colour: str = "#1d2330"
) -> list[str]:
    if found is None:
        return []
    parts = []
    for pct, value in zip(LINES, found.days, strict=True):
        y = top - value * scale
        parts.append(
            line(
                x1,
                y,
                x2,
                y,
                stroke=colour,
                stroke_width="1.5",
                stroke_dasharray=LINE_STYLES[pct] or None,
                class_=f"p{pct:g}",
            )
        )
    return parts


def _line_legend(found: Percentiles | None) -> list[tuple[str, str]]:
    if found is None:
        return []
    return [(f"dash:{LINE_STYLES[p]}", f"{p:g}th {d:.1f} d") for p, d in zip(LINES, found.days, strict=True)]


def _item(key: str, title: str) -> str:
    return display_name(key, title)


# --- cycle-time scatter ----------------------------------------------------------------------------


def _scatter(flow: TeamFlow, number: int) -> str:
    if not flow.finished or flow.cycle is None:
        return no_data(chart_id("scatter", number), f"{flow.team} finished nothing in the window.")
    legend, top = _legend(_line_legend(flow.cycle), HALF)
    start = flow.cumulative[0].day - _DAY if flow.cumulative else flow.finished[0].finished
    high = max(max(p.cycle_days for p in flow.finished), flow.cycle.days[-1]) * 1.05
    grid, scale = _y_axis(top, PLOT_HEIGHT, high, HALF, "cycle time (days)")
    axis, sx = _time_axis(
        start,
        flow.throughput[-1].end if flow.throughput else flow.finished[-1].finished,
        top,
        PLOT_HEIGHT,
        HALF,
    )
    base = top + PLOT_HEIGHT
    dots = [
        el(
            "circle",
            _dot_tip(p),
            cx=sx(p.finished),
            cy=base - p.cycle_days * scale,
            r="3",
            fill="#4e79a7",
            fill_opacity="0.7",
            class_="dot",
        )
        for p in flow.finished
    ]
    lines = _percentile_lines(flow.cycle, LEFT, HALF - RIGHT, base, scale)
    body = [*legend, *grid, *axis, *dots, *lines]
    caption = (
        f"Each dot is a task of team {escape(flow.team)} finished in the window, at its finish date and "
        "cycle time; "
        f"the lines are the 50th, 85th and 95th percentiles of the {flow.cycle.count} cycle times "
        f"(85 % of tasks finished within {flow.cycle.days[1]:.1f} d)."
    )
    if any(p.tasks > 1 for p in flow.finished):
        caption += (
            f" With more than {SCATTER_DOTS:,} tasks, the tasks finished on the same day within "
            f"{100 / SCATTER_BANDS:g} % of the longest cycle time of each other share one dot, "
            "at the slowest of them."
        )
    return figure(_chart("scatter", flow, number, base + BOTTOM, "Cycle-time scatter", body), caption)


def _dot_tip(point: FinishedPoint) -> str:
    tip = f"{_item(point.key, point.title)}: {point.cycle_days:.1f} d, finished {point.finished:%Y-%m-%d}"
    if point.tasks > 1:
        tip += f", the slowest of {point.tasks} tasks finished that day at about that cycle time"
    return tip


# --- cumulative flow -----------------------------------------------------------------------------------


def _cfd(flow: TeamFlow, number: int) -> str:
    days = flow.cumulative
    if not days or not any(sum(d.counts) for d in days):
        return no_data(chart_id("cfd", number), f"{flow.team} has no items in the window.")
    order = [StatusCategory.DONE, StatusCategory.WAITING, StatusCategory.IN_PROGRESS, StatusCategory.TODO]
    index = {category: i for i, category in enumerate(StatusCategory)}
    legend, top = _legend([(CATEGORY_COLOURS[c], CATEGORY_NAMES[c]) for c in reversed(order)], HALF)
    high = max(sum(d.counts) for d in days)
    grid, scale = _y_axis(top, PLOT_HEIGHT, high, HALF, "items")
    axis, sx = _time_axis(days[0].day, days[-1].day, top, PLOT_HEIGHT, HALF)
    base = top + PLOT_HEIGHT
    bands = []
    below = [0] * len(days)
    for category in order:
        above = [b + d.counts[index[category]] for b, d in zip(below, days, strict=True)]
        upper = [f"{fmt(sx(d.day))},{fmt(base - a * scale)}" for d, a in zip(days, above, strict=True)]
        lower = [f"{fmt(sx(d.day))},{fmt(base - b * scale)}" for d, b in zip(days, below, strict=True)]
        current = days[-1].counts[index[category]]
        bands.append(
            el(
                "polygon",
                f"{CATEGORY_NAMES[category]}: {current} now",
                points=" ".join(upper + lower[::-1]),
                fill=CATEGORY_COLOURS[category],
                class_=f"band {category}",
            )
        )
        below = above
    now = dict(zip(StatusCategory, days[-1].counts, strict=True))
    caption = (
        f"How many items of team {escape(flow.team)} were in each category at the end of each day: "
        "a band's "
        f"thickness is the work in that state (now {now[StatusCategory.IN_PROGRESS]} in progress, "
        f"{now[StatusCategory.WAITING]} waiting, {now[StatusCategory.TODO]} to do); a widening in-progress "
        "band is work piling up."
    )
    return figure(
        _chart("cfd", flow, number, base + BOTTOM, "Cumulative flow", [*legend, *grid, *bands, *axis]),
        caption,
    )


# --- weekly throughput ----------------------------------------------------------------------------------


def _throughput(flow: TeamFlow, number: int) -> str:
    weeks = flow.throughput
    if not weeks or not any(w.finished for w in weeks):
        return no_data(chart_id("throughput", number), f"{flow.team} finished nothing in the window.")
    top = 24.0
    grid, scale = _y_axis(top, PLOT_HEIGHT, max(w.finished for w in weeks) * 1.12, HALF, "tasks finished")
    base = top + PLOT_HEIGHT
    labels = [f"{w.end - _DAY:%d %b}" for w in weeks]
    tips = [f"week to {w.end:%Y-%m-%d}: {w.finished} finished" for w in weeks]
    bars = _bars([w.finished for w in weeks], labels, tips, base, scale, HALF)
    total = sum(w.finished for w in weeks)
    caption = (
        f"Tasks team {escape(flow.team)} finished each week (the last ends today), labelled by "
        "the week's last "
        f"day: {total} in {len(weeks)} weeks, {total / len(weeks):.1f} a week on average."
    )
    return figure(
        _chart("throughput", flow, number, base + BOTTOM, "Weekly throughput", [*grid, *bars]), caption
    )


def _bars(
    values: Sequence[int],
    labels: Sequence[str],
    tips: Sequence[str],
    base: float,
    scale: float,
    width: float,
    colour: str = "#4e79a7",
) -> list[str]:
    """Vertical bars with their value above and every k-th label below, k leaving room between labels."""
    slot = (width - LEFT - RIGHT) / len(values)
    widest = max(len(label) for label in labels) * CHAR + 8
    every = max(1, math.ceil(widest / slot))
    parts = []
    for i, (value, label, tip) in enumerate(zip(values, labels, tips, strict=True)):
        x = LEFT + i * slot
        parts.append(
            rect(
                x + slot * 0.15,
                base - value * scale,
                slot * 0.7,
                value * scale,
                tip,
                fill=colour,
                class_="bar",
            )
        )
        if len(str(value)) * CHAR < slot:
            parts.append(
                text(
                    x + slot / 2,
                    base - value * scale - 4,
                    str(value),
                    font_size=str(SMALL),
                    text_anchor="middle",
                )
            )
        if (len(values) - 1 - i) % every == 0:
            parts.append(_below(x, slot, base, label))
    return parts


def _bar(x: float, slot: float, base: float, height: float, tip: str, colour: str, cls: str) -> str:
    return rect(x + slot * 0.15, base - height, slot * 0.7, height, tip, fill=colour, class_=cls)


def _above(x: float, slot: float, top: float, label: str) -> list[str]:
    """A bar's value over it, when it fits the bar's slot."""
    if len(label) * CHAR * 0.92 >= slot:
        return []
    return [text(x + slot / 2, top - 4, label, font_size=str(SMALL), text_anchor="middle")]


def _below(x: float, slot: float, base: float, label: str) -> str:
    return text(x + slot / 2, base + 16, label, fill=MUTED, font_size=str(SMALL), text_anchor="middle")


# --- how many by a date ----------------------------------------------------------------------------------


def _how_many(flow: TeamFlow, number: int) -> str:
    found = flow.how_many
    if not found:
        return no_data(chart_id("how-many", number), f"{flow.how_many_basis}.")
    likely, sure = (f"{c:.0%}" for c in HOW_MANY_CHANCES)
    legend, top = _legend([("#a5c2f7", f"{likely} chance"), ("#1d4ea8", f"{sure} chance")], HALF)
    top += 14  # room for the values above the bars
    grid, scale = _y_axis(
        top, PLOT_HEIGHT, max(h.counts[0] for h in found), HALF, "tasks finished from today"
    )
    base = top + PLOT_HEIGHT
    slot = (HALF - LEFT - RIGHT) / len(found)
    parts = [*legend, *grid]
    for i, h in enumerate(found):
        x = LEFT + i * slot
        tip = (
            f"by {h.by:%Y-%m-%d}: at least {h.counts[1]} with {sure} chance, "
            f"{h.counts[0]} with {likely} chance"
        )
        for value, colour, cls in ((h.counts[0], "#a5c2f7", "likely"), (h.counts[1], "#1d4ea8", "sure")):
            parts.append(_bar(x, slot, base, value * scale, tip, colour, f"bar {cls}"))
        parts += _above(x, slot, base - h.counts[0] * scale, f"{h.counts[1]} to {h.counts[0]}")
        parts.append(_below(x, slot, base, f"{h.by:%d %b}"))
    last = found[-1]
    caption = (
        f"How many tasks team {escape(flow.team)} will have finished by each date: "
        "at least the dark bar's count "
        f"with {sure} chance, the light bar's with {likely} (by {last.by:%Y-%m-%d}: {last.counts[1]} to "
        f"{last.counts[0]}); {escape(flow.how_many_basis)}."
    )
    return figure(_chart("how-many", flow, number, base + BOTTOM, "How many items by a date", parts), caption)


# --- ageing work in progress -----------------------------------------------------------------------------


def _ageing(flow: TeamFlow, number: int, status_name: Labeller) -> str:
    if not flow.ageing:
        return _wide(no_data(chart_id("ageing", number), f"{flow.team} has no work in progress now."))
    types = [t.work_type for t in flow.type_lines]
    colours = {t: TYPE_COLOURS[i % len(TYPE_COLOURS)] for i, t in enumerate(types)}
    names = [t or "(no type)" for t in types]
    items = [(colours[t], cut(n, 180)) for t, n in zip(types, names, strict=True)]
    items += [(f"dash:{LINE_STYLES[p]}", f"{p:g}th percentile") for p in LINES]
    legend, top = _legend(items, FULL)
    lines_of = {t.work_type: t for t in flow.type_lines}
    high = max([a.age_days for a in flow.ageing] + [_p95(t) for t in flow.type_lines]) * 1.05
    grid, scale = _y_axis(top, PLOT_HEIGHT + 40, high, FULL, "age since started (days)")
    base = top + PLOT_HEIGHT + 40
    column = (FULL - LEFT - RIGHT) / len(flow.statuses)
    parts = [*legend, *grid]
    for i, (status, category) in enumerate(flow.statuses):
        x0 = LEFT + i * column
        if i:
            parts.append(line(x0, top, x0, base, stroke=GRID))
        label = status_name(status)
        parts.append(
            text(
                x0 + column / 2,
                base + 16,
                cut(label, column - 8),
                label,
                font_size=str(SMALL),
                text_anchor="middle",
                fill=CATEGORY_COLOURS[category],
                class_="status",
            )
        )
        here = [a for a in flow.ageing if a.status == status and a.category is category]
        present = [t for t in types if any(a.work_type == t for a in here)]
        lane = column / max(1, len(present))
        for j, work_type in enumerate(present):
            lx = x0 + j * lane
            parts += _percentile_lines(
                lines_of[work_type].percentiles, lx + 4, lx + lane - 4, base, scale, colours[work_type]
            )
            mine = [a for a in here if a.work_type == work_type]
            for k, a in enumerate(mine):
                spread = (k % 5 - 2) / 5 * min(lane - 12, 40)
                tip = f"{_item(a.key, a.title)}: {a.age_days:.1f} d in flight, in {label}" + _limit_tip(
                    lines_of[work_type]
                )
                parts.append(
                    el(
                        "circle",
                        tip,
                        cx=lx + lane / 2 + spread,
                        cy=base - a.age_days * scale,
                        r="4",
                        fill=colours[work_type],
                        stroke="#fff",
                        class_="dot",
                    )
                )
    beyond = sum(1 for a in flow.ageing if _beyond(a.age_days, lines_of[a.work_type]))
    caption = (
        f"Each dot is an item team {escape(flow.team)} has in progress or waiting now, in the column of its "
        "status and at its age since it started; each work type's lines are the 50th, 85th and 95th "
        "percentiles of its cycle times (the team's where it finished too few). "
        + _beyond_text(beyond, len(flow.ageing))
    )
    return _wide(
        figure(_chart("ageing", flow, number, base + BOTTOM, "Ageing work in progress", parts), caption)
    )


def _beyond_text(beyond: int, count: int) -> str:
    if not beyond:
        return f"None of the {count} is older than its type's 85th percentile."
    if beyond == 1:
        return f"1 of the {count} is older than its type's 85th percentile: look at it first."
    return f"{beyond} of the {count} are older than their type's 85th percentile: look at those first."


def _p95(lines: TypeLines) -> float:
    return lines.percentiles.days[-1] if lines.percentiles is not None else 0.0


def _beyond(age: float, lines: TypeLines) -> bool:
    return lines.percentiles is not None and age > lines.percentiles.days[1]


def _limit_tip(lines: TypeLines) -> str:
    if lines.percentiles is None:
        return f" ({lines.basis})"
    p50, p85, p95 = lines.percentiles.days
    return f"; {lines.basis} percentiles 50th {p50:.1f} d, 85th {p85:.1f} d, 95th {p95:.1f} d"
