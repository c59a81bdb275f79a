"""Whole cycles against the Jira sandbox: `bridge sync` pulls, analyses, plans and pushes; a second cycle
writes nothing; a user's edit of a managed field is restored; a user's labels and links stay; an opted-out
issue is left alone; `--dry-run` writes nothing; `bridge purge` takes everything back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.written import load_written
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.sandbox.conftest import Control

WRITE_ROUTES = ("PUT /rest/api/{version}/issue/{key}", "POST /rest/api/{version}/issue/{key}/remotelink")

OKRS = """
[push]
max_change_share = 1.0

[[okrs.objectives]]
id = "O1"
title = "Take payments everywhere"

[[okrs.objectives.key_results]]
id = "KR1"
title = "Card payments in ten new countries"
url = "https://okr.example.com/kr/1"

[[trackers.t.okr_rules]]
key_result = "KR1"
project = "PAY"

[trackers.t.write]
rank_field = "Value Rank"
okr_field = "Key Result"
okr_links = true
labels = true
"""


@dataclass
class Sync:
    server: SandboxServer
    emulator: JiraEmulator
    control: Control
    config: BridgeConfig
    config_path: Path
    store: Store
    rank_field: str
    okr_field: str

    def cycle(self, **options: Any) -> CycleResult:
        result = run_cycle(self.store, self.config, now=datetime.now(UTC), **options)
        assert result.ok, [t.error for t in result.trackers]
        return result

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.server.base_url}/rest/api/2/{path}", json=body, auth=(EMAIL, TOKEN), timeout=10
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def writes_sent(self) -> int:
        routes = self.control.get("requests")["by_route"]
        return sum(count for route, count in routes.items() if route.startswith(WRITE_ROUTES))

    def epics(self) -> list[Any]:
        return [i for i in self.emulator.issues.values() if i.fields["issuetype"]["name"] == "Epic"]


@pytest.fixture
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    seed = render_jira(build(seed=5, per_tracker=120, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = JiraEmulator.from_search(seed, flavour="cloud")
    rank_field = emulator.add_custom_field("Value Rank", "number")
    okr_field = emulator.add_custom_field("Key Result", "string")
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n' + jira_table(server.base_url) + OKRS
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Sync(server, emulator, Control(server.base_url), config, path, store, rank_field, okr_field)
        finally:
            store.close()


def test_a_cycle_writes_ranks_links_and_labels_then_nothing_more(sync: Sync) -> None:
    first = sync.cycle()
    (entry,) = first.trackers
    assert entry.push is not None and entry.push.failed == 0 and entry.push.done > 0
    report = first.report
    assert report is not None
    ranked = {r.milestone.remote_id: r.rank for r in report.milestones}
    for epic in sync.epics():
        if epic.id in ranked:
            assert epic.fields[sync.rank_field] == ranked[epic.id], epic.key
    pay_epics = [e for e in sync.epics() if e.key.startswith("PAY-") and e.id in ranked]
    assert pay_epics, "the seed has ranked PAY epics"
    for epic in pay_epics:
        assert epic.fields[sync.okr_field] == "Card payments in ten new countries"
        links = sync.api("GET", f"issue/{epic.key}/remotelink")
        assert [link["object"]["url"] for link in links] == ["https://okr.example.com/kr/1"]

    before = sync.writes_sent()
    second = sync.cycle()
    assert second.trackers[0].plan is not None and second.trackers[0].plan.writes == []
    assert sync.writes_sent() == before, "the bridge's own writes do not make it write again"


def test_a_quiet_cycle_reuses_the_analysis_and_has_nothing_to_write(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge import shared_analysis

    sync.cycle()
    settled = sync.cycle()  # the first cycle's own writes come back in this pull: analysed again
    assert settled.trackers[0].plan is not None and settled.trackers[0].plan.writes == []
    before = sync.writes_sent()
    real = shared_analysis.analyse
    monkeypatch.setattr(shared_analysis, "analyse", None)  # an analysis now would fail the cycle
    quiet = sync.cycle()
    (entry,) = quiet.trackers
    assert entry.push is None and entry.note is not None and "nothing to write" in entry.note
    assert quiet.report is not None and quiet.report.milestones == settled.report.milestones  # type: ignore[union-attr]
    assert sync.writes_sent() == before
    monkeypatch.setattr(shared_analysis, "analyse", real)
    forced = sync.cycle(force=True)
    assert forced.trackers[0].plan is not None, "--force plans again"


def test_a_cycle_asks_the_trackers_setup_once(sync: Sync) -> None:
    """The pull and the push share one connector: server info, the user and the fields are read once a
    cycle, and the requests the cycle counts are those the tracker served."""
    sync.cycle()
    sync.control.send("DELETE", "requests")
    (entry,) = sync.cycle().trackers
    served = sync.control.get("requests")
    routes = served["by_route"]
    for setup in ("serverInfo", "myself", "field"):
        assert routes[f"GET /rest/api/{{version}}/{setup}"] == 1, setup
    assert entry.requests == sum(routes.values())


def test_a_user_edit_of_a_managed_field_is_restored_and_theirs_are_kept(sync: Sync) -> None:
    first = sync.cycle()
    assert first.report is not None
    epic = next(e for e in sync.epics() if e.fields.get(sync.rank_field) is not None)
    rank = epic.fields[sync.rank_field]
    sync.api(
        "PUT",
        f"issue/{epic.key}",
        {"fields": {sync.rank_field: rank + 40}, "update": {"labels": [{"add": "customer-x"}]}},
    )
    sync.api(
        "POST",
        f"issue/{epic.key}/remotelink",
        {"globalId": "user:design-doc", "object": {"url": "https://docs.example.com/x", "title": "Design"}},
    )
    third = sync.cycle()
    plan = third.trackers[0].plan
    assert plan is not None and [(w.field, w.value) for w in plan.writes] == [("rank", rank)]
    assert plan.restores == plan.writes
    assert epic.fields[sync.rank_field] == rank
    assert "customer-x" in epic.fields["labels"]
    urls = {link["object"]["url"] for link in sync.api("GET", f"issue/{epic.key}/remotelink")}
    assert "https://docs.example.com/x" in urls


def test_an_opted_out_issue_is_never_written(sync: Sync) -> None:
    epic = sync.epics()[0]
    sync.api("PUT", f"issue/{epic.key}", {"update": {"labels": [{"add": "bridge-ignore"}]}})
    sync.cycle()
    assert epic.fields.get(sync.rank_field) is None
    assert epic.fields.get(sync.okr_field) is None


def test_dry_run_prints_the_plan_and_writes_nothing(
    sync: Sync, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("sync", "--config", str(sync.config_path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "writes planned" in result.stdout and "will be" in result.stdout
    assert sync.writes_sent() == 0
    summary = run_cli("sync", "--config", str(sync.config_path), "--json")
    assert summary.exit_code == 0, summary.stderr
    (tracker,) = json.loads(summary.stdout)["trackers"]
    assert tracker["writes_done"] == tracker["writes_planned"] > 0 and tracker["writes_failed"] == 0
    assert tracker["requests"] > 0
    assert TOKEN not in summary.stdout + summary.stderr


def test_purge_takes_back_everything_the_bridge_wrote(sync: Sync, run_cli: Any) -> None:
    sync.cycle()
    epic = next(
        e for e in sync.epics() if e.key.startswith("PAY-") and e.fields.get(sync.rank_field) is not None
    )
    sync.api("PUT", f"issue/{epic.key}", {"update": {"labels": [{"add": "customer-x"}]}})
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    for issue in sync.emulator.issues.values():
        assert issue.fields.get(sync.rank_field) is None, issue.key
        assert issue.fields.get(sync.okr_field) is None, issue.key
        assert not [label for label in issue.fields.get("labels") or [] if label.startswith("mb-")]
    assert sync.api("GET", f"issue/{epic.key}/remotelink") == []
    assert "customer-x" in epic.fields["labels"]
    with sync.store.read() as conn:
        assert load_written(conn, "t").rows == {}


def test_native_order_follows_the_ranks_with_the_fewest_moves(sync: Sync) -> None:
    sync.config = load_config_with(sync, "native_order = true\ntasks_inherit = false\n")
    first = sync.cycle()
    assert first.report is not None
    ranks = {r.milestone.remote_id: r.rank for r in first.report.milestones}
    for project in ("PAY", "MOB"):
        found = sync.api(
            "GET",
            f"search/jql?jql=project={project} AND issuetype=Epic ORDER BY Rank ASC&fields=summary",
        )
        ranked = [issue["id"] for issue in found["issues"] if issue["id"] in ranks]
        assert [ranks[i] for i in ranked] == sorted(ranks[i] for i in ranked), project
    again = sync.cycle()
    plan = again.trackers[0].plan
    assert plan is not None and plan.writes == [], "in order already: no move"


def test_a_plan_changing_too_much_waits_for_force(sync: Sync, run_cli: Any) -> None:
    path = sync.config_path
    path.write_text(path.read_text().replace("max_change_share = 1.0", "max_change_share = 0.2"))
    refused = run_cli("sync", "--config", str(path))
    assert refused.exit_code == 1 and "--force" in refused.stdout + refused.stderr
    assert sync.writes_sent() == 0
    forced = run_cli("sync", "--config", str(path), "--force")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert sync.writes_sent() > 0


def load_config_with(sync: Sync, write_options: str) -> BridgeConfig:
    text = sync.config_path.read_text().replace(
        "[trackers.t.write]\n", "[trackers.t.write]\n" + write_options
    )
    sync.config_path.write_text(text)
    return load_config(sync.config_path, ConnectorRegistry.default())


def test_a_users_labels_survive_ten_cycles(sync: Sync) -> None:
    epic, task = sync.epics()[0], next(i for i in sync.emulator.issues.values() if i not in sync.epics())
    for issue in (epic, task):
        sync.api("PUT", f"issue/{issue.key}", {"update": {"labels": [{"add": "customer-x"}, {"add": "mb"}]}})
    for _ in range(10):
        sync.cycle()
        assert {"customer-x", "mb"} <= set(epic.fields["labels"]) and {"customer-x", "mb"} <= set(
            task.fields["labels"]
        )


def test_a_prefix_shared_with_users_labels_takes_none_of_theirs(sync: Sync) -> None:
    """With `label_prefix = "okr-"`, users' `okr-KR1.1`-style labels (the seed's, and one an OKR rule
    reads) share the bridge's prefix: every cycle leaves them, while a label of the bridge's by name that
    does not apply (`okr-at-risk` on a task) is taken back."""
    text = sync.config_path.read_text().replace("[push]\n", '[push]\nlabel_prefix = "okr-"\n')
    text += '\n[[trackers.t.okr_rules]]\nkey_result = "KR1"\nlabel = "okr-KR1.1"\n'
    sync.config_path.write_text(text)
    sync.config = load_config(sync.config_path, ConnectorRegistry.default())
    epic, task = sync.epics()[0], next(i for i in sync.emulator.issues.values() if i not in sync.epics())
    sync.api("PUT", f"issue/{epic.key}", {"update": {"labels": [{"add": "okr-KR1.1"}]}})
    sync.api(
        "PUT", f"issue/{task.key}", {"update": {"labels": [{"add": "okr-KR1.1"}, {"add": "okr-at-risk"}]}}
    )
    theirs = {
        issue.key: {label for label in issue.fields.get("labels") or [] if label.startswith("okr-KR")}
        for issue in sync.emulator.issues.values()
    }
    assert sum(len(labels) for labels in theirs.values()) > 2, "the seed has okr- labels of its own"
    for _ in range(3):
        sync.cycle()
        for issue in sync.emulator.issues.values():
            assert theirs[issue.key] <= set(issue.fields.get("labels") or []), issue.key
    assert "okr-at-risk" not in task.fields["labels"]


def test_a_sync_killed_mid_push_ends_exact_after_a_restart(sync: Sync) -> None:
    env = {**os.environ, "T_EMAIL": EMAIL, "T_TOKEN": TOKEN}
    command = [sys.executable, "-m", "bridge.cli", "sync", "--config", str(sync.config_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sync.writes_sent() < 5:
        assert time.monotonic() < deadline and process.poll() is None, "the push never started"
        time.sleep(0.01)
    process.kill()
    process.wait(10)
    written_before = sync.writes_sent()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sync.writes_sent() > written_before, "the restart finished the job"
    final = sync.cycle()
    assert final.trackers[0].plan is not None and final.trackers[0].plan.writes == []
    report = final.report
    assert report is not None
    ranks = {r.milestone.remote_id: r.rank for r in report.milestones}
    for epic in sync.epics():
        assert epic.fields.get(sync.rank_field) == ranks.get(epic.id), epic.key
        links = sync.api("GET", f"issue/{epic.key}/remotelink")
        assert len(links) == len({link["globalId"] for link in links}) <= 1, epic.key


def test_writes_that_fail_are_retried_next_cycle_while_the_rest_land(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.http import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "_sleep", lambda self, seconds: None)
    ids = "|".join(sync.emulator.issues[key].id for key in ("PAY-1", "PAY-2"))
    sync.control.faults(
        {"kind": "5xx", "status": 502, "method": "PUT", "path": rf"/issue/(PAY-1|PAY-2|{ids})$"}
    )
    first = sync.cycle()
    push = first.trackers[0].push
    assert push is not None and push.failed >= 2 and push.done > 0
    failed_keys = {failure.split(" ", 1)[0] for failure in push.failures}
    assert failed_keys == {"PAY-1", "PAY-2"}
    assert all(sync.emulator.issues[key].fields.get(sync.rank_field) is None for key in failed_keys)
    sync.control.send("DELETE", "faults")
    second = sync.cycle()
    retried = second.trackers[0].plan
    assert retried is not None and {push.keys[w.item] for w in retried.writes} == failed_keys
    assert second.trackers[0].push is not None and second.trackers[0].push.failed == 0
    assert sync.cycle().trackers[0].plan.writes == []  # type: ignore[union-attr]


def test_writes_whose_answer_was_lost_are_read_back_and_recorded(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jira applies PAY-1's edit and its remote link, but every answer is lost (the connection closes
    after the request was applied, on each retry too). The push reads PAY-1 back: its writes count done,
    are recorded in `written`, and the next cycle writes nothing."""
    from bridge.http import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "_sleep", lambda self, seconds: None)
    issue = sync.emulator.issues["PAY-1"].id
    sync.control.faults(
        {"kind": "lose", "method": "PUT", "path": rf"/issue/(PAY-1|{issue})$"},
        {"kind": "lose", "method": "POST", "path": rf"/issue/(PAY-1|{issue})/remotelink$"},
    )
    first = sync.cycle()
    push = first.trackers[0].push
    assert push is not None and push.failed == 0, push.failures
    assert push.read_back >= 2 and push.read_back == push.read_back_applied
    assert sync.control.get("faults")["injected"].get("lose", 0) >= 2
    with sync.store.read() as conn:
        rows = {name for (ref, name) in load_written(conn, "t").rows if ref.remote_id == issue}
    assert "rank" in rows and any(name.startswith("link:") for name in rows), rows
    sync.control.send("DELETE", "faults")
    second = sync.cycle()
    assert second.trackers[0].plan is not None and second.trackers[0].plan.writes == []
    assert len(sync.api("GET", "issue/PAY-1/remotelink")) == 1
