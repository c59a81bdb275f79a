"""Pulls from the Asana sandbox under the milestone modes other than milestone tasks: sections as milestones,
parent tasks as milestones (their subtasks the tasks), and tasks attached by a custom field naming their
milestone. Each case checks the store holds exactly the expected milestones and tasks with their links,
then changes the sandbox as a user would and checks an incremental pull follows."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.models import MilestoneRow, StatusChangeRow, TaskRow
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.contract import Rig
from tests.contract.test_asana_pull import TOKEN
from tests.sandbox.conftest import Control

WORKSPACE, PROJECT, FIELD = "1", "100", "300"
SECTIONS = {"To Do": "110", "In Progress": "111", "Done": "112", "Launch": "113", "Beta": "114"}
OPTIONS = {"Launch v2": "301", "Beta": "302"}
CREATED = "2026-05-01T09:00:00.000Z"


def _task(gid: str, section: str | None = "To Do", **extra: Any) -> dict[str, Any]:
    membership = [{"project": PROJECT, "section": SECTIONS[section]}] if section else []
    return {"gid": gid, "name": f"task {gid}", "created_at": CREATED, "memberships": membership, **extra}


def _seed(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "workspaces": [{"gid": WORKSPACE, "name": "Acme"}],
        "users": [{"gid": "2", "name": "Ada", "email": "ada@example.com"}],
        "custom_fields": [
            {
                "gid": FIELD,
                "name": "Milestone",
                "type": "enum",
                "enum_options": [{"gid": g, "name": n} for n, g in OPTIONS.items()],
            }
        ],
        "projects": [
            {
                "gid": PROJECT,
                "name": "Roadmap",
                "workspace": WORKSPACE,
                "created_at": CREATED,
                "custom_field_settings": [{"custom_field": FIELD}],
            },
        ],
        "sections": [{"gid": gid, "name": name, "project": PROJECT} for name, gid in SECTIONS.items()],
        "tasks": tasks,
    }


def _table(base_url: str, mode: str) -> str:
    return f"""
[trackers.t]
kind = "asana"
url = "{base_url}"
token_env = "T_TOKEN"
workspace = "{WORKSPACE}"
projects = ["{PROJECT}"]
max_requests_per_second = 1000
lag = "1m"
{mode}

[trackers.t.status_map]
"To Do" = "todo"
"In Progress" = "in_progress"
"Done" = "done"
"Launch" = "in_progress"
"Beta" = "todo"
"completed" = "done"
"""


SECTION_MODE = """
[trackers.t.milestones]
source = "section"
sections = ["Launch", "Beta"]

[trackers.t.tasks]
attach = "section"
"""

PARENT_MODE = """
[trackers.t.milestones]
source = "parent"

[trackers.t.tasks]
attach = "parent"
"""

FIELD_MODE = """
[trackers.t.tasks]
attach = "field"
field = "Milestone"
"""


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[[list[dict[str, Any]], str], Rig]]:
    opened: list[tuple[Store, SandboxServer]] = []

    def make(tasks: list[dict[str, Any]], mode: str) -> Rig:
        server = SandboxServer(AsanaEmulator.from_seed(_seed(tasks))).start()
        path = tmp_path / "bridge.toml"
        store_table = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n'
        path.write_text(store_table + _table(server.base_url, mode))
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        opened.append((store, server))
        return Rig(server, Control(server.base_url), path, config, store, {"T_TOKEN": TOKEN})

    yield make
    for store, server in opened:
        store.close()
        server.stop()


def _pull(rig: Rig) -> None:
    result = rig.pull(now=datetime.now(UTC))
    assert result.ok, result.error
    assert result.skipped == 0, result.skipped_keys


def _stored(rig: Rig) -> tuple[set[str], dict[str, str | None]]:
    """The live milestones, and each live task's milestone."""
    milestones, tasks = MilestoneRow.__table__, TaskRow.__table__  # type: ignore[attr-defined]
    with rig.store.read() as conn:
        found = {r.remote_id for r in conn.execute(select(milestones)) if not r.deleted}
        links = {r.remote_id: r.milestone_id for r in conn.execute(select(tasks)) if not r.deleted}
    return found, links


# ---- sections as milestones ---------------------------------------------------------------------------


def test_sections_are_milestones_and_a_move_relinks_the_task(make_rig: Any) -> None:
    launch, beta = SECTIONS["Launch"], SECTIONS["Beta"]
    rig = make_rig(
        [
            _task("1001", "Launch"),
            _task("1002", "Launch"),
            _task("1003", "Beta"),
            _task("1004", "To Do"),
            _task("1005", "Done", completed=True),
        ],
        SECTION_MODE,
    )
    _pull(rig)
    assert _stored(rig) == (
        {launch, beta},
        {"1001": launch, "1002": launch, "1003": beta, "1004": None, "1005": None},
    )

    rig.control.edit(op="move_task", task="1004", section=launch)  # into a milestone section
    rig.control.edit(op="move_task", task="1002", section=SECTIONS["In Progress"])  # out of one
    rig.control.edit(op="move_task", task="1003", section=launch)  # from one milestone to another
    _pull(rig)
    assert _stored(rig) == (
        {launch, beta},
        {"1001": launch, "1002": None, "1003": launch, "1004": launch, "1005": None},
    )
    with rig.store.read() as conn:
        table = TaskRow.__table__  # type: ignore[attr-defined]
        status = dict(conn.execute(select(table.c.remote_id, table.c.category)).all())
    assert status["1002"] == "in_progress" and status["1004"] == "in_progress"


def test_a_task_created_in_a_milestone_section_joins_it(make_rig: Any) -> None:
    rig = make_rig([_task("1001", "Launch"), _task("1002", "To Do")], SECTION_MODE)
    _pull(rig)
    created = rig.control.edit(op="create_task", project=PROJECT, section=SECTIONS["Beta"], name="new")
    _pull(rig)
    milestones, links = _stored(rig)
    assert milestones == {SECTIONS["Launch"], SECTIONS["Beta"]}
    assert links == {"1001": SECTIONS["Launch"], "1002": None, created["gid"]: SECTIONS["Beta"]}


# ---- parent tasks as milestones -----------------------------------------------------------------------


def _reparent(rig: Rig, task: str, parent: str | None) -> None:
    """`POST /tasks/{gid}/setParent`, through the sandbox's REST API as a client would call it."""
    request = urllib.request.Request(
        f"{rig.server.base_url}/api/1.0/tasks/{task}/setParent",
        data=json.dumps({"data": {"parent": parent}}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        assert (json.load(answer)["data"]["parent"] or {}).get("gid") == parent


PARENT_SEED = [
    _task("2001", "In Progress"),
    _task("2002", "To Do"),
    _task("2011", "To Do", parent="2001"),
    _task("2012", "Done", parent="2001", completed=True),
    _task("2021", "In Progress", parent="2002"),
    _task("2030", "To Do"),
]


def test_parent_tasks_are_milestones_and_their_subtasks_the_tasks(make_rig: Any) -> None:
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    assert _stored(rig) == (
        {"2001", "2002"},
        {"2011": "2001", "2012": "2001", "2021": "2002", "2030": None},
    )


def test_a_reparented_subtask_follows_its_new_parent(make_rig: Any) -> None:
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    _reparent(rig, "2012", "2002")
    _pull(rig)
    assert _stored(rig) == (
        {"2001", "2002"},
        {"2011": "2001", "2012": "2002", "2021": "2002", "2030": None},
    )


def test_a_task_given_a_subtask_becomes_a_milestone_and_one_left_without_becomes_a_task(
    make_rig: Any,
) -> None:
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    _reparent(rig, "2021", "2030")  # 2030 gains its first subtask, 2002 loses its only one
    rig.control.send("DELETE", "requests")
    _pull(rig)
    assert _stored(rig) == (
        {"2001", "2030"},
        {"2011": "2001", "2012": "2001", "2021": "2030", "2002": None},
    )
    # Batch requests: setup; 2030 and 2002, named by the events, in one; 2030's subtasks; the stories.
    routes = rig.control.get("requests")["by_route"]
    assert routes == {"GET /api/1.0/events": 1, "GET /api/1.0/tasks": 1, "POST /api/1.0/batch": 4}
    _reparent(rig, "2021", None)  # 2030 loses it again; 2021 is a top-level task of its own
    _pull(rig)
    assert _stored(rig) == (
        {"2001"},
        {"2011": "2001", "2012": "2001", "2021": None, "2002": None, "2030": None},
    )


def test_a_whole_pull_sees_role_changes_too(make_rig: Any) -> None:
    """`bridge pull --full` ignores the cursor, so it cannot know earlier roles: the store keeps an item
    in one role whichever page names it."""
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    _reparent(rig, "2021", "2030")
    result = rig.pull(full=True, now=datetime.now(UTC))
    assert result.ok, result.error
    assert _stored(rig) == (
        {"2001", "2030"},
        {"2011": "2001", "2012": "2001", "2021": "2030", "2002": None},
    )


def test_a_milestone_whose_last_subtask_is_deleted_becomes_a_task(make_rig: Any) -> None:
    """A deletion names no parent: the cursor remembers whose subtask it was."""
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    rig.control.edit(op="delete_task", task="2021")
    rig.control.send("DELETE", "requests")
    _pull(rig)
    milestones, links = _stored(rig)
    assert milestones == {"2001"} and links["2002"] is None
    routes = rig.control.get("requests")["by_route"]
    # The modified_since listing; Batch requests: setup, 2002 re-read, then its stories (now a task's).
    assert routes == {"GET /api/1.0/events": 1, "GET /api/1.0/tasks": 1, "POST /api/1.0/batch": 3}


def test_a_quiet_cycle_in_parent_mode_asks_only_the_events(make_rig: Any) -> None:
    rig = make_rig(PARENT_SEED, PARENT_MODE)
    _pull(rig)
    rig.control.send("DELETE", "requests")
    _pull(rig)
    routes = rig.control.get("requests")["by_route"]
    assert routes == {"GET /api/1.0/events": 1, "POST /api/1.0/batch": 1}, "events, and the setup batch"


OUTSIDE_SEED = [
    _task("2001", "In Progress"),
    _task("2011", None, parent="2001"),
    _task("2012", None, parent="2001", completed=True),
    _task("2030", "To Do"),
]


def test_subtasks_outside_the_project_are_read_through_their_parent(make_rig: Any) -> None:
    """Subtasks are usually not members of their parent's project (Asana's default)."""
    rig = make_rig(OUTSIDE_SEED, PARENT_MODE)
    _pull(rig)
    assert _stored(rig) == ({"2001"}, {"2011": "2001", "2012": "2001", "2030": None})
    assert _categories(rig) == {"2011": "todo", "2012": "done", "2030": "todo"}

    created = rig.control.edit(op="create_task", parent="2001", name="new subtask")  # in no project
    rig.control.edit(op="complete_task", task="2011")
    _reparent(rig, "2012", "2030")  # 2030 becomes a milestone through a subtask of no project
    _pull(rig)
    assert _stored(rig) == (
        {"2001", "2030"},
        {"2011": "2001", "2012": "2030", created["gid"]: "2001"},
    )
    assert _categories(rig) == {"2011": "done", "2012": "done", created["gid"]: "todo"}
    table = StatusChangeRow.__table__  # type: ignore[attr-defined]
    with rig.store.read() as conn:
        trail = [(r.from_status, r.to_status) for r in conn.execute(select(table)) if r.item_id == "2011"]
    assert trail == [("incomplete", "completed")]


def test_the_census_counts_subtasks_outside_the_project(make_rig: Any) -> None:
    rig = make_rig(OUTSIDE_SEED, PARENT_MODE)
    _pull(rig)
    rig.control.edit(op="delete_task", task="2011")
    rig.control.send("DELETE", "requests")
    result = rig.pull(now=datetime.now(UTC) + timedelta(days=2))  # the census is due again
    assert result.ok and result.census, result.error
    assert result.deleted == 1
    assert _stored(rig) == ({"2001"}, {"2012": "2001", "2030": None})
    routes = rig.control.get("requests")["by_route"]
    assert "GET /api/1.0/tasks/{task_gid}/subtasks" not in routes, "subtasks come through the Batch API"


def _categories(rig: Rig) -> dict[str, str]:
    table = TaskRow.__table__  # type: ignore[attr-defined]
    with rig.store.read() as conn:
        return {r.remote_id: r.category for r in conn.execute(select(table)) if not r.deleted}


# ---- a custom field names the milestone ---------------------------------------------------------------


def test_a_field_names_the_milestone_and_changing_it_relinks(make_rig: Any) -> None:
    launch = {"gid": FIELD, "enum_value": {"gid": OPTIONS["Launch v2"]}}
    beta = {"gid": FIELD, "enum_value": {"gid": OPTIONS["Beta"]}}
    rig = make_rig(
        [
            _task("3001", "To Do", name="Launch v2", resource_subtype="milestone"),
            _task("3002", "To Do", name="Beta", resource_subtype="milestone"),
            _task("3011", "To Do", custom_fields=[launch]),
            _task("3012", "In Progress", custom_fields=[launch]),
            _task("3021", "To Do", custom_fields=[beta]),
            _task("3030", "To Do"),
        ],
        FIELD_MODE,
    )
    _pull(rig)
    assert _stored(rig) == (
        {"3001", "3002"},
        {"3011": "3001", "3012": "3001", "3021": "3002", "3030": None},
    )

    rig.control.edit(op="set_custom_field", task="3012", field="Milestone", value="Beta")
    rig.control.edit(op="set_custom_field", task="3021", field="Milestone", value=None)
    rig.control.edit(op="set_custom_field", task="3030", field="Milestone", value="Launch v2")
    _pull(rig)
    assert _stored(rig) == (
        {"3001", "3002"},
        {"3011": "3001", "3012": "3002", "3021": None, "3030": "3001"},
    )
