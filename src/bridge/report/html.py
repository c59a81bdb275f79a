"""The report as one self-contained HTML page: inline CSS and SVG charts drawn here, no scripts, no
external files, so the page opens anywhere without a network.

Charts: milestones by rank (score and task progress), the OKR tree, cycle-time box plots per team and
work type (bottlenecks highlighted), time in status per team, forecast ranges against due dates, and
each team's flow charts (`bridge.report.flow_charts`).
Each chart is an `<svg class="chart" id="chart-...">` inside a `<figure>` with a caption; a section
without data shows a "no data" note instead. Every text from a tracker or the config is escaped.

`page_data` reads what the charts need beyond the `Report` (each milestone's tasks and value, each
group's cycle times) from the same snapshot; `render_html` turns both into the page. Both are pure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bridge.analysis_window import analysis_since
from bridge.analytics import Report, Snapshot
from bridge.analytics.bottlenecks import StatusTime, Verdict, WorkTypeStats, finished_flows
from bridge.analytics.coherence import ITEM_WARNING_TITLES, item_warning_groups
from bridge.analytics.forecast import Forecast
from bridge.analytics.okr import KeyResultProgress
from bridge.analytics.snapshot import as_ref, build_index
from bridge.analytics.stats import percentile as _pct
from bridge.config import AnalyticsConfig, BridgeConfig
from bridge.domain import LinkOrigin, Ref, StatusCategory, display_name, require_utc
from bridge.report.flow_charts import flow_section
from bridge.report.svg import CHAR, WIDTH
from bridge.report.svg import cut as _cut
from bridge.report.svg import date_ticks as _date_ticks
from bridge.report.svg import el as _el
from bridge.report.svg import figure as _figure
from bridge.report.svg import fmt as _f
from bridge.report.svg import line as _line
from bridge.report.svg import nice_step as _nice_step
from bridge.report.svg import no_data as _no_data
from bridge.report.svg import rect as _rect
from bridge.report.svg import svg as _svg
from bridge.report.svg import text as _text
from bridge.store import redact_url
from bridge.text import html_escape as escape
from bridge.text import plural

CHART_IDS = (
    "chart-ranks",
    "chart-okrs",
    "chart-cycle-times",
    "chart-time-in-status",
    "chart-forecasts",
)
"""The id of every chart the page can hold, in page order."""

MAX_ROWS = 60
"""Charts with one row per milestone show this many; the caption says how many more there are."""
MAX_LINKED = 8
"""Milestones shown under one key result in the OKR tree."""


TEAM_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
    "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759",
)  # fmt: skip
STATUS_COLOURS = {
    StatusCategory.IN_PROGRESS: ("#2f6fde", "#6f9cf0", "#1d4ea8", "#a5c2f7", "#4a5fc1"),
    StatusCategory.WAITING: ("#e0892b", "#c4452f", "#f2b66d", "#a0522d", "#e8a33f"),
    StatusCategory.TODO: ("#8b95a7", "#b3bac6", "#6b7486"),
    StatusCategory.DONE: ("#3f9b62", "#7cc495"),
}


# --- data beyond the report ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MilestoneFacts:
    """What a milestone's row shows besides its rank: its value, due date and tasks done."""

    value: float | None
    due: datetime | None
    tasks: int
    done: int
    url: str | None = None

    @property
    def progress(self) -> float | None:
        return self.done / self.tasks if self.tasks else None


@dataclass(frozen=True, slots=True)
class PageData:
    milestones: Mapping[Ref, MilestoneFacts] = field(default_factory=dict)
    cycle_times: Mapping[tuple[str, str | None], tuple[float, ...]] = field(default_factory=dict)
    """(team, work type) -> the cycle times (days) of the items finished in the window, sorted."""


def page_data(snapshot: Snapshot, config: BridgeConfig | AnalyticsConfig, now: datetime) -> PageData:
    """Each milestone's value, due date and task counts, and each group's cycle times, as the analysis
    of the same snapshot at `now` counts them."""
    now = require_utc(now, "now")
    settings = config.analytics if isinstance(config, BridgeConfig) else config
    index = build_index(snapshot, since=analysis_since(settings, now))
    facts = {}
    for key, milestone in index.milestones.items():
        tasks = index.tasks_of.get(key, [])
        done = sum(1 for t in tasks if t.category is StatusCategory.DONE)
        facts[as_ref(key)] = MilestoneFacts(milestone.value, milestone.due, len(tasks), done, milestone.url)
    groups = finished_flows(index, now, settings.window)
    cycles = {key: tuple(sorted(f.cycle for f in flows)) for key, flows in groups.items()}
    return PageData(facts, cycles)


# --- the page -----------------------------------------------------------------------------------------


def render_html(
    report: Report,
    data: PageData | None = None,
    *,
    generated: datetime | None = None,
    store_url: str | None = None,
    team: str | None = None,
    percentile: float = 85.0,
    strategy: str = "value",
    notice: str | None = None,
    extra: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The whole page. `generated` defaults to the report's time; `store_url` is shown redacted;
    `notice` is a line shown above the charts (say, that the store is empty); `extra` are more sections
    (anchor, heading, HTML body), shown after the others, or after the one they belong beside
    (`_FOLLOWS`: how the forecasts moved and the milestones reached follow the forecasts)."""
    data = data or PageData()
    generated = generated or report.now
    pct = f"{percentile:g}"
    scope = f" — team {team}" if team else ""
    title = f"Milestone Bridge report{scope}"
    sections = [
        ("ranks", "Milestones by rank", _ranks_section(report, data, strategy)),
        ("okrs", "Objectives and key results", _okrs_section(report)),
        ("cycle-times", "Cycle times and bottlenecks", _cycle_section(report, data, pct)),
        ("time-in-status", "Time in status", _status_section(report)),
        ("forecasts", "Forecasts against due dates", _forecast_section(report, data, pct)),
        ("flow", "Flow per team", flow_section(report.flows)),
        ("warnings", "Warnings", _warnings_section(report)),
    ]
    for section in extra:  # those that belong beside one of the above follow it, the others come last
        keys = [key for key, _, _ in sections]
        follows = _FOLLOWS.get(section[0])
        sections.insert(keys.index(follows) + 1 if follows in keys else len(sections), section)
    meta = [
        f"Generated {_stamp(generated)}",
        f"analysis as of {_stamp(report.now)}",
        f"rank strategy {escape(strategy)}",
    ]
    if store_url:
        meta.append(f"store <code>{escape(redact_url(store_url))}</code>")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        '<header><h1 id="top">' + escape(title) + "</h1>",
        '<p class="meta">' + " · ".join(meta) + "</p>",
    ]
    if notice:
        parts.append(f'<p class="notice">{escape(notice)}</p>')
    parts.append(_summary(report))
    parts.append('<nav class="toc" aria-label="Contents"><strong>Contents</strong><ol>')
    parts.extend(f'<li><a href="#{key}">{escape(name)}</a></li>' for key, name, _ in sections)
    parts.append("</ol></nav></header><main>")
    for key, name, body in sections:
        parts.append(f'<section id="{key}"><h2>{escape(name)} <a class="up" href="#top">↑</a></h2>')
        parts.append(body)
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


STYLE = """
:root{--ink:#1d2330;--muted:#5b6372;--line:#e3e6eb;--bad:#c93a3a;--warn:#b86e00;--ok:#2e8b57}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);
background:#f5f6f8}
header,main{max-width:1080px;margin:0 auto;padding:0 1.5rem}
header{padding-top:1.4rem}
h1{font-size:1.5rem;margin:0 0 .2rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
h2 .up{font-size:.8rem;color:var(--muted);text-decoration:none;margin-left:.4rem}
.meta{color:var(--muted);margin:.1rem 0 .8rem}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#eceef2;padding:.05rem .3rem;
border-radius:3px}
.notice{background:#fff4d6;border:1px solid #f0d68a;padding:.5rem .8rem;border-radius:6px}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:.4rem 0 1rem;padding:0;list-style:none}
.cards li{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.5rem .9rem;min-width:7.5rem}
.cards b{display:block;font-size:1.35rem;line-height:1.2}
.cards span{color:var(--muted);font-size:.85rem}
.cards .alert b{color:var(--bad)}
.toc{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.5rem .9rem;margin-bottom:1rem}
.toc ol{display:flex;flex-wrap:wrap;gap:.2rem 1.4rem;margin:.2rem 0 0;padding:0;list-style-position:inside}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.1rem;margin:0 0 1.1rem}
figure{margin:0}
figcaption{color:var(--muted);font-size:.9rem;margin:.4rem 0 0}
svg.chart{display:block;max-width:100%;height:auto;font-family:system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif}
.no-data{color:var(--muted);font-style:italic;background:#f7f8fa;border:1px dashed #cfd4dc;
padding:.8rem;border-radius:6px;margin:0}
details{margin-top:.6rem}summary{cursor:pointer;color:var(--muted)}
table{border-collapse:collapse;margin:.4rem 0;font-size:.9rem}
th,td{padding:.2rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.num,th.num{text-align:right}
td.nowrap{white-space:nowrap}
ul.evidence{margin:.2rem 0 .8rem;padding-left:1.3rem;color:var(--muted)}
.tag{display:inline-block;border-radius:3px;padding:0 .35rem;font-size:.8rem;font-weight:600}
.tag.bad{background:#fbe3e3;color:var(--bad)}.tag.warn{background:#fff1d6;color:var(--warn)}
.flow-team h3{font-size:1rem;margin:.9rem 0 .4rem}
.flow-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:.8rem 1rem}
.flow-wide{grid-column:1/-1}
@media print{body{background:#fff}section,.toc,.cards li{border-color:#ccc;break-inside:avoid}}
"""


def _stamp(at: datetime) -> str:
    return escape(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def _summary(report: Report) -> str:
    bottlenecks = sum(1 for v in report.bottlenecks if v.bottleneck)
    at_risk = sum(1 for f in report.forecasts if f.at_risk)
    unscored = sum(1 for r in report.milestones if r.flag)
    cards = [
        (len(report.milestones), "open milestones", False),
        (unscored, "unscored", unscored > 0),
        (len(report.okrs), "objectives", False),
        (bottlenecks, "bottlenecks", bottlenecks > 0),
        (at_risk, "at risk of a late finish", at_risk > 0),
        (len(report.warnings), "warnings", len(report.warnings) > 0),
    ]
    items = "".join(
        f"<li{' class=alert' if alert else ''}><b>{count}</b><span>{escape(label)}</span></li>"
        for count, label, alert in cards
    )
    return f'<ul class="cards" aria-label="Summary">{items}</ul>'


# --- small formatters -------------------------------------------------------------------------------


def _team_colours(teams: Iterable[str]) -> dict[str, str]:
    return {team: TEAM_COLOURS[i % len(TEAM_COLOURS)] for i, team in enumerate(sorted(set(teams)))}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _day(at: datetime | None) -> str:
    return at.date().isoformat() if at is not None else "-"


def _progress_bar(x: float, y: float, w: float, h: float, value: float | None, tip: str) -> list[str]:
    parts = [_rect(x, y, w, h, tip, rx=3, fill="#e8ebf0", class_="track")]
    if value is None:
        parts.append(_text(x + w / 2, y + h - 3, "n/a", tip, text_anchor="middle", fill="#5b6372"))
        return parts
    parts.append(_rect(x, y, w * min(1.0, max(0.0, value)), h, tip, rx=3, fill="#2e9b5f", class_="progress"))
    return parts


# --- milestones by rank -------------------------------------------------------------------------------


_STRATEGY_LABEL = {"value": "value", "wsjf": "WSJF (value ÷ effort)", "okr": "OKR weight"}


def _ranks_section(report: Report, data: PageData, strategy: str) -> str:
    if not report.milestones:
        return _no_data("chart-ranks", "no open milestones.")
    shown = report.milestones[:MAX_ROWS]
    colours = _team_colours(r.team for r in report.milestones)
    top = max((abs(r.score) for r in shown if r.score is not None), default=0.0) or 1.0
    row, head = 28, 30
    # columns: rank | milestone | team | score bar | progress bar | progress text
    x_rank, x_name, x_team, x_score, x_prog, x_text = 34, 46, 380, 496, 716, 872
    score_w, prog_w = 180.0, 148.0
    label = _STRATEGY_LABEL.get(strategy, strategy)
    body = [
        _text(x_rank, 18, "rank", text_anchor="end", font_weight="600", fill="#5b6372"),
        _text(x_name, 18, "milestone", font_weight="600", fill="#5b6372"),
        _text(x_team, 18, "team", font_weight="600", fill="#5b6372"),
        _text(x_score, 18, f"score: {label}", font_weight="600", fill="#5b6372"),
        _text(x_prog, 18, "tasks done", font_weight="600", fill="#5b6372"),
        _line(0, head - 4, WIDTH, head - 4, stroke="#d5dae1"),
    ]
    for i, rank in enumerate(shown):
        y = head + i * row
        mid = y + row / 2
        facts = data.milestones.get(rank.milestone)
        linked = report.links.get(rank.milestone, {})
        krs = _key_results(report, linked)
        name = display_name(rank.key, rank.title)
        tip = (
            f"{name}\nteam {rank.team}\n{rank.explanation}\n"
            f"key results: {krs or 'none'}"
            + (f"\nvalue {facts.value:g}" if facts and facts.value is not None else "")
            + (f"\ndue {_day(facts.due)}" if facts and facts.due else "")
        )
        classes = "row unscored" if rank.flag else "row"
        body.append(f'<g class="{classes}" data-rank="{rank.rank}">')
        if i % 2:
            body.append(_rect(0, y, WIDTH, row, fill="#f7f8fa"))
        body.append(_text(x_rank, mid + 4, f"#{rank.rank}", tip, text_anchor="end", font_weight="700"))
        body.append(_text(x_name, mid + 4, _cut(name, x_team - x_name - 14), tip))
        colour = colours[rank.team]
        body.append(_rect(x_team, mid - 9, 104, 18, f"team {rank.team}", rx=9, fill=colour, opacity="0.18"))
        body.append(_text(x_team + 52, mid + 4, _cut(rank.team, 96), text_anchor="middle", fill="#1d2330"))
        if rank.score is None:
            flag = f"unscored: {rank.flag or 'no score'}"
            body.append(
                _rect(x_score, mid - 8, score_w, 16, flag, rx=3, fill="#fff4d6", stroke="#d98e04",
                      stroke_dasharray="4 3", class_="flag")
            )  # fmt: skip
            body.append(_text(x_score + 8, mid + 4, _cut(flag, score_w - 12), flag, fill="#8a5a00"))
        else:
            w = score_w * max(0.0, rank.score) / top
            body.append(_rect(x_score, mid - 8, w, 16, f"score {rank.score:.4g}", rx=3, fill="#4a7bd0",
                              class_="score"))  # fmt: skip
            body.append(_text(x_score + w + 6, mid + 4, _num(rank.score), font_weight="600"))
        progress = facts.progress if facts else None
        ptip = f"{facts.done} of {facts.tasks} tasks done" if facts and facts.tasks else "no tasks"
        body.extend(_progress_bar(x_prog, mid - 6, prog_w, 12, progress, ptip))
        text = (
            f"{facts.done}/{facts.tasks} ({progress:.0%})" if facts and progress is not None else "no tasks"
        )
        body.append(_text(x_text, mid + 4, text, ptip, fill="#5b6372"))
        body.append("</g>")
    height = head + len(shown) * row + 6
    more = len(report.milestones) - len(shown)
    caption = (
        f"Open milestones in rank order ({escape(label)}); the green bar is the share of each milestone's "
        "tasks that are done. Unscored milestones (dashed amber) rank after every scored one."
        + (f" Showing the first {len(shown)}; {more} more are not drawn." if more else "")
        + " Hover a row for why it ranks where it does."
    )
    table = _ranks_table(report, data)
    return _figure(_svg("chart-ranks", height, "Milestones by rank", body), caption, table)


def _ranks_table(report: Report, data: PageData) -> str:
    rows = []
    for rank in report.milestones:
        linked = report.links.get(rank.milestone, {})
        krs = _key_results(report, linked)
        facts = data.milestones.get(rank.milestone)
        score = _num(rank.score) if rank.flag is None else '<span class="tag warn">none</span>'
        rows.append(
            f'<tr><td class="num">{rank.rank}</td><td>{escape(display_name(rank.key, rank.title))}</td>'
            f"<td>{escape(rank.team)}</td><td class=num>{score}</td>"
            f"<td>{_day(facts.due) if facts else '-'}</td><td>{escape(krs) or 'none'}</td>"
            f"<td>{escape(rank.explanation)}</td></tr>"
        )
    return (
        "<details><summary>The ranks as a table, with the reasons</summary><table><thead><tr>"
        "<th class=num>rank</th><th>milestone</th><th>team</th><th class=num>score</th><th>due</th>"
        "<th>key results</th><th>why</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></details>"
    )


def _key_results(report: Report, linked: Mapping[Ref, LinkOrigin]) -> str:
    """The key results a milestone moves, by title, each with who linked it."""
    return "; ".join(
        f"{report.key_result_title(kr)} (linked by {origin})"
        for kr, origin in sorted(linked.items(), key=str)
    )


# --- the OKR tree -------------------------------------------------------------------------------------


_STATUS_FILL = {"on_track": "#2e7d4f", "met": "#2e7d4f", "at_risk": "#a86400", "off_track": "#b3261e"}


def _kr_status(kr: KeyResultProgress) -> tuple[str, str]:
    """A key result's status line (the status or why it has none, and what decides it) and its colour."""
    if kr.status is None:
        return f"no status: {kr.status_reason}", "#8b95a7"
    # the period's end, unless the reason says it already ("... before the period ends 2026-12-31")
    end = kr.period_end.isoformat() if kr.period_end is not None else None
    ends = f" (period ends {end})" if end is not None and end not in kr.status_reason else ""
    return f"{kr.status.words}{ends}: {kr.status_reason}", _STATUS_FILL.get(kr.status.value, "#39414f")


def _okrs_section(report: Report) -> str:
    if not report.okrs:
        return _no_data(
            "chart-okrs", "no objectives. Add [[okrs.objectives]] to the config, or pull a tracker's goals."
        )
    x_bar, bar_w, x_pct = 600, 220.0, 830
    body: list[str] = []
    y = 6.0
    for objective in report.okrs:
        top = y
        tip = (
            f"{objective.title}: weight {objective.weight:g}, its importance against the other objectives "
            "(for rank_strategy okr)"
        )
        body.append('<g class="objective">')
        body.append(_rect(0, y, WIDTH, 30, fill="#eef3fc", rx=4))
        body.append(_text(10, y + 20, _cut(objective.title, x_bar - 30), tip, font_weight="700",
                          font_size="13"))  # fmt: skip
        body.extend(_progress_bar(x_bar, y + 9, bar_w, 12, objective.progress, tip))
        body.append(_text(x_pct, y + 20, _percent(objective.progress), tip, font_weight="700"))
        body.append("</g>")
        y += 34
        for kr in objective.key_results:
            kr_top = y
            body.append(_line(14, y - 4 if kr_top > top + 34 else top + 30, 14, y + 12, stroke="#b7c0cd"))
            body.append(_line(14, y + 12, 26, y + 12, stroke="#b7c0cd"))
            kr_tip = f"{kr.title}: {kr.explanation}; weight {kr.weight:g} in its objective's progress"
            body.append('<g class="key-result">')
            body.append(_text(32, y + 16, _cut(kr.title, x_bar - 50), kr_tip, font_weight="600"))
            body.extend(_progress_bar(x_bar, y + 6, bar_w, 11, kr.progress, kr_tip))
            body.append(_text(x_pct, y + 16, _percent(kr.progress), kr_tip))
            body.append(_text(x_pct + 40, y + 16, kr.basis, kr_tip, fill="#5b6372", font_size="11"))
            body.append("</g>")
            y += 26
            status_text, status_fill = _kr_status(kr)
            body.append(_text(54, y + 10, _cut(status_text, WIDTH - 70), status_text, fill=status_fill,
                              font_size="11", class_="kr-status"))  # fmt: skip
            y += 18
            shown = kr.milestones[:MAX_LINKED]
            for m in shown:
                body.append(_line(38, y - 8, 38, y + 10, stroke="#d5dae1"))
                body.append(_line(38, y + 10, 48, y + 10, stroke="#d5dae1"))
                m_name = display_name(m.key, m.title)
                under_way = (
                    f", {m.tasks_done} of {plural(m.tasks_total, 'task')} done" if m.tasks_total else ""
                )
                m_tip = f"{m_name}: linked by {m.origin}, {'done' if m.done else 'open' + under_way}"
                body.append(_text(54, y + 14, _cut(m_name, x_bar - 74), m_tip, fill="#39414f"))
                fill, stroke, word = (
                    ("#e3f4ea", "#2e9b5f", "done") if m.done else ("#f1f3f6", "#aab2bf", "open")
                )
                body.append(_rect(x_bar, y + 3, 44, 15, m_tip, rx=7, fill=fill, stroke=stroke,
                                  class_="milestone-state"))  # fmt: skip
                body.append(_text(x_bar + 22, y + 14, word, m_tip, text_anchor="middle", font_size="11"))
                body.append(_text(x_bar + 54, y + 14, f"{m.origin}", m_tip, fill="#5b6372", font_size="11"))
                y += 21
            if len(kr.milestones) > len(shown):
                body.append(
                    _text(54, y + 14, f"… and {len(kr.milestones) - len(shown)} more", fill="#5b6372")
                )
                y += 21
            if not kr.milestones:
                body.append(_text(54, y + 14, "no linked milestones", fill="#8b95a7", font_style="italic"))
                y += 21
        y += 8
    caption = (
        "Objectives, their key results and the milestones linked to each. A key result's progress is its "
        "metric (current against target) when one is set, else the share of its linked milestones' value "
        "that is done, an open milestone counting the share of its tasks done; an objective's is its key "
        "results' weighted mean. A key result's status compares its open milestones' forecasts with its "
        "period's end: on track when every P85 finish is by then, at risk when only the P50s are, off "
        "track when a P50 is after it."
    )
    if report.suggestions:
        count = len({s.milestone for s in report.suggestions})
        caption += (
            f" {plural(len(report.suggestions), 'suggested link')} for {plural(count, 'milestone')} "
            "without a key result "
            "wait for review: <code>bridge okr suggest</code>, then <code>bridge okr confirm</code>."
        )
    return _figure(_svg("chart-okrs", y, "Objectives, key results and linked milestones", body), caption)


# --- cycle times and bottlenecks ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Box:
    low: float
    q1: float
    median: float
    q3: float
    high: float
    pct: float
    outliers: tuple[float, ...]
    count: int


def _box(values: Sequence[float], pct: float) -> _Box:
    q1, med, q3 = _pct(values, 25), _pct(values, 50), _pct(values, 75)
    reach = 1.5 * (q3 - q1)
    inside = [v for v in values if q1 - reach <= v <= q3 + reach]
    outliers = tuple(v for v in values if v < q1 - reach or v > q3 + reach)
    return _Box(min(inside), q1, med, q3, max(inside), _pct(values, pct), outliers, len(values))


def _cycle_section(report: Report, data: PageData, pct: str) -> str:
    if not report.work_types:
        return _no_data("chart-cycle-times", "no finished or started work in the window.")
    level = float(pct)
    verdicts = {(v.team, v.work_type): v for v in report.bottlenecks}
    boxes: dict[tuple[str, str | None], _Box] = {}
    for stats in report.work_types:
        values = data.cycle_times.get((stats.team, stats.work_type))
        if values:
            boxes[(stats.team, stats.work_type)] = _box(values, level)
    ends = [b.high for b in boxes.values()] + [b.pct for b in boxes.values()]
    ends += [s.cycle_time.percentile_days for s in report.work_types if s.cycle_time]
    step = _nice_step(max(ends, default=1.0) * 1.05)
    axis_max = step * math.ceil(max(ends, default=1.0) * 1.05 / step) or step
    x0, x1 = 250.0, 830.0

    def sx(days: float) -> float:
        return x0 + (x1 - x0) * min(days, axis_max) / axis_max

    head, row, team_row = 30.0, 30.0, 24.0
    body: list[str] = [
        _text(x0 - 12, head - 8, "days", text_anchor="end", fill="#5b6372", font_size="11"),
        _text(x1 + 10, head - 8, "median", fill="#5b6372", font_size="11"),
    ]
    by_team: dict[str, list[WorkTypeStats]] = defaultdict(list)
    for stats in report.work_types:
        by_team[stats.team].append(stats)
    rows_height = sum(team_row + row * len(group) for group in by_team.values())
    bottom = head + rows_height
    ticks = round(axis_max / step)
    for k in range(ticks + 1):
        x = sx(k * step)
        body.append(_line(x, head - 4, x, bottom, stroke="#edf0f4"))
        body.append(_text(x, head - 8, f"{k * step:g}", text_anchor="middle", fill="#5b6372", font_size="11"))
    y = head
    for team, group in by_team.items():
        body.append(_text(8, y + 16, _cut(team, 230), f"team {team}", font_weight="700"))
        body.append(_line(0, y + team_row - 2, WIDTH, y + team_row - 2, stroke="#e3e6eb"))
        y += team_row
        for stats in group:
            body.extend(
                _cycle_row(stats, boxes.get((stats.team, stats.work_type)), verdicts, y, row, sx, pct)
            )
            y += row
    legend_y = bottom + 22
    body.extend(_cycle_legend(legend_y, pct))
    bottlenecks = [v for v in report.bottlenecks if v.bottleneck]
    caption = (
        f"Cycle time (first start to last done) of the work finished in the window, per team and work "
        f"type: the box holds the middle half, the line is the median, whiskers reach 1.5 box lengths, dots "
        f"are outliers and ◆ marks P{pct}. "
        + (
            f"<strong>{len(bottlenecks)} bottleneck{'s' if len(bottlenecks) != 1 else ''}</strong> "
            "(red rows): work types reliably slower than the rest of their team's work that hold up "
            "later work."
            if bottlenecks
            else f"No bottleneck found ({len(report.bottlenecks)} team work types judged)."
        )
    )
    svg = _svg("chart-cycle-times", legend_y + 14, "Cycle times per team and work type", body)
    return _figure(svg, caption, _bottleneck_details(report, pct))


def _cycle_row(
    stats: WorkTypeStats,
    box: _Box | None,
    verdicts: Mapping[tuple[str, str], Verdict],
    y: float,
    row: float,
    scale: Callable[[float], float],
    pct: str,
) -> list[str]:
    verdict = verdicts.get((stats.team, stats.work_type or ""))
    bottleneck = verdict is not None and verdict.bottleneck
    mid = y + row / 2
    name = stats.work_type or "(no type)"
    classes = "row bottleneck" if bottleneck else "row"
    tip = f"{stats.team} / {name}: {stats.finished} finished in the window, {stats.in_progress} in progress"
    if verdict is not None:
        tip += "\n" + "\n".join(verdict.evidence)
    parts = [f'<g class="{classes}" data-team="{escape(stats.team)}" data-work-type="{escape(name)}">']
    if bottleneck:
        parts.append(_rect(0, y + 1, WIDTH, row - 2, tip, fill="#fdecec", rx=4, class_="bottleneck-band"))
    parts.append(_text(22, mid + 4, _cut(name, 150), tip, font_weight="700" if bottleneck else None))
    parts.append(_text(180, mid + 4, f"n={stats.finished}", tip, fill="#5b6372", font_size="11"))
    stroke, fill = ("#b42318", "#f4a7a7") if bottleneck else ("#3b5b92", "#b9cdf2")
    if box is not None:
        left, right = scale(box.low), scale(box.high)
        parts.append(_line(left, mid, scale(box.q1), mid, stroke=stroke))
        parts.append(_line(scale(box.q3), mid, right, mid, stroke=stroke))
        parts.append(_line(left, mid - 5, left, mid + 5, stroke=stroke))
        parts.append(_line(right, mid - 5, right, mid + 5, stroke=stroke))
        q1, q3 = scale(box.q1), scale(box.q3)
        box_tip = (
            f"{stats.team} / {name}: median {box.median:.1f} d, middle half {box.q1:.1f} to {box.q3:.1f} d, "
            f"P{pct} {box.pct:.1f} d, {box.count} items"
        )
        parts.append(_rect(q1, mid - 8, max(q3 - q1, 1.5), 16, box_tip, fill=fill, stroke=stroke,
                           class_="box"))  # fmt: skip
        m = scale(box.median)
        parts.append(_line(m, mid - 8, m, mid + 8, stroke=stroke, stroke_width="2.5", class_="median"))
        p = scale(box.pct)
        parts.append(
            _el("path", f"P{pct} {box.pct:.1f} d", d=f"M{_f(p)} {_f(mid - 5)}l4 5l-4 5l-4 -5z",
                fill="#1d2330", class_="pct")
        )  # fmt: skip
        for value in box.outliers:
            parts.append(_el("circle", f"{value:.1f} d", cx=float(scale(value)), cy=float(mid), r="2.6",
                             fill="none", stroke=stroke))  # fmt: skip
        parts.append(_text(840, mid + 4, f"{box.median:.1f} d", box_tip, fill="#39414f", font_size="11"))
    elif stats.cycle_time is not None:
        dist = stats.cycle_time
        a, b = scale(dist.median_days), scale(dist.percentile_days)
        parts.append(_line(a, mid, b, mid, stroke=stroke, stroke_width="6", stroke_linecap="round",
                           class_="box"))  # fmt: skip
        parts.append(_text(840, mid + 4, f"{dist.median_days:.1f} d", fill="#39414f", font_size="11"))
    else:
        parts.append(
            _text(260, mid + 4, f"nothing finished in the window ({stats.in_progress} in progress)",
                  fill="#8b95a7", font_style="italic")
        )  # fmt: skip
    if bottleneck:
        parts.append(_rect(886, mid - 9, 72, 18, "bottleneck", rx=4, fill="#c93a3a", class_="bottleneck-tag"))
        parts.append(_text(922, mid + 4, "bottleneck", text_anchor="middle", fill="#fff", font_weight="700",
                           font_size="11"))  # fmt: skip
    if stats.ageing:
        parts.append(_text(240, mid + 4, "⚠", f"{len(stats.ageing)} items ageing beyond the usual limit",
                           text_anchor="end", fill="#b86e00"))  # fmt: skip
    parts.append("</g>")
    return parts


def _cycle_legend(y: float, pct: str) -> list[str]:
    return [
        _rect(250, y - 8, 18, 10, fill="#b9cdf2", stroke="#3b5b92"),
        _text(274, y + 1, "middle half, line = median", fill="#5b6372", font_size="11"),
        _el("path", None, d=f"M{_f(452)} {_f(y - 8)}l4 5l-4 5l-4 -5z", fill="#1d2330"),
        _text(462, y + 1, f"P{pct}", fill="#5b6372", font_size="11"),
        _rect(500, y - 8, 18, 10, fill="#f4a7a7", stroke="#b42318"),
        _text(524, y + 1, "bottleneck", fill="#5b6372", font_size="11"),
        _text(600, y + 1, "⚠ items ageing beyond the usual limit", fill="#b86e00", font_size="11"),
    ]


def _bottleneck_details(report: Report, pct: str) -> str:
    found = sorted((v for v in report.bottlenecks if v.bottleneck), key=lambda v: (-v.weight, v.team))
    parts = []
    if found:
        parts.append("<h3>Bottlenecks</h3>")
        for verdict in found:
            parts.append(
                f'<p><span class="tag bad">bottleneck</span> <strong>{escape(verdict.team)} / '
                f"{escape(verdict.work_type)}</strong>: {escape(verdict.reason)}</p>"
            )
            parts.append(
                '<ul class="evidence">' + "".join(f"<li>{escape(e)}</li>" for e in verdict.evidence) + "</ul>"
            )
    for verdict in (v for v in report.bottlenecks if v.status == "slow"):
        parts.append(
            f'<p><span class="tag warn">slow</span> <strong>{escape(verdict.team)} / '
            f"{escape(verdict.work_type)}</strong>: {escape(verdict.reason)}</p>"
        )
    rows = []
    for stats in report.work_types:
        cycle, active = stats.cycle_time, stats.active_time
        rows.append(
            f"<tr><td>{escape(stats.team)}</td><td>{escape(stats.work_type or '(none)')}</td>"
            f"<td class=num>{stats.finished}</td><td class=num>{stats.in_progress}</td>"
            f"<td class=num>{f'{cycle.median_days:.1f} d' if cycle else ''}</td>"
            f"<td class=num>{f'{cycle.percentile_days:.1f} d' if cycle else ''}</td>"
            f"<td class=num>{f'{active.median_days:.1f} d' if active else ''}</td>"
            f"<td class=num>{len(stats.ageing) or ''}</td></tr>"
        )
    parts.append(
        "<details><summary>Work types as a table</summary><table><thead><tr><th>team</th><th>work type</th>"
        "<th class=num>finished</th><th class=num>in progress</th><th class=num>cycle median</th>"
        f"<th class=num>cycle P{pct}</th><th class=num>active median</th><th class=num>ageing</th></tr>"
        "</thead><tbody>" + "".join(rows) + "</tbody></table></details>"
    )
    ageing = [(s, a) for s in report.work_types for a in s.ageing]
    if ageing:
        items = "".join(
            f"<li>{escape(a.name or a.key)} ({escape(s.team)}, {escape(s.work_type or '(none)')}"
            f"{f', now in status {escape(a.status)}' if a.status else ''}): {a.age_days:.1f} d in flight, "
            f"usual limit {a.limit_days:.1f} d (the {escape(a.basis)}'s P{pct} cycle time)</li>"
            for s, a in ageing[:20]
        )
        more = f"<li>… and {len(ageing) - 20} more</li>" if len(ageing) > 20 else ""
        parts.append(
            f"<details><summary>{plural(len(ageing), 'item')} in progress longer than is usual for their type"
            "</summary>"
            f'<ul class="evidence">{items}{more}</ul></details>'
        )
    return "".join(parts)


# --- time in status -----------------------------------------------------------------------------------


def _status_section(report: Report) -> str:
    if not report.time_in_status:
        return _no_data("chart-time-in-status", "no work in flight in the window.")
    order = {category: i for i, category in enumerate(StatusCategory)}
    statuses = sorted(
        {(r.category, r.status) for r in report.time_in_status}, key=lambda s: (order[s[0]], s[1])
    )
    colours: dict[str, str] = {}
    used: defaultdict[StatusCategory, int] = defaultdict(int)
    for category, status in statuses:
        palette = STATUS_COLOURS[category]
        colours.setdefault(status, palette[used[category] % len(palette)])
        used[category] += 1
    by_team: dict[str, list[StatusTime]] = defaultdict(list)
    for entry in report.time_in_status:
        by_team[entry.team].append(entry)
    x0, x1, head, row = 170.0, 940.0, 8.0, 34.0
    body: list[str] = []
    y = head
    for team, entries in by_team.items():
        total = sum(r.days for r in entries)
        body.append(f'<g class="row" data-team="{escape(team)}">')
        body.append(_text(8, y + 15, _cut(team, 150), f"team {team}", font_weight="700"))
        body.append(_text(8, y + 28, f"{total:.0f} item-days in flight", fill="#5b6372", font_size="11"))
        x = x0
        for entry in entries:
            w = (x1 - x0) * entry.share
            tip = (
                f"{team}: {entry.status} ({entry.category.label}) {entry.days:.1f} item-days, "
                f"{plural(entry.items, 'item')}, "
                f"{entry.share:.0%} of the team's time in flight"
            )
            body.append(_rect(x, y + 4, w, 24, tip, fill=colours[entry.status], stroke="#fff",
                              class_=f"segment {entry.category}"))  # fmt: skip
            label = f"{entry.status} {entry.share:.0%}"
            if w > len(label) * CHAR + 8:
                body.append(_text(x + w / 2, y + 20, label, tip, text_anchor="middle", fill="#fff",
                                  font_size="11", font_weight="600"))  # fmt: skip
            elif w > 34:
                body.append(_text(x + w / 2, y + 20, f"{entry.share:.0%}", tip, text_anchor="middle",
                                  fill="#fff", font_size="11"))  # fmt: skip
            x += w
        body.append("</g>")
        y += row
    # legend: every status with its colour, wrapping across the width
    y += 10
    lx = x0
    for category, status in statuses:
        text = f"{status} ({category.label})"
        width = 22 + len(text) * CHAR * 0.92 + 16
        if lx + width > WIDTH:
            lx, y = x0, y + 18
        body.append(_rect(lx, y - 9, 12, 12, rx=2, fill=colours[status]))
        body.append(_text(lx + 17, y + 1, text, fill="#39414f", font_size="11"))
        lx += width
    caption = (
        "Where each team's work in flight spent its time in the window, as shares of the team's total: "
        "blues are in-progress statuses, ambers and reds are waiting ones. Backlog and done time are "
        "left out. Item-days add up the days each item spent in a status."
    )
    return _figure(_svg("chart-time-in-status", y + 10, "Time in status per team", body), caption)


# --- forecasts ----------------------------------------------------------------------------------------


_FOLLOWS = {"forecast-history": "forecasts", "milestones-reached": "forecast-history"}
"""The extra sections placed after another (anchor -> the anchor of the section they follow)."""

_X_FORECAST_TEAM = 262.0
_X_FORECAST_NOTE_WIDTH = 470.0
"""Room for a milestone's "no forecast" note: from the dates' column to before "chance by due"."""
"""Where the forecast chart's team column starts; the milestone names end before it."""


def _forecast_section(report: Report, data: PageData, pct: str) -> str:
    if not report.forecasts:
        return _no_data("chart-forecasts", "no open milestones to forecast.")
    shown = report.forecasts[:MAX_ROWS]
    titles = {r.milestone: r.title for r in report.milestones}
    now = report.now
    horizon = now + timedelta(days=730)
    moments = [m for f in shown for m in (f.p50, f.high, f.due) if m is not None]
    end = min(max(moments, default=now + timedelta(days=30)), horizon)
    start = min([now, *(m for m in moments if m < now)])
    start = max(start, now - timedelta(days=365))
    span = max((end - start).total_seconds(), 86400.0 * 14)
    end = start + timedelta(seconds=span * 1.04)
    x0, x1 = _X_FORECAST_TEAM + 76, 830.0

    def sx(at: datetime) -> float:
        at = min(max(at, start), end)
        return x0 + (x1 - x0) * (at - start).total_seconds() / (end - start).total_seconds()

    head, row = 34.0, 26.0
    bottom = head + row * len(shown)
    body: list[str] = []
    for tick, label in _date_ticks(start, end):
        x = sx(tick)
        body.append(_line(x, head - 6, x, bottom, stroke="#edf0f4"))
        body.append(_text(x, head - 10, label, text_anchor="middle", fill="#5b6372", font_size="11"))
    body.append(_text(8, head - 10, "milestone (rank order)", fill="#5b6372", font_weight="600"))
    body.append(_text(_X_FORECAST_TEAM, head - 10, "team", fill="#5b6372", font_weight="600"))
    body.append(_text(846, head - 10, "chance by due", fill="#5b6372", font_weight="600"))
    for i, found in enumerate(shown):
        body.extend(_forecast_row(found, head + i * row, row, sx, i % 2 == 1, pct, end, titles))
    today = sx(now)
    body.append(
        _line(today, head - 4, today, bottom, stroke="#1d2330", stroke_dasharray="3 3", class_="today")
    )
    body.append(_text(today + 3, bottom + 13, "today", fill="#1d2330", font_size="11"))
    legend_y = bottom + 30
    body.extend(
        [
            _rect(x0, legend_y - 8, 28, 8, rx=4, fill="#8fb0f3"),
            _text(x0 + 34, legend_y, f"P50 to P{pct} finish", fill="#5b6372", font_size="11"),
            _el("circle", None, cx=float(x0 + 150), cy=float(legend_y - 4), r="4", fill="#1d4ea8"),
            _text(x0 + 158, legend_y, "P50", fill="#5b6372", font_size="11"),
            _rect(x0 + 196, legend_y - 11, 3, 14, fill="#1d2330"),
            _text(x0 + 204, legend_y, "due date", fill="#5b6372", font_size="11"),
            _rect(x0 + 262, legend_y - 8, 28, 8, rx=4, fill="#e06666"),
            _text(x0 + 296, legend_y, "at risk of missing the due date", fill="#5b6372", font_size="11"),
        ]
    )
    at_risk = sum(1 for f in report.forecasts if f.at_risk)
    more = len(report.forecasts) - len(shown)
    caption = (
        f"Monte Carlo finish dates from each team's daily throughput: the bar runs from P50 to P{pct}, the "
        "black tick is the due date. "
        + (
            f"<strong>{at_risk} of {len(report.forecasts)} milestones are at risk</strong> (red rows)."
            if at_risk
            else "No milestone is at risk."
        )
        + (f" Showing the first {len(shown)}; {more} more are not drawn." if more else "")
    )
    svg = _svg("chart-forecasts", legend_y + 10, "Forecast finish ranges against due dates", body)
    return _figure(svg, caption, _forecast_table(report, pct))


def _forecast_row(
    found: Forecast,
    y: float,
    row: float,
    scale: Callable[[datetime], float],
    shade: bool,
    pct: str,
    end: datetime,
    titles: Mapping[Ref, str],
) -> list[str]:
    mid = y + row / 2
    classes = "row at-risk" if found.at_risk else "row"
    name = found.name or titles.get(found.milestone, found.key)
    tip = (
        f"{name} ({found.team}): due {_day(found.due)}, P50 {_day(found.p50)}, "
        f"P{pct} {_day(found.high)}, {plural(found.remaining, 'open task')}, "
        f"chance by due {_percent(found.chance_by_due)}\n{found.explanation}"
    )
    parts = [f'<g class="{classes}" data-milestone="{escape(str(found.milestone))}">']
    if found.at_risk:
        parts.append(_rect(0, y + 1, WIDTH, row - 2, fill="#fdecec", rx=4, class_="at-risk-band"))
    elif shade:
        parts.append(_rect(0, y, WIDTH, row, fill="#f7f8fa"))
    weight = "700" if found.at_risk else None
    # bold text runs about a tenth wider than `CHAR` assumes: its cut leaves it the same room
    room = _X_FORECAST_TEAM - 8 - 12
    parts.append(
        _text(8, mid + 4, _cut(name, room * 0.88 if found.at_risk else room), tip, font_weight=weight)
    )
    parts.append(_text(_X_FORECAST_TEAM, mid + 4, _cut(found.team, 70), tip, fill="#5b6372", font_size="11"))
    if found.p50 is None:
        if found.due is not None:  # drawn first: the note reads over it
            d = scale(found.due)
            parts.append(
                _rect(d - 1.5, mid - 9, 3, 18, f"due {_day(found.due)}", fill="#1d2330", class_="due")
            )
        # from the dates' column on (clear of the team's), haloed in the row's colour so the due tick and
        # the gridlines behind it do not cross its letters
        halo = "#fdecec" if found.at_risk else "#f7f8fa" if shade else "#fff"
        note = _cut(f"no forecast: {found.explanation}", _X_FORECAST_NOTE_WIDTH)
        parts.append(_text(_X_FORECAST_TEAM + 76, mid + 4, note, tip, fill="#8b95a7", font_style="italic",
                           stroke=halo, stroke_width="4", stroke_linejoin="round", paint_order="stroke",
                           class_="no-forecast"))  # fmt: skip
    else:
        a = scale(found.p50)
        b = scale(found.high or end)
        colour, dot = ("#e06666", "#b42318") if found.at_risk else ("#8fb0f3", "#1d4ea8")
        parts.append(_rect(a, mid - 5, max(b - a, 3.0), 10, tip, rx=5, fill=colour, class_="range"))
        if found.high is None or found.high > end:
            parts.append(_text(b + 4, mid + 4, "→", tip, fill=dot))
        parts.append(_el("circle", tip, cx=float(a), cy=float(mid), r="4", fill=dot, class_="p50"))
    if found.due is not None and found.p50 is not None:
        d = scale(found.due)
        parts.append(_rect(d - 1.5, mid - 9, 3, 18, f"due {_day(found.due)}", fill="#1d2330", class_="due"))
    chance = _percent(found.chance_by_due) if found.due is not None else "no due date"
    colour = "#b42318" if found.at_risk else "#39414f"
    parts.append(_text(846, mid + 4, chance, tip, fill=colour, font_weight="700" if found.at_risk else None))
    parts.append("</g>")
    return parts


_AT_RISK = '<span class="tag bad">at risk</span>'


def _forecast_table(report: Report, pct: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(f.name or f.key)}</td><td>{escape(f.team)}</td><td>{_day(f.due)}</td>"
        f"<td class=num>{f.remaining}</td><td>{_day(f.p50)}</td><td>{_day(f.high)}</td>"
        f"<td class=num>{_percent(f.chance_by_due)}</td>"
        f"<td>{_AT_RISK if f.at_risk else ''}</td></tr>"
        for f in report.forecasts
    )
    return (
        "<details><summary>Forecasts as a table</summary><table><thead><tr><th>milestone</th><th>team</th>"
        f"<th>due</th><th class=num>open tasks</th><th>P50</th><th>P{pct}</th>"
        "<th class=num>chance by due</th>"
        "<th>at risk</th></tr></thead><tbody>" + rows + "</tbody></table></details>"
    )


# --- warnings -----------------------------------------------------------------------------------------


def _warnings_section(report: Report) -> str:
    if not report.warnings and not report.item_warnings:
        return "<p>None: every open milestone moves a key result and every open task has a milestone.</p>"
    items = []
    for warning in report.warnings:
        listed = ", ".join(warning.items[:12]) + (" …" if len(warning.items) > 12 else "")
        items.append(
            f'<li><span class="tag warn">{escape(warning.kind.replace("_", " "))}</span> '
            f"{escape(warning.message)}: {escape(listed)}</li>"
        )
    for kind, found in item_warning_groups(report.item_warnings):
        label = report.warning_labels.get(kind)
        where = f", labelled <code>{escape(label)}</code> in their trackers" if label else ""
        rows = "".join(
            f"<li>{escape(w.name)} ({escape(w.team)}): {escape(w.reason)}</li>" for w in found[:12]
        )
        more = f"<li>… and {len(found) - 12} more</li>" if len(found) > 12 else ""
        items.append(
            f'<li><span class="tag warn">{escape(kind.replace("_", " "))}</span> '
            f"{escape(ITEM_WARNING_TITLES[kind])}{where}:<ul>{rows}{more}</ul></li>"
        )
    return '<ul class="warnings">' + "".join(items) + "</ul>"


__all__ = ["CHART_IDS", "MilestoneFacts", "PageData", "page_data", "render_html"]
