"""`bridge report --html FILE`: the self-contained HTML page with charts, checked as text and, when
Chromium is installed, rendered in headless Chromium (a full-page screenshot is kept as a test artifact).

Outside CI a missing Chromium (or playwright) skips the browser test with the reason; with `CI` set it
fails, since CI installs Chromium (see .ci/run).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.analytics import Snapshot, analyse
from bridge.config import AnalyticsConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import (
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Ref,
    RemotePage,
    StatusCategory,
    StatusChange,
    Task,
)
from bridge.report.html import CHART_IDS, PageData, render_html
from bridge.store import Store
from bridge.store.pages import save_page
from tests.cli.test_report import history

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "acme-jira"  # the source `history` writes
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
TODO, DOING, WAITING, DONE = (
    StatusCategory.TODO,
    StatusCategory.IN_PROGRESS,
    StatusCategory.WAITING,
    StatusCategory.DONE,
)
SCRIPT_TITLE = "Checkout <script>alert('x')</script> & \"quotes\""

CONFIG = """
[trackers.acme-jira]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "JIRA_EMAIL"
token_env = "JIRA_TOKEN"
projects = ["PAY"]
status_map = { "To Do" = "todo", "In Progress" = "in_progress", "Code Review" = "in_progress", \
"Blocked" = "waiting", "Waiting for QA" = "waiting", "Done" = "done" }

[[okrs.objectives]]
id = "O1"
title = "Make checkout effortless"
weight = 2

[[okrs.objectives.key_results]]
id = "KR1"
title = "Raise checkout conversion to 4%"
target = 4.0
current = 3.1
start = 2.5
unit = "%"

[[okrs.objectives.key_results]]
id = "KR2"
title = "Payments never fail twice"

[[okrs.objectives]]
id = "O2"
title = "Find anything in a second"

[[okrs.objectives.key_results]]
id = "KR3"
title = "Search p95 latency under 1 s"

[[okrs.objectives.key_results]]
id = "KR4"
title = "Mobile app rated 4.5"
"""

# (key, team, value, due in days or None, title, open tasks, done tasks, key result or None, done?)
MILESTONES: list[tuple[str, str, float | None, int | None, str, int, int, str | None, bool]] = [
    ("PAY-1", "payments", 13.0, 20, "Card payment retries", 6, 4, "KR2", False),
    ("PAY-2", "payments", 8.0, 75, SCRIPT_TITLE, 3, 5, "KR1", False),
    ("PAY-3", "payments", None, 120, "PCI compliance evidence pack", 4, 1, None, False),
    ("PAY-4", "payments", 5.0, None, "Refund self-service", 2, 6, "KR1", False),
    ("SRCH-1", "search", 11.0, 45, "Typo-tolerant search", 4, 6, "KR3", False),
    ("SRCH-2", "search", 3.0, 10, "Search index sharding", 7, 1, "KR3", False),
    ("SRCH-3", "search", 2.0, None, "Saved searches", 1, 2, None, False),
    ("MOB-1", "mobile", 9.0, 60, "Offline basket on mobile", 3, 3, "KR4", False),
    ("MOB-2", "mobile", None, 200, "Dark mode", 2, 0, "KR4", False),
    ("MOB-3", "mobile", 4.0, -30, "App store screenshots", 0, 4, "KR4", True),
]

# team -> (work type, count finished in the window, cycle-time range in days)
WORK: dict[str, list[tuple[str, int, tuple[float, float]]]] = {
    "payments": [("api", 14, (0.8, 3.5)), ("compliance", 9, (6.0, 15.0)), ("bug", 8, (0.3, 2.5))],
    "search": [("ui", 10, (1.0, 3.0)), ("infra", 9, (1.5, 4.5))],
    "mobile": [("feature", 12, (2.0, 6.0)), ("bug", 10, (0.5, 2.0))],
}


def organisation(seed: int = 7) -> RemotePage:
    """Three teams' milestones, tasks and four months of history; payments' compliance work is slow."""
    rng = random.Random(seed)
    milestones = [
        Milestone(
            SOURCE, key, key, title, team=team, value=value,
            due=NOW + due * DAY if due is not None else None,
            raw_status="Done" if done else "In Progress", category=DONE if done else DOING,
            created=NOW - 150 * DAY,
        )
        for key, team, value, due, title, _, _, _, done in MILESTONES
    ]  # fmt: skip
    parents = {team: [m for m in MILESTONES if m[1] == team] for team in WORK}
    tasks: list[Task] = []
    changes: list[StatusChange] = []
    number = 0
    for team, kinds in WORK.items():
        for work_type, count, (low, high) in kinds:
            for _ in range(count):
                number += 1
                key = f"T-{number}"
                parent = rng.choice(parents[team])[0]
                end = NOW - rng.uniform(1, 80) * DAY
                cycle = rng.uniform(low, high) * DAY
                start = end - cycle
                steps = [(start - 2 * DAY, "To Do", TODO), (start, "In Progress", DOING)]
                if rng.random() < 0.6:
                    steps.append((start + cycle * 0.5, "Code Review", DOING))
                if work_type == "compliance" or rng.random() < 0.3:
                    steps.append((start + cycle * 0.7, rng.choice(["Blocked", "Waiting for QA"]), WAITING))
                steps.append((end, "Done", DONE))
                tasks.append(
                    Task(
                        SOURCE, key, key, f"{work_type} task {number}", milestone_id=parent, team=team,
                        work_type=work_type, raw_status="Done", category=DONE, created=start - 2 * DAY,
                        updated=end, started=start, done=end,
                    )
                )  # fmt: skip
                changes += history(key, *steps)
    for key, team, _, _, _, open_count, _, _, _ in MILESTONES:
        for i in range(open_count):
            number += 1
            task_key = f"T-{number}"
            work_type = WORK[team][i % len(WORK[team])][0]
            started = i % 3 != 2
            status, category = ("In Progress", DOING) if started else ("To Do", TODO)
            if started and i % 4 == 1:
                status, category = "Blocked", WAITING
            steps = [(NOW - 20 * DAY, "To Do", TODO)]
            if started:
                steps.append((NOW - rng.uniform(1, 18) * DAY, "In Progress", DOING))
                if category is WAITING:
                    steps.append((NOW - 0.5 * DAY, "Blocked", WAITING))
            tasks.append(
                Task(
                    SOURCE, task_key, task_key, f"Open {work_type} work {number}", milestone_id=key,
                    team=team, work_type=work_type, raw_status=status, category=category,
                    created=NOW - 20 * DAY, updated=NOW - DAY,
                )
            )  # fmt: skip
            changes += history(task_key, *steps)
    tasks.append(Task(SOURCE, "T-999", "T-999", "Loose end", team="search", raw_status="To Do"))
    links = [
        KeyResultLink(Ref(SOURCE, key), Ref("config", kr), LinkOrigin.TRACKER)
        for key, _, _, _, _, _, _, kr, _ in MILESTONES
        if kr is not None
    ]
    return RemotePage(
        SOURCE, "issues", milestones=milestones, tasks=tasks, status_changes=changes, links=links
    )


@dataclass
class Org:
    config: Path
    store_url: str

    def cli(self, run_cli: Any, *args: str) -> Any:
        return run_cli(*args, "--config", str(self.config))


def make_org(folder: Path, *, empty: bool = False) -> Org:
    """A config and an SQLite store in `folder`, seeded with `organisation()` unless `empty`."""
    path = folder / "bridge.toml"
    url = f"sqlite:///{folder / 'bridge.db'}"
    path.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
    store = Store.open(load_config(path, ConnectorRegistry.default()))
    try:
        if not empty:
            with store.write() as conn:
                save_page(conn, organisation(), now=NOW)
    finally:
        store.close()
    return Org(path, url)


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return make_org(tmp_path)


def write_html(org: Org, run_cli: Any, target: Path, *extra: str) -> str:
    result = org.cli(run_cli, "report", "--html", str(target), *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.strip() == str(target)
    return target.read_text(encoding="utf-8")


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("BRIDGE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the page as text ---------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_holds_every_chart(org: Org, run_cli: Any, tmp_path: Path) -> None:
    page = write_html(org, run_cli, tmp_path / "report.html")
    assert page.startswith("<!doctype html>")
    for chart in CHART_IDS:
        assert re.search(rf'<svg class="chart" id="{chart}"', page), chart
    for external in ('src="http', "src='http", 'href="http', "@import", "url(http", "<link", "<img"):
        assert external not in page, external
    assert "<script" not in page
    assert "Milestone Bridge report" in page and "Generated " in page and " UTC" in page
    assert f"store <code>sqlite:///{tmp_path / 'bridge.db'}</code>" in page
    for anchor in ("#ranks", "#okrs", "#cycle-times", "#time-in-status", "#forecasts", "#warnings"):
        assert f'href="{anchor}"' in page
    # how the forecasts moved and the milestones reached follow the forecasts; the drafts come last
    order = re.findall(r'<section id="([\w-]+)">', page)
    assert order.index("forecasts") + 1 == order.index("forecast-history"), order
    assert order.index("forecast-history") + 1 == order.index("milestones-reached"), order
    assert order[-1] == "okr-drafts", order
    assert 'class="row bottleneck"' in page, "payments' compliance work is flagged"
    assert 'class="row at-risk"' in page
    assert 'class="row unscored"' in page and "unscored: no value set" in page


def test_tracker_titles_are_escaped(org: Org, run_cli: Any, tmp_path: Path) -> None:
    page = write_html(org, run_cli, tmp_path / "report.html")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page


def test_the_store_password_is_redacted() -> None:
    page = render_html(analyse(Snapshot(), AnalyticsConfig(), NOW), store_url="postgresql://u:s3cret@db/x")
    assert "s3cret" not in page and "postgresql://u:***@db/x" in page


def test_team_option_draws_one_teams_share(org: Org, run_cli: Any, tmp_path: Path) -> None:
    page = write_html(org, run_cli, tmp_path / "search.html", "--team", "search")
    assert "team search" in page
    assert "Typo-tolerant search" in page and "Card payment retries" not in page
    assert 'data-team="payments"' not in page and 'data-team="search"' in page


def test_an_empty_store_gives_no_data_notes_instead_of_charts(run_cli: Any, tmp_path: Path) -> None:
    org = make_org(tmp_path, empty=True)
    target = tmp_path / "empty.html"
    result = org.cli(run_cli, "report", "--html", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(target) and "bridge pull" in result.stderr
    page = target.read_text(encoding="utf-8")
    for chart in CHART_IDS:
        if chart == "chart-okrs":
            continue  # the config's objectives are drawn even before anything is pulled
        assert f'<svg class="chart" id="{chart}"' not in page
        assert f'<p class="no-data" data-chart="{chart}">No data: ' in page
    assert "no linked milestones" in page
    assert "run `bridge pull` first" in page


def test_render_html_without_page_data_still_draws_every_chart(org: Org) -> None:
    from bridge.store.snapshot import load_snapshot

    store = Store(org.store_url)
    try:
        snapshot = load_snapshot(store)
    finally:
        store.close()
    page = render_html(
        analyse(snapshot, load_config(org.config, ConnectorRegistry.default()), NOW), PageData()
    )
    for chart in CHART_IDS:
        assert f'id="{chart}"' in page


def test_json_and_html_together_keep_stdout_json(org: Org, run_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "both.html"
    result = org.cli(run_cli, "report", "--json", "--html", str(target))
    assert result.exit_code == 0 and result.stdout.lstrip().startswith("{")
    assert str(target) in result.stderr and target.exists()


def test_an_unwritable_target_is_a_user_error(org: Org, run_cli: Any, tmp_path: Path) -> None:
    result = org.cli(run_cli, "report", "--html", str(tmp_path / "missing" / "report.html"))
    assert result.exit_code == 2 and "cannot write the HTML report" in result.stderr
    assert "Traceback" not in result.stderr


# --- the page in headless Chromium ----------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_the_page_renders_in_chromium_offline(
    org: Org, run_cli: Any, tmp_path: Path, browser: Any, record_property: Any
) -> None:
    began = time.monotonic()
    target = tmp_path / "report.html"
    write_html(org, run_cli, target)
    url = target.as_uri()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requested: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url, wait_until="load")
    try:
        for chart in CHART_IDS:
            found = page.evaluate(
                """(id) => {
                    const svg = document.getElementById(id);
                    if (!svg || svg.tagName.toLowerCase() !== 'svg') return null;
                    const box = svg.getBoundingClientRect();
                    return {width: box.width, height: box.height,
                            drawn: svg.querySelectorAll('rect, path, line, circle').length,
                            caption: svg.closest('figure')?.querySelector('figcaption')?.textContent ?? ''};
                }""",
                chart,
            )
            assert found is not None, f"{chart} missing"
            assert found["width"] > 0 and found["height"] > 0, (chart, found)
            assert found["drawn"] > 0, chart
            assert len(found["caption"]) > 20, chart
        highlighted = page.evaluate(
            """() => [...document.querySelectorAll('#chart-cycle-times g.row.bottleneck')].map(g => ({
                   team: g.dataset.team, type: g.dataset.workType,
                   band: getComputedStyle(g.querySelector('rect.bottleneck-band')).fill}))"""
        )
        assert {"team": "payments", "type": "compliance"} in [
            {"team": h["team"], "type": h["type"]} for h in highlighted
        ]
        assert all(h["band"] not in ("", "none") for h in highlighted)
        assert page.locator("#chart-forecasts g.row.at-risk").count() > 0
        assert page.locator("#chart-ranks g.row.unscored").count() == 2
        title = page.locator("#chart-ranks text", has_text="Checkout <script>").first
        assert title.count() == 1, "the escaped title shows as text"
        # the contents' numbers (10 and up too) sit inside their entries, which do not overlap
        entries = page.evaluate(
            """() => [...document.querySelectorAll('nav.toc li')].map(li => {
                   const b = li.getBoundingClientRect();
                   return {left: b.left, right: b.right, top: b.top, bottom: b.bottom,
                           inside: getComputedStyle(li).listStylePosition === 'inside'};
               })"""
        )
        assert len(entries) >= 10 and all(e["inside"] for e in entries)
        for i, one in enumerate(entries):
            for other in entries[i + 1 :]:
                apart = one["right"] <= other["left"] or other["right"] <= one["left"]
                assert apart or one["bottom"] <= other["top"] or other["bottom"] <= one["top"], (one, other)
        assert dialogs == [], "no script ran"
        assert requested == [url], f"only the page itself loads: {requested}"
        shot = artifacts_dir() / "report-html.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        record_property("screenshot", str(shot))
    finally:
        page.close()
    record_property("browser_seconds", round(time.monotonic() - began, 2))
