"""`bridge report` and `bridge okr suggest/confirm` over a store seeded with hand-made tracker pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.config import load_config
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
from bridge.store import Store
from bridge.store.models import MilestoneKeyResultRow
from bridge.store.pages import save_page
from bridge.store.snapshot import load_snapshot

SOURCE = "acme-jira"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
SECTIONS = [
    "milestones",
    "okrs",
    "work_types",
    "bottlenecks",
    "time_in_status",
    "forecasts",
    "warnings",
    "item_warnings",
    "flow",
    "okr_drafts",
    "forecast_history",
    "milestones_reached",
]

CONFIG = """
[trackers.acme-jira]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "JIRA_EMAIL"
token_env = "JIRA_TOKEN"
projects = ["PAY"]
status_map = { "To Do" = "todo", "In Progress" = "in_progress", "Done" = "done" }

[[okrs.objectives]]
id = "O1"
title = "Make checkout effortless"

[[okrs.objectives.key_results]]
id = "KR1"
title = "Raise checkout conversion"
keywords = ["payment", "retries"]

[[okrs.objectives.key_results]]
id = "KR2"
title = "Cut search latency"
"""


@dataclass
class Seeded:
    config: Path
    store_url: str

    def cli(self, run_cli: Any, *args: str) -> Any:
        return run_cli(*args, "--config", str(self.config))

    def links(self) -> dict[tuple[str, str], str]:
        store = Store(self.store_url)
        table = MilestoneKeyResultRow.__table__  # type: ignore[attr-defined]
        try:
            with store.read() as conn:
                rows = conn.execute(select(table.c.milestone_id, table.c.kr_id, table.c.origin)).all()
        finally:
            store.close()
        return {(r.milestone_id, r.kr_id): r.origin for r in rows}

    def save(self, page: RemotePage) -> None:
        store = Store(self.store_url)
        try:
            with store.write() as conn:
                save_page(conn, page, now=NOW)
        finally:
            store.close()


def milestone(key: str, team: str, **fields: Any) -> Milestone:
    fields.setdefault("title", f"Milestone {key}")
    return Milestone(source=SOURCE, remote_id=key, key=key, team=team, **fields)


def finished_task(key: str, team: str, work_type: str, cycle_days: float, parent: str) -> list[Any]:
    """A done task and its history: started `cycle_days` before it finished, two days ago."""
    end = NOW - 2 * DAY
    start = end - cycle_days * DAY
    task = Task(
        SOURCE, key, key, f"Task {key}", milestone_id=parent, team=team, work_type=work_type,
        raw_status="Done", category=DONE, created=start - DAY, updated=end, done=end,
    )  # fmt: skip
    return [
        task,
        *history(key, (start - DAY, "To Do", TODO), (start, "In Progress", DOING), (end, "Done", DONE)),
    ]


def history(key: str, *steps: tuple[datetime, str, StatusCategory]) -> list[StatusChange]:
    changes, previous = [], None
    for i, (at, status, category) in enumerate(steps):
        changes.append(
            StatusChange(
                SOURCE, f"{key}-{i}", key, at, previous[0] if previous else None, status,
                previous[1] if previous else None, category,
            )
        )  # fmt: skip
        previous = (status, category)
    return changes


def first_page() -> RemotePage:
    milestones = [
        milestone("PAY-1", "core", value=8.0, category=DOING, title="Faster search results"),
        milestone("PAY-2", "core", value=5.0, title="Payment retries at checkout"),
        milestone("PAY-3", "web", value=3.0, due=NOW + 400 * DAY),
        milestone("PAY-4", "web", title="Old release", category=DONE, value=2.0),
    ]
    items: list[Any] = []
    for i, days in enumerate((1, 2, 3, 4, 5, 6)):
        items += finished_task(f"PAY-1{i}", "core", "api", days, "PAY-1")
    for i, days in enumerate((1, 1.5, 2, 2.5, 3)):
        items += finished_task(f"PAY-3{i}", "web", "ui", days, "PAY-3")
    open_task = Task(
        SOURCE, "PAY-50", "PAY-50", "Retry the card", milestone_id="PAY-2", team="core",
        work_type="api", raw_status="In Progress", category=DOING, updated=NOW - DAY,
    )  # fmt: skip
    items += [
        open_task,
        *history("PAY-50", (NOW - 3 * DAY, "To Do", TODO), (NOW - DAY, "In Progress", DOING)),
    ]
    items.append(Task(SOURCE, "PAY-60", "PAY-60", "Loose end", team="web", raw_status="To Do"))
    return RemotePage(
        SOURCE,
        "issues",
        milestones=milestones,
        tasks=[i for i in items if isinstance(i, Task)],
        status_changes=[i for i in items if isinstance(i, StatusChange)],
        links=[KeyResultLink(Ref(SOURCE, "PAY-1"), Ref("config", "KR2"), LinkOrigin.TRACKER)],
    )


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[Seeded]:
    path = tmp_path / "bridge.toml"
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    path.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
    store = Store.open(load_config(path, ConnectorRegistry.default()))
    store.close()
    yield Seeded(path, url)


@pytest.fixture
def seeded(empty_store: Seeded) -> Seeded:
    empty_store.save(first_page())
    return empty_store


def report_json(seeded: Seeded, run_cli: Any, *extra: str) -> dict[str, Any]:
    result = seeded.cli(run_cli, "report", "--json", *extra)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_report_json_holds_every_section_with_the_seeded_figures(seeded: Seeded, run_cli: Any) -> None:
    document = report_json(seeded, run_cli)
    assert list(document) == SECTIONS
    # value strategy: PAY-1 (8), PAY-2 (5), PAY-3 (3); PAY-4 is done and not ranked
    assert [m["key"] for m in document["milestones"]] == ["PAY-1", "PAY-2", "PAY-3"]
    assert document["milestones"][0]["key_results"] == [
        {"id": "config:KR2", "title": "Cut search latency", "origin": "tracker"}
    ]
    assert document["milestones"][0]["explanation"].startswith("#1 of 3 in the portfolio")
    kr2 = document["okrs"]["objectives"][0]["key_results"][1]
    assert kr2["id"] == "config:KR2" and [m["key"] for m in kr2["milestones"]] == ["PAY-1"]
    api = next(w for w in document["work_types"] if w["work_type"] == "api")
    # cycle times 1..6 days: median 3.5; one task in progress
    assert api["team"] == "core" and api["finished"] == 6 and api["in_progress"] == 1
    assert api["cycle_time"]["median_days"] == 3.5
    assert {f["key"] for f in document["forecasts"]} == {"PAY-1", "PAY-2", "PAY-3"}
    kinds = {w["kind"] for w in document["warnings"]}
    assert {"milestone_without_key_result", "task_without_milestone"} <= kinds
    # PAY-2's title resembles KR1's keywords: a suggestion, which does not count as a link
    assert [(s["milestone"], s["key_result"]) for s in document["okrs"]["suggestions"]] == [
        (f"{SOURCE}:PAY-2", "config:KR1")
    ]


def test_report_prints_every_section_as_tables(seeded: Seeded, run_cli: Any) -> None:
    result = seeded.cli(run_cli, "report")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for heading in (
        "Milestones by value",
        "Objectives and key results",
        "Work types",
        "Bottlenecks",
        "Time in status",
        "Forecasts",
        "Warnings",
    ):
        assert heading in out
    # how the forecasts moved and the milestones reached follow the forecasts, before the warnings
    order = ["\nForecasts  ", "\nHow the forecasts moved", "\nMilestones reached", "\nWarnings"]
    assert [out.index(h) for h in order] == sorted(out.index(h) for h in order), out
    assert "(linked by " in out, "a milestone's key result says how it was linked"
    assert out.index("PAY-1 Faster search results") < out.index("PAY-2 Payment retries")
    assert "Make checkout effortless" in out and "Cut search latency" in out
    # "title: 40%": the progress stands apart from the figures a title may hold itself
    assert re.search(r"Make checkout effortless: (\d+%|n/a)", out), out
    assert re.search(r"Cut search latency[^\n]*: (\d+%|n/a)", out), out
    assert "bridge okr confirm" in out  # the pending suggestion is pointed out
    assert "1 open task in team web belongs to no milestone: PAY-60" in out


def test_team_option_keeps_one_teams_share(seeded: Seeded, run_cli: Any) -> None:
    document = report_json(seeded, run_cli, "--team", "web")
    assert [m["key"] for m in document["milestones"]] == ["PAY-3"]
    assert document["milestones"][0]["rank"] == 3, "ranks keep their portfolio position"
    assert {w["team"] for w in document["work_types"]} == {"web"}
    assert {f["key"] for f in document["forecasts"]} == {"PAY-3"}
    assert all(w["team"] == "web" for w in document["warnings"] + document["time_in_status"])
    assert [f["team"] for f in document["flow"]] == ["web"]
    assert document["okrs"] == {"objectives": [], "suggestions": []}
    core = report_json(seeded, run_cli, "--team", "core")
    assert [o["key_results"][0]["id"] for o in core["okrs"]["objectives"]] == ["config:KR2"]
    text = seeded.cli(run_cli, "report", "--team", "web")
    assert text.exit_code == 0 and "for team web" in text.stdout and "PAY-1 " not in text.stdout


def test_unknown_team_is_a_user_error_naming_the_teams(seeded: Seeded, run_cli: Any) -> None:
    result = seeded.cli(run_cli, "report", "--team", "mobile")
    assert result.exit_code == 2
    assert "no team named 'mobile'" in result.stderr and "core, web" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_store_says_to_pull_first(empty_store: Seeded, run_cli: Any) -> None:
    result = empty_store.cli(run_cli, "report")
    assert result.exit_code == 0
    assert "run `bridge pull` first" in result.stdout
    as_json = empty_store.cli(run_cli, "report", "--json")
    assert as_json.exit_code == 0 and "bridge pull" in as_json.stderr
    document = json.loads(as_json.stdout)
    assert list(document) == SECTIONS and document["milestones"] == []


def test_okr_suggest_stores_suggestions_once(seeded: Seeded, run_cli: Any) -> None:
    first = seeded.cli(run_cli, "okr", "suggest", "--json")
    assert first.exit_code == 0, first.stderr
    document = json.loads(first.stdout)
    (suggestion,) = document["suggestions"]
    assert suggestion["milestone"] == f"{SOURCE}:PAY-2" and suggestion["key_result"] == "config:KR1"
    assert {"payment", "retry"} <= set(suggestion["shared_terms"]) and 0 < suggestion["score"] <= 1
    assert document["stored"] == {"added": 1, "removed": 0}
    assert seeded.links()[("PAY-2", "KR1")] == "suggested"
    again = json.loads(seeded.cli(run_cli, "okr", "suggest", "--json").stdout)
    assert again["stored"] == {"added": 0, "removed": 0}, "suggesting twice stores nothing new"
    text = seeded.cli(run_cli, "okr", "suggest")
    assert text.exit_code == 0 and "PAY-2" in text.stdout and "Raise checkout conversion (KR1)" in text.stdout


def test_confirm_links_and_the_report_counts_it(seeded: Seeded, run_cli: Any) -> None:
    seeded.cli(run_cli, "okr", "suggest")
    result = seeded.cli(run_cli, "okr", "confirm", "PAY-2", "KR1")
    assert result.exit_code == 0, result.stderr
    assert (
        "PAY-2 Payment retries at checkout (acme-jira:PAY-2) -> Raise checkout conversion (KR1): confirmed "
        "(was suggested)" in result.stdout
    )
    assert seeded.links()[("PAY-2", "KR1")] == "confirmed"
    document = report_json(seeded, run_cli)
    pay2 = next(m for m in document["milestones"] if m["key"] == "PAY-2")
    assert pay2["key_results"] == [
        {"id": "config:KR1", "title": "Raise checkout conversion", "origin": "confirmed"}
    ]
    assert document["okrs"]["suggestions"] == []
    again = seeded.cli(run_cli, "okr", "confirm", f"{SOURCE}:PAY-3", "config:KR1")
    assert again.exit_code == 0 and again.stdout.endswith(": confirmed\n")
    twice = seeded.cli(run_cli, "okr", "confirm", "PAY-3", "KR1")
    assert "already confirmed" in twice.stdout


def test_confirm_names_what_it_could_not_find(seeded: Seeded, run_cli: Any) -> None:
    milestone_missing = seeded.cli(run_cli, "okr", "confirm", "NOPE-1", "KR1")
    assert milestone_missing.exit_code == 2
    assert "no milestone 'NOPE-1' in the store" in milestone_missing.stderr
    kr_missing = seeded.cli(run_cli, "okr", "confirm", "PAY-2", "KR9")
    assert kr_missing.exit_code == 2
    assert "no key result 'KR9'" in kr_missing.stderr and "KR1, KR2" in kr_missing.stderr
    both = seeded.cli(run_cli, "okr", "confirm", "NOPE-1", "jira:KR1")
    assert both.exit_code == 2 and "NOPE-1" in both.stderr and "'jira:KR1'" in both.stderr
    assert "Traceback" not in both.stderr
    assert ("PAY-2", "KR9") not in seeded.links()


def test_confirmed_links_survive_later_pulls(seeded: Seeded, run_cli: Any) -> None:
    assert seeded.cli(run_cli, "okr", "confirm", "PAY-2", "KR1").exit_code == 0
    # The tracker now links PAY-2 to KR2 and drops PAY-1's link: the tracker's links follow it, the
    # admin's confirmation stays.
    page = first_page()
    seeded.save(
        RemotePage(
            SOURCE,
            "issues",
            milestones=page.milestones,
            links=[KeyResultLink(Ref(SOURCE, "PAY-2"), Ref("config", "KR2"), LinkOrigin.TRACKER)],
        )
    )
    assert seeded.links() == {("PAY-2", "KR1"): "confirmed", ("PAY-2", "KR2"): "tracker"}
    document = report_json(seeded, run_cli)
    pay2 = next(m for m in document["milestones"] if m["key"] == "PAY-2")
    assert pay2["key_results"] == [
        {"id": "config:KR1", "title": "Raise checkout conversion", "origin": "confirmed"},
        {"id": "config:KR2", "title": "Cut search latency", "origin": "tracker"},
    ]


def test_load_snapshot_returns_what_was_saved(seeded: Seeded) -> None:
    page = first_page()
    store = Store(seeded.store_url)
    try:
        snapshot = load_snapshot(store)
        recent = load_snapshot(store, since=NOW - DAY)
    finally:
        store.close()
    assert sorted(snapshot.milestones, key=lambda m: m.key) == sorted(page.milestones, key=lambda m: m.key)
    assert sorted(snapshot.tasks, key=lambda t: t.key) == sorted(page.tasks, key=lambda t: t.key)
    # the histories were pulled with their flow facts, which the analysis reads instead
    assert not snapshot.status_changes
    assert set(snapshot.flow_facts) == {(SOURCE, c.item_id) for c in page.status_changes}
    assert snapshot.links == [KeyResultLink(Ref(SOURCE, "PAY-1"), Ref("config", "KR2"), LinkOrigin.TRACKER)]
    # tasks done before `since` keep their rows but not their facts; open ones keep both
    assert len(recent.tasks) == len(snapshot.tasks)
    assert {key for _, key in recent.flow_facts} == {"PAY-50"}


def test_a_confirmed_link_survives_a_full_pull_from_the_sandbox(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge_sandbox.generate import build
    from bridge_sandbox.generate_jira import render_jira
    from bridge_sandbox.jira import JiraEmulator
    from bridge_sandbox.server import SandboxServer
    from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table

    seed = render_jira(build(seed=21, per_tracker=20, now=datetime(2026, 6, 1, tzinfo=UTC)))
    server = SandboxServer(JiraEmulator.from_search(seed, flavour="cloud")).start()
    try:
        path = tmp_path / "bridge.toml"
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
        okrs = CONFIG[CONFIG.index("[[okrs.objectives]]") :]
        path.write_text(f'[store]\nurl = "{url}"\n' + jira_table(server.base_url) + okrs)
        monkeypatch.setenv("T_EMAIL", EMAIL)
        monkeypatch.setenv("T_TOKEN", TOKEN)
        seeded = Seeded(path, url)
        assert seeded.cli(run_cli, "pull").exit_code == 0
        epic = report_json(seeded, run_cli)["milestones"][0]
        assert seeded.cli(run_cli, "okr", "confirm", epic["id"], "KR2").exit_code == 0
        pulled = seeded.cli(run_cli, "pull", "--full")
        assert pulled.exit_code == 0, pulled.stdout + pulled.stderr
        remote_id = epic["id"].split(":", 1)[1]
        assert seeded.links()[(remote_id, "KR2")] == "confirmed"
        again = next(m for m in report_json(seeded, run_cli)["milestones"] if m["id"] == epic["id"])
        assert {"id": "config:KR2", "title": "Cut search latency", "origin": "confirmed"} in again[
            "key_results"
        ]
    finally:
        server.stop()
