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
from bridge.domain import Ref, WriteKind
from bridge.kit import EDIT_KINDS
from bridge.store import Store
from bridge.store.held import load_held
from bridge.store.written import load_written
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import VALUE_FIELD, render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.sandbox.conftest import Control

WRITE_ROUTES = (
    "PUT /rest/api/{version}/issue/{key}",
    "POST /rest/api/{version}/issue/{key}/remotelink",
    "POST /rest/api/{version}/bulk/issues/fields",
)

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
tasks_inherit = true
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
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Sync]:
    """A Jira Cloud sandbox (Data Center with `indirect` parameter "dc") and a config writing to it."""
    seed = render_jira(build(seed=5, per_tracker=120, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = JiraEmulator.from_search(seed, flavour=getattr(request, "param", "cloud"))
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
    """The pull and the push share one connector: server info, the user, the fields and the statuses are
    read once a cycle, and the requests the cycle counts are those the tracker served."""
    sync.cycle()
    sync.control.send("DELETE", "requests")
    (entry,) = sync.cycle().trackers
    served = sync.control.get("requests")
    routes = served["by_route"]
    for setup in ("serverInfo", "myself", "field", "status"):
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
        assert load_held(conn, "t", [Ref("t", epic.id)]).states == {}, "what it holds now is read again"
    again = sync.cycle()
    assert again.trackers[0].push is not None and again.trackers[0].push.done > 0
    assert epic.fields.get(sync.rank_field) is not None, "a sync after a purge writes the ranks again"


def test_native_order_follows_the_ranks_with_the_fewest_moves(sync: Sync) -> None:
    """Tasks follow their epic's place in the order without inheriting its rank value (the default)."""
    sync.config_path.write_text(sync.config_path.read_text().replace("tasks_inherit = true\n", ""))
    sync.config = load_config_with(sync, "native_order = true\n")
    first = sync.cycle()
    assert first.report is not None
    ranks = {r.milestone.remote_id: r.rank for r in first.report.milestones}
    for project in ("PAY", "MOB"):
        ranked = backlog_ranks(sync, project, ranks)
        assert ranked == sorted(ranked), project
        assert len(ranked) > len(set(ranked)), "tasks are ordered with their epics"
    tasks = [i for i in sync.emulator.issues.values() if i not in sync.epics()]
    assert all(task.fields.get(sync.rank_field) is None for task in tasks), "tasks hold no rank"
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


def backlog_ranks(sync: Sync, project: str, ranks: dict[str, int]) -> list[int]:
    """The rank of each issue of `project` in backlog order (a task's is its epic's), unranked left out."""
    found = sync.api(
        "GET", f"search/jql?jql=project={project} ORDER BY Rank ASC&fields=parent&maxResults=1000"
    )
    ranked = [
        ranks.get(issue["id"]) or ranks.get((issue["fields"].get("parent") or {}).get("id"))
        for issue in found["issues"]
    ]
    return [rank for rank in ranked if rank is not None]


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
    # Remote links answer slowly, so that the push (bulk edits, then links) is still going when killed.
    sync.control.faults({"kind": "slow", "method": "POST", "path": "/remotelink$", "delay": 0.2})
    env = {**os.environ, "T_EMAIL": EMAIL, "T_TOKEN": TOKEN}
    command = [sys.executable, "-m", "bridge.cli", "sync", "--config", str(sync.config_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sync.writes_sent() < 5:
        assert time.monotonic() < deadline and process.poll() is None, "the push never started"
        time.sleep(0.01)
    process.kill()
    process.wait(10)
    sync.control.send("DELETE", "faults")
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
    # No Bulk Change: every issue gets an edit of its own, and PAY-1's and PAY-2's fail.
    sync.control.edit(op="set_permissions", permissions=["ADMINISTER_PROJECTS", "EDIT_ISSUES"])
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
    assert retried is not None and {push.keys[w.item].split(" ", 1)[0] for w in retried.writes} == failed_keys
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
    # No Bulk Change: PAY-1 gets an edit of its own (lost bulk edits: tests/connectors/test_jira_quiet.py)
    sync.control.edit(op="set_permissions", permissions=["ADMINISTER_PROJECTS", "EDIT_ISSUES"])
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


def score_config(sync: Sync) -> BridgeConfig:
    """Ranks as scores (tasks hold none, the default), the backlog ordered by them."""
    sync.config_path.write_text(sync.config_path.read_text().replace("tasks_inherit = true\n", ""))
    return load_config_with(sync, 'rank_value = "score"\nnative_order = true\n')


def test_with_scores_one_epics_value_change_rewrites_only_its_own_rank(sync: Sync) -> None:
    sync.config = score_config(sync)
    first = sync.cycle()
    assert first.report is not None
    scores = {r.milestone.remote_id: r.score for r in first.report.milestones}
    for epic in sync.epics():
        if scores.get(epic.id) is not None:
            assert epic.fields[sync.rank_field] == pytest.approx(scores[epic.id], rel=1e-3), epic.key
    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == [], (
        "a pull that sees the bridge's own writes plans nothing"
    )
    last = min((r for r in first.report.milestones if r.score is not None), key=lambda r: r.score or 0)
    epic = sync.emulator.issues[last.key]
    sync.api("PUT", f"issue/{epic.key}", {"fields": {VALUE_FIELD: 1_000_000}})
    raised = sync.cycle()
    plan = raised.trackers[0].plan
    assert plan is not None and raised.report is not None
    edits = [w for w in plan.writes if w.kind is not WriteKind.ORDER]
    assert [(w.item.remote_id, w.field) for w in edits] == [(epic.id, "rank")]
    assert raised.report.milestones[0].milestone.remote_id == epic.id
    ranks = {r.milestone.remote_id: r.rank for r in raised.report.milestones}
    for project in ("PAY", "MOB"):  # positions reach the team through the backlog order instead
        assert backlog_ranks(sync, project, ranks) == sorted(backlog_ranks(sync, project, ranks))
    assert epic.fields[sync.rank_field] == pytest.approx(raised.report.milestones[0].score, rel=1e-3)


def test_rank_values_written_on_tasks_are_removed_once(sync: Sync) -> None:
    sync.cycle()  # tasks_inherit = true: tasks hold their epic's rank
    tasks = [i for i in sync.emulator.issues.values() if i not in sync.epics()]
    holding = {t.id for t in tasks if t.fields.get(sync.rank_field) is not None}
    assert holding, "the seed has tasks of ranked epics"
    sync.config_path.write_text(sync.config_path.read_text().replace("tasks_inherit = true\n", ""))
    sync.config = load_config(sync.config_path, ConnectorRegistry.default())
    removed = sync.cycle()
    plan = removed.trackers[0].plan
    assert plan is not None
    assert {w.item.remote_id for w in plan.writes} == holding
    assert all(w.field == "rank" and w.value is None for w in plan.writes)
    assert all(t.fields.get(sync.rank_field) is None for t in tasks)
    after = sync.cycle()
    assert after.trackers[0].plan is not None and after.trackers[0].plan.writes == []


def test_a_dry_run_ends_with_what_the_plan_would_cost(sync: Sync, run_cli: Any) -> None:
    # An account that may neither silence edits nor bulk edit: each edit emails the issue's watchers.
    sync.control.edit(op="set_permissions", permissions=["EDIT_ISSUES", "BROWSE_PROJECTS"])
    for n, issue in enumerate(sync.emulator.issues.values()):
        issue.fields["watches"] = {"self": "", "watchCount": n % 3, "isWatching": False}
    result = sync.cycle(dry_run=True)
    (entry,) = result.trackers
    assert entry.push is not None and entry.plan is not None and entry.push.cost is not None
    cost, writes = entry.push.cost, entry.plan.writes
    edited = {w.item.remote_id for w in writes if w.kind in EDIT_KINDS}
    links = sum(1 for w in writes if w.kind is WriteKind.LINK)
    watchers = {i.id: i.fields["watches"]["watchCount"] for i in sync.emulator.issues.values()}
    assert cost.edits == len(writes) and cost.items == len({w.item for w in writes})
    assert cost.requests == len(edited) + links
    assert cost.emails == sum(watchers[i] for i in edited) > 0
    assert sync.writes_sent() == 0
    shown = run_cli("sync", "--config", str(sync.config_path), "--dry-run")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    assert shown.stdout.rstrip().splitlines()[-1] == (
        f"t: this plan would make {cost.edits} edits on {cost.items} items in {cost.requests} write "
        f"requests, sending {cost.emails} notification emails to watchers"
    )
    assert sync.writes_sent() == 0


READ_ROUTES = (
    "POST /rest/api/{version}/issue/bulkfetch",
    "GET /rest/api/{version}/issue/{key}/remotelink",
)
"""Routes reading issues back on Cloud (Data Center reads them by id with a search, as its pull searches:
`PushResult.read` counts those)."""


def reads_sent(sync: Sync) -> dict[str, int]:
    routes = sync.control.get("requests")["by_route"]
    return {route: count for route, count in routes.items() if route.startswith(READ_ROUTES)}


@pytest.mark.parametrize("sync", ["cloud", "dc"], indirect=True)
def test_the_bridges_own_writes_seen_by_the_pull_plan_nothing_and_read_nothing(sync: Sync) -> None:
    """The cycle after a push plans from what its pull stored (native order on: every ordered issue is
    planned for, every cycle): the bridge's own writes and moves, seen again by the pull, plan nothing,
    and no issue is read back (no bulk fetch, no search by id, no remote links)."""
    sync.config_path.write_text(sync.config_path.read_text().replace("tasks_inherit = true\n", ""))
    sync.config = load_config_with(sync, "native_order = true\n")
    first = sync.cycle()
    push = first.trackers[0].push
    assert push is not None and push.done > 0
    assert any(w.kind is WriteKind.ORDER for w in first.trackers[0].plan.writes), "issues were moved"
    sync.control.send("DELETE", "requests")
    (entry,) = sync.cycle().trackers
    assert entry.plan is not None and entry.plan.writes == []
    assert entry.push is not None and entry.push.read == 0
    assert reads_sent(sync) == {}


def test_a_users_edit_seen_by_the_pull_is_planned_against_without_reading(sync: Sync) -> None:
    """A user's edit of a managed field reaches the plan through the pull: it is restored, the issue is
    not read again, and what the restore left is stored, so the next cycle plans nothing."""
    sync.cycle()
    epic = next(e for e in sync.epics() if e.fields.get(sync.rank_field) is not None)
    rank = epic.fields[sync.rank_field]
    sync.api("PUT", f"issue/{epic.key}", {"fields": {sync.rank_field: rank + 40}})
    sync.control.send("DELETE", "requests")
    (entry,) = sync.cycle().trackers
    assert entry.plan is not None and [(w.item.remote_id, w.field, w.value) for w in entry.plan.writes] == [
        (epic.id, "rank", rank)
    ]
    assert entry.plan.restores == entry.plan.writes and epic.fields[sync.rank_field] == rank
    # The epic's remote links, which no search shows, are read when it carries the bridge's link.
    assert entry.push is not None and entry.push.read <= 1
    assert sum(reads_sent(sync).values()) == 2 * entry.push.read
    (after,) = sync.cycle().trackers
    assert after.plan is not None and after.plan.writes == []


# --- a milestone reached ----------------------------------------------------------------------------


def _reached_comments(sync: Sync, key: str) -> list[str]:
    marker = "[milestone-bridge:reached:"
    return [str(c["text"]) for c in sync.emulator.issues[key].comments if marker in str(c["text"])]


def _open_pay_epic_with_tasks(sync: Sync) -> tuple[Any, list[Any]]:
    for epic in sorted(sync.epics(), key=lambda e: e.key):
        tasks = [
            i for i in sync.emulator.issues.values() if (i.fields.get("parent") or {}).get("key") == epic.key
        ]
        if epic.key.startswith("PAY-") and tasks and epic.fields["status"]["name"] != "Done":
            return epic, tasks
    raise AssertionError("the seed has an open PAY epic with tasks")


def _finish(sync: Sync, epic: Any, tasks: list[Any]) -> None:
    """A user finishes the epic's last tasks, then the epic (as in the tracker's own UI)."""
    for task in tasks:
        sync.control.edit(op="transition", key=task.key, status="Done")
    sync.control.edit(op="transition", key=epic.key, status="Done")


def test_a_milestone_reached_gets_one_comment_purged_and_again_when_reopened(
    sync: Sync, run_cli: Any
) -> None:
    first = sync.cycle()  # the first cycle: milestones done already are never announced
    assert first.announcements == []
    assert not any(_reached_comments(sync, e.key) for e in sync.epics())
    epic, tasks = _open_pay_epic_with_tasks(sync)
    _finish(sync, epic, tasks)

    reached = sync.cycle()
    (announcement,) = reached.announcements
    assert announcement.subject == Ref("t", epic.id) and announcement.occurrence == 1
    (comment,) = _reached_comments(sync, epic.key)
    title = epic.fields["summary"]
    assert comment.startswith(f"Milestone reached: {epic.key} {title}\n"), comment
    assert f"{len(tasks)} task" in comment and "Card payments in ten new countries: " in comment
    assert "Took: " in comment and "Team: payments" in comment
    assert comment.endswith(f"[milestone-bridge:reached:t:{epic.id}:1]")
    with sync.store.read() as conn:
        assert load_written(conn, "t").comments(Ref("t", epic.id)) == {
            f"[milestone-bridge:reached:t:{epic.id}:1]"
        }

    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == []
    assert len(_reached_comments(sync, epic.key)) == 1, "a second cycle posts nothing more"

    purged = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert purged.exit_code == 0, purged.stderr + purged.stdout
    assert _reached_comments(sync, epic.key) == []

    sync.control.edit(op="transition", key=epic.key, status="In Progress")  # re-opened
    sync.cycle()
    assert _reached_comments(sync, epic.key) == [], "a re-opened milestone wishes no comment"
    sync.control.edit(op="transition", key=epic.key, status="Done")
    sync.cycle()
    (second,) = _reached_comments(sync, epic.key)
    assert second.startswith(f"Milestone reached again: {epic.key} {title} (the 2nd time"), second
    assert second.endswith(f"[milestone-bridge:reached:t:{epic.id}:2]")


def test_a_dry_run_shows_the_comment_and_comments_off_say_so(sync: Sync, run_cli: Any) -> None:
    sync.cycle()
    epic, tasks = _open_pay_epic_with_tasks(sync)
    _finish(sync, epic, tasks)
    shown = run_cli("sync", "--dry-run", "--config", str(sync.config_path))
    assert shown.exit_code == 0, shown.stderr + shown.stdout
    assert "comment" in shown.stdout and f"Milestone reached: {epic.key}" in shown.stdout
    assert "milestone-bridge:reached" not in shown.stdout, "the comment's marker is no field name"
    assert _reached_comments(sync, epic.key) == [], "a dry run posts nothing"

    sync.config_path.write_text(
        sync.config_path.read_text().replace("tasks_inherit = true", "tasks_inherit = true\ncomments = false")
    )
    quiet = load_config(sync.config_path, ConnectorRegistry.default())
    result = run_cycle(sync.store, quiet, now=datetime.now(UTC))
    (entry,) = result.trackers
    off = "no comment, comments are off here (write.comments = false)"
    assert entry.comments == [f"Milestone reached: {epic.key} {epic.fields['summary']}: {off}"]
    assert _reached_comments(sync, epic.key) == []
    report = run_cli("report", "--config", str(sync.config_path))
    assert report.exit_code == 0, report.stderr
    assert "Milestones reached" in report.stdout and "skipped: comments are off here" in report.stdout


def test_warning_labels_come_once_go_when_resolved_and_purge_takes_them(sync: Sync, run_cli: Any) -> None:
    """An epic whose value is cleared gets `mb-needs-estimate` with the reason, once; an opted-out epic
    in the same state gets nothing; the value set again takes the label back; purge takes every one."""
    first = sync.cycle()
    assert first.report is not None
    ranked = {r.milestone.remote_id for r in first.report.milestones if r.score is not None}
    valued = [e for e in sync.epics() if e.id in ranked and e.fields.get(VALUE_FIELD) is not None]
    cleared, ignored = valued[0], valued[1]
    value = cleared.fields[VALUE_FIELD]
    sync.api("PUT", f"issue/{cleared.key}", {"fields": {VALUE_FIELD: None}})
    sync.api(
        "PUT",
        f"issue/{ignored.key}",
        {"fields": {VALUE_FIELD: None}, "update": {"labels": [{"add": "bridge-ignore"}]}},
    )
    ignored_labels = list(ignored.fields["labels"])

    second = sync.cycle()
    assert second.report is not None
    assert "mb-needs-estimate" in cleared.fields["labels"]
    assert ignored.fields["labels"] == ignored_labels, "an opted-out epic is left as it is"
    (entry,) = second.trackers
    assert entry.plan is not None
    (write,) = [
        w for w in entry.plan.writes if w.item.remote_id == cleared.id and w.field == "mb-needs-estimate"
    ]
    assert write.reason.startswith("no value set: the value rank strategy ranks by value")
    # what the tracker carries is what the report flags, never on done issues
    flagged = {(w.item.remote_id, w.kind) for w in second.report.item_warnings}
    label_kinds = {"mb-needs-estimate": "needs_estimate", "mb-too-many-in-progress": "too_many_in_progress"}
    label_kinds["mb-ageing"] = "ageing"
    carried = {
        (issue.id, label_kinds[label])
        for issue in sync.emulator.issues.values()
        for label in issue.fields.get("labels") or []
        if label in label_kinds
    }
    assert carried == flagged - {(ignored.id, "needs_estimate")}
    for issue in sync.emulator.issues.values():
        if issue.fields["status"]["statusCategory"]["key"] == "done":
            assert not set(issue.fields.get("labels") or []) & set(label_kinds), issue.key

    before = sync.writes_sent()
    third = sync.cycle()
    assert third.trackers[0].plan is not None and third.trackers[0].plan.writes == []
    assert sync.writes_sent() == before, "labels in place are not written again"

    sync.api("PUT", f"issue/{cleared.key}", {"fields": {VALUE_FIELD: value}})
    fourth = sync.cycle()
    assert "mb-needs-estimate" not in cleared.fields["labels"]
    assert fourth.trackers[0].plan is not None
    assert [
        (w.field, w.reason)
        for w in fourth.trackers[0].plan.writes
        if w.item.remote_id == cleared.id and w.field.startswith("mb-")
    ] == [("mb-needs-estimate", "no longer applies")], "its rank comes back too; no other label goes"

    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    for issue in sync.emulator.issues.values():
        assert not set(issue.fields.get("labels") or []) & set(label_kinds), issue.key
    assert "bridge-ignore" in ignored.fields["labels"]
