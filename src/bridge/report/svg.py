"""Small SVG building blocks for the HTML report's charts: elements with escaped text and tooltips,
coordinates without noise, labels cut to fit, and the chart and figure wrappers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from bridge.text import html_escape as escape

WIDTH = 960
CHAR = 6.6
"""Roughly the width of one character of 12px sans-serif text, for cutting labels to fit."""


def fmt(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    shown = f"{value:.1f}"
    return shown[:-2] if shown.endswith(".0") else shown


def attrs(values: Mapping[str, object]) -> str:
    out = []
    for name, value in values.items():
        if value is None:
            continue
        shown = fmt(value) if isinstance(value, float) else str(value)
        out.append(f' {name.rstrip("_").replace("_", "-")}="{escape(shown, quote=True)}"')
    return "".join(out)


def el(tag: str, tip: str | None = None, **values: object) -> str:
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return f"<{tag}{attrs(values)}>{inner}</{tag}>" if inner else f"<{tag}{attrs(values)}/>"


def rect(x: float, y: float, w: float, h: float, tip: str | None = None, **values: object) -> str:
    return el("rect", tip, x=float(x), y=float(y), width=float(max(w, 0.0)), height=float(h), **values)


def line(x1: float, y1: float, x2: float, y2: float, **values: object) -> str:
    return el("line", None, x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), **values)


def text(x: float, y: float, content: str, tip: str | None = None, **values: object) -> str:
    inner = (f"<title>{escape(tip)}</title>" if tip else "") + escape(content)
    return f"<text{attrs({'x': float(x), 'y': float(y), **values})}>{inner}</text>"


def cut(content: str, width: float) -> str:
    """`content` cut to fit about `width` pixels, with an ellipsis when cut."""
    room = max(3, int(width / CHAR))
    return content if len(content) <= room else content[: room - 1].rstrip() + "…"


def svg(chart_id: str, height: float, title: str, body: Iterable[str], width: float = WIDTH) -> str:
    title_id = f"{chart_id}-title"
    return (
        f'<svg class="chart" id="{chart_id}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="{title_id}" width="{fmt(width)}" height="{fmt(height)}" '
        f'viewBox="0 0 {fmt(width)} {fmt(height)}" font-size="12" fill="#1d2330">'
        f'<title id="{title_id}">{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def figure(chart: str, caption: str, extra: str = "") -> str:
    return f"<figure>{chart}<figcaption>{caption}</figcaption></figure>{extra}"


def no_data(chart_id: str, content: str) -> str:
    return f'<p class="no-data" data-chart="{chart_id}">No data: {escape(content)}</p>'


def nice_step(span: float, count: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def date_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Axis ticks between two times: Mondays up to ten weeks, else the first of every 1, 3 or 6 months."""
    days = (end - start).days
    ticks: list[tuple[datetime, str]] = []
    if days <= 70:
        # weekly, on Mondays
        at = (start + timedelta(days=(7 - start.weekday()) % 7)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        while at <= end:
            ticks.append((at, f"{at.day} {at:%b}"))
            at += timedelta(days=7)
        return ticks
    months = 1 if days <= 240 else 3 if days <= 800 else 6
    year, month = start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if (month - 1) % months:
            continue
        at = start.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        if at > end:
            return ticks
        ticks.append((at, f"{at:%b} {at.year}" if month == 1 or not ticks else f"{at:%b}"))
