"""The generated organisation's Trello boards, loaded into the emulator and read through real py-trello."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from trello import TrelloClient

from bridge_sandbox.generate import OBJECTIVES, STATUSES, Change, MilestonePlan, Organisation, TaskPlan, build
from bridge_sandbox.generate_trello import (
    milestone_card_id,
    render_trello,
    task_card_id,
    task_created,
)
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import TrelloEmulator, format_time, parse_time
from bridge_trello.transport import TRELLO_API, BaseURLAdapter

NOW = datetime(2026, 6, 1, tzinfo=UTC)
KEY, TOKEN = "sandbox-key", "sandbox-token"
# Seed 4 at 300 items gives the Trello teams milestones without a value, an effort, a due date and a key
# result, an archived and a deleted task, and more than 1000 actions on each board.
SEED, SIZE = 4, 300
LISTS = [*STATUSES, "Key Results"]
Moves = list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def organisation() -> Organisation:
    return build(seed=SEED, per_tracker=SIZE, now=NOW)


@pytest.fixture(scope="module")
def client(organisation: Organisation) -> Iterator[Any]:
    with SandboxServer(TrelloEmulator.from_export(render_trello(organisation))) as running:
        session = requests.Session()
        session.mount(TRELLO_API, BaseURLAdapter(running.base_url, timeout=10))
        yield TrelloClient(KEY, api_secret=TOKEN, http_service=session)


@pytest.fixture(scope="module")
def boards(client: Any) -> dict[str, Any]:
    return {board.name: board for board in client.list_boards()}


@pytest.fixture(scope="module")
def cards(boards: dict[str, Any]) -> dict[str, Any]:
    """Every card of every board (archived ones too), by id."""
    return {card.id: card for board in boards.values() for card in board.all_cards()}


@pytest.fixture(scope="module")
def list_names(boards: dict[str, Any]) -> dict[str, str]:
    return {lst.id: lst.name for board in boards.values() for lst in board.list_lists()}


@pytest.fixture(scope="module")
def moves(boards: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every list move of every board, paged back with `before`, oldest first, by card id."""
    by_card: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for board in boards.values():
        for action in reversed(_all_actions(board, "updateCard:idList")):
            by_card[action["data"]["card"]["id"]].append(action)
    return by_card


def _all_actions(board: Any, action_filter: str) -> list[dict[str, Any]]:
    """A board's actions of some kinds, newest first, a page of 1000 at a time (py-trello does not page)."""
    found: list[dict[str, Any]] = []
    while True:
        page = board.fetch_actions(action_filter, 1000, before=found[-1]["id"] if found else None)
        found += page
        if len(page) < 1000:
            return found


def _tasks(organisation: Organisation) -> list[TaskPlan]:
    return organisation.for_tracker("trello")[1]


def _live(organisation: Organisation) -> list[TaskPlan]:
    return [t for t in _tasks(organisation) if not t.deleted]


def _milestones(organisation: Organisation) -> list[MilestonePlan]:
    return organisation.for_tracker("trello")[0]


def _label_names(card: Any) -> list[str]:
    return [label.name for label in card.labels]


def _planned_moves(task: TaskPlan) -> Moves:
    """(time, from, to) of each real move in the plan: a change to the status a card has moves nothing."""
    planned, previous = [], "To Do"
    for change in task.changes:
        if change.status != previous:
            planned.append((format_time(change.at), previous, change.status))
            previous = change.status
    return planned


def _seen_moves(actions: list[dict[str, Any]]) -> Moves:
    return [(a["date"], a["data"]["listBefore"]["name"], a["data"]["listAfter"]["name"]) for a in actions]


def test_one_board_per_team_with_lists_labels_and_fields(
    boards: dict[str, Any], organisation: Organisation
) -> None:
    teams = [t for t in organisation.teams if t.tracker == "trello"]
    assert sorted(boards) == sorted(t.container for t in teams)
    for team in teams:
        board = boards[team.container]
        assert [lst.name for lst in board.list_lists()] == LISTS
        fields = [(d.name, d.field_type) for d in board.get_custom_field_definitions()]
        assert fields == [("Value", "number"), ("Effort", "number"), ("Value rank", "number"),
                          ("Key result", "text")]  # fmt: skip
        labels = {label.name: label.color for label in board.get_labels(limit=1000)}
        assert set(team.work_types) <= set(labels) and len({labels[w] for w in team.work_types}) > 1
        mine = [m for m in _milestones(organisation) if m.team == team]
        assert {f"M:{m.title}" for m in mine} | {"milestone"} <= set(labels)
        assert all(color is not None for color in labels.values())


def test_every_live_task_is_a_card_in_its_status_list_with_its_labels(
    cards: dict[str, Any], list_names: dict[str, str], organisation: Organisation
) -> None:
    titles = {m.number: m.title for m in _milestones(organisation)}
    for task in _live(organisation):
        card = cards[task_card_id(task)]
        assert (card.name, list_names[card.idList], card.closed) == (task.title, task.status, task.archived)
        milestone = [f"M:{titles[task.milestone]}"] if task.milestone is not None else []
        assert _label_names(card) == [task.work_type, *milestone]
        assert card.card_created_date.timestamp() == int(task_created(task).timestamp())
        if not task.archived:
            assert card.dateLastActivity == parse_time(format_time(task.updated))
    deleted = [t for t in _tasks(organisation) if t.deleted]
    assert deleted and not any(task_card_id(t) in cards for t in deleted), "a deleted card is gone"


def test_cards_keep_their_order_within_a_list(boards: dict[str, Any]) -> None:
    for board in boards.values():
        for lst in board.list_lists():
            positions = [card.pos for card in lst.list_cards()]
            assert positions == sorted(positions) and len(set(positions)) == len(positions)
            assert all(p > 0 for p in positions)


def test_archived_cards_come_only_with_closed_or_all(
    boards: dict[str, Any], cards: dict[str, Any], organisation: Organisation
) -> None:
    archived = {task_card_id(t) for t in _live(organisation) if t.archived}
    assert archived
    opened = {c.id for board in boards.values() for c in board.open_cards()}
    visible = {c.id for board in boards.values() for c in board.visible_cards()}
    closed = {c.id for board in boards.values() for c in board.closed_cards()}
    assert closed == archived and not archived & (opened | visible)
    assert opened | closed == set(cards)
    for task in (t for t in _live(organisation) if t.archived):
        assert cards[task_card_id(task)].dateLastActivity > parse_time(format_time(task.updated))


def test_list_moves_page_back_through_the_whole_history(
    boards: dict[str, Any], moves: dict[str, list[dict[str, Any]]], organisation: Organisation
) -> None:
    assert all(len(_all_actions(board, "all")) > 1000 for board in boards.values())
    assert sum(len(found) for found in moves.values()) > 1000
    for task in _tasks(organisation):  # deleted tasks' moves stay in the history
        found = moves.get(task_card_id(task), [])
        assert _seen_moves(found) == _planned_moves(task), task.number
        for action in found:
            assert action["data"]["old"]["idList"] == action["data"]["listBefore"]["id"]
            assert action["data"]["card"]["idList"] == action["data"]["listAfter"]["id"]
    stamps = [(a["id"], a["date"]) for found in moves.values() for a in found]
    assert all(int(action_id[:8], 16) == int(parse_time(date).timestamp()) for action_id, date in stamps)


def test_a_burst_of_moves_within_a_minute_survives(cards: dict[str, Any], organisation: Organisation) -> None:
    def burst(task: TaskPlan) -> bool:
        stamps = [c.at for c in task.changes]
        return any(b - a < timedelta(minutes=1) for a, b in zip(stamps, stamps[3:], strict=False))

    bursting = [t for t in _live(organisation) if burst(t)]
    assert bursting, "the plan has a burst of changes"
    for task in bursting:
        movements = cards[task_card_id(task)].list_movements()  # py-trello's own reading, newest first
        seen = [
            (format_time(m["datetime"]), m["source"]["name"], m["destination"]["name"]) for m in movements
        ]
        assert seen == list(reversed(_planned_moves(task)))


def test_a_change_to_the_status_a_card_has_writes_no_move() -> None:
    plan = build(seed=7, per_tracker=60, now=NOW)
    task = next(t for t in _live(plan) if t.changes and t.updated < NOW - timedelta(days=1))
    real = _planned_moves(task)
    task.changes.append(Change(task.updated + timedelta(hours=1), task.status))  # dropped where it was
    boards = render_trello(plan)["boards"]
    actions = [a for board in boards for a in board["actions"]]
    mine = [a for a in reversed(actions) if a["data"]["card"]["id"] == task_card_id(task)]
    assert _seen_moves([a for a in mine if "listAfter" in a["data"]]) == real
    card = next(c for board in boards for c in board["cards"] if c["id"] == task_card_id(task))
    assert card["dateLastActivity"] == real[-1][0]


def test_cards_are_made_archived_and_deleted_by_actions(
    boards: dict[str, Any], organisation: Organisation
) -> None:
    actions = [
        a for board in boards.values() for a in _all_actions(board, "createCard,deleteCard,updateCard")
    ]
    created = {a["data"]["card"]["id"]: a for a in actions if a["type"] == "createCard"}
    for task in _tasks(organisation):
        made = created[task_card_id(task)]
        assert (made["date"], made["data"]["list"]["name"]) == (format_time(task_created(task)), "To Do")
    deleted = [a["data"]["card"]["id"] for a in actions if a["type"] == "deleteCard"]
    assert sorted(deleted) == sorted(task_card_id(t) for t in _tasks(organisation) if t.deleted)
    closing = [a for a in actions if a["type"] == "updateCard" and "closed" in a["data"]["old"]]
    assert sorted(a["data"]["card"]["id"] for a in closing) == sorted(
        task_card_id(t) for t in _tasks(organisation) if t.archived
    )
    assert all(a["data"]["card"]["closed"] is True and a["data"]["old"]["closed"] is False for a in closing)


def test_milestones_are_labels_and_cards_with_values(
    cards: dict[str, Any], list_names: dict[str, str], organisation: Organisation
) -> None:
    milestones = _milestones(organisation)
    assert any(m.value is None for m in milestones) and any(m.due is None for m in milestones)
    for milestone in milestones:
        card = cards[milestone_card_id(milestone)]
        assert (card.name, list_names[card.idList]) == (milestone.title, milestone.status)
        okr = [f"okr-{milestone.key_result}"] if milestone.key_result else []
        assert _label_names(card) == [f"M:{milestone.title}", "milestone", *okr]
        values = {field.name: field.value for field in card.customFields}
        expected = {"Value": milestone.value, "Effort": milestone.effort}
        assert values == {name: value for name, value in expected.items() if value is not None}
        due = f"{milestone.due.isoformat()}T12:00:00.000Z" if milestone.due else None
        assert (card.due or None, card.is_due_complete) == (
            due,
            due is not None and milestone.status == "Done",
        )
        labelled = {c.id for c in cards.values() if f"M:{milestone.title}" in _label_names(c)}
        members = {task_card_id(t) for t in _live(organisation) if t.milestone == milestone.number}
        assert labelled == members | {card.id}


def test_key_results_are_cards_in_their_list(boards: dict[str, Any]) -> None:
    expected = [
        (f"{kr_id}: {title}", [objective]) for objective, _, krs in OBJECTIVES for kr_id, title, *_ in krs
    ]
    for board in boards.values():
        key_results = next(lst for lst in board.list_lists() if lst.name == "Key Results")
        assert [(c.name, _label_names(c)) for c in key_results.list_cards()] == expected


def test_awkward_titles_arrive_intact(cards: dict[str, Any], organisation: Organisation) -> None:
    names = {card.name for card in cards.values()}
    assert any(any(ord(ch) > 127 for ch in name) for name in names)
    assert any(len(name) > 1000 for name in names)
    assert names >= {t.title for t in _live(organisation)}


def test_the_same_organisation_renders_identically() -> None:
    first = build(seed=7, per_tracker=120, now=NOW)
    untouched = copy.deepcopy(first)
    once = json.dumps(render_trello(first), sort_keys=True)
    assert first == untouched, "rendering leaves the plan alone"
    assert once == json.dumps(render_trello(first), sort_keys=True)
    assert once == json.dumps(render_trello(build(seed=7, per_tracker=120, now=NOW)), sort_keys=True)
    assert once != json.dumps(render_trello(build(seed=8, per_tracker=120, now=NOW)), sort_keys=True)


def test_every_id_is_unique_and_made_when_its_object_was(organisation: Organisation) -> None:
    ids: list[str] = []
    for board in render_trello(organisation)["boards"]:
        ids.append(board["id"])
        ids += [
            r["id"] for kind in ("lists", "labels", "customFields", "cards", "actions") for r in board[kind]
        ]
        ids += [item["id"] for card in board["cards"] for item in card["customFieldItems"]]
        actions = board["actions"]
        assert all(int(a["id"][:8], 16) == int(parse_time(a["date"]).timestamp()) for a in actions)
        assert [a["id"] for a in actions] == sorted((a["id"] for a in actions), reverse=True), "newest first"
        assert [a["date"] for a in actions] == sorted((a["date"] for a in actions), reverse=True)
    assert len(ids) == len(set(ids))


def test_cli_writes_a_trello_seed_that_loads(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bridge.cli", "sandbox", "generate", "--seed", "2", "--issues", "120",
               "--out", str(tmp_path), "--now", "2026-06-01T00:00:00+00:00"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"trello: {tmp_path / 'trello.json'}" in done.stdout
    emulator = TrelloEmulator.from_export(tmp_path / "trello.json")
    milestones, tasks = build(seed=2, per_tracker=120, now=NOW).for_tracker("trello")
    key_results = sum(len(krs) for _, _, krs in OBJECTIVES)
    assert len(emulator.boards) == 2
    cards = sum(len(board.cards) for board in emulator.boards.values())
    assert cards == len(milestones) + sum(1 for t in tasks if not t.deleted) + 2 * key_results
