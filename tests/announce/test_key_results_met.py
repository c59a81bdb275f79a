"""Key results met, over whole sync cycles against the Asana sandbox (goals as key results) and the
config's `[okrs]`, announced in chat through the sandbox's webhook receiver.

The first cycle is a silent baseline (a target met before the bridge watched is not announced); the
first cycle that sees a target met announces it once, naming its objective, the figure reached and the
milestones that moved it; falling below and meeting it again is announced as the next time, "again".
A `bridge sync` killed while its chat POST is held leaves at most one message, however often it runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.announced import announced
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.webhook import WebhookEmulator
from tests.sandbox.conftest import Control
from tests.system.test_sync_asana import DONE, GIDS, KR, KR_TITLE, OTHER_KR, TOKEN, asana_seed, asana_table

CONFIG_KR = """
[[okrs.objectives]]
id = "O1"
title = "Customers love onboarding"

[[okrs.objectives.key_results]]
id = "KR1"
title = "Onboarding done in a day"
start = 10.0
target = 40.0
current = {current}
unit = "%"
url = "https://okr.example.com/kr/1"
"""
CHANNEL = '\n[[announce.channels]]\nname = "delivery"\nkind = "slack"\nurl_env = "CHAT_URL"\n'
HOOK_PATH = "/services/T0SECRET/B0SECRET/xoxsecretpath"


@dataclass
class World:
    asana: Control
    chat: Control
    chat_url: str
    path: Path
    tmp_path: Path
    config: BridgeConfig
    store: Store | None = None

    def write_config(self, config_kr_current: float) -> None:
        store = f'[store]\nurl = "sqlite:///{self.tmp_path / "store.db"}"\n\n[push]\nmax_change_share = 1.0\n'
        base = self.asana.base.removesuffix("/_sandbox")
        self.path.write_text(
            store + CONFIG_KR.format(current=config_kr_current) + CHANNEL + asana_table(base)
        )
        self.config = load_config(self.path, ConnectorRegistry.default())

    def goal(self, gid: str, **metric: float) -> None:
        self.asana.edit(op="update_goal", goal=gid, fields={"metric": metric})

    def cycle(self) -> CycleResult:
        if self.store is None:
            self.store = Store.open(self.config)
        result = run_cycle(self.store, self.config, now=datetime.now(UTC))
        assert result.ok, [t.error for t in result.trackers]
        return result

    def messages(self) -> list[dict[str, Any]]:
        return [m["body"] for m in self.chat.get("messages")["messages"]]

    def headlines(self) -> list[str]:
        return [m["blocks"][0]["text"]["text"] for m in self.messages()]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    asana = AsanaEmulator.from_seed(asana_seed(datetime.now(UTC)), token=TOKEN)
    chat = WebhookEmulator("slack")
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(asana) as asana_server, SandboxServer(chat) as chat_server:
        chat_url = chat_server.base_url + HOOK_PATH
        monkeypatch.setenv("CHAT_URL", chat_url)
        path = tmp_path / "bridge.toml"
        placeholder = BridgeConfig()
        found = World(Control(asana_server.base_url), Control(chat_server.base_url), chat_url, path, tmp_path,
                      placeholder)  # fmt: skip
        found.write_config(20.0)
        found.goal(KR, initial_number_value=0, target_number_value=100, current_number_value=30)
        # Churn: lower is better, and already met before the bridge first looks.
        found.goal(OTHER_KR, initial_number_value=5, target_number_value=2, current_number_value=1.5)
        try:
            yield found
        finally:
            if found.store is not None:
                found.store.close()


def finish_milestone(world: World, name: str) -> None:
    for gid in (GIDS[f"{name} task"], GIDS[name]):
        world.asana.edit(op="complete_task", task=gid)
        world.asana.edit(op="move_task", task=gid, section=DONE)


def test_key_results_met_are_announced_once_after_a_silent_baseline_and_again_after_a_drop(
    world: World,
) -> None:
    first = world.cycle()
    assert world.messages() == [], "the first cycle is a baseline: churn, met already, is not announced"
    assert first.chat is not None and first.chat.line() is None

    finish_milestone(world, "Beta")
    world.goal(KR, current_number_value=100)
    world.write_config(40.0)
    met = world.cycle()
    # the milestone reached is told too, with the key results its completion met
    assert met.chat is not None and (met.chat.sent, met.chat.failed) == (3, 0)
    assert sorted(world.headlines()) == [
        f"Key result met: {KR_TITLE}",
        "Key result met: Onboarding done in a day",
        "Milestone reached: Beta",
    ]
    by_headline = {m["blocks"][0]["text"]["text"]: m for m in world.messages()}
    tracker_kr = by_headline[f"Key result met: {KR_TITLE}"]["text"]
    assert "Objective: Grow" in tracker_kr
    assert "Reached: 100 against a target of 100 (from 0)" in tracker_kr
    assert "Milestones that moved it: Beta" in tracker_kr
    config_kr = by_headline["Key result met: Onboarding done in a day"]["text"]
    assert "Objective: Customers love onboarding" in config_kr
    assert "Reached: 40% against a target of 40% (from 10%)" in config_kr

    world.cycle()
    assert len(world.messages()) == 3, "met and still met: nothing more"

    world.goal(KR, current_number_value=90)
    world.goal(OTHER_KR, current_number_value=3)
    world.write_config(35.0)
    world.cycle()
    assert len(world.messages()) == 3, "falling below a target is not announced"

    world.goal(KR, current_number_value=120)
    world.goal(OTHER_KR, current_number_value=1.9)
    world.write_config(41.0)
    world.cycle()
    again = world.headlines()[3:]
    assert sorted(again) == [
        f"Key result met again: {KR_TITLE}",
        "Key result met again: Churn under 2%",
        "Key result met again: Onboarding done in a day",
    ]
    assert world.store is not None
    with world.store.read() as conn:
        keys = sorted(r.key for r in announced(conn))
    assert keys == sorted(
        [f"kr-met:t:{KR}:1", "kr-met:config:KR1:1", f"kr-met:t:{KR}:2", "kr-met:config:KR1:2",
         f"kr-met:t:{OTHER_KR}:2", f"reached:t:{GIDS['Beta']}:1"]
    )  # fmt: skip


def test_a_dry_run_shows_the_announcement_and_sends_and_keeps_nothing(world: World, run_cli: Any) -> None:
    world.cycle()
    world.write_config(40.0)
    assert world.store is not None
    world.store.close()
    world.store = None
    shown = run_cli("sync", "--dry-run", "--config", str(world.path))
    assert shown.exit_code == 0, shown.stderr
    assert "would announce in delivery (slack):" in shown.stdout
    assert "  | Key result met: Onboarding done in a day" in shown.stdout
    assert world.messages() == []
    as_json = run_cli("sync", "--dry-run", "--json", "--config", str(world.path))
    (would,) = json.loads(as_json.stdout)["announcements"]["would_send"]
    assert would["key"] == "kr-met:config:KR1:1" and world.messages() == []
    real = run_cli("sync", "--config", str(world.path))
    assert "announcements: 1 sent, 0 failed" in real.stdout, "the dry runs kept no state"
    assert len(world.messages()) == 1
    for output in (shown.stdout + shown.stderr, as_json.stdout, real.stdout + real.stderr):
        assert world.chat_url not in output and "SECRET" not in output


def _sync(path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "sync", "--config", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_sync_killed_while_its_chat_post_is_held_leaves_at_most_one_message(world: World) -> None:
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
           "T_TOKEN": TOKEN, "CHAT_URL": world.chat_url}  # fmt: skip
    baseline = _sync(world.path, env)
    out, err = baseline.communicate(timeout=120)
    assert baseline.returncode == 0, err
    world.write_config(40.0)
    world.chat.send("POST", "hold", {"request": 1})
    killed = _sync(world.path, env)
    try:
        deadline = time.monotonic() + 120
        while world.chat.get("held")["waiting"] != [1]:
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the chat POST never arrived"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
        killed.communicate()
    world.chat.send("POST", "release", {})
    again = _sync(world.path, env)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert len(world.messages()) <= 1, "never twice"
    assert world.chat.get("requests")["total"] == 1, "the second sync sent nothing"
    assert world.chat_url not in out + err and "SECRET" not in out + err
