"""The pull contract for Asana, plus what only Asana has: section moves that leave `modified_at` alone,
histories read from stories through the Batch API, and goals as objectives, key results and links."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from bridge.store.models import KeyResultRow, MilestoneKeyResultRow, ObjectiveRow, StatusChangeRow, TaskRow
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import AsanaMapping, KnownMilestone
from bridge_asana.session import Action, AsanaSession
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import STATUSES, build
from bridge_sandbox.generate_asana import render_asana
from bridge_sandbox.server import Emulator, SandboxServer
from tests.contract.contract import PullContract, Rig, Truth
from tests.sandbox.conftest import Control

TOKEN = "sandbox-asana-token"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CATEGORY = {name: category for name, (_, category) in STATUSES.items()}
STATUS_STORIES = ("section_changed", "marked_complete", "marked_incomplete")
GROWTH = "Growth"


def _state(emulator: Emulator) -> Any:
    assert isinstance(emulator, AsanaEmulator)
    return emulator.state


def asana_truth(emulator: Emulator) -> Truth:
    """Milestone tasks and tasks by category (complete = done), and every status story of the tasks."""
    state = _state(emulator)
    milestones, tasks, changes = {}, {}, set()
    for task in state.tasks.values():
        section = next(iter(task.memberships.values()))
        category = "done" if task.completed else CATEGORY[state.sections[section]["name"]]
        if task.subtype == "milestone":
            milestones[task.gid] = category
            continue
        tasks[task.gid] = category
        changes |= {
            story["gid"]
            for story in state.stories.get(task.gid, [])
            if story["resource_subtype"] in STATUS_STORIES
        }
    return Truth(milestones, tasks, changes)


def _project(emulator: Emulator, name: str) -> str:
    return next(gid for gid, p in _state(emulator).projects.items() if p["name"] == name)


def _section(state: dict[str, Any], task: str, status: str) -> str:
    """The gid of the section called `status` in the task's project, from the control API's state."""
    project = next(t for t in state["tasks"] if t["gid"] == task)["memberships"][0]["project"]["gid"]
    return next(s["gid"] for s in state["sections"] if s["project"]["gid"] == project and s["name"] == status)


class TestAsanaPull(PullContract):
    seed_items: ClassVar[int] = 250  # two projects of about 125 tasks: two listing pages each
    streams: ClassVar[int] = 3  # goals and the two projects
    page_path: ClassVar[str] = "/api/1.0/tasks$"
    kill_at_request: ClassVar[int] = 18  # in the Batch requests for the second page's stories

    def make_emulator(self) -> Emulator:
        return AsanaEmulator.from_seed(render_asana(build(seed=21, per_tracker=self.seed_items, now=NOW)))

    def tracker_table(self, base_url: str) -> str:
        seed = AsanaEmulator.from_seed(render_asana(build(seed=21, per_tracker=1, now=NOW)))
        workspace = next(iter(seed.state.workspaces))
        projects = ", ".join(f'"{gid}"' for gid in seed.state.projects)
        statuses = "\n".join(f'"{name}" = "{category}"' for name, category in CATEGORY.items())
        return f"""
[trackers.t]
kind = "asana"
url = "{base_url}"
token_env = "T_TOKEN"
workspace = "{workspace}"
projects = [{projects}]
max_requests_per_second = 1000
lag = "1m"

[trackers.t.status_map]
{statuses}
"completed" = "done"

[trackers.t.fields]
value = "Customer value"
effort = "Estimate"

[[trackers.t.teams]]
name = "growth"
project = "{GROWTH}"

[[trackers.t.work_types]]
name = "data-request"
tag = "data-request"

[[trackers.t.okr_rules]]
section = "In Progress"
key_result = "t:rule-kr"

[trackers.t.okrs]
goals = true
"""

    def credentials(self, emulator: Emulator) -> dict[str, str]:
        return {"T_TOKEN": TOKEN}

    def truth(self, emulator: Emulator) -> Truth:
        return asana_truth(emulator)

    def create_item(self, control: Control) -> str:
        state = control.get("state")
        project = next(p["gid"] for p in state["projects"] if p["name"] == GROWTH)
        created = control.edit(op="create_task", project=project, name="Nouvelle tâche")
        return str(created["gid"])

    def move_item(self, control: Control, remote_id: str, status: str) -> None:
        control.edit(
            op="move_task", task=remote_id, section=_section(control.get("state"), remote_id, status)
        )

    def delete_item(self, control: Control, remote_id: str) -> None:
        control.edit(op="delete_task", task=remote_id)

    def any_task(self, emulator: Emulator) -> str:
        state = _state(emulator)
        return next(
            t.gid
            for t in state.tasks.values()
            if t.subtype != "milestone"
            and not t.completed
            and state.sections[next(iter(t.memberships.values()))]["name"] == "To Do"
        )

    # ---- what only Asana has --------------------------------------------------------------------------

    def test_a_section_move_is_seen_by_the_next_incremental_pull(self, rig: Rig) -> None:
        assert rig.pull().ok
        task = self.any_task(rig.emulator)
        before = _state(rig.emulator).tasks[task].modified_at
        rig.control.send("DELETE", "requests")
        self.move_item(rig.control, task, "In Review")
        assert _state(rig.emulator).tasks[task].modified_at == before, "the move leaves modified_at alone"
        result = rig.pull()
        assert result.ok, result.error
        stored = rig.stored()
        assert stored.tasks[task] == "in_progress"
        moves = [
            s["gid"] for s in _state(rig.emulator).stories[task] if s["resource_subtype"] == "section_changed"
        ]
        assert moves[-1] in stored.status_changes
        routes = rig.control.get("requests")["by_route"]
        assert routes.get("GET /api/1.0/tasks") == 1, "one modified_since read, which misses the move"
        assert routes.get("POST /api/1.0/batch", 0) >= 1, "the moved task was read by gid"
        self.assert_matches(rig)

    def test_a_quiet_cycle_asks_only_events_and_one_goals_batch(self, rig: Rig) -> None:
        assert rig.pull().ok
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok and result.items == 0 and result.changed == 0
        routes = rig.control.get("requests")["by_route"]
        setup = 1  # each project's sections and custom fields, in one Batch request
        assert routes == {"GET /api/1.0/events": 2, "POST /api/1.0/batch": 1 + setup}
        assert result.requests == 3 and result.setup_requests == setup

    def test_histories_from_stories_are_complete(self, rig: Rig) -> None:
        result = rig.pull()
        assert result.ok, result.error
        state = _state(rig.emulator)
        routes = rig.control.get("requests")["by_route"]
        assert "GET /api/1.0/tasks/{task_gid}/stories" not in routes, "stories come through the Batch API"
        table = StatusChangeRow.__table__  # type: ignore[attr-defined]
        tasks = TaskRow.__table__  # type: ignore[attr-defined]
        with rig.store.read() as conn:
            rows = conn.execute(select(table)).all()
            done = {r.remote_id: r for r in conn.execute(select(tasks)) if r.category == "done"}
        by_task: dict[str, list[Any]] = {}
        for row in rows:
            by_task.setdefault(row.item_id, []).append(row)
        for gid, task in state.tasks.items():
            if task.subtype == "milestone":
                continue
            stories = [s for s in state.stories.get(gid, []) if s["resource_subtype"] in STATUS_STORIES]
            assert {r.remote_id for r in by_task.get(gid, [])} == {s["gid"] for s in stories}
        some = max(by_task.values(), key=len)
        ordered = sorted(some, key=lambda r: (r.at, r.remote_id))
        assert all(a.to_status == b.from_status for a, b in itertools.pairwise(ordered))
        finished = [t for t in done.values() if t.started is not None]
        assert finished and all(t.done is not None and t.done >= t.started for t in finished)

    def test_goals_key_results_and_links_land(self, rig: Rig) -> None:
        assert rig.pull().ok
        state = _state(rig.emulator)
        with rig.store.read() as conn:
            objectives = {r.remote_id: r for r in conn.execute(select(ObjectiveRow.__table__))}  # type: ignore[attr-defined]
            krs = {r.remote_id: r for r in conn.execute(select(KeyResultRow.__table__))}  # type: ignore[attr-defined]
            links = self._links(rig)
        parents = {r["supporting_resource"]: r["supported_goal"] for r in state.relationships.values()}
        assert set(objectives) == {g for g in state.goals if g not in parents}
        assert {k: r.objective_id for k, r in krs.items()} == {
            g: parents[g] for g in state.goals if g in parents
        }
        for gid, row in krs.items():
            metric = state.goals[gid]["metric"]
            assert (row.target, row.current) == (
                metric["target_number_value"],
                metric["current_number_value"],
            )
        supported = {
            (r["supporting_resource"], r["supported_goal"], "tracker")
            for r in state.relationships.values()
            if r["supporting_resource"] in state.tasks
        }
        assert supported and {link for link in links if link[2] == "tracker"} == supported
        assert {link for link in links if link[2] == "rule"}, (
            "the okr rule on milestones In Progress linked some"
        )

        milestone = next(
            t.gid for t in state.tasks.values() if t.subtype == "milestone" and t.gid not in parents
        )
        kr = next(iter(krs))
        rig.control.edit(op="add_supporting", goal=kr, supporting=milestone)
        rig.control.edit(op="update_goal", goal=kr, fields={"metric": {"current_number_value": 99}})
        assert rig.pull().ok
        with rig.store.read() as conn:
            current = conn.execute(
                select(KeyResultRow.__table__.c.current).where(KeyResultRow.__table__.c.remote_id == kr)  # type: ignore[attr-defined]
            ).scalar()
            assert (milestone, kr, "tracker") in self._links(rig)
        assert current == 99

    @staticmethod
    def _links(rig: Rig) -> set[tuple[str, str, str]]:
        table = MilestoneKeyResultRow.__table__  # type: ignore[attr-defined]
        with rig.store.read() as conn:
            return {(r.milestone_id, r.kr_id, r.origin) for r in conn.execute(select(table))}

    def test_an_expired_sync_token_reads_the_project_whole(self, rig: Rig) -> None:
        assert rig.pull().ok
        task = self.any_task(rig.emulator)
        rig.control.send("POST", "clock", {"advance": 24 * 3600 + 60})  # Asana's tokens last a day
        self.move_item(rig.control, task, "Blocked")
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok, result.error
        assert rig.stored().tasks[task] == "waiting", "a move made while the token expired is not lost"
        reads = [e for e in rig.control.get("requests")["log"] if e["route"] == "/api/1.0/tasks"]
        assert reads and not any("modified_since" in e["query"] for e in reads)
        self.assert_matches(rig)

    def test_tasks_join_the_milestone_that_waits_on_them(self, rig: Rig) -> None:
        assert rig.pull().ok
        state = _state(rig.emulator)
        expected = {}
        for gid, task in state.tasks.items():
            if task.subtype != "milestone":
                waiting = [d for d in state.dependents.get(gid, []) if state.tasks[d].subtype == "milestone"]
                expected[gid] = waiting[0] if waiting else None
        table = TaskRow.__table__  # type: ignore[attr-defined]
        with rig.store.read() as conn:
            stored = dict(conn.execute(select(table.c.remote_id, table.c.milestone_id)).all())
        assert stored == expected and any(expected.values())


# ---- the mapping's rules, on records shaped as the API gives them ---------------------------------------

PROJECT, OTHER, TODO_SECTION, LAUNCH_SECTION = "10", "11", "20", "21"


def _mapping(**tables: Any) -> AsanaMapping:
    raw = {
        "kind": "asana", "token_env": "T_TOKEN", "workspace": "1", "projects": [PROJECT, OTHER],
        "status_map": {"To Do": "todo", "Launch": "in_progress", "completed": "done"}, **tables,
    }  # fmt: skip
    config = AsanaTrackerConfig.model_validate(raw)
    return AsanaMapping("t", config, attach_field="300" if config.tasks.field else None)


def _record(gid: str, section: str = TODO_SECTION, **extra: Any) -> dict[str, Any]:
    name = {TODO_SECTION: "To Do", LAUNCH_SECTION: "Launch"}.get(section, "Elsewhere")
    membership = {"project": {"gid": PROJECT, "name": "P"}, "section": {"gid": section, "name": name}}
    return {"gid": gid, "name": f"task {gid}", "memberships": [membership], **extra}


KNOWN = {"m1": KnownMilestone("Launch v2", LAUNCH_SECTION), "m2": KnownMilestone("Beta", TODO_SECTION)}


@pytest.mark.parametrize(
    ("tables", "record", "milestone"),
    [
        ({}, _record("t", dependents=[{"gid": "x"}, {"gid": "m1"}]), "m1"),
        ({}, _record("t", dependents=[{"gid": "x"}]), None),
        ({"tasks": {"attach": "parent"}}, _record("t", parent={"gid": "m1"}), "m1"),
        ({"tasks": {"attach": "parent"}}, _record("t", parent={"gid": "plain"}), None),
        ({"tasks": {"attach": "section"}}, _record("t", TODO_SECTION), "m2"),
        (
            {"tasks": {"attach": "field", "field": "Milestone"}},
            _record("t", custom_fields=[{"gid": "300", "name": "Milestone", "text_value": "launch V2"}]),
            "m1",
        ),
        (
            {"milestones": {"source": "section", "sections": ["Launch"]}, "tasks": {"attach": "section"}},
            _record("t", LAUNCH_SECTION),
            LAUNCH_SECTION,
        ),
    ],
)
def test_a_task_finds_its_milestone_by_each_attach_rule(
    tables: dict[str, Any], record: dict[str, Any], milestone: str | None
) -> None:
    mapping = _mapping(**tables)
    known = {**KNOWN, LAUNCH_SECTION: KnownMilestone("Launch", LAUNCH_SECTION)}
    if tables.get("milestones"):
        known = {LAUNCH_SECTION: KnownMilestone("Launch", LAUNCH_SECTION)}
    mapped = mapping.map_tasks([record], {}, known, {})
    assert not mapped.skipped and [t.milestone_id for t in mapped.tasks] == [milestone]


def test_status_is_the_section_or_completed_and_an_unknown_section_is_skipped() -> None:
    mapping = _mapping()
    records = [
        _record("open"),
        _record("closed", completed=True),
        _record("lost", "99"),
        _record("milestone", "99", resource_subtype="milestone"),
        {"name": "no gid", "memberships": []},
        {**_record("elsewhere"), "memberships": [{"project": {"gid": "77"}, "section": {"gid": "1"}}]},
    ]
    mapped = mapping.map_tasks(records, {}, {}, {})
    assert [(t.remote_id, t.raw_status, t.category) for t in mapped.tasks] == [
        ("open", TODO_SECTION, "todo"),
        ("closed", "completed", "done"),
    ]
    assert [(m.remote_id, m.category) for m in mapped.milestones] == [("milestone", "todo")]
    assert [s.key for s in mapped.skipped] == ["lost", "no gid"] and mapped.outside == 1


def test_history_follows_sections_and_completion_in_the_home_project_only() -> None:
    mapping = _mapping()
    mapping.section_projects = {TODO_SECTION: PROJECT, LAUNCH_SECTION: PROJECT, "30": OTHER}

    def story(
        gid: str, minute: int, kind: str, old: str | None = None, new: str | None = None
    ) -> dict[str, Any]:
        names = {TODO_SECTION: "To Do", LAUNCH_SECTION: "Launch", "30": "To Do", "31": "Launch"}
        sections = {
            "old_section": {"gid": old, "name": names.get(old or "", "")},
            "new_section": {"gid": new, "name": names.get(new or "", "")},
        }
        return {
            "gid": gid,
            "created_at": f"2026-05-01T10:{minute:02d}:00.000Z",
            "resource_subtype": kind,
            **(sections if new else {}),
        }

    stories = [
        story("s4", 4, "marked_incomplete"),
        story("s1", 1, "section_changed", TODO_SECTION, LAUNCH_SECTION),
        story("s2", 2, "section_changed", "31", "30"),  # a move in the other project
        story("s3", 3, "marked_complete"),
        story("s0", 0, "comment_added"),
    ]
    mapped = mapping.map_tasks([_record("t", LAUNCH_SECTION)], {"t": stories}, {}, {})
    trail = [(c.remote_id, c.from_status, c.to_status, c.to_category) for c in mapped.changes]
    assert trail == [
        ("s1", TODO_SECTION, LAUNCH_SECTION, "in_progress"),
        ("s3", LAUNCH_SECTION, "completed", "done"),
        ("s4", "completed", LAUNCH_SECTION, "in_progress"),
    ]
    (task,) = mapped.tasks
    assert task.started == datetime(2026, 5, 1, 10, 1, tzinfo=UTC) and task.done is None


def test_each_batch_action_is_charged_to_the_rate_limit() -> None:
    with SandboxServer(AsanaEmulator()) as server:
        table = {
            "kind": "asana", "url": server.base_url, "token_env": "T_TOKEN", "workspace": "1",
            "projects": ["2"], "status_map": {"To Do": "todo", "Done": "done"}, "max_requests_per_second": 10,
        }  # fmt: skip
        session = AsanaSession("t", AsanaTrackerConfig.model_validate(table), {"token_env": TOKEN})
        try:
            me = [Action("/users/me", fields=("name",))] * 10
            assert all(body["data"]["name"] for body in session.batch(me))
            session.batch(me)  # the bucket (10 a second) was emptied by the first ten actions
        finally:
            session.close()
    assert session.requests == 2 and session.batch_actions == 20
    assert session.limiter.waited >= 0.5
