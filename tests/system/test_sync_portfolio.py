"""One cycle over Jira, Trello and Asana at once: the ranking spans the portfolio and each tracker gets its
share; when one tracker is down the other two still get their writes and the summary names the failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.http import RetryPolicy
from bridge.store import Store
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import Board, TrelloEmulator
from tests.contract.test_jira_pull import EMAIL, jira_table
from tests.contract.test_jira_pull import TOKEN as JIRA_TOKEN
from tests.sandbox.conftest import Control
from tests.system import test_sync_asana as asana
from tests.system import test_sync_trello as trello

WRITE = """
[trackers.jira.write]
rank_field = "Value Rank"
okr_field = "Key Result"
okr_links = true
labels = true

[[trackers.jira.okr_rules]]
key_result = "KR7"
project = "PAY"
"""


@dataclass
class Portfolio:
    config: BridgeConfig
    config_path: Path
    store: Store
    jira: JiraEmulator
    trello: TrelloEmulator
    board: Board
    asana: AsanaEmulator
    controls: dict[str, Control]
    rank_field: str

    def cycle(self) -> CycleResult:
        return run_cycle(self.store, self.config, now=datetime.now(UTC))


@pytest.fixture
def portfolio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Portfolio]:
    monkeypatch.setattr(RetryPolicy, "_sleep", lambda self, seconds: None)
    seed = render_jira(build(seed=5, per_tracker=40, now=datetime(2026, 6, 1, tzinfo=UTC)))
    jira = JiraEmulator.from_search(seed, flavour="cloud")
    rank_field = jira.add_custom_field("Value Rank", "number")
    jira.add_custom_field("Key Result", "string")
    trello_emulator = TrelloEmulator(key=trello.KEY, token=trello.TOKEN)
    board = trello_emulator.create_board("Design", ("To Do", "In Progress", "Done"))
    asana_emulator = AsanaEmulator.from_seed(asana.asana_seed(datetime.now(UTC)), token=asana.TOKEN)
    for name, value in {"JIRA_EMAIL": EMAIL, "JIRA_TOKEN": JIRA_TOKEN, "TRELLO_KEY": trello.KEY,
                        "TRELLO_TOKEN": trello.TOKEN, "ASANA_TOKEN": asana.TOKEN}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(SandboxServer(emulator))
            for name, emulator in (("jira", jira), ("trello", trello_emulator), ("asana", asana_emulator))
        }
        controls = {name: Control(server.base_url) for name, server in servers.items()}
        trello.seed_board(controls["trello"], board.id)
        jira_part = (
            jira_table(servers["jira"].base_url)
            .replace("[trackers.t", "[trackers.jira")
            .replace('"T_EMAIL"', '"JIRA_EMAIL"')
            .replace('"T_TOKEN"', '"JIRA_TOKEN"')
        )
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
            + trello.OKRS
            + jira_part
            + WRITE
            + trello.trello_table(servers["trello"].base_url, board.id, "trello")
            + asana.asana_table(servers["asana"].base_url, "asana")
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        stack.callback(store.close)
        yield Portfolio(
            config, path, store, jira, trello_emulator, board, asana_emulator, controls, rank_field
        )


def written_ranks(portfolio: Portfolio) -> dict[tuple[str, str], Any]:
    """(tracker, milestone remote id) -> the rank its tracker holds now."""
    found: dict[tuple[str, str], Any] = {}
    for issue in portfolio.jira.issues.values():
        if issue.fields["issuetype"]["name"] == "Epic":
            found[("jira", issue.id)] = issue.fields.get(portfolio.rank_field)
    rank_field = next(i for i, f in portfolio.board.custom_fields.items() if f["name"] == "Value rank")
    for label_id, label in portfolio.board.labels.items():
        if not label["name"].startswith("M:"):
            continue
        card = next(c for c in portfolio.board.cards.values() if c["name"] == label["name"][2:])
        item = next((i for i in card["customFieldItems"] if i["idCustomField"] == rank_field), None)
        found[("trello", f"label:{label_id}")] = float(item["value"]["number"]) if item else None
    state = portfolio.asana.state
    for gid, task in state.tasks.items():
        if task.subtype == "milestone":
            found[("asana", gid)] = task.custom_values.get(asana.RANK)
    return found


def test_one_cycle_ranks_the_whole_portfolio_and_writes_each_trackers_share(portfolio: Portfolio) -> None:
    result = portfolio.cycle()
    assert result.ok, [t.error for t in result.trackers]
    assert result.report is not None
    ranks = {(r.milestone.source, r.milestone.remote_id): r.rank for r in result.report.milestones}
    assert {source for source, _ in ranks} == {"jira", "trello", "asana"}
    assert sorted(ranks.values()) == list(range(1, len(ranks) + 1)), "one ranking across the trackers"
    held = written_ranks(portfolio)
    for key, rank in ranks.items():
        assert held[key] == rank, key
    for entry in result.trackers:
        assert entry.push is not None and entry.push.done > 0 and entry.push.failed == 0, entry.tracker


DOWN = [{"kind": "5xx", "status": 503}]
WRITES_DOWN = [{"kind": "5xx", "status": 503, "method": m} for m in ("PUT", "POST", "DELETE")]


@pytest.mark.parametrize("rules", [DOWN, WRITES_DOWN], ids=["down", "writes-down"])
def test_a_tracker_that_is_down_fails_alone_and_the_summary_says_so(
    portfolio: Portfolio, run_cli: Any, rules: list[dict[str, Any]]
) -> None:
    portfolio.controls["trello"].faults(*rules)
    summary = run_cli("sync", "--config", str(portfolio.config_path), "--json")
    assert summary.exit_code != 0, summary.stdout
    trackers = {t["tracker"]: t for t in json.loads(summary.stdout)["trackers"]}
    assert set(trackers) == {"jira", "trello", "asana"}
    assert trackers["trello"]["error"] and "503" in trackers["trello"]["error"]
    assert trackers["trello"]["writes_done"] == 0
    for name in ("jira", "asana"):
        assert trackers[name]["error"] is None, trackers[name]
        assert trackers[name]["writes_done"] == trackers[name]["writes_planned"] > 0
        assert trackers[name]["writes_failed"] == 0
    held = written_ranks(portfolio)
    assert any(v is not None for (t, _), v in held.items() if t == "jira")
    assert any(v is not None for (t, _), v in held.items() if t == "asana")
    assert all(v is None for (t, _), v in held.items() if t == "trello")

    portfolio.controls["trello"].faults()
    recovered = portfolio.cycle()
    assert recovered.ok, [t.error for t in recovered.trackers]
    assert recovered.report is not None
    trello_entry = next(t for t in recovered.trackers if t.tracker == "trello")
    assert trello_entry.push is not None and trello_entry.push.done > 0
    held = written_ranks(portfolio)
    for r in recovered.report.milestones:
        assert held[(r.milestone.source, r.milestone.remote_id)] == r.rank, "its milestones join the ranking"
