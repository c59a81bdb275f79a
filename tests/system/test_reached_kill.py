"""A `bridge sync` killed while it posts a milestone's "reached" comment, on each tracker (Jira Cloud,
Trello, Asana), leaves exactly one comment once the next sync has run.

Each test: a first sync (the silent baseline), a user finishes a milestone's last task and the milestone
in the sandbox, then `bridge sync` runs as a subprocess with the comment's POST held by the sandbox and is
SIGKILLed there:
- held after being applied (the comment is made, its answer never reaches the bridge, nothing is
  recorded): the next sync finds the comment by its marker, posts nothing and records it in `written`;
- held at the door (the bridge dies before its post lands; the sandbox drops the request): no comment,
  and the next sync posts exactly one and records it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Ref
from bridge.store import Store
from bridge.store.written import load_written
from bridge.written import comment_marker
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import TrelloEmulator
from tests.contract.test_jira_pull import EMAIL, jira_table
from tests.contract.test_jira_pull import TOKEN as JIRA_TOKEN
from tests.sandbox.conftest import Control
from tests.system import test_sync_asana as asana
from tests.system import test_sync_trello as trello
from tests.system.test_sync_jira import OKRS as JIRA_OKRS

REACHED = "[milestone-bridge:reached:"
SYNC_TIMEOUT = 180


@dataclass
class Tracker:
    """One tracker's sandbox, a config naming it, and how a user finishes a milestone there."""

    kind: str
    control: Control
    config_path: Path
    env: dict[str, str]
    comment_route: str
    """The comment POST as a sandbox route hold names it."""
    finish: Callable[[], Ref]
    """A user finishes a milestone's last task and the milestone; returns the milestone."""
    comments: Callable[[Ref], list[str]]
    """The bridge's "reached" comments on a milestone, as the sandbox holds them."""

    def sync(self) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "bridge.cli", "sync", "--config", str(self.config_path)]
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def sync_to_the_end(self) -> str:
        process = self.sync()
        out, err = process.communicate(timeout=SYNC_TIMEOUT)
        assert process.returncode == 0, out + err
        return out

    def written_comments(self, milestone: Ref) -> set[str]:
        config = load_config(self.config_path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            with store.read() as conn:
                return set(load_written(conn, milestone.source).comments(milestone))
        finally:
            store.close()


def _env(**secrets: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return kept | secrets


def _store(tmp_path: Path) -> str:
    return f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'


def _jira(stack: ExitStack, tmp_path: Path) -> Tracker:
    seed = render_jira(build(seed=5, per_tracker=120, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = JiraEmulator.from_search(seed, flavour="cloud")
    emulator.add_custom_field("Value Rank", "number")
    emulator.add_custom_field("Key Result", "string")
    server = stack.enter_context(SandboxServer(emulator))
    control = Control(server.base_url)
    path = tmp_path / "bridge.toml"
    path.write_text(_store(tmp_path) + jira_table(server.base_url) + JIRA_OKRS)

    def epics() -> list[str]:
        found = [i for i in emulator.issues.values() if i.fields["issuetype"]["name"] == "Epic"]
        return sorted(i.key for i in found)

    def finish() -> Ref:
        for key in epics():
            epic = emulator.issues[key]
            tasks = [
                i.key for i in emulator.issues.values() if (i.fields.get("parent") or {}).get("key") == key
            ]
            if key.startswith("PAY-") and tasks and epic.fields["status"]["name"] != "Done":
                for task in tasks:
                    control.edit(op="transition", key=task, status="Done")
                control.edit(op="transition", key=key, status="Done")
                return Ref("t", epic.id)
        raise AssertionError("the seed has an open PAY epic with tasks")

    def comments(milestone: Ref) -> list[str]:
        (issue,) = [i for i in emulator.issues.values() if i.id == milestone.remote_id]
        return [str(c["text"]) for c in issue.comments if REACHED in str(c["text"])]

    env = _env(T_EMAIL=EMAIL, T_TOKEN=JIRA_TOKEN)
    return Tracker(
        "jira", control, path, env, "POST /rest/api/{version}/issue/{key}/comment", finish, comments
    )


def _trello(stack: ExitStack, tmp_path: Path) -> Tracker:
    emulator = TrelloEmulator(key=trello.KEY, token=trello.TOKEN)
    board = emulator.create_board("Design", ("To Do", "In Progress", "Done"))
    server = stack.enter_context(SandboxServer(emulator))
    control = Control(server.base_url)
    cards = trello.seed_board(control, board.id)
    path = tmp_path / "bridge.toml"
    path.write_text(_store(tmp_path) + trello.OKRS + trello.trello_table(server.base_url, board.id))

    def finish() -> Ref:
        control.edit(op="move_card", card=cards["Beta task"], list="Done")
        control.edit(op="move_card", card=cards["Beta"], list="Done")
        (label,) = [i for i, x in board.labels.items() if x["name"] == "M:Beta"]
        return Ref("t", f"label:{label}")

    def comments(milestone: Ref) -> list[str]:
        del milestone  # a label milestone's comments go on its card
        return [
            str(a["data"].get("text"))
            for a in board.actions
            if a["type"] == "commentCard"
            and (a["data"].get("card") or {}).get("id") == cards["Beta"]
            and REACHED in str(a["data"].get("text"))
        ]

    env = _env(T_KEY=trello.KEY, T_TOKEN=trello.TOKEN)
    return Tracker("trello", control, path, env, "POST /1/cards/{card}/actions/comments", finish, comments)


def _asana(stack: ExitStack, tmp_path: Path) -> Tracker:
    emulator = AsanaEmulator.from_seed(asana.asana_seed(datetime.now(UTC)), token=asana.TOKEN)
    server = stack.enter_context(SandboxServer(emulator))
    control = Control(server.base_url)
    path = tmp_path / "bridge.toml"
    push = "\n[push]\nmax_change_share = 1.0\n"
    path.write_text(_store(tmp_path) + push + asana.asana_table(server.base_url))

    def finish() -> Ref:
        for gid in (asana.GIDS["Beta task"], asana.GIDS["Beta"]):
            control.edit(op="complete_task", task=gid)
            control.edit(op="move_task", task=gid, section=asana.DONE)
        return Ref("t", asana.GIDS["Beta"])

    def comments(milestone: Ref) -> list[str]:
        stories = emulator.state.stories.get(milestone.remote_id, [])
        return [
            str(s["text"])
            for s in stories
            if s["resource_subtype"] == "comment_added" and REACHED in str(s["text"])
        ]

    env = _env(T_TOKEN=asana.TOKEN)
    return Tracker("asana", control, path, env, "POST /tasks/{task_gid}/stories", finish, comments)


@pytest.fixture(params=["jira", "trello", "asana"])
def tracker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tracker]:
    build_tracker = {"jira": _jira, "trello": _trello, "asana": _asana}[request.param]
    with ExitStack() as stack:
        yield build_tracker(stack, tmp_path)


def _kill_while_held(tracker: Tracker, *, applied: bool) -> None:
    """Run `bridge sync` with the comment POST held (`applied`: after it is made) and SIGKILL it there."""
    tracker.control.send("POST", "hold", {"route": tracker.comment_route, "after": applied})
    process = tracker.sync()
    try:
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            held = tracker.control.get("held")
            if held["waiting"] and (not applied or held["applied"]):
                break
            if process.poll() is not None:
                raise AssertionError(f"the sync ended before its comment POST: {process.communicate()}")
            assert time.monotonic() < deadline, "the comment POST never arrived"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL


def _posts(tracker: Tracker) -> list[dict[str, object]]:
    """The comment POSTs the sandbox saw (one dropped at the door included, with its fault)."""
    method, _, template = tracker.comment_route.partition(" ")
    log = tracker.control.get("requests")["log"]
    return [e for e in log if e["method"] == method and str(e["route"]).endswith(template)]


def test_killed_after_the_comment_is_posted_the_next_sync_finds_it_and_posts_no_other(
    tracker: Tracker,
) -> None:
    tracker.sync_to_the_end()  # the baseline: milestones done already are never announced
    milestone = tracker.finish()
    _kill_while_held(tracker, applied=True)
    assert len(tracker.comments(milestone)) == 1, "the post was applied, its answer never arrived"
    marker = comment_marker("reached", milestone, 1)
    assert marker not in tracker.written_comments(milestone), "killed before it was recorded"
    tracker.control.send("POST", "release", {})

    tracker.sync_to_the_end()
    (comment,) = tracker.comments(milestone)
    assert comment.endswith(marker)
    assert tracker.written_comments(milestone) == {marker}
    assert len(_posts(tracker)) == 1, f"{tracker.kind}: the next sync found the comment and posted none"
    tracker.sync_to_the_end()
    assert len(tracker.comments(milestone)) == 1


def test_killed_before_the_comment_is_posted_the_next_sync_posts_exactly_one(tracker: Tracker) -> None:
    tracker.sync_to_the_end()
    milestone = tracker.finish()
    _kill_while_held(tracker, applied=False)
    tracker.control.send("POST", "release", {})
    deadline = time.monotonic() + 30
    while not [e for e in _posts(tracker) if e.get("fault") == "client gone"]:
        assert time.monotonic() < deadline, "the held POST of the killed sync was never dropped"
        time.sleep(0.05)
    assert tracker.comments(milestone) == [], "the killed sync's post never landed"
    marker = comment_marker("reached", milestone, 1)
    assert tracker.written_comments(milestone) == set()

    tracker.sync_to_the_end()
    (comment,) = tracker.comments(milestone)
    assert comment.endswith(marker)
    assert tracker.written_comments(milestone) == {marker}
    tracker.sync_to_the_end()
    assert len(tracker.comments(milestone)) == 1, "a further sync posts nothing more"
