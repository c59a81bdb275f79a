"""The Asana connector's write side against the Asana sandbox: every kind of write lands, reads back
through `read_state`, is idempotent, goes ten to a Batch request and fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.connector import Capability
from bridge.domain import FieldWrite, LinkTarget, Ref, WriteKind, WriteOutcome
from bridge.errors import AuthError, RetriableAPIError, UserError
from bridge.http import RetryPolicy
from bridge.sync.plan import same
from bridge.written import comment_marker
from bridge_asana import AsanaConnector, AsanaTrackerConfig
from bridge_asana.push import goal_link, palette_colour
from bridge_asana.session import AsanaSession
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control

TOKEN = "sandbox-asana-token"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WS, OTHER_WS, ME, ALEX = "100", "101", "200", "201"
ROADMAP, SIDE = "300", "301"
TODO, DOING, DONE, SIDE_SECTION = "400", "401", "402", "410"
RANK, OKR, VALUE, STAGE, ELSEWHERE = "500", "501", "502", "503", "504"
STAGE_A, STAGE_B = "510", "511"
UI = "600"
OBJECTIVE, KR1, KR2, FOREIGN = "700", "701", "702", "703"
FIRST_TASK = 8000
TASKS = 30
LONE = "8999"
"""A task in the side project, which has none of the roadmap's custom fields."""


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _gid(n: int) -> str:
    return str(FIRST_TASK + n)


def _seed() -> dict[str, Any]:
    sections = (TODO, DOING, DONE)
    tasks = [
        {
            "gid": _gid(n),
            "name": f"Task {n}",
            "resource_subtype": "milestone" if n % 5 == 0 else "default_task",
            "created_at": _iso(T0),
            "modified_at": _iso(T0),
            "memberships": [{"project": ROADMAP, "section": sections[n % 3]}],
            "tags": [{"gid": UI}] if n % 2 == 0 else [],
            "custom_fields": [{"gid": VALUE, "number_value": n}],
        }
        for n in range(TASKS)
    ]
    tasks.append(
        {
            "gid": LONE,
            "name": "Side task",
            "created_at": _iso(T0),
            "modified_at": _iso(T0),
            "memberships": [{"project": SIDE, "section": SIDE_SECTION}],
        }
    )
    return {
        "workspaces": [{"gid": WS, "name": "Acme"}, {"gid": OTHER_WS, "name": "Elsewhere"}],
        "users": [{"gid": ME, "name": "Robin", "email": "robin@example.com"}, {"gid": ALEX, "name": "Alex"}],
        "custom_fields": [
            {"gid": RANK, "name": "Value rank", "type": "number", "precision": 0},
            {"gid": OKR, "name": "Key result", "type": "text"},
            {"gid": VALUE, "name": "Value", "type": "number"},
            {
                "gid": STAGE,
                "name": "Stage",
                "type": "enum",
                "enum_options": [{"gid": STAGE_A, "name": "Alpha"}, {"gid": STAGE_B, "name": "Beta"}],
            },
            {"gid": ELSEWHERE, "name": "Budget", "type": "number", "workspace": OTHER_WS},
        ],
        "tags": [{"gid": UI, "name": "ui", "color": "light-blue", "workspace": WS}],
        "projects": [
            {
                "gid": ROADMAP,
                "name": "Roadmap",
                "workspace": WS,
                "custom_field_settings": [{"custom_field": g} for g in (RANK, OKR, VALUE, STAGE)],
            },
            {"gid": SIDE, "name": "Side", "workspace": WS},
        ],
        "sections": [
            {"gid": TODO, "name": "To Do", "project": ROADMAP},
            {"gid": DOING, "name": "Doing", "project": ROADMAP},
            {"gid": DONE, "name": "Done", "project": ROADMAP},
            {"gid": SIDE_SECTION, "name": "Untitled section", "project": SIDE},
        ],
        "tasks": tasks,
        "goals": [
            {"gid": OBJECTIVE, "name": "Grow", "workspace": WS},
            {"gid": KR1, "name": "Conversion to 70%", "workspace": WS, "parent": OBJECTIVE},
            {"gid": KR2, "name": "Churn under 2%", "workspace": WS, "parent": OBJECTIVE},
            {"gid": FOREIGN, "name": "Someone else's", "workspace": OTHER_WS},
        ],
    }


def _config(base_url: str, timeout: str = "30s", **write: Any) -> AsanaTrackerConfig:
    return AsanaTrackerConfig.model_validate(
        {
            "timeout": timeout,
            "kind": "asana",
            "url": base_url,
            "token_env": "T_TOKEN",
            "workspace": WS,
            "projects": [ROADMAP, SIDE],
            "max_requests_per_second": 1000,
            "status_map": {"To Do": "todo", "Doing": "in_progress", "Done": "done"},
            "write": {"rank_field": "Value rank", "okr_field": OKR, **write},
        }
    )


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    emulator = AsanaEmulator.from_seed(_seed())
    emulator.clock.set(T0 + timedelta(days=1))
    with SandboxServer(emulator) as running:
        yield running


@pytest.fixture
def control(server: SandboxServer) -> Control:
    return Control(server.base_url)


def _open(server: SandboxServer, timeout: str = "30s", **write: Any) -> AsanaConnector:
    connector = AsanaConnector.open("t", _config(server.base_url, timeout, **write), {"token_env": TOKEN})
    assert isinstance(connector, AsanaConnector)
    return connector


@pytest.fixture
def connector(server: SandboxServer) -> Iterator[AsanaConnector]:
    opened = _open(server, native_order=True)
    yield opened
    opened.close()


def _state(server: SandboxServer) -> Any:
    emulator = server.emulator
    assert isinstance(emulator, AsanaEmulator)
    return emulator.state


def ref(gid: str) -> Ref:
    return Ref("t", gid)


def field(gid: str, name: str, value: Any) -> FieldWrite:
    return FieldWrite(ref(gid), name, value, kind=WriteKind.FIELD, reason="test")


def label(gid: str, name: str, *, add: bool = True, colour: str = "red") -> FieldWrite:
    if add:
        return FieldWrite(ref(gid), name, colour, kind=WriteKind.LABEL_ADD)
    return FieldWrite(ref(gid), name, None, kind=WriteKind.LABEL_REMOVE)


def link(gid: str, goal: str, *, add: bool = True) -> FieldWrite:
    target = LinkTarget(goal_link("t", goal), f"https://bridge.example/kr/{goal}", "a key result")
    return FieldWrite(ref(gid), goal_link("t", goal), target if add else None, kind=WriteKind.LINK)


def move(gid: str, container: str, after: str | None, before: str | None = None) -> FieldWrite:
    value = (ref(after) if after else None, ref(before) if before else None)
    return FieldWrite(ref(gid), container, value, kind=WriteKind.ORDER)


def _ok(outcomes: list[WriteOutcome]) -> None:
    failed = [(o.write.kind, o.write.item, o.error) for o in outcomes if not o.ok]
    assert not failed, failed


def _comparable(server: SandboxServer) -> dict[str, Any]:
    """The emulator's state, less what moves on its own (the clock, the count of events)."""
    dumped = server.emulator.dump_state()
    dumped.pop("now", None)
    dumped.pop("event_count", None)
    return dumped


def _batches(control: Control) -> list[dict[str, Any]]:
    return [e for e in control.get("requests")["log"] if e["route"].endswith("/batch")]


def _write_routes(control: Control) -> list[str]:
    """Requests that wrote outside the Batch API (tag creation aside)."""
    return [
        f"{e['method']} {e['path']}"
        for e in control.get("requests")["log"]
        if e["method"] in ("POST", "PUT", "DELETE") and not e["path"].endswith(("/batch", "/tags"))
    ]


# ---- the connector ------------------------------------------------------------------------------------


def test_it_declares_the_write_capabilities() -> None:
    wanted = Capability.WRITE_FIELDS | Capability.WRITE_LABELS | Capability.WRITE_LINKS
    assert wanted | Capability.NATIVE_ORDER in AsanaConnector.capabilities


def test_palette_colours() -> None:
    assert palette_colour("red") == "dark-red"
    assert palette_colour("orange") == "dark-orange"
    assert palette_colour("light-teal") == "light-teal"
    assert palette_colour("plaid") is None and palette_colour(None) is None


def test_read_state_gives_fields_tags_and_places(connector: AsanaConnector) -> None:
    items = [ref(_gid(0)), ref(_gid(3)), ref(_gid(1)), ref(LONE), ref("1234567")]
    states = connector.read_state(items)
    assert set(states) == {ref(_gid(0)), ref(_gid(3)), ref(_gid(1)), ref(LONE)}, "an unknown gid is left out"
    first = states[ref(_gid(0))]
    assert first.key == _gid(0)
    assert first.fields == {"rank": None, "okr": None}
    assert first.labels == frozenset({"ui"}) and states[ref(_gid(1))].labels == frozenset()
    assert first.links == {}
    assert (first.container, first.position) == (TODO, 0)
    assert (states[ref(_gid(3))].container, states[ref(_gid(3))].position) == (TODO, 1)
    assert (states[ref(_gid(1))].container, states[ref(_gid(1))].position) == (DOING, 0)
    assert states[ref(LONE)].container == SIDE_SECTION
    assert states[ref(LONE)].fields == {"rank": None, "okr": None}


def test_field_writes_land_and_read_back(connector: AsanaConnector, server: SandboxServer) -> None:
    task = _gid(4)
    before = _state(server).tasks[task].modified_at
    _ok(connector.push([field(task, "rank", 3), field(task, "okr", "Conversion to 70%")]))
    state = connector.read_state([ref(task)])[ref(task)]
    assert state.fields == {"rank": 3, "okr": "Conversion to 70%"}
    assert _state(server).tasks[task].modified_at > before
    assert _state(server).tasks[task].custom_values[VALUE] == 4, "the value field is left alone"
    _ok(connector.push([field(task, "rank", None)]))
    assert connector.read_state([ref(task)])[ref(task)].fields == {"rank": None, "okr": "Conversion to 70%"}


def test_label_writes_create_the_tag_once_with_a_colour(
    connector: AsanaConnector, server: SandboxServer
) -> None:
    tasks = [_gid(0), _gid(1)]
    _ok(connector.push([label(t, "mb-bottleneck") for t in tasks]))
    created = [t for t in _state(server).tags.values() if t["name"] == "mb-bottleneck"]
    assert len(created) == 1 and created[0]["color"] == "dark-red"
    states = connector.read_state([ref(t) for t in tasks])
    assert states[ref(_gid(0))].labels == {"ui", "mb-bottleneck"}
    assert states[ref(_gid(1))].labels == {"mb-bottleneck"}
    _ok(connector.push([label(_gid(0), "mb-bottleneck", add=False)]))
    assert connector.read_state([ref(_gid(0))])[ref(_gid(0))].labels == {"ui"}, "the user's tag stays"
    # A new connector (a new process) finds the tag instead of making another.
    again = _open(server)
    try:
        _ok(again.push([label(_gid(2), "mb-bottleneck")]))
    finally:
        again.close()
    assert len([t for t in _state(server).tags.values() if t["name"] == "mb-bottleneck"]) == 1
    assert "mb-bottleneck" in connector.read_state([ref(_gid(2))])[ref(_gid(2))].labels


def test_link_writes_add_and_remove_goal_relationships(
    connector: AsanaConnector, server: SandboxServer
) -> None:
    task = _gid(5)
    before = _state(server).tasks[task].modified_at
    _ok(connector.push([link(task, KR1), link(task, KR2)]))
    links = connector.read_state([ref(task)])[ref(task)].links
    assert set(links) == {goal_link("t", KR1), goal_link("t", KR2)}
    assert links[goal_link("t", KR1)].title == "Conversion to 70%"
    assert _state(server).tasks[task].modified_at > before, "a new relationship counts as a change"
    _ok(connector.push([link(task, KR2, add=False)]))
    assert set(connector.read_state([ref(task)])[ref(task)].links) == {goal_link("t", KR1)}
    _ok(connector.push([link(task, KR2, add=False)]))  # already gone: nothing to do, no failure
    relations = [r for r in _state(server).relationships.values() if r["supporting_resource"] == task]
    assert [r["supported_goal"] for r in relations] == [KR1]


def test_links_are_not_read_when_okr_links_is_off(server: SandboxServer) -> None:
    with_links = _open(server)
    without = _open(server, okr_links=False)
    try:
        _ok(with_links.push([link(_gid(5), KR1)]))
        assert without.read_state([ref(_gid(5))])[ref(_gid(5))].links == {}
    finally:
        with_links.close()
        without.close()


def test_a_link_to_what_is_not_a_goal_of_the_workspace_fails_alone(
    connector: AsanaConnector, server: SandboxServer
) -> None:
    task = _gid(6)
    config_kr = "milestone-bridge:kr:config:kr-1"  # a key result of the config file: no goal to hang on
    configured = FieldWrite(
        ref(task), config_kr, LinkTarget(config_kr, "https://x.example", "KR"), kind=WriteKind.LINK
    )
    by_goal = FieldWrite(ref(task), f"asana-goal:{KR2}", LinkTarget("", "", ""), kind=WriteKind.LINK)
    outcomes = connector.push(
        [configured, link(task, FOREIGN), link(task, KR1), field(task, "rank", 1), by_goal]
    )
    assert [o.ok for o in outcomes] == [False, False, True, True, True]
    assert outcomes[0].error is not None and "not supported" in outcomes[0].error
    assert outcomes[1].error is not None and f"not a goal of workspace {WS}" in outcomes[1].error
    assert not any(r["supported_goal"] == FOREIGN for r in _state(server).relationships.values())
    assert set(connector.read_state([ref(task)])[ref(task)].links) == {
        goal_link("t", KR1),
        goal_link("t", KR2),
    }


def test_order_writes_move_tasks_within_their_section(
    connector: AsanaConnector, server: SandboxServer
) -> None:
    todo = list(_state(server).section_tasks[TODO])
    a, b, c, d = todo[:4]
    # Desired: d, a, c, b. Moves: d before a; c after a; b after c (waits for the move of c).
    Control(server.base_url).send("DELETE", "requests")
    outcomes = connector.push([move(d, TODO, None, a), move(c, TODO, a), move(b, TODO, c)])
    _ok(outcomes)
    batches = _batches(Control(server.base_url))
    assert len(batches) == 2, "the two moves next to `a` went together, the one after `c` waited for it"
    assert _state(server).section_tasks[TODO][:4] == [d, a, c, b]
    states = connector.read_state([ref(g) for g in (a, b, c, d)])
    assert [states[ref(g)].position for g in (d, a, c, b)] == [0, 1, 2, 3]
    assert {states[ref(g)].container for g in (a, b, c, d)} == {TODO}


def test_order_in_a_project_uses_add_project(connector: AsanaConnector, server: SandboxServer) -> None:
    todo = list(_state(server).section_tasks[TODO])
    _ok(connector.push([move(todo[0], ROADMAP, todo[2])]))
    assert _state(server).section_tasks[TODO][:3] == [todo[1], todo[2], todo[0]]
    assert all(_state(server).tasks[g].memberships[ROADMAP] == TODO for g in todo)


def test_the_same_writes_twice_change_nothing_the_second_time(
    connector: AsanaConnector, server: SandboxServer
) -> None:
    todo = list(_state(server).section_tasks[TODO])
    writes = [
        field(_gid(1), "rank", 2),
        field(_gid(1), "okr", "Churn under 2%"),
        label(_gid(1), "mb-at-risk", colour="orange"),
        label(_gid(2), "mb-bottleneck", add=False),
        link(_gid(1), KR2),
        move(todo[3], TODO, None, todo[0]),
    ]
    _ok(connector.push(writes))
    first = _comparable(server)
    stories = sum(len(s) for s in _state(server).stories.values())
    _ok(connector.push(writes))
    assert _comparable(server) == first
    assert sum(len(s) for s in _state(server).stories.values()) == stories
    assert len([t for t in _state(server).tags.values() if t["name"] == "mb-at-risk"]) == 1
    assert len([r for r in _state(server).relationships.values() if r["supporting_resource"] == _gid(1)]) == 1


def test_writes_go_ten_to_a_batch_request(connector: AsanaConnector, control: Control) -> None:
    writes = [field(_gid(n), "rank", n) for n in range(13)] + [label(_gid(n), "ui") for n in range(12)]
    connector.read_state([ref(_gid(n)) for n in range(13)])  # as a cycle does: it also finds the tags
    control.send("DELETE", "requests")
    actions = connector.stats()["batch_actions"]
    _ok(connector.push(writes))
    assert len(_batches(control)) == 3 and _write_routes(control) == []
    assert connector.stats()["batch_actions"] - actions == 25
    states = connector.read_state([ref(_gid(n)) for n in range(13)])
    assert [states[ref(_gid(n))].fields["rank"] for n in range(13)] == list(range(13))


def test_a_failing_write_is_reported_and_the_others_land(
    connector: AsanaConnector, server: SandboxServer, control: Control
) -> None:
    doomed = _gid(7)
    control.edit(op="delete_task", task=doomed)
    writes = [
        field(_gid(8), "rank", 8),
        field(doomed, "rank", 7),
        field(LONE, "rank", 1),  # the side project has no rank field
        field(_gid(9), "rank", "high"),
        label(_gid(9), "mb-bottleneck"),
        field(_gid(10), "value", 3),
    ]
    outcomes = connector.push(writes)
    assert [o.ok for o in outcomes] == [True, False, False, False, True, False]
    assert all(o.at.tzinfo is UTC for o in outcomes)
    assert outcomes[1].error is not None and "404" in outcomes[1].error and doomed in outcomes[1].error
    assert outcomes[2].error is not None and "400" in outcomes[2].error
    assert outcomes[3].error is not None and "not a number" in outcomes[3].error
    assert outcomes[5].error is not None and "'value'" in outcomes[5].error
    assert all(TOKEN not in (o.error or "") for o in outcomes)
    assert _state(server).tasks[_gid(8)].custom_values[RANK] == 8
    assert "mb-bottleneck" in connector.read_state([ref(_gid(9))])[ref(_gid(9))].labels


def test_read_state_for_many_tasks_lists_the_projects(
    server: SandboxServer, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge_asana.push.LISTING_AT", 20)
    few = _open(server)
    try:
        _ok(few.push([field(_gid(n), "rank", n) for n in range(TASKS)] + [link(_gid(2), KR1)]))
        items = [ref(_gid(n)) for n in range(TASKS)] + [ref(LONE)]
        one_by_one = few.read_state(items[:10])
        control.send("DELETE", "requests")
        many = few.read_state(items * 2)
        assert set(many) == set(items)
        # The two projects in one Batch request, the goals in one, their relationships in one.
        assert len(control.get("requests")["log"]) == 3, "listed, not read task by task"
        for item in items[:10]:
            assert many[item].fields == one_by_one[item].fields
            assert many[item].labels == one_by_one[item].labels
            assert many[item].links == one_by_one[item].links
        assert set(many[ref(_gid(2))].links) == {goal_link("t", KR1)}
    finally:
        few.close()


def test_an_enum_okr_field_takes_option_names(server: SandboxServer) -> None:
    opened = _open(server, okr_field="Stage")
    try:
        outcomes = opened.push([field(_gid(1), "okr", "beta"), field(_gid(2), "okr", "Gamma")])
        assert [o.ok for o in outcomes] == [True, False]
        assert opened.read_state([ref(_gid(1))])[ref(_gid(1))].fields["okr"] == "Beta"
    finally:
        opened.close()


def test_a_misconfigured_write_field_is_named_at_open(server: SandboxServer) -> None:
    with pytest.raises(UserError, match=r"write\.rank_field"):
        _open(server, rank_field="No such field")
    with pytest.raises(UserError, match="must be text or enum"):
        _open(server, rank_value="band")  # a band needs a text or enum field; "Value rank" is a number


def test_refused_credentials_raise(connector: AsanaConnector) -> None:
    connector.session.client.configuration.access_token = "wrong"
    with pytest.raises(AuthError):
        connector.push([field(_gid(1), "rank", 1)])


def test_a_tracker_that_stays_down_raises(server: SandboxServer, control: Control) -> None:
    config = _config(server.base_url)
    policy = RetryPolicy(attempts=2, sleep=lambda _: None)
    session = AsanaSession("t", config, {"token_env": TOKEN}, policy=policy)
    opened = AsanaConnector("t", config, {"token_env": TOKEN}, session)
    try:
        control.faults({"kind": "5xx", "status": 503})
        # Three Batch requests failing in a row: the tracker is down (one alone fails its writes only).
        with pytest.raises(RetriableAPIError):
            opened.push([field(_gid(n), "rank", n) for n in range(3 * 10)])
    finally:
        control.send("DELETE", "faults")
        opened.close()


def test_a_batch_that_fails_after_every_retry_fails_its_writes_and_the_push_goes_on(
    server: SandboxServer, control: Control
) -> None:
    config = _config(server.base_url)
    policy = RetryPolicy(attempts=2, sleep=lambda _: None)
    session = AsanaSession("t", config, {"token_env": TOKEN}, policy=policy)
    opened = AsanaConnector("t", config, {"token_env": TOKEN}, session)
    try:
        control.faults({"kind": "5xx", "status": 503, "path": "/batch$", "count": 2})  # both tries of one
        outcomes = opened.push([field(_gid(n), "rank", 100 + n) for n in range(13)])
        assert [o.ok for o in outcomes] == [False] * 10 + [True] * 3
        assert all(
            o.error is not None and o.error.startswith("t: ") and "503" in o.error for o in outcomes[:10]
        )
        assert _state(server).tasks[_gid(12)].custom_values[RANK] == 112
        assert RANK not in _state(server).tasks[_gid(0)].custom_values
    finally:
        control.send("DELETE", "faults")
        opened.close()


def test_writes_the_config_switched_off_are_refused_without_a_request(
    server: SandboxServer, control: Control
) -> None:
    opened = _open(server, labels=False, okr_links=False)  # native_order is off by default
    try:
        control.send("DELETE", "requests")
        outcomes = opened.push(
            [
                label(_gid(1), "mb-risk"),
                link(_gid(1), KR1),
                move(_gid(1), TODO, _gid(4)),
                field(_gid(1), "okr", "x"),
            ]
        )
        assert [o.ok for o in outcomes] == [False, False, False, True]
        errors = [o.error or "" for o in outcomes]
        assert "write.labels is off" in errors[0] and errors[0].startswith("t: ")
        assert "write.okr_links is off" in errors[1] and "write.native_order is off" in errors[2]
        assert [e["route"] for e in control.get("requests")["log"]] == ["/api/1.0/batch"], "the field only"
        # Taking back what the bridge wrote stays allowed: a label or a link removed.
        _ok(opened.push([label(_gid(2), "ui", add=False), link(_gid(2), KR1, add=False)]))
    finally:
        opened.close()


def test_what_the_connector_sends_conforms_to_asanas_document(
    server: SandboxServer, connector: AsanaConnector
) -> None:
    import asana

    fidelity = pytest.importorskip("tests.sandbox.test_fidelity")
    rig = fidelity.AsanaRig(server)
    rig.record(connector.session.client)
    todo = list(_state(server).section_tasks[TODO])
    connector.read_state([ref(g) for g in todo])
    writes = [
        field(todo[0], "rank", 1),
        label(todo[0], "mb-bottleneck"),
        label(todo[1], "ui", add=False),
        link(todo[0], KR1),
        move(todo[2], TODO, None, todo[0]),
        move(todo[3], ROADMAP, todo[0]),
    ]
    _ok(connector.push(writes))
    asana.TasksApi(rig.client).add_project_for_task(
        {"data": {"project": ROADMAP, "insert_after": None}}, LONE
    )
    operations = {"POST /batch", "POST /tags", "POST /tasks/{task_gid}/addProject"}
    fidelity._assert_conforms(rig.check(), requests_of=operations, responses_of=operations)


@pytest.mark.parametrize("lost", [1, 2])
@pytest.mark.parametrize("fault", ["slow", "drop"])
def test_a_tag_whose_creation_got_no_answer_is_looked_for_made_and_merged(
    server: SandboxServer, control: Control, fault: str, lost: int
) -> None:
    """Creating `mb-at-risk` gets no answer (slower than the client waits, or the connection dropped):
    Asana may have made it. The bridge lists the tags again at once and, not finding it, creates it once
    more: after one lost creation the writes go on; after two they wait for the next cycle (no third
    creation). Slow creations that land later leave copies, which the next push adding the tag merges
    into the oldest: one tag, on every task that wants it."""
    rule: dict[str, Any] = {"kind": fault, "method": "POST", "path": "/tags$", "count": lost}
    if fault == "slow":
        rule["delay"] = 1.5
    control.faults(rule)
    writes = [label(_gid(n), "mb-at-risk", colour="orange") for n in (0, 5, 10)]
    first = _open(server, timeout="0.5s")
    try:
        outcomes = first.push(writes)
    finally:
        first.close()
    assert [o.ok for o in outcomes] == [lost == 1] * 3, [o.error for o in outcomes]
    assert control.get("faults")["injected"] == {fault: lost}
    time.sleep(1.5)  # a slow creation lands meanwhile
    tags = [t for t in _state(server).tags.values() if t["name"] == "mb-at-risk"]
    landed = lost if fault == "slow" else 0
    assert len(tags) == landed + (lost == 1), tags
    control.faults()
    second = _open(server, timeout="0.5s")
    try:
        _ok(second.push(writes))
        states = second.read_state([w.item for w in writes])
    finally:
        second.close()
    assert len([t for t in _state(server).tags.values() if t["name"] == "mb-at-risk"]) == 1
    assert all("mb-at-risk" in states[w.item].labels for w in writes)


def test_copies_of_the_bridges_tag_are_merged_into_the_oldest(server: SandboxServer) -> None:
    """A workspace already holding two `mb-at-risk` tags (a duplicate made before), the newer on task 3:
    the push adding it to tasks 1 and 2 uses the oldest, moves task 3 to it and deletes the copy; the
    tasks' other tags stay."""
    emulator = server.emulator
    assert isinstance(emulator, AsanaEmulator)
    made = [emulator.edit({"op": "create_tag", "workspace": WS, "name": "mb-at-risk"}) for _ in range(2)]
    older, newer = sorted((str(t["gid"]) for t in made), key=int)
    _state(server).tasks[_gid(4)].tags.append(newer)
    opened = _open(server)
    try:
        _ok(opened.push([label(_gid(n), "mb-at-risk") for n in (1, 2)]))
    finally:
        opened.close()
    for n in (1, 2, 4):
        assert [t for t in _state(server).tasks[_gid(n)].tags if t in (older, newer)] == [older], n
    assert newer not in _state(server).tags
    assert UI in _state(server).tasks[_gid(4)].tags, "the task's own tag stays"


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_a_batch_whose_answer_was_lost_is_read_back(
    server: SandboxServer, control: Control, fault: str, applied: bool
) -> None:
    """The Batch request carrying two rank writes and a goal link gets no answer: Asana applied it and
    the answer was lost (`lose`), or the connection dropped before it arrived (`drop`). The writes are
    read back from the tasks and their goals, and each is settled as what Asana holds: done when
    applied, failed (saying so) when not."""
    config = _config(server.base_url).model_copy(update={"retries": 1})
    opened = AsanaConnector.open("t", config, {"token_env": TOKEN})
    assert isinstance(opened, AsanaConnector)
    try:
        _ok(opened.push([link(_gid(4), KR1)]))  # the writer learns that KR1 is the workspace's goal
        control.faults({"kind": fault, "method": "POST", "path": "/batch$", "count": 1})
        outcomes = opened.push([*(field(_gid(n), "rank", n + 1) for n in (1, 2)), link(_gid(3), KR1)])
    finally:
        opened.close()
    assert control.get("faults")["injected"] == {fault: 1}
    assert [(o.ok, o.read_back) for o in outcomes] == [(applied, True)] * 3, [o.error for o in outcomes]
    held = [_state(server).tasks[_gid(n)].custom_values.get(RANK) for n in (1, 2)]
    assert held == ([2, 3] if applied else [None, None])
    supports = {r["supported_goal"] for r in _state(server).relationships.values()
                if r["supporting_resource"] == _gid(3)}  # fmt: skip
    assert (KR1 in supports) is applied
    if not applied:
        assert all("the tracker does not hold it" in str(o.error) for o in outcomes)


def test_an_action_answering_5xx_inside_a_batch_is_read_back(
    server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Batch answers, but one action in it answers 500 after Asana applied it: that write is read back
    and counts done; the other actions' answers stand."""
    emulator = server.emulator
    assert isinstance(emulator, AsanaEmulator)
    run = emulator._run_action

    def applied_then_500(request: Any, action: Any) -> Any:
        answer = run(request, action)
        if action.get("relative_path") == f"/tasks/{_gid(1)}" and action.get("method") == "put":
            return {"status_code": 500, "headers": {}, "body": {"errors": [{"message": "Server Error"}]}}
        return answer

    monkeypatch.setattr(emulator, "_run_action", applied_then_500)
    opened = _open(server)
    try:
        outcomes = opened.push([field(_gid(n), "rank", n + 1) for n in (1, 2)])
    finally:
        opened.close()
    assert [(o.ok, o.read_back) for o in outcomes] == [(True, True), (True, False)], [
        o.error for o in outcomes
    ]


def test_a_text_rank_field_takes_a_score_and_a_band_an_enum_option(server: SandboxServer) -> None:
    opened = _open(server, rank_field=OKR, okr_field=None)
    try:
        assert all(o.ok for o in opened.push([field(_gid(1), "rank", 2.667), field(_gid(2), "rank", 3)]))
        states = opened.read_state([ref(_gid(1)), ref(_gid(2))])
        assert states[ref(_gid(1))].fields["rank"] == "2.667" and states[ref(_gid(2))].fields["rank"] == "3"
        assert same(states[ref(_gid(1))].fields["rank"], 2.667), "the plan sees its own score"
    finally:
        opened.close()
    banded = _open(server, rank_field="Stage", rank_value="band", okr_field=None)
    try:
        outcomes = banded.push([field(_gid(1), "rank", "beta"), field(_gid(2), "rank", "top 5")])
        assert [o.ok for o in outcomes] == [True, False], "a band is an option named like it"
        assert banded.read_state([ref(_gid(1))])[ref(_gid(1))].fields["rank"] == "Beta"
    finally:
        banded.close()


# ---- comments -------------------------------------------------------------------------------------------


def comment(gid: str, text: str | None, completion: int = 1) -> FieldWrite:
    return FieldWrite(ref(gid), comment_marker("reached", ref(gid), completion), text, kind=WriteKind.COMMENT)


def _comments(server: SandboxServer, gid: str) -> list[tuple[str, str]]:
    """The task's comment stories as (author gid, text), oldest first."""
    return [
        (str(s["created_by"]["gid"]), str(s["text"]))
        for s in _state(server).stories.get(gid, [])
        if s["resource_subtype"] == "comment_added"
    ]


def _posts(control: Control) -> int:
    return sum(
        1 for e in control.get("requests")["log"] if e["route"].endswith("/stories") and e["method"] == "POST"
    )


def test_a_comment_is_posted_once_with_its_marker_and_a_second_push_posts_nothing(
    server: SandboxServer, control: Control, connector: AsanaConnector
) -> None:
    milestone = _gid(5)
    marker = comment_marker("reached", ref(milestone), 1)
    _ok(connector.push([comment(milestone, "Task 5 reached: 3 tasks delivered.")]))
    assert _comments(server, milestone) == [(ME, f"Task 5 reached: 3 tasks delivered.\n\n{marker}")]
    assert _posts(control) == 1
    # Applied again (a retry, a second replica, the next cycle): found by its marker, nothing posted.
    other = _open(server)
    try:
        _ok(other.push([comment(milestone, "Task 5 reached: 3 tasks delivered.")]))
    finally:
        other.close()
    assert _posts(control) == 1 and len(_comments(server, milestone)) == 1
    # Re-opened and done again: the next completion's marker is another comment.
    _ok(connector.push([comment(milestone, "Task 5 reached again.", completion=2)]))
    assert len(_comments(server, milestone)) == 2


def test_a_users_comment_with_the_marker_is_not_the_bridges(
    server: SandboxServer, control: Control, connector: AsanaConnector
) -> None:
    """Only the bridge's own comments count when it looks, and only they are deleted when it purges."""
    milestone = _gid(10)
    marker = comment_marker("reached", ref(milestone), 1)
    copied = f"Task 10 reached.\n\n{marker}"
    control.edit(op="add_comment", task=milestone, text=copied, by=ALEX)
    _ok(connector.push([comment(milestone, "Task 10 reached.")]))
    assert _comments(server, milestone) == [(ALEX, copied), (ME, copied)]
    control.edit(op="add_comment", task=milestone, text="Nice work", by=ME)  # the token's user, by hand
    _ok(connector.push([comment(milestone, None)]))
    assert _comments(server, milestone) == [(ALEX, copied), (ME, "Nice work")]
    assert not [r for r in _write_routes(control) if r.startswith("DELETE")], "through the Batch API"
    _ok(connector.push([comment(milestone, None)]))  # purged already: nothing left to delete
    assert _comments(server, milestone) == [(ALEX, copied), (ME, "Nice work")]


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_a_comment_whose_answer_was_lost_is_read_back_and_never_doubled(
    server: SandboxServer, control: Control, fault: str, applied: bool
) -> None:
    """The post gets no answer: Asana took it (`lose`) or never saw it (`drop`). It is not sent again but
    read back by its marker, and counted done when there; the next push finds it or posts it: one
    comment either way."""
    milestone = _gid(15)
    control.faults({"kind": fault, "method": "POST", "path": r"/stories$", "count": 1})
    opened = _open(server)
    try:
        outcome = opened.push([comment(milestone, "Task 15 reached.")])[0]
        assert (outcome.ok, outcome.read_back) == (applied, True), outcome.error
        assert control.get("faults")["injected"] == {fault: 1}
        assert _posts(control) == 1, "an unanswered post is never sent again"
        assert len(_comments(server, milestone)) == int(applied)
        _ok(opened.push([comment(milestone, "Task 15 reached.")]))
    finally:
        opened.close()
    assert len(_comments(server, milestone)) == 1
    assert _posts(control) == 2 - int(applied)


def test_each_post_is_preceded_by_its_own_look_one_request_per_comment(
    server: SandboxServer, control: Control, connector: AsanaConnector
) -> None:
    """Three comments of one push: each task's comments are looked at right before its post (one Batch
    request each), so a comment another replica posted meanwhile is found; three looks and three posts,
    and the bridge's user asked once."""
    _ok(connector.push([comment(_gid(n), f"Task {n} reached.") for n in (5, 10, 15)]))
    log = control.get("requests")["log"]
    kinds = ["post" if e["route"].endswith("/stories") else "look" for e in log]
    # First the projects' sections (a section takes no comment) and the bridge's user, asked once; then
    # a look and a post per comment: 8 requests (6 when one look served the whole push).
    assert kinds == ["look", "look", *["look", "post"] * 3]
    assert all(e["route"].endswith(("/batch", "/stories")) for e in log), "the looks go through the Batch API"
    assert connector.cost([comment(_gid(n), "x") for n in (5, 10, 15)], {}).requests == 6, "as planned"


def test_a_comment_another_replica_posts_during_the_push_is_not_posted_again(
    server: SandboxServer, control: Control, connector: AsanaConnector
) -> None:
    """Two replicas racing past the lease: while this push's first post waits for its answer, another
    replica posts the second comment; this push looks again before its second post, and posts none."""
    first, second = _gid(5), _gid(10)
    control.send("POST", "hold", {"route": f"POST /tasks/{first}/stories", "after": True})
    outcomes: list[WriteOutcome] = []
    racing = threading.Thread(
        target=lambda: outcomes.extend(
            connector.push([comment(first, "Task 5 reached."), comment(second, "Task 10 reached.")])
        )
    )
    racing.start()
    try:
        deadline = time.monotonic() + 30
        while not control.get("held")["applied"]:
            assert time.monotonic() < deadline, "the first post never arrived"
            time.sleep(0.02)
        other = _open(server)
        try:
            _ok(other.push([comment(second, "Task 10 reached.")]))
        finally:
            other.close()
    finally:
        control.send("POST", "release", {})
        racing.join(timeout=30)
    _ok(outcomes)
    assert len(_comments(server, first)) == 1
    assert len(_comments(server, second)) == 1, "the other replica's comment was found, not doubled"
    assert _posts(control) == 2


def test_a_section_milestone_cannot_take_a_comment(server: SandboxServer, control: Control) -> None:
    opened = _open(server, comments=True)
    try:
        control.send("DELETE", "requests")
        section, switched_off = opened.push([comment(DOING, "Doing reached.")]), None
        assert not section[0].ok
        assert "'Doing' is an Asana section" in str(section[0].error) and "cannot take a comment" in str(
            section[0].error
        )
        assert control.get("requests")["log"] == [], "refused without a request"
        # Purging one there is nothing to delete: done.
        _ok(opened.push([comment(DOING, None)]))
    finally:
        opened.close()
    quiet = _open(server, comments=False)
    try:
        switched_off = quiet.push([comment(_gid(5), "Task 5 reached.")])[0]
    finally:
        quiet.close()
    assert not switched_off.ok and "write.comments is off" in str(switched_off.error)
    assert _comments(server, _gid(5)) == []


def test_a_comment_costs_a_look_and_a_post_and_notifies_followers(connector: AsanaConnector) -> None:
    writes = [
        comment(_gid(5), "Task 5 reached."),
        comment(_gid(10), "Task 10 reached."),
        comment(_gid(15), None),
    ]
    cost = connector.cost(writes, {ref(_gid(5)): 3, ref(_gid(15)): 4})
    # A look and a post for each of the two comments; the deletion's look and its Batch action.
    assert (cost.edits, cost.items, cost.requests, cost.emails) == (3, 3, 6, 3)


def test_the_comment_requests_conform_to_asanas_document(
    server: SandboxServer, connector: AsanaConnector
) -> None:
    fidelity = pytest.importorskip("tests.sandbox.test_fidelity")
    rig = fidelity.AsanaRig(server)
    rig.record(connector.session.client)
    _ok(connector.push([comment(_gid(5), "Task 5 reached."), comment(_gid(10), "Task 10 reached.")]))
    _ok(connector.push([comment(_gid(5), None)]))
    operations = {"POST /batch", "POST /tasks/{task_gid}/stories"}
    fidelity._assert_conforms(rig.check(), requests_of=operations, responses_of=operations)


def test_the_bridges_comment_is_found_past_the_first_page_of_stories(
    server: SandboxServer, control: Control, connector: AsanaConnector
) -> None:
    milestone = _gid(20)
    state = _state(server)
    with server.emulator.lock:
        for n in range(150):  # a busy task: the bridge's comment will be on the second page of stories
            state.add_comment(state.tasks[milestone], f"update {n}", ALEX)
    _ok(connector.push([comment(milestone, "Task 20 reached.")]))
    again = _open(server)
    try:
        _ok(again.push([comment(milestone, "Task 20 reached.")]))
        assert _posts(control) == 1
        _ok(again.push([comment(milestone, None)]))
    finally:
        again.close()
    assert [author for author, _ in _comments(server, milestone)] == [ALEX] * 150
