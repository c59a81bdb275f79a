"""The Asana emulator, driven through the real `asana` v5 SDK over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asana
import pytest
import urllib3
from asana.rest import ApiException

from bridge_asana.client import make_api_client
from bridge_sandbox.asana import AsanaEmulator, parse_time
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control

TOKEN = "sandbox-asana-token"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WS, ME = "100", "200"
ROADMAP, BIG = "300", "301"
TODO, DOING, DONE = "400", "401", "402"
BIG_SECTIONS = ("410", "411", "412")
VALUE, PRIORITY, NOTE = "500", "501", "502"
LOW, HIGH = "510", "511"
UI = "600"
OBJECTIVE, KEY_RESULT, OTHER_GOAL = "700", "701", "702"
FY26, FY27 = "750", "751"
MILESTONE, BUILD, DOCS, SHIP, CHECKLIST = "800", "801", "802", "803", "810"
BIG_COUNT = 260


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _task(gid: str, name: str, section: str | None, **extra: Any) -> dict[str, Any]:
    project = ROADMAP if section in (TODO, DOING, DONE) else BIG
    memberships = [{"project": {"gid": project}, "section": {"gid": section}}] if section else []
    return {
        "gid": gid,
        "name": name,
        "created_at": _iso(T0),
        "modified_at": _iso(T0),
        "memberships": memberships,
        **extra,
    }


def _roadmap_tasks() -> list[dict[str, Any]]:
    value = {"gid": VALUE, "number_value": 40}
    return [
        _task(
            MILESTONE,
            "Launch v2",
            DOING,
            resource_subtype="milestone",
            due_on="2026-06-30",
            tags=[{"gid": UI}],
            custom_fields=[value, {"gid": PRIORITY, "enum_value": {"gid": HIGH}}],
        ),
        _task(BUILD, "Build the API", TODO, custom_fields=[{"gid": VALUE, "number_value": 8}]),
        _task(DOCS, "Write the docs", TODO, dependencies=[{"gid": BUILD}]),
        _task(SHIP, "Ship it", DONE, completed=True, completed_at=_iso(T0)),
        _task(CHECKLIST, "Launch checklist", None, parent={"gid": MILESTONE}),
    ]


def _big_tasks() -> list[dict[str, Any]]:
    return [
        {
            **_task(str(9000 + n), f"Task {n}", BIG_SECTIONS[n % 3]),
            "modified_at": _iso(T0 + timedelta(minutes=n)),
        }
        for n in range(1, BIG_COUNT + 1)
    ]


def _seed() -> dict[str, Any]:
    """Two projects: a small roadmap with fields, tags, a milestone and a subtask; 260 plain tasks."""
    period = {
        "gid": FY26,
        "display_name": "FY26",
        "period": "FY",
        "start_on": "2026-01-01",
        "end_on": "2026-12-31",
    }
    metric = {
        "unit": "percentage",
        "initial_number_value": 0.61,
        "target_number_value": 0.7,
        "current_number_value": 0.64,
        "precision": 0,
    }
    section_names = {TODO: "To Do", DOING: "Doing", DONE: "Done"}
    return {
        "workspaces": [{"gid": WS, "name": "Acme"}],
        "users": [{"gid": ME, "name": "Robin", "email": "robin@example.com"}, {"gid": "201", "name": "Alex"}],
        "custom_fields": [
            {"gid": VALUE, "name": "Value", "type": "number", "precision": 0},
            {
                "gid": PRIORITY,
                "name": "Priority",
                "type": "enum",
                "enum_options": [{"gid": LOW, "name": "Low"}, {"gid": HIGH, "name": "High"}],
            },
            {"gid": NOTE, "name": "Owner note", "type": "text"},
        ],
        "tags": [{"gid": UI, "name": "ui", "workspace": {"gid": WS}}],
        "projects": [
            {
                "gid": ROADMAP,
                "name": "Roadmap",
                "workspace": {"gid": WS},
                "custom_field_settings": [{"custom_field": {"gid": g}} for g in (VALUE, PRIORITY, NOTE)],
            },
            {"gid": BIG, "name": "Backlog", "workspace": {"gid": WS}},
        ],
        "sections": [{"gid": g, "name": n, "project": ROADMAP} for g, n in section_names.items()]
        + [{"gid": g, "name": f"Column {i}", "project": BIG} for i, g in enumerate(BIG_SECTIONS)],
        "tasks": _roadmap_tasks() + _big_tasks(),
        "stories": {
            BUILD: [
                {
                    "gid": "880",
                    "resource_subtype": "section_changed",
                    "created_at": _iso(T0),
                    "created_by": {"gid": ME},
                    "text": 'moved this task from "Doing" to "To Do" in Roadmap',
                    "old_section": {"gid": DOING},
                    "new_section": {"gid": TODO},
                }
            ],
        },
        "goals": [
            {
                "gid": OBJECTIVE,
                "name": "Make checkout effortless",
                "time_period": period,
                "owner": {"gid": ME},
            },
            {
                "gid": KEY_RESULT,
                "name": "Conversion to 70%",
                "time_period": {"gid": FY26},
                "metric": metric,
                "parent": {"gid": OBJECTIVE},
                "status": "green",
            },
            {"gid": OTHER_GOAL, "name": "Next year", "time_period": {"gid": FY27, "display_name": "FY27"}},
        ],
    }


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    emulator = AsanaEmulator.from_seed(_seed())
    emulator.clock.set(T0 + timedelta(days=1))
    with SandboxServer(emulator) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> Any:
    return make_api_client(server.base_url, TOKEN, timeout=10)


@pytest.fixture
def control(server: SandboxServer) -> Control:
    return Control(server.base_url)


def _body(error: ApiException) -> Any:
    return json.loads(error.body)


def _message(error: ApiException) -> str:
    return str(_body(error)["errors"][0]["message"])


def _gids(records: Any) -> list[str]:
    return [record["gid"] for record in records]


def _stories(client: Any, task: str) -> list[dict[str, Any]]:
    return list(asana.StoriesApi(client).get_stories_for_task(task, {}))


def _log(control: Control) -> list[dict[str, Any]]:
    return list(control.get("requests")["log"])


# ---- reading ----------------------------------------------------------------------------------------------


def test_me_and_workspaces(client: Any) -> None:
    me = asana.UsersApi(client).get_user("me", {"opt_fields": "name,email,workspaces.name"})
    assert me == {
        "gid": ME,
        "resource_type": "user",
        "name": "Robin",
        "email": "robin@example.com",
        "workspaces": [{"gid": WS, "resource_type": "workspace", "name": "Acme"}],
    }
    workspaces = list(asana.WorkspacesApi(client).get_workspaces({}))
    assert workspaces == [{"gid": WS, "resource_type": "workspace", "name": "Acme"}]


def test_projects_by_workspace_and_by_query(client: Any) -> None:
    projects = asana.ProjectsApi(client)
    assert _gids(projects.get_projects_for_workspace(WS, {})) == [ROADMAP, BIG]
    assert _gids(projects.get_projects({"workspace": WS})) == [ROADMAP, BIG]
    roadmap = projects.get_project(ROADMAP, {"opt_fields": "name,custom_field_settings.custom_field.name"})
    assert [s["custom_field"]["name"] for s in roadmap["custom_field_settings"]] == [
        "Value",
        "Priority",
        "Owner note",
    ]
    with pytest.raises(ApiException) as unknown:
        projects.get_project("999", {})
    assert unknown.value.status == 404 and _body(unknown.value)["errors"][0]["help"]


def test_sections_of_a_project(client: Any) -> None:
    sections = list(asana.SectionsApi(client).get_sections_for_project(ROADMAP, {}))
    assert [s["name"] for s in sections] == ["To Do", "Doing", "Done"]
    assert sections[0] == {"gid": TODO, "resource_type": "section", "name": "To Do"}


def test_more_than_250_tasks_page_through_with_opt_fields(client: Any, control: Control) -> None:
    fields = "name,modified_at,memberships.section.name"
    tasks = list(asana.TasksApi(client).get_tasks_for_project(BIG, {"opt_fields": fields, "limit": 100}))
    assert len(tasks) == BIG_COUNT and len(set(_gids(tasks))) == BIG_COUNT
    assert set(tasks[0]) == {"gid", "resource_type", "name", "modified_at", "memberships"}
    assert tasks[0]["memberships"] == [
        {"section": {"gid": BIG_SECTIONS[0], "resource_type": "section", "name": "Column 0"}}
    ]
    pages = [e for e in _log(control) if e["route"].endswith("/projects/{project_gid}/tasks")]
    assert (
        len(pages) == 3
        and "offset" not in pages[0]["query"]
        and all("offset" in p["query"] for p in pages[1:])
    )
    everything = list(asana.TasksApi(client).get_tasks({"project": BIG}))
    assert _gids(everything) == _gids(tasks), "GET /tasks?project= lists the project in the same order"


def test_next_page_carries_offset_path_and_uri(client: Any, server: SandboxServer) -> None:
    page = asana.TasksApi(client).get_tasks_for_project(BIG, {"limit": 100}, full_payload=True)
    assert len(page["data"]) == 100
    next_page = page["next_page"]
    assert (
        next_page["path"].startswith(f"/projects/{BIG}/tasks?")
        and f"offset={next_page['offset']}" in next_page["path"]
    )
    assert next_page["uri"] == f"{server.base_url}/api/1.0{next_page['path']}"
    last = asana.TasksApi(client).get_tasks_for_project(
        BIG, {"limit": 100, "offset": next_page["offset"]}, full_payload=True
    )
    assert _gids(last["data"])[0] not in _gids(page["data"])


def test_list_records_are_compact_without_opt_fields(client: Any) -> None:
    tasks = list(asana.TasksApi(client).get_tasks_for_project(ROADMAP, {}))
    assert tasks[0] == {
        "gid": BUILD,
        "resource_type": "task",
        "name": "Build the API",
        "resource_subtype": "default_task",
    }
    milestone = next(t for t in tasks if t["gid"] == MILESTONE)
    assert milestone["resource_subtype"] == "milestone"
    full = asana.TasksApi(client).get_task(MILESTONE, {})
    assert full["memberships"][0]["section"]["name"] == "Doing" and full["num_subtasks"] == 1


def test_modified_since_filters_tasks(client: Any) -> None:
    since = T0 + timedelta(minutes=250)
    tasks = list(
        asana.TasksApi(client).get_tasks(
            {"project": BIG, "modified_since": since, "opt_fields": "modified_at"}
        )
    )
    assert len(tasks) == BIG_COUNT - 249
    assert all(parse_time(t["modified_at"]) >= since for t in tasks)


def test_completed_since_now_leaves_out_completed_tasks(client: Any) -> None:
    tasks = list(asana.TasksApi(client).get_tasks_for_project(ROADMAP, {"completed_since": "now"}))
    assert SHIP not in _gids(tasks) and MILESTONE in _gids(tasks)


def test_subtasks_dependencies_and_dependents(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    assert _gids(tasks.get_subtasks_for_task(MILESTONE, {})) == [CHECKLIST]
    assert _gids(tasks.get_dependencies_for_task(DOCS, {})) == [BUILD]
    assert _gids(tasks.get_dependents_for_task(BUILD, {})) == [DOCS]
    control.edit(op="add_dependency", task=MILESTONE, blocked_by=DOCS)
    assert _gids(tasks.get_dependents_for_task(DOCS, {})) == [MILESTONE]
    assert _stories(client, MILESTONE)[-1]["resource_subtype"] == "dependency_added"
    with pytest.raises(ApiException) as circular:
        tasks.add_dependencies_for_task({"data": {"dependencies": [MILESTONE]}}, BUILD)
    assert circular.value.status == 400


# ---- writing ----------------------------------------------------------------------------------------------


def test_update_task_custom_fields(client: Any) -> None:
    tasks = asana.TasksApi(client)
    parts = ("name", "number_value", "enum_value.name", "text_value")
    fields = "modified_at," + ",".join(f"custom_fields.{part}" for part in parts)
    before = tasks.get_task(MILESTONE, {"opt_fields": fields})
    values = {f["name"]: f for f in before["custom_fields"]}
    assert values["Value"]["number_value"] == 40 and values["Priority"]["enum_value"]["name"] == "High"
    body = {"data": {"custom_fields": {VALUE: 60, PRIORITY: LOW, NOTE: "on track"}}}
    after = tasks.update_task(body, MILESTONE, {"opt_fields": fields})
    values = {f["name"]: f for f in after["custom_fields"]}
    assert (values["Value"]["number_value"], values["Priority"]["enum_value"]["name"]) == (60, "Low")
    assert values["Owner note"]["text_value"] == "on track"
    assert parse_time(after["modified_at"]) > parse_time(before["modified_at"])
    subtypes = [s["resource_subtype"] for s in _stories(client, MILESTONE)]
    assert {"number_custom_field_changed", "enum_custom_field_changed", "text_custom_field_changed"} <= set(
        subtypes
    )


def test_a_bad_custom_field_value_changes_nothing(client: Any) -> None:
    tasks = asana.TasksApi(client)
    with pytest.raises(ApiException) as bad:
        tasks.update_task({"data": {"custom_fields": {VALUE: 99, PRIORITY: "not-an-option"}}}, MILESTONE, {})
    assert bad.value.status == 400 and "Priority" in _message(bad.value)
    value = tasks.get_task(MILESTONE, {"opt_fields": "custom_fields.number_value"})["custom_fields"][0]
    assert value["number_value"] == 40


def test_completing_stamps_modified_at_and_writes_stories(client: Any) -> None:
    tasks = asana.TasksApi(client)
    fields = {"opt_fields": "completed,completed_at,modified_at"}
    before = tasks.get_task(BUILD, fields)
    done = tasks.update_task({"data": {"completed": True}}, BUILD, fields)
    assert done["completed"] and parse_time(done["modified_at"]) > parse_time(before["modified_at"])
    assert (
        parse_time(before["modified_at"])
        < parse_time(done["completed_at"])
        <= parse_time(done["modified_at"])
    )
    tasks.update_task({"data": {"completed": False}}, BUILD, {})
    subtypes = [s["resource_subtype"] for s in _stories(client, BUILD)]
    assert subtypes[-2:] == ["marked_complete", "marked_incomplete"]


def test_stories_include_section_changed(client: Any) -> None:
    stories = _stories(client, BUILD)
    assert stories[0]["resource_subtype"] == "section_changed"
    assert set(stories[0]) == {"gid", "resource_type", "created_at", "created_by", "resource_subtype", "text"}
    full = list(
        asana.StoriesApi(client).get_stories_for_task(
            BUILD, {"opt_fields": "old_section.name,new_section.name"}
        )
    )
    assert (full[0]["old_section"]["name"], full[0]["new_section"]["name"]) == ("Doing", "To Do")


def test_a_section_move_adds_a_story_but_keeps_modified_at(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    before = tasks.get_task(BUILD, {"opt_fields": "modified_at"})["modified_at"]
    since = parse_time(control.send("POST", "clock", {})["now"])
    control.edit(op="move_task", task=BUILD, section=DOING)
    asana.SectionsApi(client).add_task_for_section(DOING, {"body": {"data": {"task": DOCS}}})
    for gid in (BUILD, DOCS):
        task = tasks.get_task(gid, {"opt_fields": "modified_at,memberships.section.name"})
        assert task["memberships"][0]["section"]["name"] == "Doing"
        last = _stories(client, gid)[-1]
        assert last["resource_subtype"] == "section_changed"
    assert tasks.get_task(BUILD, {"opt_fields": "modified_at"})["modified_at"] == before
    polled = list(tasks.get_tasks({"project": ROADMAP, "modified_since": since}))
    assert polled == [], "a modified_since poll misses section moves, as on the real service"
    tasks.update_task({"data": {"notes": "now in progress"}}, DOCS, {})
    assert _gids(tasks.get_tasks({"project": ROADMAP, "modified_since": since})) == [DOCS]


def test_add_task_with_insert_before_and_after_orders_the_section(client: Any) -> None:
    sections, tasks = asana.SectionsApi(client), asana.TasksApi(client)
    assert _gids(tasks.get_tasks_for_section(TODO, {})) == [BUILD, DOCS]
    sections.add_task_for_section(TODO, {"body": {"data": {"task": DOCS, "insert_before": BUILD}}})
    assert _gids(tasks.get_tasks_for_section(TODO, {})) == [DOCS, BUILD]
    sections.add_task_for_section(TODO, {"body": {"data": {"task": MILESTONE, "insert_after": DOCS}}})
    assert _gids(tasks.get_tasks_for_section(TODO, {})) == [DOCS, MILESTONE, BUILD]
    sections.add_task_for_section(TODO, {"body": {"data": {"task": SHIP}}})
    assert _gids(tasks.get_tasks_for_section(TODO, {}))[0] == SHIP, "without a neighbour: the top"
    assert _gids(tasks.get_tasks_for_project(ROADMAP, {})) == [SHIP, DOCS, MILESTONE, BUILD]
    with pytest.raises(ApiException) as both:
        sections.add_task_for_section(
            TODO, {"body": {"data": {"task": SHIP, "insert_before": DOCS, "insert_after": BUILD}}}
        )
    assert both.value.status == 400


def _sync(client: Any, resource: str) -> str:
    with pytest.raises(ApiException) as first:
        asana.EventsApi(client).get_events(resource, {}, full_payload=True)
    return str(_body(first.value)["sync"])


def test_add_project_places_the_task_as_asana_describes(client: Any) -> None:
    tasks = asana.TasksApi(client)

    def add(task: str, **data: Any) -> None:
        tasks.add_project_for_task({"data": {"project": ROADMAP, **data}}, task)

    def order() -> dict[str, list[str]]:
        return {s: _gids(tasks.get_tasks_for_section(s, {})) for s in (TODO, DOING, DONE)}

    assert order() == {TODO: [BUILD, DOCS], DOING: [MILESTONE], DONE: [SHIP]}
    add(BUILD, insert_after=DOCS)
    assert order()[TODO] == [DOCS, BUILD], "moved within its section"
    add(BUILD, insert_before=DOCS)
    assert order()[TODO] == [BUILD, DOCS]
    add(SHIP, insert_after=BUILD)
    assert order() == {TODO: [BUILD, SHIP, DOCS], DOING: [MILESTONE], DONE: []}, "into the anchor's section"
    add(SHIP, section=DONE)
    assert order()[DONE] == [SHIP]
    add(DOCS, section=DOING)
    assert order()[DOING] == [MILESTONE, DOCS], "a section alone: its end"
    add(DOCS, section=DOING, insert_after=None)
    assert order()[DOING] == [DOCS, MILESTONE], "insert_after null with a section: its start"
    add(BUILD, insert_after=None)
    assert order()[TODO] == [BUILD], "insert_after null alone: the start of the project"
    add(BUILD)
    assert order()[DONE] == [SHIP, BUILD], "no place given: the end of the project"
    for bad in (
        {"insert_before": DOCS, "insert_after": SHIP},
        {"insert_after": "9001"},  # a task of another project
        {"insert_after": BUILD},  # itself
        {"section": "410"},  # a section of another project
    ):
        with pytest.raises(ApiException) as refused:
            add(BUILD, **bad)
        assert refused.value.status == 400, bad
    with pytest.raises(ApiException) as no_project:
        tasks.add_project_for_task({"data": {}}, BUILD)
    assert no_project.value.status == 400 and "project" in _message(no_project.value)


def test_add_project_joins_a_project_with_a_story(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    before = tasks.get_task("9001", {"opt_fields": "modified_at"})["modified_at"]
    control.send("POST", "clock", {"advance": 60})
    tasks.add_project_for_task({"data": {"project": ROADMAP, "insert_before": DOCS}}, "9001")
    task = tasks.get_task("9001", {"opt_fields": "modified_at,memberships.project,memberships.section"})
    assert {m["project"]["gid"]: m["section"]["gid"] for m in task["memberships"]} == {
        BIG: BIG_SECTIONS[1],
        ROADMAP: TODO,
    }
    assert _gids(tasks.get_tasks_for_section(TODO, {})) == [BUILD, "9001", DOCS]
    assert task["modified_at"] > before
    assert _stories(client, "9001")[-1]["resource_subtype"] == "added_to_project"


def test_a_move_within_a_section_is_an_event_but_no_modification(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    before = tasks.get_task(DOCS, {"opt_fields": "modified_at"})["modified_at"]
    stories = len(_stories(client, DOCS))
    token = _sync(client, ROADMAP)
    control.send("POST", "clock", {"advance": 60})
    asana.SectionsApi(client).add_task_for_section(
        TODO, {"body": {"data": {"task": DOCS, "insert_before": BUILD}}}
    )
    assert tasks.get_task(DOCS, {"opt_fields": "modified_at"})["modified_at"] == before
    assert len(_stories(client, DOCS)) == stories
    events = asana.EventsApi(client).get_events(ROADMAP, {"sync": token}, full_payload=True)["data"]
    assert [(e["action"], e["resource"]["gid"], e["parent"]["gid"]) for e in events] == [
        ("added", DOCS, TODO)
    ]


def test_a_goal_relationship_on_a_task_modifies_it_and_reaches_its_project(
    client: Any, control: Control
) -> None:
    tasks, relations = asana.TasksApi(client), asana.GoalRelationshipsApi(client)
    before = tasks.get_task(BUILD, {"opt_fields": "modified_at"})["modified_at"]
    token = _sync(client, ROADMAP)
    control.send("POST", "clock", {"advance": 60})
    relations.add_supporting_relationship({"data": {"supporting_resource": BUILD}}, KEY_RESULT, {})
    again = relations.add_supporting_relationship({"data": {"supporting_resource": BUILD}}, KEY_RESULT, {})
    assert len(list(relations.get_goal_relationships(KEY_RESULT, {}))) == 1, "added once"
    assert again["supporting_resource"]["gid"] == BUILD
    added = tasks.get_task(BUILD, {"opt_fields": "modified_at"})["modified_at"]
    assert added > before
    control.send("POST", "clock", {"advance": 60})
    relations.remove_supporting_relationship({"data": {"supporting_resource": BUILD}}, KEY_RESULT)
    assert tasks.get_task(BUILD, {"opt_fields": "modified_at"})["modified_at"] > added
    events = asana.EventsApi(client).get_events(ROADMAP, {"sync": token}, full_payload=True)["data"]
    assert [(e["type"], e["action"]) for e in events] == [
        ("goal_relationship", "added"),
        ("goal_relationship", "removed"),
    ]
    since = parse_time(before)
    assert BUILD in _gids(tasks.get_tasks({"project": ROADMAP, "modified_since": _iso(since)}))


def test_batch_runs_the_write_actions(client: Any) -> None:
    tags = asana.TagsApi(client)
    risk = tags.create_tag({"data": {"name": "mb-at-risk", "color": "dark-orange", "workspace": WS}}, {})
    actions = [
        {"relative_path": f"/tasks/{BUILD}", "method": "put", "data": {"custom_fields": {VALUE: 3}}},
        {"relative_path": f"/tasks/{BUILD}/addTag", "method": "post", "data": {"tag": risk["gid"]}},
        {"relative_path": f"/tasks/{DOCS}/removeTag", "method": "post", "data": {"tag": UI}},
        {
            "relative_path": f"/goals/{KEY_RESULT}/addSupportingRelationship",
            "method": "post",
            "data": {"supporting_resource": BUILD},
        },
        {
            "relative_path": f"/sections/{TODO}/addTask",
            "method": "post",
            "data": {"task": DOCS, "insert_before": BUILD},
        },
        {
            "relative_path": f"/tasks/{SHIP}/addProject",
            "method": "post",
            "data": {"project": ROADMAP, "insert_after": DOCS},
        },
        {"relative_path": f"/tasks/{BUILD}", "method": "put", "data": {"custom_fields": {VALUE: "high"}}},
    ]
    results = list(asana.BatchAPIApi(client).create_batch_request({"data": {"actions": actions}}, {}))
    assert [r["status_code"] for r in results] == [200] * 6 + [400]
    tasks = asana.TasksApi(client)
    build = tasks.get_task(BUILD, {"opt_fields": "tags.name,custom_fields.number_value"})
    assert [t["name"] for t in build["tags"]] == ["mb-at-risk"]
    assert next(f for f in build["custom_fields"] if f["gid"] == VALUE)["number_value"] == 3
    assert _gids(tasks.get_tasks_for_section(TODO, {})) == [DOCS, SHIP, BUILD]
    assert _gids(asana.GoalsApi(client).get_goals({"task": BUILD})) == [KEY_RESULT]


def test_tags_create_add_and_remove(client: Any) -> None:
    tags, tasks = asana.TagsApi(client), asana.TasksApi(client)
    okr = tags.create_tag_for_workspace({"data": {"name": "okr", "color": "dark-green"}}, WS, {})
    risk = tags.create_tag({"data": {"name": "risk", "workspace": WS}}, {})
    assert okr["color"] == "dark-green" and risk["workspace"]["gid"] == WS
    assert [t["name"] for t in tags.get_tags_for_workspace(WS, {})] == ["ui", "okr", "risk"]
    assert [t["name"] for t in tags.get_tags({"workspace": WS})] == ["ui", "okr", "risk"]
    tasks.add_tag_for_task({"data": {"tag": okr["gid"]}}, BUILD)
    assert _gids(tasks.get_task(BUILD, {"opt_fields": "tags"})["tags"]) == [okr["gid"]]
    tasks.remove_tag_for_task({"data": {"tag": okr["gid"]}}, BUILD)
    assert tasks.get_task(BUILD, {"opt_fields": "tags"})["tags"] == []
    subtypes = [s["resource_subtype"] for s in _stories(client, BUILD)]
    assert subtypes[-2:] == ["added_to_tag", "removed_from_tag"]
    with pytest.raises(ApiException) as bad:
        tags.create_tag({"data": {"name": "x", "color": "plaid", "workspace": WS}}, {})
    assert bad.value.status == 400


def test_custom_field_settings_and_definitions(client: Any) -> None:
    settings = list(asana.CustomFieldSettingsApi(client).get_custom_field_settings_for_project(ROADMAP, {}))
    assert [s["custom_field"]["gid"] for s in settings] == [VALUE, PRIORITY, NOTE]
    assert all(s["resource_type"] == "custom_field_setting" for s in settings)
    priority = asana.CustomFieldsApi(client).get_custom_field(PRIORITY, {})
    assert priority["type"] == "enum" and [o["name"] for o in priority["enum_options"]] == ["Low", "High"]


def test_workspace_custom_fields() -> None:
    seed = _seed()
    seed["workspaces"].append({"gid": "101", "name": "Elsewhere"})
    seed["custom_fields"].append({"gid": "503", "name": "Budget", "type": "number", "workspace": "101"})
    with SandboxServer(AsanaEmulator.from_seed(seed)) as running:
        client = make_api_client(running.base_url, TOKEN, timeout=10)
        fields = asana.CustomFieldsApi(client)
        listed = list(
            fields.get_custom_fields_for_workspace(WS, {"opt_fields": "name,type,enum_options.name"})
        )
        assert [f["gid"] for f in listed] == [VALUE, PRIORITY, NOTE]
        assert [o["name"] for o in listed[1]["enum_options"]] == ["Low", "High"]
        assert _gids(fields.get_custom_fields_for_workspace("101", {"limit": 1})) == ["503"]
        with pytest.raises(ApiException) as unknown:
            list(fields.get_custom_fields_for_workspace("999", {}))
        assert unknown.value.status == 404


def test_time_periods_of_a_workspace(client: Any) -> None:
    periods = asana.TimePeriodsApi(client)
    listed = list(periods.get_time_periods(WS, {}))
    assert [(p["gid"], p["display_name"]) for p in listed] == [(FY26, "FY26"), (FY27, "FY27")]
    assert set(listed[0]) == {"gid", "resource_type", "display_name", "period", "start_on", "end_on"}
    assert _gids(periods.get_time_periods(WS, {"start_on": "2026-01-01", "end_on": "2026-12-31"})) == [FY26]
    full = periods.get_time_period(FY26, {})
    assert full["period"] == "FY" and full["parent"] is None
    with pytest.raises(ApiException) as missing:
        list(periods.get_time_periods("", {}))
    assert missing.value.status == 400 and "workspace" in _message(missing.value)


def test_seeded_time_periods_keep_their_parent_and_workspace() -> None:
    seed = {
        "workspaces": [{"gid": "1", "name": "A"}, {"gid": "2", "name": "B"}],
        "time_periods": [
            {"gid": "10", "display_name": "FY27", "period": "FY", "start_on": "2027-01-01", "workspace": "2"},
            {"gid": "11", "display_name": "Q1 FY27", "period": "Q1", "parent": "10", "workspace": "2"},
        ],
    }
    emulator = AsanaEmulator.from_seed(seed)
    with SandboxServer(emulator) as running:
        periods = asana.TimePeriodsApi(make_api_client(running.base_url, TOKEN, timeout=10))
        assert list(periods.get_time_periods("1", {})) == []
        assert _gids(periods.get_time_periods("2", {})) == ["10", "11"]
        assert periods.get_time_period("11", {})["parent"]["display_name"] == "FY27"
    assert (
        AsanaEmulator.from_seed(emulator.dump_state()).dump_state()["time_periods"]
        == (emulator.dump_state()["time_periods"])
    )


def test_goals_and_supporting_relationships(client: Any) -> None:
    goals, relations = asana.GoalsApi(client), asana.GoalRelationshipsApi(client)
    assert _gids(goals.get_goals({"workspace": WS, "time_periods": FY26})) == [OBJECTIVE, KEY_RESULT]
    key_result = goals.get_goal(KEY_RESULT, {})
    assert (
        key_result["metric"]["target_number_value"] == 0.7
        and key_result["time_period"]["display_name"] == "FY26"
    )
    assert _gids(goals.get_parent_goals_for_goal(KEY_RESULT, {})) == [OBJECTIVE]
    link = relations.add_supporting_relationship(
        {"data": {"supporting_resource": MILESTONE, "contribution_weight": 0.5}}, KEY_RESULT, {}
    )
    assert link["resource_subtype"] == "supporting_work" and link["supporting_resource"]["gid"] == MILESTONE
    assert _gids(relations.get_goal_relationships(KEY_RESULT, {})) == [link["gid"]]
    assert _gids(goals.get_goals({"task": MILESTONE})) == [KEY_RESULT]
    relations.remove_supporting_relationship({"data": {"supporting_resource": MILESTONE}}, KEY_RESULT)
    assert list(relations.get_goal_relationships(KEY_RESULT, {})) == []
    with pytest.raises(ApiException) as cycle:
        relations.add_supporting_relationship({"data": {"supporting_resource": OBJECTIVE}}, KEY_RESULT, {})
    assert cycle.value.status == 400


def test_external_attachment_create_list_delete(client: Any) -> None:
    attachments = asana.AttachmentsApi(client)
    opts = {
        "resource_subtype": "external",
        "parent": BUILD,
        "url": "https://bridge.example/okr/1",
        "name": "OKR",
    }
    made = attachments.create_attachment_for_object(opts)
    assert made == {
        "gid": made["gid"],
        "resource_type": "attachment",
        "name": "OKR",
        "resource_subtype": "external",
    }
    listed = list(attachments.get_attachments_for_object(BUILD, {"opt_fields": "name,view_url,host,parent"}))
    assert listed[0]["view_url"] == "https://bridge.example/okr/1" and listed[0]["host"] == "external"
    assert listed[0]["parent"]["gid"] == BUILD
    attachments.delete_attachment(made["gid"])
    assert list(attachments.get_attachments_for_object(BUILD, {})) == []
    assert _stories(client, BUILD)[-1]["resource_subtype"] == "attachment_added"


# ---- events and batch -------------------------------------------------------------------------------------


def test_events_412_then_token_then_changes(client: Any, control: Control) -> None:
    events = asana.EventsApi(client)
    with pytest.raises(ApiException) as first:
        events.get_events(ROADMAP, {}, full_payload=True)
    assert first.value.status == 412 and "Sync token invalid" in _message(first.value)
    token = _body(first.value)["sync"]
    quiet = events.get_events(ROADMAP, {"sync": token}, full_payload=True)
    assert quiet["data"] == [] and quiet["has_more"] is False
    control.edit(op="complete_task", task=DOCS)
    control.edit(op="move_task", task=BUILD, section=DONE)
    changed = events.get_events(ROADMAP, {"sync": quiet["sync"]}, full_payload=True)
    completed = [e for e in changed["data"] if e.get("change", {}).get("field") == "completed"]
    assert completed[0]["resource"]["gid"] == DOCS and completed[0]["change"]["new_value"] is True
    moves = [(e["action"], e["parent"]["gid"]) for e in changed["data"] if e["resource"]["gid"] == BUILD]
    assert moves == [("removed", TODO), ("added", DONE)]
    again = events.get_events(ROADMAP, {"sync": quiet["sync"]}, full_payload=True)
    assert again["data"] == changed["data"], "re-reading a token gives the same events"
    control.send("POST", "clock", {"advance": 24 * 3600 + 1})
    with pytest.raises(ApiException) as expired:
        events.get_events(ROADMAP, {"sync": changed["sync"]}, full_payload=True)
    assert expired.value.status == 412 and _body(expired.value)["sync"] != changed["sync"]


def test_events_come_100_at_a_time_with_has_more(client: Any, server: SandboxServer) -> None:
    events = asana.EventsApi(client)
    with pytest.raises(ApiException) as first:
        events.get_events(BUILD, {}, full_payload=True)
    token = _body(first.value)["sync"]
    with server.emulator.lock:  # in-process, as the control API does it, to keep the test quick
        for n in range(120):  # each rename: a story event and a change event
            server.emulator.edit(
                {"op": "update_task", "task": BUILD, "fields": {"name": f"Build the API #{n}"}}
            )
    seen, more = [], True
    while more:
        page = events.get_events(BUILD, {"sync": token}, full_payload=True)
        seen += page["data"]
        token, more = page["sync"], page["has_more"]
        assert len(page["data"]) <= 100
    assert len(seen) == 240 and seen[-1]["resource"]["name"] == "Build the API #119"


def test_event_iterator_handles_the_first_412(client: Any, control: Control) -> None:
    assert list(asana.EventsApi(client).get_events(BUILD, {})) == []
    assert [e["status"] for e in _log(control)] == [412, 200], "the SDK retries with the fresh sync token"


def test_batch_answers_each_action(client: Any) -> None:
    actions = [
        {"relative_path": f"/tasks/{BUILD}", "method": "get", "options": {"fields": ["name"]}},
        {"relative_path": f"/tasks/{BUILD}", "method": "put", "data": {"name": "Build the API v2"}},
        {"relative_path": "/tasks/999", "method": "get"},
        {"relative_path": "/projects", "method": "get", "data": {"workspace": WS}, "options": {"limit": 1}},
    ]
    results = list(asana.BatchAPIApi(client).create_batch_request({"data": {"actions": actions}}, {}))
    assert [r["status_code"] for r in results] == [200, 200, 404, 200]
    assert results[0]["body"]["data"] == {"gid": BUILD, "resource_type": "task", "name": "Build the API"}
    assert results[1]["body"]["data"]["name"] == "Build the API v2"
    assert results[3]["body"]["next_page"]["offset"]


def test_batch_of_more_than_ten_actions_is_rejected(client: Any) -> None:
    actions = [{"relative_path": "/users/me", "method": "get"}] * 11
    with pytest.raises(ApiException) as too_many:
        list(asana.BatchAPIApi(client).create_batch_request({"data": {"actions": actions}}, {}))
    assert too_many.value.status == 400 and "10" in _message(too_many.value)


# ---- failures ---------------------------------------------------------------------------------------------


def test_wrong_token_is_401(server: SandboxServer) -> None:
    wrong = make_api_client(server.base_url, "not-the-token", timeout=10)
    with pytest.raises(ApiException) as denied:
        asana.UsersApi(wrong).get_user("me", {})
    assert denied.value.status == 401 and _message(denied.value) == "Not Authorized"


def test_429_surfaces_once_with_retries_off(client: Any, control: Control) -> None:
    control.faults({"kind": "429", "retry_after": 7})
    with pytest.raises(ApiException) as limited:
        asana.UsersApi(client).get_user("me", {})
    assert limited.value.status == 429 and limited.value.headers["Retry-After"] == "7"
    assert "too many requests" in _message(limited.value)
    assert len(_log(control)) == 1, "the SDK's own retries are off"


def test_the_sdk_left_alone_retries_a_429_by_itself(server: SandboxServer, control: Control) -> None:
    configuration = asana.Configuration()
    configuration.host = server.base_url + "/api/1.0"
    configuration.access_token = TOKEN
    control.faults({"kind": "429", "retry_after": 0, "count": 1})
    assert asana.UsersApi(asana.ApiClient(configuration)).get_user("me", {})["gid"] == ME
    assert [e["status"] for e in _log(control)] == [429, 200]


def _spend(client: Any, requests: int) -> None:
    """Spend vendor budget in batches of ten actions (each action counts as one request)."""
    actions = [{"relative_path": "/users/me", "method": "get"}] * 10
    for _ in range(requests // 10):
        results = list(asana.BatchAPIApi(client).create_batch_request({"data": {"actions": actions}}, {}))
        assert [r["status_code"] for r in results] == [200] * 10


def test_vendor_limit_refuses_the_151st_request_in_a_minute(client: Any, control: Control) -> None:
    control.faults({"kind": "vendor_limits"})
    users = asana.UsersApi(client)
    _spend(client, 140)
    for _ in range(10):
        users.get_user("me", {})
    with pytest.raises(ApiException) as limited:
        users.get_user("me", {})
    assert limited.value.status == 429 and 0 < int(limited.value.headers["Retry-After"]) <= 60
    assert "too many requests" in _message(limited.value)


def test_a_batch_that_would_exceed_the_vendor_limit_is_refused_whole(client: Any, control: Control) -> None:
    control.faults({"kind": "vendor_limits"})
    _spend(client, 140)
    for _ in range(8):
        asana.UsersApi(client).get_user("me", {})
    actions = [{"relative_path": f"/tasks/{BUILD}", "method": "put", "data": {"name": "Changed"}}] * 3
    with pytest.raises(ApiException) as whole:
        list(asana.BatchAPIApi(client).create_batch_request({"data": {"actions": actions}}, {}))
    assert whole.value.status == 429
    build = next(t for t in control.get("state")["tasks"] if t["gid"] == BUILD)
    assert build["name"] == "Build the API", "no action of a refused batch ran"


def test_bad_offsets_and_limits_are_400(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    offset = tasks.get_tasks_for_project(BIG, {"limit": 100}, full_payload=True)["next_page"]["offset"]
    for bad in ("garbage", offset[:-3] + "abc"):
        with pytest.raises(ApiException) as forged:
            tasks.get_tasks_for_project(BIG, {"limit": 100, "offset": bad}, full_payload=True)
        assert forged.value.status == 400 and _message(forged.value).startswith("offset:")
    with pytest.raises(ApiException) as foreign:
        tasks.get_tasks_for_project(ROADMAP, {"limit": 100, "offset": offset}, full_payload=True)
    assert foreign.value.status == 400
    for limit in (0, 101):
        with pytest.raises(ApiException) as out_of_range:
            tasks.get_tasks_for_project(BIG, {"limit": limit}, full_payload=True)
        assert out_of_range.value.status == 400 and _message(out_of_range.value).startswith("limit:")
    control.send("POST", "clock", {"advance": 901})
    with pytest.raises(ApiException) as expired:
        tasks.get_tasks_for_project(BIG, {"limit": 100, "offset": offset}, full_payload=True)
    assert expired.value.status == 400 and "expired" in _message(expired.value)


def test_malformed_fault_breaks_exactly_one_item(client: Any, control: Control) -> None:
    tasks = asana.TasksApi(client)
    control.faults({"kind": "malformed", "path": "/tasks$", "field": "gid", "count": 1})
    page = tasks.get_tasks_for_project(BIG, {"limit": 100}, full_payload=True)["data"]
    assert len(page) == 100 and sum("gid" not in t for t in page) == 1
    control.faults({"kind": "malformed", "path": "/tasks$", "field": "name", "item": 3, "count": 1})
    page = tasks.get_tasks_for_project(BIG, {"limit": 100}, full_payload=True)["data"]
    assert [i for i, t in enumerate(page) if not isinstance(t["name"], str)] == [3]
    assert all("gid" in t for t in page)


def test_unknown_routes_and_objects_are_404_in_asana_shape(client: Any) -> None:
    with pytest.raises(ApiException) as missing:
        asana.TasksApi(client).get_task("404404", {})
    assert missing.value.status == 404 and _message(missing.value) == "Unknown object: 404404"
    with pytest.raises(ApiException) as no_filter:
        list(asana.TasksApi(client).get_tasks({}))
    assert no_filter.value.status == 400


# ---- the control API and state ---------------------------------------------------------------------------


def test_control_edits_create_and_delete_tasks(client: Any, control: Control) -> None:
    made = control.edit(
        op="create_task",
        project=ROADMAP,
        section=DONE,
        name="Retro",
        subtype="milestone",
        custom_fields={VALUE: 5},
        tags=["ui", "retro"],
    )
    assert made["resource_subtype"] == "milestone" and [t["name"] for t in made["tags"]] == ["ui", "retro"]
    assert _gids(asana.TasksApi(client).get_tasks_for_section(DONE, {})) == [SHIP, made["gid"]]
    control.edit(op="set_custom_field", task=made["gid"], field="Priority", value="High")
    values = asana.TasksApi(client).get_task(made["gid"], {"opt_fields": "custom_fields.display_value"})
    assert [f["display_value"] for f in values["custom_fields"]] == ["5", "High", None]
    control.edit(op="delete_task", task=made["gid"])
    with pytest.raises(ApiException) as gone:
        asana.TasksApi(client).get_task(made["gid"], {})
    assert gone.value.status == 404


def test_control_goal_edits(client: Any, control: Control) -> None:
    child = control.edit(
        op="create_goal",
        name="Faster pages",
        time_period=FY26,
        parent=OBJECTIVE,
        metric={"target_number_value": 2, "current_number_value": 3},
    )
    assert _gids(asana.GoalsApi(client).get_parent_goals_for_goal(child["gid"], {})) == [OBJECTIVE]
    updated = control.edit(
        op="update_goal", goal=child["gid"], fields={"status": "red", "metric": {"current_number_value": 2.5}}
    )
    assert updated["status"] == "red" and updated["metric"]["current_number_value"] == 2.5


def test_empty_emulator_works() -> None:
    with SandboxServer(AsanaEmulator()) as running:
        client = make_api_client(running.base_url, TOKEN, timeout=10)
        me = asana.UsersApi(client).get_user("me", {})
        workspaces = list(asana.WorkspacesApi(client).get_workspaces({}))
        assert len(workspaces) == 1 and me["workspaces"] == workspaces
        assert list(asana.ProjectsApi(client).get_projects_for_workspace(workspaces[0]["gid"], {})) == []


def test_dump_state_seeds_an_equal_emulator(control: Control) -> None:
    control.edit(op="move_task", task=SHIP, section=TODO, insert_after=BUILD)
    control.edit(op="add_tag", task=SHIP, tag="later")
    state = control.get("state")
    copy = AsanaEmulator.from_seed(state).dump_state()
    for key in ("event_count", "now"):
        state.pop(key)
        copy.pop(key)
    assert copy == state
    assert next(s for s in state["sections"] if s["gid"] == TODO)["tasks"] == [BUILD, SHIP, DOCS]


def test_seeds_load_from_files_and_broken_ones_are_value_errors(tmp_path: Path) -> None:
    seed = tmp_path / "asana.json"
    seed.write_text(json.dumps(_seed()), encoding="utf-8")
    assert len(AsanaEmulator.from_seed(seed).state.tasks) == 5 + BIG_COUNT
    broken = {"tasks": [{"gid": "1", "name": "Orphan", "memberships": [{"project": "nowhere"}]}]}
    with pytest.raises(ValueError, match="project: Not a recognized ID: nowhere"):
        AsanaEmulator.from_seed(broken)


# ---- holding an answer --------------------------------------------------------------------------------


def _post_comment_in_background(client: Any, task: str, text: str) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []

    def post() -> None:
        try:
            answers.append(asana.StoriesApi(client).create_story_for_task({"data": {"text": text}}, task, {}))
        except Exception as exc:  # the test reads what the client saw
            answers.append(exc)

    worker = threading.Thread(target=post, daemon=True)
    worker.start()
    return worker, answers


def _held(control: Control, *, applied: bool) -> list[int]:
    for _ in range(100):
        held = control.get("held")
        if held["applied" if applied else "waiting"]:
            return list(held["applied" if applied else "waiting"])
        time.sleep(0.05)
    raise AssertionError("no request was held")


def _comments(control: Control, task: str) -> list[str]:
    stories = control.get("state")["stories"].get(task, [])
    return [s["text"] for s in stories if s["resource_subtype"] == "comment_added"]


def test_a_route_hold_after_applies_the_post_and_holds_its_answer(client: Any, control: Control) -> None:
    control.send("POST", "hold", {"route": "POST /tasks/{gid}/stories", "after": True})
    worker, answers = _post_comment_in_background(client, MILESTONE, "Launched")
    held = _held(control, applied=True)
    assert control.get("held")["waiting"] == held
    # The comment is made, but the client has not heard so.
    assert _comments(control, MILESTONE) == ["Launched"] and answers == []
    # The hold was used up by that one request: the next post goes through.
    asana.StoriesApi(client).create_story_for_task({"data": {"text": "Second"}}, MILESTONE, {})
    control.send("POST", "release", {"request": held[0]})
    worker.join(5)
    assert answers and answers[0]["text"] == "Launched"
    assert control.get("held") == {"waiting": [], "applied": []}


def test_a_held_answer_whose_client_gave_up_leaves_the_change_made(
    server: SandboxServer, control: Control
) -> None:
    impatient = make_api_client(server.base_url, TOKEN, timeout=0.5)
    number = control.request_count() + 1
    control.send("POST", "hold", {"request": number, "after": True})
    with pytest.raises(urllib3.exceptions.HTTPError):  # the SDK raises urllib3's timeout as it is
        asana.StoriesApi(impatient).create_story_for_task({"data": {"text": "Lost"}}, BUILD, {})
    assert control.get("held")["applied"] == [number]
    control.send("POST", "release", {})
    assert _comments(control, BUILD) == ["Lost"]


def test_a_route_hold_before_keeps_the_change_unmade_until_released(client: Any, control: Control) -> None:
    control.send("POST", "hold", {"route": "POST /api/1.0/tasks/{task_gid}/stories"})
    worker, answers = _post_comment_in_background(client, DOCS, "Waiting")
    held = _held(control, applied=False)
    assert control.get("held")["applied"] == [] and _comments(control, DOCS) == []
    control.send("POST", "release", {"request": held[0]})
    worker.join(5)
    assert answers and _comments(control, DOCS) == ["Waiting"]


def test_a_hold_must_name_a_request_or_a_route(control: Control) -> None:
    for body in ({}, {"route": "stories"}, {"route": "POST /tasks/{gid}/stories", "count": 0}):
        response = control.session.post(f"{control.base}/hold", json=body, timeout=10)
        assert response.status_code == 400, body


def test_comment_stories_page_and_name_their_author(client: Any, control: Control) -> None:
    for n in range(3):
        control.edit(op="add_comment", task=SHIP, text=f"note {n}", by="201")
    stories = asana.StoriesApi(client)
    first = stories.get_stories_for_task(
        SHIP, {"limit": 2, "opt_fields": "resource_subtype,text,created_by"}, full_payload=True
    )
    assert [s["text"] for s in first["data"]] == ["note 0", "note 1"]
    assert first["data"][0]["created_by"]["gid"] == "201"
    rest = stories.get_stories_for_task(
        SHIP, {"limit": 2, "offset": first["next_page"]["offset"], "opt_fields": "text"}, full_payload=True
    )
    assert [s["text"] for s in rest["data"]] == ["note 2"] and rest["next_page"] is None
    with pytest.raises(ApiException) as refused:  # a comment is deleted only by its author
        stories.delete_story(first["data"][0]["gid"])
    assert refused.value.status == 403
