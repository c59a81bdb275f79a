"""The generated organisation: deterministic, realistic, and awkward where a sync must cope."""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from jira import JIRA

from bridge.domain import StatusCategory, flow_times
from bridge_sandbox import seeds
from bridge_sandbox.generate import STATUSES, build
from bridge_sandbox.jira import JiraEmulator, parse_time
from bridge_sandbox.server import SandboxServer

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_files(tmp_path: Path) -> None:
    seeds.write(tmp_path / "a", seed=3, per_tracker=200, now=NOW)
    seeds.write(tmp_path / "b", seed=3, per_tracker=200, now=NOW)
    seeds.write(tmp_path / "c", seed=4, per_tracker=200, now=NOW)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["jira.json"] != _digest(tmp_path / "c")["jira.json"]


def test_every_team_has_a_real_bottleneck() -> None:
    organisation = build(seed=11, per_tracker=1200, now=NOW)
    cycle_days: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task in organisation.tasks:
        moves = [(c.at, StatusCategory(STATUSES[c.status][1])) for c in task.changes]
        times = flow_times(moves)
        if times is not None:
            cycle_days[(task.team.name, task.work_type)].append(times.cycle_time.total_seconds() / 86400)
    for team in organisation.teams:
        medians = {w: statistics.median(cycle_days[(team.name, w)]) for w in team.work_types}
        others = [m for w, m in medians.items() if w != team.bottleneck]
        assert medians[team.bottleneck] > 1.5 * max(others), (team.name, medians)


def test_histories_average_about_ten_status_changes() -> None:
    organisation = build(seed=5, per_tracker=1000, now=NOW)
    counts = [len(t.changes) for t in organisation.tasks]
    assert 7 <= statistics.mean(counts) <= 12


def test_jira_seed_has_the_awkward_cases_and_loads(tmp_path: Path) -> None:
    files = seeds.write(tmp_path, seed=9, per_tracker=400, now=NOW)
    emulator = JiraEmulator.from_search(files["jira"])
    issues = list(emulator.issues.values())
    assert any(len(i.histories) > 100 for i in issues), "a history longer than Cloud embeds"
    assert any(any(ord(ch) > 127 for ch in i.fields["summary"]) for i in issues)
    assert any(len(i.fields["summary"]) > 1000 for i in issues)
    assert any(i.fields.get("duedate") is None and i.fields["issuetype"]["name"] == "Epic" for i in issues)
    assert any(_burst(i.histories) for i in issues), "several changes within one minute"
    assert any(link["type"]["name"] == "Blocks" for i in issues for link in i.fields["issuelinks"])
    with SandboxServer(emulator) as running:
        client = JIRA(server=running.base_url, basic_auth=("sandbox@example.com", "sandbox-jira-token"))
        found = client.search_issues("project in (PAY, MOB)", maxResults=False, fields="summary")
        assert len(found) == len(issues)


def _burst(histories: list[dict[str, object]]) -> bool:
    stamps = sorted(parse_time(str(h["created"])) for h in histories)
    return any((b - a).total_seconds() < 60 for a, b in zip(stamps, stamps[2:], strict=False))
