"""The HTML report's flow charts per team: present for every team, self-contained, and laid out so that
in headless Chromium at 1,400 px no label overlaps another and none is cut off by its chart's edge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.analytics import Snapshot, analyse
from bridge.analytics import flow as flow_module
from bridge.config import AnalyticsConfig
from bridge.domain import StatusCategory, StatusChange, Task
from bridge.report.flow_charts import FLOW_KINDS, chart_id
from bridge.report.html import render_html
from tests.cli.test_report_html import NOW, Org, artifacts_dir, browser, org, write_html

__all__ = ["browser", "org"]  # the fixtures, used by name

TEAMS = ["mobile", "payments", "search"]

LAYOUT = """
() => [...document.querySelectorAll('svg.chart[id^="chart-flow-"]')].map(svg => {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => {
        const r = t.getBoundingClientRect();
        return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    });
    return {id: svg.id, team: svg.dataset.team, width: box.width, height: box.height,
            left: box.left, right: box.right, top: box.top, bottom: box.bottom,
            drawn: svg.querySelectorAll('rect, line, circle, polygon').length,
            caption: svg.closest('figure')?.querySelector('figcaption')?.textContent ?? '', texts};
})
"""


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    slack = 0.5  # sub-pixel rounding between neighbours that merely touch
    return (
        a["left"] < b["right"] - slack
        and b["left"] < a["right"] - slack
        and a["top"] < b["bottom"] - slack
        and b["top"] < a["bottom"] - slack
    )


def test_every_team_has_every_flow_chart(org: Org, run_cli: Any, tmp_path: Path) -> None:
    page = write_html(org, run_cli, tmp_path / "report.html")
    assert 'href="#flow"' in page and '<section id="flow">' in page
    for number, team in enumerate(TEAMS, start=1):
        assert f'<div class="flow-team" data-team="{team}">' in page
        for kind in FLOW_KINDS:
            assert f'<svg data-team="{team}" class="chart" id="{chart_id(kind, number)}"' in page, (
                team,
                kind,
            )
    assert "<script" not in page and 'href="http' not in page


def test_an_empty_store_gives_a_no_data_note_for_the_flow() -> None:
    page = render_html(analyse(Snapshot(), AnalyticsConfig(), NOW, flow=True))
    assert (
        '<p class="no-data" data-chart="chart-flow-scatter-1">No data: no work in the store yet.</p>' in page
    )


def test_flow_charts_render_without_overlapping_or_cut_labels(
    org: Org, run_cli: Any, tmp_path: Path, browser: Any, record_property: Any
) -> None:
    target = tmp_path / "report.html"
    write_html(org, run_cli, target)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(target.as_uri(), wait_until="load")
        charts = page.evaluate(LAYOUT)
        found = {(c["team"], c["id"].rsplit("-", 1)[0].removeprefix("chart-flow-")) for c in charts}
        assert found == {(team, kind) for team in TEAMS for kind in FLOW_KINDS}
        for chart in charts:
            where = f"{chart['id']} ({chart['team']})"
            assert chart["width"] >= 400 and chart["height"] > 150, where
            assert chart["drawn"] > 5 and len(chart["caption"]) > 40, where
            texts = chart["texts"]
            assert texts, where
            for label in texts:
                inside = (
                    label["left"] >= chart["left"] - 0.5
                    and label["right"] <= chart["right"] + 0.5
                    and label["top"] >= chart["top"] - 0.5
                    and label["bottom"] <= chart["bottom"] + 0.5
                )
                assert inside, f"{where}: {label['text']!r} is cut off by the chart's edge"
            for i, one in enumerate(texts):
                for other in texts[i + 1 :]:
                    assert not _overlaps(one, other), f"{where}: {one['text']!r} overlaps {other['text']!r}"
        assert requested == [target.as_uri()], "nothing but the page loads"
        shot = artifacts_dir() / "report-flow.png"
        page.locator("#flow").screenshot(path=str(shot))
        record_property("screenshot", str(shot))
    finally:
        page.close()


def test_tracker_text_in_the_flow_charts_is_escaped() -> None:
    hostile = '<script>alert(1)</script> & "x"'
    started = NOW - timedelta(days=3)
    task = Task("jira", "1", "PAY-1", hostile, team="<b>team</b>", work_type="<i>api</i>",
                raw_status="<img src=x>", category=StatusCategory.IN_PROGRESS)  # fmt: skip
    change = StatusChange("jira", "c1", "1", started, None, "<img src=x>", None, StatusCategory.IN_PROGRESS)
    page = render_html(
        analyse(Snapshot(tasks=[task], status_changes=[change]), AnalyticsConfig(), NOW, flow=True)
    )
    assert "<script>alert" not in page and "<img src=x>" not in page and "<b>team</b>" not in page
    assert "PAY-1 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;: 3.0 d in flight" in page


def test_the_ageing_caption_agrees_in_number() -> None:
    from bridge.report.flow_charts import _beyond_text

    assert _beyond_text(1, 6) == "1 of the 6 is older than its type's 85th percentile: look at it first."
    assert _beyond_text(2, 6).startswith("2 of the 6 are older than their type's")
    assert _beyond_text(0, 1) == "None of the 1 is older than its type's 85th percentile."


def test_a_scatter_dot_standing_for_several_tasks_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_module, "SCATTER_DOTS", 1)
    tasks, changes = [], []
    for n, cycle in enumerate((2.0, 2.01, 6.0)):
        finish = NOW - timedelta(days=1)
        tasks.append(
            Task("jira", str(n), f"PAY-{n}", f"Task {n}", team="payments", category=StatusCategory.DONE)
        )
        changes += [
            StatusChange("jira", f"s{n}", str(n), finish - timedelta(days=cycle), None, "Doing", None,
                         StatusCategory.IN_PROGRESS),
            StatusChange("jira", f"d{n}", str(n), finish, "Doing", "Done", StatusCategory.IN_PROGRESS,
                         StatusCategory.DONE),
        ]  # fmt: skip
    page = render_html(
        analyse(Snapshot(tasks=tasks, status_changes=changes), AnalyticsConfig(), NOW, flow=True)
    )
    assert page.count('class="dot"') == 2
    assert "PAY-1 Task 1: 2.0 d, finished" in page
    assert "the slowest of 2 tasks finished that day at about that cycle time" in page
    assert "PAY-0 Task 0" not in page and "PAY-2 Task 2: 6.0 d, finished" in page
    assert "of the 3 cycle times" in page and "share one dot, at the slowest of them" in page
