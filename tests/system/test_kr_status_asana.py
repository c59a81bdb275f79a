"""An Asana goal that is a key result gets a status update when its status changes: posted once, not
again while the status holds, again when it changes; a user's status update is theirs; `bridge purge`
leaves the goal's status updates in place and says so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.written import load_written
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control
from tests.system.test_sync_asana import KR, TOKEN, Sync, WriteSpy, asana_seed, asana_table

ENDED = (datetime.now(UTC) - timedelta(days=4)).date()


@pytest.fixture
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    """The Asana sandbox of `test_sync_asana`, its key-result goal in a time period that ended four days
    ago, with a metric at 4 of 10."""
    seed = asana_seed(datetime.now(UTC))
    (goal,) = [g for g in seed["goals"] if g["gid"] == KR]
    start = (ENDED - timedelta(days=90)).isoformat()
    goal["time_period"] = {"gid": "900", "display_name": "Q3", "period": "Q3", "start_on": start,
                           "end_on": ENDED.isoformat()}  # fmt: skip
    goal["metric"] = {"unit": "none", "initial_number_value": 0, "target_number_value": 10,
                      "current_number_value": 4}  # fmt: skip
    emulator = AsanaEmulator.from_seed(seed, token=TOKEN)
    spy = WriteSpy()
    spy.attach(emulator, monkeypatch)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n[push]\nmax_change_share = 1.0\n'
            + asana_table(server.base_url)
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Sync(server, emulator, Control(server.base_url), config, path, store, spy)
        finally:
            store.close()


def updates(sync: Sync) -> list[dict[str, Any]]:
    """The goal's status updates, oldest first, as `GET /status_updates?parent=` gives them."""
    answer = requests.get(
        f"{sync.server.base_url}/api/1.0/status_updates",
        params={"parent": KR, "opt_fields": "status_type,title,text,created_at"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def test_a_goal_gets_one_status_update_per_status_change_and_purge_leaves_them(
    sync: Sync, run_cli: Any
) -> None:
    planned = run_cli("sync", "--dry-run", "--config", str(sync.config_path))
    assert planned.exit_code == 0, planned.stderr + planned.stdout
    # the dry run's row of the goal: its status in words (the table wraps the field's name)
    assert re.search(r"│ key-result +│ +│ off track +│ off track: the", planned.stdout), planned.stdout
    assert "status_update" not in planned.stdout and "off_track" not in planned.stdout
    first = sync.cycle()
    (update,) = updates(sync)
    assert update["status_type"] == "off_track" and update["title"] == "Key result off track"
    assert update["text"].startswith(f"off track: the period ended {ENDED.isoformat()}, 4 days ago")
    assert update["text"].endswith(f"[milestone-bridge:kr-status:t:{KR}]")
    goal = sync.emulator.state.render_goal(sync.emulator.state.goals[KR])
    assert goal["current_status_update"]["title"] == "Key result off track"
    assert first.report is not None
    (found,) = [k for o in first.report.okrs for k in o.key_results if k.key_result.remote_id == KR]
    assert found.period_end == ENDED, "the goal's time period gives its period end"

    sync.forget_requests()
    sync.cycle()
    assert len(updates(sync)) == 1, "the same status is not posted again"
    assert not [w for w in sync.writes_sent() if "status_updates" in w]

    sync.emulator.state.goals[KR]["metric"]["current_number_value"] = 10
    sync.cycle()
    assert [u["status_type"] for u in updates(sync)] == ["off_track", "achieved"]
    assert updates(sync)[-1]["title"] == "Key result met"

    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "left in place: the bridge's latest status update on 1 goal" in result.stdout
    assert len(updates(sync)) == 2, "purge leaves a goal's status updates in place"
    with sync.store.read() as conn:
        assert load_written(conn, "t").rows == {}

    # A user's own status update is theirs: the bridge compares with its own newest one.
    requests.post(
        f"{sync.server.base_url}/api/1.0/status_updates",
        json={"data": {"parent": KR, "status_type": "at_risk", "text": "Waiting on legal", "title": "Mine"}},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()
    sync.cycle()
    assert [u["status_type"] for u in updates(sync)] == ["off_track", "achieved", "at_risk"]


def test_explain_names_the_goal_status_update_the_bridge_posts(sync: Sync, run_cli: Any) -> None:
    sync.cycle()
    result = run_cli("explain", f"t:{KR}", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].endswith(f"(key result, t:{KR})")
    assert "  progress: 40% - by its metric: current 4 from 0 towards 10" in lines
    assert (
        f"  period end: {ENDED.isoformat()} - the tracker's own: the goal's time period, else its due date"
        in lines
    )
    (update,) = [line for line in lines if line.startswith("  goal status update: ")]
    # the status line gives the reason; the write says where the status goes
    assert update.startswith("  goal status update: off track - its status, as above")
    assert update.endswith("; posted only when the status changes, never taken back")
    assert any(line.startswith('  last written status_update = "off_track" at ') for line in lines), lines
