"""`bridge explain KEY_RESULT`: a key result's objective, progress and how it is reckoned, status with its
reason and period end, linked milestones, and what the bridge writes on it, over the Jira sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.sync.cycle import run_cycle
from tests.system import test_sync_jira
from tests.system.test_sync_jira import Sync

sync = test_sync_jira.sync  # the Jira sandbox fixture, shared

ENDED = (datetime.now(UTC) - timedelta(days=3)).date()


@pytest.fixture
def key_result(sync: Sync) -> Any:
    """A `Key Result` issue in PAY (target 100, current 40) beside the config's KR1 (which every PAY epic
    moves by a rule), the period over three days ago; one cycle run."""
    target = sync.emulator.add_custom_field("KR target", "number")
    current = sync.emulator.add_custom_field("KR current", "number")
    with sync.emulator.lock:
        issue = sync.emulator.create_issue(
            {
                "project": {"key": "PAY"},
                "issuetype": {"name": "Key Result"},
                "summary": "Wallets in every checkout",
                target: 100.0,
                current: 40.0,
            }
        )
    sync.config_path.write_text(
        sync.config_path.read_text()
        + '\n[trackers.t.okrs]\nkey_result_type = "Key Result"\ntarget_field = "KR target"\n'
        f'current_field = "KR current"\n\n[okrs]\nperiod_end = "{ENDED.isoformat()}"\n'
    )
    config = load_config(sync.config_path, ConnectorRegistry.default())
    assert run_cycle(sync.store, config, now=datetime.now(UTC)).ok
    return issue


def _explain(run_cli: Any, sync: Sync, *args: str) -> Any:
    return run_cli("explain", *args, "--config", str(sync.config_path))


def test_a_jira_key_result_by_its_key_says_how_it_stands_and_what_the_bridge_writes_there(
    sync: Sync, key_result: Any, run_cli: Any
) -> None:
    result = _explain(run_cli, sync, key_result.key.lower())
    assert result.exit_code == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"{key_result.key} Wallets in every checkout (key result, t:{key_result.id})"
    assert "  progress: 40% - by its metric: current 40 from 0 towards 100" in lines
    assert (
        f"  status: off track - the period ended {ENDED.isoformat()}, 3 days ago, and the target is not met"
        in lines
    )
    assert f"  period end: {ENDED.isoformat()} - [okrs] period_end" in lines
    assert "  milestone: none - no milestone is linked to it" in lines
    assert "  label: mb-kr-off-track - its status, as above" in lines, lines
    assert any(line.startswith('  last written labels = ["mb-kr-off-track"] at ') for line in lines), lines

    as_json = json.loads(_explain(run_cli, sync, key_result.key, "--json").stdout)
    assert as_json["kind"] == "key result" and as_json["key"] == key_result.key
    assert as_json["name"] == f"{key_result.key} Wallets in every checkout"
    facts = as_json["key_result"]
    assert facts["status"] == "off_track" and facts["progress"] == 0.4
    assert facts["progress_basis"] == "metric" and facts["period_end"] == ENDED.isoformat()
    assert [w["value"] for w in as_json["wanted"] if w["what"] == "label"] == ["mb-kr-off-track"]


def test_a_config_key_result_by_its_id_lists_its_milestones_with_partial_credit(
    sync: Sync, key_result: Any, run_cli: Any
) -> None:
    result = _explain(run_cli, sync, "KR1")
    assert result.exit_code == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "Card payments in ten new countries (key result, config:KR1)"
    assert "  objective: Take payments everywhere" in lines
    assert any(line.startswith("  progress: ") and "by its linked milestones" in line for line in lines)
    assert (
        "  writes: nothing - a key result of the config lives in no tracker, so nothing is written on it"
        in (lines)
    )
    facts = json.loads(_explain(run_cli, sync, "config:KR1", "--json").stdout)["key_result"]
    assert facts["objective"] == "Take payments everywhere" and facts["progress_basis"] == "milestones"
    milestones = facts["milestones"]
    assert milestones and all(m["key"].startswith("PAY-") and m["origin"] == "rule" for m in milestones)
    # By hand: each milestone's value (the mean of the set ones where none is set) times its credit.
    set_values = [m["value"] for m in milestones if m["value"]]
    values = [m["value"] or sum(set_values) / len(set_values) for m in milestones]
    credit = [
        1.0 if m["done"] else m["tasks_done"] / m["tasks_total"] if m["tasks_total"] else 0.0
        for m in milestones
    ]
    assert facts["progress"] == round(
        sum(v * c for v, c in zip(values, credit, strict=True)) / sum(values), 3
    )
    for m in milestones:
        state = (
            "done"
            if m["done"]
            else f"{'in progress' if m['tasks_done'] else 'open'}, {m['tasks_done']} of {m['tasks_total']} "
            f"task{'s' * (m['tasks_total'] != 1)} done"
            if m["tasks_total"]
            else "open, no tasks yet"
        )
        assert f"  milestone: {m['name']} - {state}; linked by rule" in lines


KEY_RESULT_FIELDS = [
    "id",
    "title",
    "objective",
    "weight",
    "progress",
    "progress_basis",
    "progress_explanation",
    "status",
    "status_reason",
    "period_end",
    "milestones",
]
LINKED_MILESTONE_FIELDS = [
    "id",
    "key",
    "title",
    "name",
    "origin",
    "value",
    "done",
    "tasks_done",
    "tasks_total",
]


def test_a_key_result_has_one_shape_in_the_report_the_status_json_and_explain(
    sync: Sync, key_result: Any, run_cli: Any
) -> None:
    """`bridge report --json`, the daemon's `/status.json` and `bridge explain KR --json` show a key
    result with the same fields, named the same, holding the same values."""
    from bridge.report.status_page import key_results_json

    config = load_config(sync.config_path, ConnectorRegistry.default())
    cycle = run_cycle(sync.store, config, now=datetime.now(UTC))
    assert cycle.ok and cycle.report is not None
    status_json = {kr["id"]: kr for kr in key_results_json(cycle.report)}
    reported = run_cli("report", "--json", "--config", str(sync.config_path))
    assert reported.exit_code == 0, reported.stderr
    in_report = {
        kr["id"]: kr
        for objective in json.loads(reported.stdout)["okrs"]["objectives"]
        for kr in objective["key_results"]
    }
    jira = f"t:{key_result.id}"
    assert {"config:KR1", jira} <= set(in_report) and set(in_report) == set(status_json)
    for wanted, name in (("config:KR1", "KR1"), (jira, key_result.key)):
        explained = json.loads(_explain(run_cli, sync, name, "--json").stdout)["key_result"]
        assert list(explained) == KEY_RESULT_FIELDS
        assert explained == in_report[wanted] == status_json[wanted]
    linked = in_report["config:KR1"]["milestones"]
    assert linked and all(list(m) == LINKED_MILESTONE_FIELDS for m in linked)
    assert in_report["config:KR1"]["objective"] == "Take payments everywhere"
    assert in_report[jira]["progress_explanation"] == "current 40 from 0 towards 100"


def test_a_title_two_key_results_share_is_refused_naming_each(
    sync: Sync, key_result: Any, run_cli: Any
) -> None:
    with sync.emulator.lock:
        sync.emulator.create_issue(
            {
                "project": {"key": "PAY"},
                "issuetype": {"name": "Key Result"},
                "summary": "Card payments in ten new countries",
            }
        )
    assert run_cycle(
        sync.store, load_config(sync.config_path, ConnectorRegistry.default()), now=datetime.now(UTC)
    ).ok
    found = _explain(run_cli, sync, "card payments in ten new countries")
    assert found.exit_code == 2
    assert "config:KR1  key result Card payments in ten new countries" in found.stderr
    assert "key result PAY-" in found.stderr
