"""Every output names things as people know them: items by key and title, statuses by name, key results by
title. The demo's organisation is pulled from the sandbox trackers over HTTP; `sync --dry-run`, `report`,
`report --json`, `report --html` and `explain` are then read for the ids a person would see by mistake:
raw status ids, Asana's 16-digit gids and Trello's 24-hex ids (JSON's id fields and `tracker:id`
references, which `explain` shows for an admin, aside)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.demo import ENV, JIRA_EMAIL, PER_TRACKER, render_config, start_sandbox
from bridge.store import Store
from bridge.store.models import MilestoneRow, StatusChangeRow, StatusNameRow, TaskRow

BRIDGE = [sys.executable, "-c", "from bridge.cli import main; main()"]
GID = re.compile(r"(?<![\w:])\d{16}(?!\w)")
TRELLO_ID = re.compile(r"(?<![\w:])[0-9a-f]{24}(?!\w)")
REFERENCE = re.compile(r"\b(?:jira|trello|asana|config):[\w:.-]+")
"""`asana:1207...`: a reference an admin types (explain shows it in parentheses)."""
JSON_ID_FIELDS = frozenset({"id", "key", "item", "milestone", "key_result"})


@dataclass
class Org:
    config: Path
    store: Path
    dry_run: str


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    folder = tmp_path_factory.mktemp("names")
    sandbox = start_sandbox(seed=1, per_tracker=PER_TRACKER)  # the demo's organisation
    saved = {name: os.environ.get(name) for name in ENV.values()}
    try:
        os.environ.update(sandbox.secrets | {ENV["jira_email"]: JIRA_EMAIL})
        config = folder / "bridge.toml"
        config.write_text(render_config(sandbox, folder / "bridge.db"), encoding="utf-8")
        dry_run = _bridge("sync", "--dry-run", "--config", str(config))
        assert dry_run.returncode == 0, dry_run.stderr[-3000:]
        yield Org(config, folder / "bridge.db", dry_run.stdout)
    finally:
        sandbox.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _bridge(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"COLUMNS": "250"}
    return subprocess.run(
        [*BRIDGE, *args], capture_output=True, text=True, env=env, timeout=180, stdin=subprocess.DEVNULL
    )


def _ok(*args: str) -> str:
    result = _bridge(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _store_rows(org: Org, model: Any, *columns: str) -> list[Any]:
    store = Store(f"sqlite:///{org.store}")
    table = model.__table__
    try:
        with store.read() as conn:
            return list(conn.execute(select(*(table.c[c] for c in columns))).all())
    finally:
        store.close()


def _ids_in(text: str) -> list[str]:
    return GID.findall(text) + TRELLO_ID.findall(text)


def _json_texts(node: Any, field: str = "") -> Iterator[tuple[str, str]]:
    """(field, text) for every string in a JSON document."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _json_texts(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from _json_texts(value, field)
    elif isinstance(node, str):
        yield field, node


def test_the_pull_stored_a_name_for_every_status_items_moved_through(org: Org) -> None:
    named = {
        (r.source, r.remote_id): r.name
        for r in _store_rows(org, StatusNameRow, "source", "remote_id", "name")
    }
    moved = {
        (r.source, r.to_status)
        for r in _store_rows(org, StatusChangeRow, "source", "to_status")
        if r.to_status not in ("completed", "incomplete")  # Asana's own words where a task has no section
    }
    assert {source for source, _ in named} == {"jira", "trello", "asana"}
    assert moved <= set(named), sorted(moved - set(named))
    assert all(name and name != remote_id for (_, remote_id), name in named.items())


def test_the_terminal_report_shows_no_raw_id(org: Org) -> None:
    out = _ok("report", "--config", str(org.config))
    assert _ids_in(out) == []
    raw = {r.to_status for r in _store_rows(org, StatusChangeRow, "to_status")}
    names = {r.name for r in _store_rows(org, StatusNameRow, "name")}
    section = out.split("Time in status", 1)[1].split("Forecasts", 1)[0]
    cells = [line.split("│")[1].strip() for line in section.splitlines() if line.count("│") >= 5]
    assert cells and set(cells) <= names and not set(cells) & raw, cells
    # Trello milestones are labels whose key is their title: named once, never twice
    for title in {r.title for r in _store_rows(org, MilestoneRow, "title")}:
        assert f"{title} {title}" not in out
    assert "1 open tasks" not in out and "1 tasks" not in out


def test_the_json_report_keeps_ids_in_its_id_fields_only(org: Org) -> None:
    document = json.loads(_ok("report", "--config", str(org.config), "--json"))
    leaks = [
        (field, text)
        for field, text in _json_texts(document)
        if field not in JSON_ID_FIELDS and _ids_in(text)
    ]
    assert leaks == []
    names = {r.name for r in _store_rows(org, StatusNameRow, "name")}
    assert {row["status"] for row in document["time_in_status"]} <= names
    ranked = document["milestones"][0]
    assert ranked["name"] and all(kr["title"] for m in document["milestones"] for kr in m["key_results"])


def test_the_html_report_shows_no_raw_id(org: Org, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    _ok("report", "--config", str(org.config), "--html", str(target))
    page = target.read_text(encoding="utf-8")
    assert _ids_in(page) == []
    assert not re.search(r"\((?:jira|trello|asana|config):", page), "no reference in a label or tooltip"


def test_the_dry_run_names_items_and_neighbours(org: Org) -> None:
    assert "writes planned" in org.dry_run
    assert _ids_in(org.dry_run) == []
    jira_ids = {r.remote_id for r in _store_rows(org, TaskRow, "source", "remote_id") if r.source == "jira"}
    moved = re.findall(r"(?:after|before) (\S+)", org.dry_run)
    assert moved and not set(moved) & jira_ids, "order writes name the neighbour, not its id"


def test_explain_shows_ids_only_as_references(org: Org) -> None:
    tasks = _store_rows(org, TaskRow, "source", "remote_id", "key")
    milestones = _store_rows(org, MilestoneRow, "source", "remote_id", "key")
    for source in ("jira", "trello", "asana"):
        for rows in (tasks, milestones):
            item = next(r for r in rows if r.source == source)
            out = _ok("explain", f"{source}:{item.remote_id}", "--config", str(org.config))
            assert _ids_in(REFERENCE.sub("", out)) == [], out
            heading = out.splitlines()[0]
            assert f"{source}:{item.remote_id}" in heading, "the admin's reference is shown once"
            assert out.count(heading.split(" (")[0]) >= 1


def test_explain_takes_a_unique_title_and_lists_the_candidates_of_a_shared_one(org: Org) -> None:
    rows = _store_rows(org, TaskRow, "source", "remote_id", "key", "title")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.title.casefold()] = counts.get(row.title.casefold(), 0) + 1
    unique = next(r for r in rows if counts[r.title.casefold()] == 1 and r.source == "asana")
    out = _ok("explain", unique.title.upper(), "--config", str(org.config))
    assert out.splitlines()[0].startswith(f"{unique.title} (task, asana:{unique.remote_id}")
    assert unique.key not in out.splitlines()[0].split("(", 1)[0], "a gid is no name"
    shared = _shared_title(org, avoid={t for t, n in counts.items() if n > 1} | {unique.title.casefold()})
    found = _bridge("explain", shared, "--config", str(org.config))
    assert found.returncode != 0
    assert f"{shared!r} is the title of 2 items; give one as tracker:id" in found.stderr
    assert found.stderr.count(shared) >= 3, found.stderr


def _shared_title(org: Org, avoid: set[str]) -> str:
    """A title two items share: a Jira task retitled like an Asana one, through the store (as a pull
    would bring it)."""
    store = Store(f"sqlite:///{org.store}")
    table: Any = TaskRow.__table__  # type: ignore[attr-defined]
    try:
        with store.write() as conn:
            rows = conn.execute(select(table.c.source, table.c.remote_id, table.c.title)).all()
            asana = next(r for r in rows if r.source == "asana" and r.title.casefold() not in avoid)
            jira = next(r for r in rows if r.source == "jira")
            conn.execute(table.update().where(table.c.remote_id == jira.remote_id).values(title=asana.title))
    finally:
        store.close()
    return str(asana.title)


def test_a_quiet_pull_names_trello_lists_and_asana_sections_again(org: Org) -> None:
    """A store made before names were kept: a pull with nothing changed names the lists and sections."""
    store = Store(f"sqlite:///{org.store}")
    table: Any = StatusNameRow.__table__  # type: ignore[attr-defined]
    try:
        with store.write() as conn:
            conn.execute(table.delete())
    finally:
        store.close()
    _ok("pull", "--config", str(org.config))
    named = {r.source for r in _store_rows(org, StatusNameRow, "source")}
    assert {"trello", "asana"} <= named


def test_explain_takes_a_key_results_title(org: Org) -> None:
    """A product owner asks about a key result by the title they read in the report: its objective,
    progress, status and linked milestones, by name."""
    for title in ("cut failed card payments by half", "Double organic sign-ups"):  # [okrs] and an Asana goal
        out = _ok("explain", title, "--config", str(org.config))
        lines = out.splitlines()
        assert lines[0].casefold().startswith(f"{title.casefold()} (key result, "), out
        assert any(line.startswith("  objective: ") for line in lines), out
        assert any(re.match(r"  progress: \d+% - ", line) for line in lines), out
        assert any(line.startswith("  status: ") for line in lines), out
        assert out.count("period ends") <= 1, "the period's end is said once"
        assert any(re.match(r"  milestone: .+ - (open|done)", line) for line in lines), out
        assert _ids_in(REFERENCE.sub("", "\n".join(lines[1:]))) == [], out
    missing = _bridge("explain", "No such thing", "--config", str(org.config))
    assert missing.returncode != 0 and "no milestone, task or key result has" in missing.stderr


def test_explain_names_the_milestone_a_task_takes_its_rank_from(org: Org) -> None:
    rows = _store_rows(org, TaskRow, "source", "remote_id", "key", "milestone_id")
    milestones = {r.remote_id: r.key for r in _store_rows(org, MilestoneRow, "source", "remote_id", "key")}
    jira = [r for r in rows if r.source == "jira" and r.milestone_id in milestones]
    found = []
    for task in jira[:8]:
        out = _ok("explain", task.key, "--config", str(org.config))
        found += [line for line in out.splitlines() if "inherited from its milestone" in line]
    assert found, "some of them are ranked"
    for line in found:
        assert re.search(r"inherited from its milestone [A-Z]+-\d+ \w", line), line
