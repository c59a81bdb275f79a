"""The generated organisation's Asana seed, loaded into the emulator and read through the real `asana` SDK."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asana
import pytest

from bridge_asana.client import make_api_client
from bridge_sandbox.asana import AsanaEmulator, format_time
from bridge_sandbox.generate import OBJECTIVES, STATUSES, MilestonePlan, Organisation, TaskPlan, build
from bridge_sandbox.generate_asana import WORKSPACE_GID, milestone_gid, render_asana, task_gid
from bridge_sandbox.server import SandboxServer

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TOKEN = "sandbox-asana-token"
TASK_FIELDS = ",".join(
    (
        "name", "resource_subtype", "completed", "completed_at", "created_at", "modified_at", "due_on",
        "memberships.section.name", "dependencies", "tags.name", "custom_fields.name",
        "custom_fields.number_value", "custom_fields.text_value",
    )
)  # fmt: skip
STORY_FIELDS = "resource_subtype,created_at,old_section.name,new_section.name"


@pytest.fixture(scope="module")
def organisation() -> Organisation:
    return build(seed=7, per_tracker=240, now=NOW)


@pytest.fixture(scope="module")
def client(organisation: Organisation) -> Iterator[Any]:
    with SandboxServer(AsanaEmulator.from_seed(render_asana(organisation))) as running:
        yield make_api_client(running.base_url, TOKEN, timeout=10)


@pytest.fixture(scope="module")
def listed(client: Any) -> dict[str, dict[str, Any]]:
    """Every task of every project, by gid, with the fields the checks need."""
    tasks: dict[str, dict[str, Any]] = {}
    for project in asana.ProjectsApi(client).get_projects_for_workspace(WORKSPACE_GID, {}):
        found = asana.TasksApi(client).get_tasks_for_project(
            project["gid"], {"opt_fields": TASK_FIELDS, "limit": 100}
        )
        tasks.update({t["gid"]: {**t, "project": project["name"]} for t in found})
    return tasks


def _live(organisation: Organisation) -> list[TaskPlan]:
    return [t for t in organisation.for_tracker("asana")[1] if not t.deleted]


def _section(record: dict[str, Any]) -> str:
    return str(record["memberships"][0]["section"]["name"])


def _gids(records: Any) -> list[str]:
    return [r["gid"] for r in records]


def _moves(task: TaskPlan) -> list[tuple[str, str, str]]:
    """(time, from, to) of each real move in the plan: a change to the status it has writes nothing."""
    moves, previous = [], "To Do"
    for change in task.changes:
        if change.status != previous:
            moves.append((str(format_time(change.at)), previous, change.status))
            previous = change.status
    return moves


def test_projects_sections_and_fields(client: Any, organisation: Organisation) -> None:
    projects = list(asana.ProjectsApi(client).get_projects_for_workspace(WORKSPACE_GID, {}))
    teams = [t for t in organisation.teams if t.tracker == "asana"]
    assert [p["name"] for p in projects] == [t.container for t in teams]
    for project in projects:
        sections = asana.SectionsApi(client).get_sections_for_project(project["gid"], {})
        assert [s["name"] for s in sections] == list(STATUSES)
        settings = asana.CustomFieldSettingsApi(client).get_custom_field_settings_for_project(
            project["gid"], {"opt_fields": "custom_field.name,custom_field.type"}
        )
        fields = [(s["custom_field"]["name"], s["custom_field"]["type"]) for s in settings]
        assert fields == [
            ("Customer value", "number"),
            ("Estimate", "number"),
            ("Value rank", "number"),
            ("Key result", "text"),
        ]
    tags = asana.TagsApi(client).get_tags_for_workspace(WORKSPACE_GID, {})
    assert sorted(t["name"] for t in tags) == sorted(w for team in teams for w in team.work_types)


def test_every_live_task_sits_in_its_status_section(
    listed: dict[str, dict[str, Any]], organisation: Organisation
) -> None:
    deleted = {t.number for t in organisation.for_tracker("asana")[1] if t.deleted}
    assert deleted and not any(task_gid(n) in listed for n in deleted), "a deleted task is simply gone"
    for task in _live(organisation):
        record = listed[task_gid(task.number)]
        assert (record["name"], record["project"], record["resource_subtype"]) == (
            task.title,
            task.team.container,
            "default_task",
        )
        assert _section(record) == task.status
        assert [t["name"] for t in record["tags"]] == [task.work_type]
        done = task.status == "Done"
        assert record["completed"] is done
        assert record["completed_at"] == (format_time(task.changes[-1].at) if done else None)
        assert record["created_at"] <= record["modified_at"] == format_time(task.updated)
        blockers = [task_gid(n) for n in task.blocked_by if n not in deleted]
        assert _gids(record["dependencies"]) == blockers


def test_milestones_wait_on_their_tasks(
    client: Any, listed: dict[str, dict[str, Any]], organisation: Organisation
) -> None:
    milestones = organisation.for_tracker("asana")[0]
    live = _live(organisation)
    for milestone in milestones:
        record = listed[milestone_gid(milestone.number)]
        assert (record["name"], record["resource_subtype"]) == (milestone.title, "milestone")
        assert record["project"] == milestone.team.container
        assert _section(record) == milestone.status and record["completed"] is (milestone.status == "Done")
        assert record["due_on"] == (milestone.due.isoformat() if milestone.due else None)
        members = [task_gid(t.number) for t in live if t.milestone == milestone.number]
        assert _gids(record["dependencies"]) == members
        stories = asana.StoriesApi(client).get_stories_for_task(
            record["gid"], {"opt_fields": "resource_subtype,dependency"}
        )
        waits = [s["dependency"]["gid"] for s in stories if s["resource_subtype"] == "dependency_added"]
        assert sorted(waits) == sorted(members)
        assert _values(record) == _expected_values(milestone)
    a_task = next(t for t in live if t.milestone is not None)
    dependents = asana.TasksApi(client).get_dependents_for_task(task_gid(a_task.number), {})
    assert milestone_gid(a_task.milestone or 0) in _gids(dependents), "the task finds its milestone"


def _values(record: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f.get("number_value", f.get("text_value")) for f in record["custom_fields"]}


def _expected_values(milestone: MilestonePlan) -> dict[str, Any]:
    return {
        "Customer value": milestone.value,
        "Estimate": milestone.effort,
        "Value rank": None,
        "Key result": None,
    }


def test_stories_replay_the_planned_changes(client: Any, organisation: Organisation) -> None:
    stories_api = asana.StoriesApi(client)
    for task in _live(organisation):
        stories = list(stories_api.get_stories_for_task(task_gid(task.number), {"opt_fields": STORY_FIELDS}))
        assert stories[0]["resource_subtype"] == "added_to_project"
        moved = [
            (s["created_at"], s["old_section"]["name"], s["new_section"]["name"])
            for s in stories
            if s["resource_subtype"] == "section_changed"
        ]
        assert moved == _moves(task)
        completions = [
            (s["created_at"], s["resource_subtype"]) for s in stories if "marked" in s["resource_subtype"]
        ]
        expected = [(at, "marked_complete") for at, _, new in _moves(task) if new == "Done"]
        expected += [(at, "marked_incomplete") for at, old, _ in _moves(task) if old == "Done"]
        assert completions == sorted(expected)
        assert [s["created_at"] for s in stories] == sorted(s["created_at"] for s in stories)


def test_a_burst_of_moves_within_a_minute_survives(client: Any, organisation: Organisation) -> None:
    def burst(task: TaskPlan) -> bool:
        stamps = [c.at for c in task.changes]
        return any(b - a < timedelta(minutes=1) for a, b in zip(stamps, stamps[3:], strict=False))

    bursting = [t for t in _live(organisation) if burst(t)]
    assert bursting, "the plan has a burst of changes"
    for task in bursting:
        stories = asana.StoriesApi(client).get_stories_for_task(task_gid(task.number), {})
        moves = [s["created_at"] for s in stories if s["resource_subtype"] == "section_changed"]
        assert len(moves) == len(_moves(task)) and moves[-4:] == [m[0] for m in _moves(task)[-4:]]


def test_awkward_titles_arrive_intact(listed: dict[str, dict[str, Any]], organisation: Organisation) -> None:
    names = {r["name"] for r in listed.values()}
    assert any(any(ord(ch) > 127 for ch in name) for name in names)
    assert any(len(name) > 1000 for name in names)
    assert names >= {t.title for t in _live(organisation)}


def test_goals_key_results_and_supporting_milestones(client: Any, organisation: Organisation) -> None:
    goals_api, relations = asana.GoalsApi(client), asana.GoalRelationshipsApi(client)
    goals = {g["name"]: g["gid"] for g in goals_api.get_goals({"workspace": WORKSPACE_GID})}
    milestones = organisation.for_tracker("asana")[0]
    assert len(goals) == sum(1 + len(krs) for _, _, krs in OBJECTIVES)
    for _, title, key_results in OBJECTIVES:
        for kr_id, kr_title, start, target, current in key_results:
            goal = goals_api.get_goal(goals[kr_title], {})
            metric = goal["metric"]
            assert (metric["initial_number_value"], metric["target_number_value"]) == (start, target)
            assert metric["current_number_value"] == current and goal["time_period"]["display_name"] == "FY26"
            assert _gids(goals_api.get_parent_goals_for_goal(goal["gid"], {})) == [goals[title]]
            supporting = relations.get_goal_relationships(
                goal["gid"], {"resource_subtype": "supporting_work", "opt_fields": "supporting_resource"}
            )
            expected = [milestone_gid(m.number) for m in milestones if m.key_result == kr_id]
            assert [r["supporting_resource"]["gid"] for r in supporting] == expected
    with_key_result = next(m for m in milestones if m.key_result)
    supported = goals_api.get_goals({"task": milestone_gid(with_key_result.number)})
    assert [g["name"] for g in supported] == [_kr_title(with_key_result.key_result or "")]


def _kr_title(kr_id: str) -> str:
    return next(title for _, _, krs in OBJECTIVES for kid, title, *_ in krs if kid == kr_id)


def test_the_same_organisation_renders_identically() -> None:
    first = build(seed=7, per_tracker=120, now=NOW)
    untouched = copy.deepcopy(first)
    once = json.dumps(render_asana(first), sort_keys=True)
    assert first == untouched, "rendering leaves the plan alone"
    assert once == json.dumps(render_asana(first), sort_keys=True)
    assert once == json.dumps(render_asana(build(seed=7, per_tracker=120, now=NOW)), sort_keys=True)
    assert once != json.dumps(render_asana(build(seed=8, per_tracker=120, now=NOW)), sort_keys=True)


def test_every_gid_is_unique(organisation: Organisation) -> None:
    seed = render_asana(organisation)
    records = [r for key, value in seed.items() if isinstance(value, list) for r in value]
    records += [story for stories in seed["stories"].values() for story in stories]
    records += [g["metric"] for g in seed["goals"] if "metric" in g]
    gids = [r["gid"] for r in records if isinstance(r, dict)]
    assert len(gids) == len(set(gids))


def test_cli_writes_an_asana_seed_that_loads(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bridge.cli", "sandbox", "generate", "--seed", "2", "--issues", "60",
               "--out", str(tmp_path), "--now", "2026-06-01T00:00:00+00:00"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"asana: {tmp_path / 'asana.json'}" in done.stdout
    emulator = AsanaEmulator.from_seed(tmp_path / "asana.json")
    milestones, tasks = build(seed=2, per_tracker=60, now=NOW).for_tracker("asana")
    assert len(emulator.state.tasks) == len(milestones) + sum(1 for t in tasks if not t.deleted)
    assert len(emulator.state.goals) == 9 and len(emulator.state.projects) == 2
