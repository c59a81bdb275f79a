"""Chaos: `bridge sync` started three times at once on one store, SQLite and PostgreSQL, against the three
sandbox trackers; and `bridge sync` while a daemon (`bridge run`) holds the store.

Three cron jobs firing together, or an operator's sync over a scheduled one, used to add the same
Trello OKR attachment two or three times. Asserted: each run either works or is refused naming the run
that holds the store or the tracker (exit 2); no run fails otherwise; every tracker ends with no
attachment, remote link, label, label definition, tag or goal link of the bridge's twice; and the next
plan is empty (what the runs wrote is exactly what is wanted). A `bridge sync` while a daemon runs on
the store is refused naming the daemon's process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.daemon.leases import DAEMON_LEASE, lease_states
from bridge.demo import Sandbox
from bridge.store import Store
from tests.demo_world import demo_config, emulators, running_sandbox

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

RUNS = 3
PREFIX = "mb-"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    """The sandboxes and a config whose store comes from $RACE_STORE_URL."""
    with running_sandbox(monkeypatch, seed=11, per_tracker=10) as sandbox:
        yield sandbox, demo_config(sandbox, tmp_path, "RACE_STORE_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_database_url"))
    monkeypatch.setenv("RACE_STORE_URL", url)
    return url


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *args, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def _duplicates(sandbox: Sandbox) -> list[str]:
    """What of the bridge's a tracker holds twice (links by URL, labels and tags by name, goal links)."""
    jira, trello, asana = emulators(sandbox)
    found: list[str] = []

    def twice(where: str, things: list[str]) -> None:
        found.extend(f"{where}: {thing} x{n}" for thing, n in Counter(things).items() if n > 1)

    for issue in jira.issues.values():
        twice(f"jira {issue.key} links", [link["object"]["url"] for link in issue.remote_links])
        twice(f"jira {issue.key} labels", list(issue.fields.get("labels") or []))
    for board in trello.boards.values():
        names = [str(label["name"]) for label in board.labels.values()]
        twice(f"trello {board.record['name']} label names", [n for n in names if n.startswith(PREFIX)])
        for card in board.cards.values():
            twice(f"trello {card['id']} attachments", [a["url"] for a in card["attachments"]])
            twice(f"trello {card['id']} labels", list(card["idLabels"]))
    state = asana.state
    twice("asana tags", [tag["name"] for tag in state.tags.values() if str(tag["name"]).startswith(PREFIX)])
    for task in state.tasks.values():
        twice(f"asana {task.gid} tags", list(task.tags))
    twice("asana goal links", [
        f"{r['supporting_resource']}->{json.dumps(r['supported_goal'], sort_keys=True)}"
        for r in state.relationships.values()
    ])  # fmt: skip
    return found


def _bridges_marks(sandbox: Sandbox) -> int:
    """How many of the bridge's attachments, links, labels and tags the trackers hold, all told."""
    jira, trello, asana = emulators(sandbox)
    marks = sum(len(issue.remote_links) for issue in jira.issues.values())
    cards = [card for board in trello.boards.values() for card in board.cards.values()]
    marks += sum(len(card["attachments"]) for card in cards)
    return marks + sum(len(task.tags) for task in asana.state.tasks.values())


def test_three_syncs_at_once_write_nothing_twice(world: tuple[Sandbox, Path], store_url: str) -> None:
    sandbox, config = world
    before = _bridges_marks(sandbox)
    jira = sandbox.servers["jira"].emulator
    # The first run to reach Jira waits there, holding the store (SQLite) or the trackers (PostgreSQL),
    # until the others have started and come to their end: so they overlap, whatever the machine's pace.
    jira.holds.hold(jira.requests.count + 1)
    started = [_start(config, "sync") for _ in range(RUNS)]
    deadline = time.monotonic() + 90
    while sum(p.poll() is not None for p in started) < RUNS - 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    held = jira.holds.waiting()
    jira.holds.release()
    runs = [_finish(p) for p in started]
    outcome = [(code, err[-1500:]) for code, _, err in runs]
    assert held, f"no run reached Jira while the others ran: {outcome}"
    assert sorted(code for code, _, _ in runs) == [0] + [2] * (RUNS - 1), outcome
    for code, _, err in runs:
        if code == 2:
            assert "is held by `bridge sync`" in err and "Traceback" not in err, err
    assert _bridges_marks(sandbox) > before, "the runs wrote the bridge's links, labels and tags"
    assert not _duplicates(sandbox), "\n".join(_duplicates(sandbox)[:40])

    again = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "sync", "--dry-run", "--json", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    planned = {t["tracker"]: t["writes_planned"] for t in json.loads(again.stdout)["trackers"]}
    assert set(planned.values()) == {0}, planned


def test_a_sync_while_the_daemon_holds_the_store_is_refused_naming_it(
    world: tuple[Sandbox, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, config = world
    monkeypatch.setenv("RACE_STORE_URL", f"sqlite:///{tmp_path / 'daemon.db'}")
    daemon = _start(config, "run")
    try:
        holder = _wait_for_the_daemon(daemon, tmp_path / "daemon.db")
        assert f":{daemon.pid}:" in holder
        for command in (["sync"], ["sync", "--dry-run"], ["pull"]):
            code, _, err = _finish(_start(config, *command))
            assert code == 2, err[-2000:]
            assert "the store (SQLite: one bridge process at a time) is held by a daemon" in err, err
            assert holder in err and "Traceback" not in err
    finally:
        daemon.send_signal(signal.SIGTERM)
        _finish(daemon)
    assert not _duplicates(sandbox)


def _wait_for_the_daemon(daemon: subprocess.Popen[str], path: Path) -> str:
    """The daemon's holder id, once it holds the SQLite store's daemon row."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert daemon.poll() is None, daemon.communicate()
        if path.exists():
            store = Store(f"sqlite:///{path}", create=False)
            try:
                with store.read() as conn:
                    states = {s.name: s for s in lease_states(conn)}
            except Exception:  # not migrated yet
                states = {}
            finally:
                store.close()
            state = states.get(DAEMON_LEASE)
            if state is not None and state.holder:
                return state.holder
        time.sleep(0.2)
    raise AssertionError("the daemon never claimed the store")
