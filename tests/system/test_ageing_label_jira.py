"""The ageing label over HTTP on the Jira sandbox: a task in progress far longer than 85 % of its work type
takes gets `mb-ageing` once, with its reason, and loses it when it is done."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import WriteKind
from bridge.report.status_page import item_warnings_json
from bridge.store import Store
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.generate_jira import STORY, ZONE, _project, _status
from bridge_sandbox.jira import JiraEmulator, format_time
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table

NOW = datetime.now(UTC)
REVIEW = "security-review"
FINISHED = 8
"""Security reviews finished within the analysis window (90 days), each in 2 to 3.75 days."""
AGED_DAYS = 40

WRITE = """
[trackers.t.write]
labels = true
"""


def _issue(number: int, ids: Iterator[int], moves: list[tuple[datetime, str]], status: str) -> dict[str, Any]:
    """A PAY story labelled as a security review, created a day before its first move."""
    previous, histories = "To Do", []
    for at, to in moves:
        item = {"field": "status", "fieldtype": "jira", "fieldId": "status",
                "from": _status(previous)["id"], "fromString": previous,
                "to": _status(to)["id"], "toString": to}  # fmt: skip
        histories.append({"id": str(next(ids)), "created": format_time(at, ZONE), "items": [item]})
        previous = to
    created = moves[0][0] - timedelta(days=1)
    last = moves[-1][0]
    fields = {
        "summary": f"Review payment flow {number}",
        "project": _project("PAY"),
        "issuetype": STORY,
        "status": _status(status),
        "labels": [REVIEW],
        "created": format_time(created, ZONE),
        "updated": format_time(last, ZONE),
        "resolutiondate": format_time(last, ZONE) if status == "Done" else None,
        "issuelinks": [],
    }
    key = f"PAY-{number}"
    return {"id": str(10100000 + number), "key": key, "fields": fields,
            "changelog": {"startAt": 0, "maxResults": len(histories), "total": len(histories),
                          "histories": list(reversed(histories))}}  # fmt: skip


def seed() -> dict[str, Any]:
    ids = itertools.count(50000)
    issues = []
    for n in range(1, FINISHED + 1):
        started = NOW - timedelta(days=60 - 5 * n)
        done = started + timedelta(days=2 + 0.25 * (n - 1))
        issues.append(_issue(n, ids, [(started, "In Progress"), (done, "Done")], "Done"))
    aged = NOW - timedelta(days=AGED_DAYS)
    issues.append(_issue(FINISHED + 1, ids, [(aged, "In Progress")], "In Progress"))
    fresh = NOW - timedelta(days=1)
    issues.append(_issue(FINISHED + 2, ids, [(fresh, "In Progress")], "In Progress"))
    return {"issues": issues}


@pytest.fixture
def jira(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[JiraEmulator, BridgeConfig, Store]]:
    emulator = JiraEmulator.from_search(seed())
    emulator.add_custom_field("Value", "number")
    emulator.add_custom_field("Story Points", "number")
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
            + jira_table(server.base_url, projects='"PAY"')
            + WRITE
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield emulator, config, store
        finally:
            store.close()


def _cycle(store: Store, config: BridgeConfig) -> CycleResult:
    result = run_cycle(store, config, now=datetime.now(UTC))
    assert result.ok, [t.error for t in result.trackers]
    return result


def _ageing_writes(result: CycleResult) -> list[Any]:
    plan = result.trackers[0].plan
    return [] if plan is None else [w for w in plan.writes if w.field == "mb-ageing"]


def test_a_task_in_progress_far_longer_than_its_work_type_takes_is_labelled_once_until_done(
    jira: tuple[JiraEmulator, BridgeConfig, Store],
) -> None:
    emulator, config, store = jira
    aged = emulator.issues[f"PAY-{FINISHED + 1}"]
    first = _cycle(store, config)
    (write,) = _ageing_writes(first)
    assert write.kind is WriteKind.LABEL_ADD and write.item.remote_id == aged.id
    reason = re.fullmatch(
        r"in progress (\d+\.\d) d, longer than 85% of payments/security-review work takes \((\d+\.\d) d\): "
        r"a hint to split it",
        write.reason,
    )
    assert reason is not None, write.reason
    assert abs(float(reason[1]) - AGED_DAYS) < 0.2 and 2.0 <= float(reason[2]) <= 3.75
    assert aged.fields["labels"] == [REVIEW, "mb-ageing"], "the label once, the user's kept"
    others = [i for i in emulator.issues.values() if i.key != aged.key]
    assert all("mb-ageing" not in i.fields["labels"] for i in others), "finished and fresh work is not ageing"
    assert first.report is not None
    (shown,) = item_warnings_json(first.report)
    assert shown == {
        "kind": "ageing",
        "item": f"t:{aged.id}",
        "name": f"{aged.key} Review payment flow {FINISHED + 1}",
        "team": "payments",
        "reason": write.reason,
        "label": "mb-ageing",
    }

    assert _ageing_writes(_cycle(store, config)) == [], "written once"
    assert aged.fields["labels"] == [REVIEW, "mb-ageing"]

    with emulator.lock:
        emulator.transition(aged.key, "Done")
    done = _cycle(store, config)
    (removed,) = _ageing_writes(done)
    assert removed.kind is WriteKind.LABEL_REMOVE
    assert aged.fields["labels"] == [REVIEW]
    assert done.report is not None and item_warnings_json(done.report) == []
