"""The pull contract for Trello, plus what only Trello has: actions as the change feed, label milestones
with their own cards, archived cards, key results from a list, and py-trello's URL-borne key and token
kept out of errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from bridge.config import TrackerConfig
from bridge.domain import StatusCategory
from bridge.errors import AuthError
from bridge.kit import PaginationLoop
from bridge.store.models import DependencyRow, KeyResultRow, MilestoneRow, ObjectiveRow, TaskRow
from bridge_sandbox.generate import OBJECTIVES, STATUSES, build
from bridge_sandbox.generate_trello import render_trello
from bridge_sandbox.messages import Request, Response
from bridge_sandbox.server import Emulator, SandboxServer
from bridge_sandbox.trello import TrelloEmulator
from bridge_trello import TrelloConnector
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.mapping import BoardInfo, TrelloMapping, blocker_links
from bridge_trello.session import TrelloSession
from tests.contract.contract import PullContract, Rig, Truth
from tests.sandbox.conftest import Control

KEY, TOKEN = "sandbox-key", "sandbox-token"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CATEGORY = {name: category for name, (_, category) in STATUSES.items()}
PREFIX = "M:"
KEY_RESULTS = "Key Results"
TARGET, CURRENT = "Target", "Current"
"""Number fields added to every board; the seed's key result cards carry their numbers in them."""


def _state(emulator: Emulator) -> TrelloEmulator:
    assert isinstance(emulator, TrelloEmulator)
    return emulator


def _is_milestone_card(board: Any, card: dict[str, Any]) -> bool:
    names = [board.labels[i]["name"] for i in card["idLabels"] if i in board.labels]
    return any(n.startswith(PREFIX) for n in names) and "milestone" in names


def trello_truth(emulator: Emulator) -> Truth:
    """Milestone labels (the list of their card), task cards by their list, and their list moves."""
    milestones, tasks, changes = {}, {}, set()
    for board in _state(emulator).boards.values():
        lists = {i: x["name"] for i, x in board.lists.items()}
        for label_id, label in board.labels.items():
            if label["name"].startswith(PREFIX):
                card = next(
                    (
                        c
                        for c in board.cards.values()
                        if label_id in c["idLabels"] and _is_milestone_card(board, c)
                    ),
                    None,
                )
                milestones[f"label:{label_id}"] = CATEGORY[lists[card["idList"]]] if card else "todo"
        for card in board.cards.values():
            if lists[card["idList"]] == KEY_RESULTS or _is_milestone_card(board, card):
                continue
            tasks[card["id"]] = CATEGORY[lists[card["idList"]]]
        for action in board.actions:
            card_id = ((action.get("data") or {}).get("card") or {}).get("id")
            data = action.get("data") or {}
            moved = action["type"] == "updateCard" and "listAfter" in data
            if card_id in tasks and (action["type"] == "createCard" or moved):
                changes.add(action["id"])
    return Truth(milestones, tasks, changes)


def dependency_truth(emulator: Emulator) -> set[tuple[str, str]]:
    """(blocker, blocked) task card ids as the seed names them: "Blocked by <url>" description lines and
    "Depends on <title>" link attachments."""
    tasks = trello_truth(emulator).tasks
    boards = _state(emulator).boards.values()
    by_short = {c["shortLink"]: c["id"] for b in boards for c in b.cards.values() if c["id"] in tasks}
    found = set()
    for board in boards:
        for card in (c for c in board.cards.values() if c["id"] in tasks):
            links = [
                line.rsplit("/c/", 1)[1]
                for line in card["desc"].splitlines()
                if line.startswith("Blocked by ")
            ]
            links += [
                a["url"].rsplit("/c/", 1)[1]
                for a in card["attachments"]
                if a["name"].startswith("Depends on ")
            ]
            found.update((by_short[short], card["id"]) for short in links if short in by_short)
    return found


def with_okr_fields(emulator: TrelloEmulator) -> TrelloEmulator:
    """Add the Target and Current fields to every board and fill them on each key result card."""
    numbers = {kr: (target, current) for _, _, krs in OBJECTIVES for kr, _, _, target, current in krs}
    for board in list(emulator.boards.values()):
        for name in (TARGET, CURRENT):
            emulator.edit({"op": "create_custom_field", "board": board.id, "name": name, "type": "number"})
        key_results = next(i for i, x in board.lists.items() if x["name"] == KEY_RESULTS)
        for card in [c for c in board.cards.values() if c["idList"] == key_results]:
            target, current = numbers[card["name"].split(":")[0]]
            for name, value in ((TARGET, target), (CURRENT, current)):
                emulator.edit({"op": "set_custom_field", "card": card["id"], "field": name, "value": value})
    return emulator


def key_result_truth(emulator: Emulator) -> dict[str, tuple[str, str, float | None, float | None]]:
    """Key result card id -> (objective id, title, target, current), as the store should hold them."""
    found = {}
    for board in _state(emulator).boards.values():
        fields = {f["id"]: f["name"] for f in board.custom_fields.values()}
        for card in board.cards.values():
            if board.lists[card["idList"]]["name"] != KEY_RESULTS:
                continue
            values = {
                fields[i["idCustomField"]]: float(i["value"]["number"])
                for i in card["customFieldItems"]
                if "value" in i
            }
            names = [board.labels[i]["name"] for i in card["idLabels"]]
            names = [n for n in names if n and not n.startswith(PREFIX) and n != "milestone"]
            objective = f"objective:{names[0]}" if names else ""
            found[card["id"]] = (objective, card["name"], values.get(TARGET), values.get(CURRENT))
    return found


def trello_table(base_url: str, boards: list[str]) -> str:
    statuses = "\n".join(f'"{name}" = "{category}"' for name, category in CATEGORY.items())
    listed = ", ".join(f'"{b}"' for b in boards)
    return f"""
[trackers.t]
kind = "trello"
url = "{base_url}"
api_key_env = "T_KEY"
token_env = "T_TOKEN"
boards = [{listed}]
max_requests_per_second = 1000

[trackers.t.status_map]
{statuses}

[trackers.t.fields]
value = "Value"
effort = "Effort"

[[trackers.t.teams]]
name = "design"
board = "Design"

[[trackers.t.work_types]]
name = "prototype"
label = "prototype"

[trackers.t.okrs]
list = "{KEY_RESULTS}"
target_field = "{TARGET}"
current_field = "{CURRENT}"
"""


class TestTrelloPull(PullContract):
    seed_items: ClassVar[int] = 250  # two boards of about 125 task cards: two pages each
    streams: ClassVar[int] = 2
    page_path: ClassVar[str] = "^/1/boards/[^/]+/cards"
    kill_at_request: ClassVar[int] = 6  # the second board's first actions page: the first board landed

    def make_emulator(self) -> Emulator:
        seed = render_trello(build(seed=21, per_tracker=self.seed_items, now=NOW))
        return with_okr_fields(TrelloEmulator.from_export(seed))

    def tracker_table(self, base_url: str) -> str:
        seed = render_trello(build(seed=21, per_tracker=self.seed_items, now=NOW))
        return trello_table(base_url, [b["id"] for b in seed["boards"]])

    def credentials(self, emulator: Emulator) -> dict[str, str]:
        return {"T_KEY": KEY, "T_TOKEN": TOKEN}

    def truth(self, emulator: Emulator) -> Truth:
        return trello_truth(emulator)

    def create_item(self, control: Control) -> str:
        created = control.edit(op="create_card", board="Design", list="To Do", name="Nouvelle carte ✨")
        return str(created["id"])

    def move_item(self, control: Control, remote_id: str, status: str) -> None:
        control.edit(op="move_card", card=remote_id, list=status)

    def delete_item(self, control: Control, remote_id: str) -> None:
        control.edit(op="delete_card", card=remote_id)

    def any_task(self, emulator: Emulator) -> str:
        truth = trello_truth(emulator)
        return next(card for card, category in truth.tasks.items() if category == "todo")

    # ---- what only Trello has -------------------------------------------------------------------------

    def test_a_quiet_cycle_reads_only_each_boards_actions(self, rig: Rig) -> None:
        assert rig.pull().ok
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok and result.items == 0
        routes = rig.control.get("requests")["by_route"]
        assert routes == {"GET /1/boards/{board}/actions": 2, "GET /1/boards/{board}": 2}
        assert result.requests == 2 and result.setup_requests == 2

    def test_a_move_is_read_with_the_cards_whole_history(self, rig: Rig) -> None:
        assert rig.pull().ok
        task = self.any_task(rig.emulator)
        self.move_item(rig.control, task, "In Progress")
        self.move_item(rig.control, task, "Done")
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok, result.error
        assert result.requests == 3, "each board's actions, and one batch for the moved card"
        table = TaskRow.__table__  # type: ignore[attr-defined]
        with rig.store.read() as conn:
            row = conn.execute(select(table).where(table.c.remote_id == task)).one()
        assert row.category == "done" and row.started is not None and row.done is not None
        self.assert_matches(rig)

    def test_label_milestones_take_their_cards_numbers_and_tasks_join_them(self, rig: Rig) -> None:
        assert rig.pull().ok
        emulator = _state(rig.emulator)
        with rig.store.read() as conn:
            milestones = {r.remote_id: r for r in conn.execute(select(MilestoneRow.__table__))}  # type: ignore[attr-defined]
            tasks = {r.remote_id: r for r in conn.execute(select(TaskRow.__table__))}  # type: ignore[attr-defined]
        assert any(
            m.value is not None and m.effort is not None and m.due is not None for m in milestones.values()
        )
        for board in emulator.boards.values():
            for card in board.cards.values():
                if card["id"] not in tasks:
                    continue
                labels = [i for i in card["idLabels"] if board.labels[i]["name"].startswith(PREFIX)]
                assert tasks[card["id"]].milestone_id == (f"label:{labels[0]}" if labels else None)
        assert any(t.team == "design" for t in tasks.values()) and any(t.team is None for t in tasks.values())
        assert any(t.work_type == "prototype" for t in tasks.values())

    def test_a_new_milestone_label_is_seen_incrementally(self, rig: Rig) -> None:
        assert rig.pull().ok
        label = rig.control.edit(op="create_label", board="Design", name="M:Relaunch", color="sky")
        card = rig.control.edit(
            op="create_card", board="Design", list="To Do", name="x", labels=["M:Relaunch"]
        )
        result = rig.pull()
        assert result.ok, result.error
        assert f"label:{label['id']}" in rig.stored().milestones
        table = TaskRow.__table__  # type: ignore[attr-defined]
        with rig.store.read() as conn:
            row = conn.execute(select(table).where(table.c.remote_id == card["id"])).one()
        assert row.milestone_id == f"label:{label['id']}"
        self.assert_matches(rig)

    def test_archived_cards_keep_their_lists_category(self, rig: Rig) -> None:
        emulator = _state(rig.emulator)
        archived = [c for b in emulator.boards.values() for c in b.cards.values() if c["closed"]]
        assert archived
        assert rig.pull().ok
        stored = rig.stored().tasks
        assert all(c["id"] in stored for c in archived)

    def stored_okrs(self, rig: Rig) -> tuple[dict[str, Any], dict[str, str]]:
        with rig.store.read() as conn:
            key_results = {
                r.remote_id: (r.objective_id, r.title, r.target, r.current)
                for r in conn.execute(select(KeyResultRow.__table__))  # type: ignore[attr-defined]
            }
            objectives = {r.remote_id: r.title for r in conn.execute(select(ObjectiveRow.__table__))}  # type: ignore[attr-defined]
        return key_results, objectives

    def test_key_results_come_from_the_okr_list_with_their_objectives(self, rig: Rig) -> None:
        assert rig.pull().ok
        key_results, objectives = self.stored_okrs(rig)
        expected = key_result_truth(rig.emulator)
        assert len(expected) == 12, "six key result cards on each of the two boards"
        assert key_results == expected
        assert objectives == {f"objective:{o}": o for o, _, _ in OBJECTIVES}
        assert key_results[next(iter(expected))][2:] == (70.0, 64.0)
        assert not set(expected) & set(rig.stored().tasks)

    def test_a_changed_key_result_card_is_read_incrementally(self, rig: Rig) -> None:
        assert rig.pull().ok
        emulator = _state(rig.emulator)
        expected = key_result_truth(emulator)
        changed, archived = list(expected)[:2]
        rig.control.edit(op="set_custom_field", card=changed, field=CURRENT, value=68)
        rig.control.edit(op="update_card", card=changed, name="KR1.1: Raise conversion to 70%")
        rig.control.edit(op="archive_card", card=archived)
        board = next(b for b in emulator.boards.values() if changed in b.cards)
        created = rig.control.edit(
            op="create_card", board=board.id, list=KEY_RESULTS, name="KR2.3: Offline mode", labels=["O2"]
        )
        task = self.any_task(emulator)
        rig.control.edit(op="move_card", card=task, list=KEY_RESULTS)
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok, result.error
        boards = {b.id for b in emulator.boards.values() if {changed, task} & set(b.cards)}
        assert result.requests == 2 + len(boards), "each board's actions, and a batch for its cards"
        key_results, objectives = self.stored_okrs(rig)
        assert key_results == key_result_truth(emulator)
        assert key_results[changed] == ("objective:O1", "KR1.1: Raise conversion to 70%", 70.0, 68.0)
        assert archived in key_results, "an archived card stays what it was, as archived tasks do"
        assert key_results[created["id"]] == ("objective:O2", "KR2.3: Offline mode", None, None)
        assert "objective:O2" in objectives
        assert task in key_results, "a task card moved into the list is a key result"
        assert task not in rig.stored().tasks, "the card is no task any more"
        self.assert_matches(rig)
        quiet = rig.pull()
        assert quiet.ok and quiet.items == 0

    def stored_dependencies(self, rig: Rig) -> set[tuple[str, str]]:
        with rig.store.read() as conn:
            rows = conn.execute(select(DependencyRow.__table__))  # type: ignore[attr-defined]
            return {(r.blocker_id, r.blocked_id) for r in rows}

    def test_blockers_named_on_cards_are_dependencies(self, rig: Rig) -> None:
        emulator = _state(rig.emulator)
        attached = [
            c for b in emulator.boards.values() for c in b.cards.values()
            if any(a["name"].startswith("Depends on ") for a in c["attachments"])
        ]  # fmt: skip
        described = [
            c for b in emulator.boards.values() for c in b.cards.values() if "Blocked by" in c["desc"]
        ]
        assert attached and described, "the seed names blockers both ways"
        assert rig.pull().ok
        stored = self.stored_dependencies(rig)
        assert stored == dependency_truth(emulator)
        blocked = {b for _, b in stored}
        assert {c["id"] for c in attached} <= blocked and {c["id"] for c in described} <= blocked

    def test_a_blocker_on_another_board_is_read_incrementally_and_dropped_with_its_line(
        self, rig: Rig
    ) -> None:
        assert rig.pull().ok
        emulator = _state(rig.emulator)
        truth = trello_truth(emulator).tasks
        first, second = (
            next(c for c in b.cards.values() if c["id"] in truth and not c["desc"] and not c["attachments"])
            for b in emulator.boards.values()
        )
        milestone = next(
            c for b in emulator.boards.values() for c in b.cards.values() if _is_milestone_card(b, c)
        )
        desc = f"Notes first.\n- Depends on https://trello.com/c/{second['shortLink']}/9-x and nothing else"
        rig.control.edit(op="update_card", card=first["id"], desc=desc)
        # a link to a milestone's card is no dependency, even under a phrase
        rig.control.edit(
            op="add_attachment", card=first["id"], name="Blocked by the launch",
            url=f"https://trello.com/c/{milestone['shortLink']}",
        )  # fmt: skip
        rig.control.send("DELETE", "requests")
        result = rig.pull()
        assert result.ok, result.error
        routes = rig.control.get("requests")["by_route"]
        assert "GET /1/cards/{card}" not in routes, "the linked cards are read in a batch"
        assert result.requests == 2 + 2, "each board's actions, the touched card's batch, one for the links"
        stored = self.stored_dependencies(rig)
        assert {(b, a) for b, a in stored if a == first["id"]} == {(second["id"], first["id"])}
        rig.control.edit(op="update_card", card=first["id"], desc="No longer waiting.")
        assert rig.pull().ok
        assert not {(b, a) for b, a in self.stored_dependencies(rig) if a == first["id"]}
        assert self.stored_dependencies(rig) == dependency_truth(emulator)

    def test_no_key_or_token_in_an_error(self, rig: Rig) -> None:
        config = TrelloTrackerConfig.model_validate(
            {"kind": "trello", "url": rig.server.base_url, "api_key_env": "K", "token_env": "T",
             "boards": ["x"], "status_map": {"Done": "done"}}
        )  # fmt: skip
        session = TrelloSession("t", config, {"api_key_env": "secret-key-1", "token_env": "secret-token-1"})
        try:
            session.get("members/me")
        except AuthError as exc:
            assert "secret-key-1" not in str(exc) and "secret-token-1" not in str(exc) and "t:" in str(exc)
        else:
            raise AssertionError("wrong credentials were accepted")
        finally:
            session.close()


# ---- the mapping's rules, on records shaped as the API gives them ---------------------------------------


def _mapping(**tables: Any) -> TrelloMapping:
    raw = {"kind": "trello", "api_key_env": "K", "token_env": "T", "boards": ["b"],
           "status_map": {"To Do": "todo", "Doing": "in_progress", "Done": "done"}, **tables}  # fmt: skip
    config: TrackerConfig = TrelloTrackerConfig.model_validate(raw)
    assert isinstance(config, TrelloTrackerConfig)
    board = BoardInfo("b", "Board", {"l1": "To Do", "l2": "Doing", "l3": "Done", "l4": "Launches"},
                      {"g1": "M:Launch", "g2": "bug", "g3": "Launch"}, {"f1": "Value"})  # fmt: skip
    return TrelloMapping("t", config, board)


def _card(card_id: str, list_id: str = "l1", labels: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"id": card_id, "name": f"card {card_id}", "idList": list_id, "idLabels": list(labels), **extra}


def _move(action_id: str, card: str, before: str, after: str, minute: int) -> dict[str, Any]:
    names = {"l1": "To Do", "l2": "Doing", "l3": "Done"}
    return {"id": action_id, "type": "updateCard", "date": f"2026-05-01T10:{minute:02d}:00.000Z",
            "data": {"card": {"id": card}, "listBefore": {"id": before, "name": names[before]},
                     "listAfter": {"id": after, "name": names[after]}}}  # fmt: skip


def test_history_follows_list_moves_and_a_malformed_card_is_skipped() -> None:
    mapping = _mapping()
    created = {"id": "a0", "type": "createCard", "date": "2026-05-01T09:00:00.000Z",
               "data": {"card": {"id": "c1"}, "list": {"id": "l1", "name": "To Do"}}}  # fmt: skip
    actions = [_move("a2", "c1", "l2", "l3", 5), _move("a1", "c1", "l1", "l2", 1), created]
    cards = [_card("c1", "l3", ("g1", "g2")), {"name": "no id", "idList": "l1"}, _card("c2", "l4")]
    mapped = mapping.map_cards(cards, {"c1": actions}, {})
    (task,) = mapped.tasks
    assert (task.category, task.milestone_id, task.labels) == ("done", "label:g1", ("M:Launch", "bug"))
    assert [c.remote_id for c in mapped.changes] == ["a0", "a1", "a2"]
    assert task.started == datetime(2026, 5, 1, 10, 1, tzinfo=UTC)
    assert task.done == datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
    assert [s.key for s in mapped.skipped] == ["no id", "c2"]


def test_a_list_milestone_and_a_labelled_task_find_each_other() -> None:
    mapping = _mapping(milestones={"source": "list", "list": "Launches"}, fields={"value": "Value"})
    milestone = _card("m1", "l4", customFieldItems=[{"idCustomField": "f1", "value": {"number": "8"}}])
    milestone["name"] = "Launch"
    mapped = mapping.map_cards([milestone, _card("c1", "l2", ("g3",))], {}, {})
    assert [(m.remote_id, m.value, m.category) for m in mapped.milestones] == [
        ("m1", 8.0, StatusCategory.TODO)
    ]
    assert [t.milestone_id for t in mapped.tasks] == ["m1"]
    later = mapping.map_cards([_card("c2", "l1", ("g3",))], {}, mapped.list_milestones)
    assert [t.milestone_id for t in later.tasks] == ["m1"]


def test_okr_list_cards_are_key_results_and_their_label_names_the_objective() -> None:
    raw = {"kind": "trello", "api_key_env": "K", "token_env": "T", "boards": ["b"],
           "status_map": {"To Do": "todo", "Done": "done"},
           "okrs": {"list": "key results", "target_field": "Target", "current_field": "f2"}}  # fmt: skip
    config = TrelloTrackerConfig.model_validate(raw)
    board = BoardInfo("b", "Board", {"l1": "To Do", "l3": "Done", "l9": "Key Results"},
                      {"g1": "M:Launch", "g2": "milestone", "g3": "Grow", "g4": "Retain"},
                      {"f1": "Target", "f2": "Current"})  # fmt: skip
    mapping = TrelloMapping("t", config, board)
    numbers = [{"idCustomField": "f1", "value": {"number": "70"}},
               {"idCustomField": "f2", "value": {"number": "64.5"}}]  # fmt: skip
    first = _card("k1", "l9", ("g1", "g2", "g3", "g4"), customFieldItems=numbers, url="https://x/c/k1")
    second = _card("k2", "l9", ("g4",), closed=True)
    moved_in = _card("k3", "l9")
    moved = {"id": "a1", "type": "updateCard", "date": "2026-05-01T10:00:00.000Z",
             "data": {"card": {"id": "k3"}, "listBefore": {"id": "l1", "name": "To Do"},
                      "listAfter": {"id": "l9", "name": "Key Results"}}}  # fmt: skip
    history = {"k3": [moved]}
    mapped = mapping.map_cards([first, second, moved_in, _card("c1", "l1", ("g3",))], history, {})
    assert [
        (k.remote_id, k.objective_id, k.title, k.target, k.current, k.url) for k in mapped.key_results
    ] == [
        ("k1", "objective:Grow", "card k1", 70.0, 64.5, "https://x/c/k1"),
        ("k2", "objective:Retain", "card k2", None, None, None),
        ("k3", "", "card k3", None, None, None),
    ]
    assert [(o.remote_id, o.title) for o in mapped.objectives] == [
        ("objective:Grow", "Grow"),
        ("objective:Retain", "Retain"),
    ]
    assert [(t.remote_id, t.deleted) for t in mapped.tasks] == [("k3", True), ("c1", False)]
    assert not mapped.skipped and not mapped.milestones


def test_session_counts_setup_apart() -> None:
    with SandboxServer(TrelloEmulator()) as server:
        config = TrelloTrackerConfig.model_validate(
            {"kind": "trello", "url": server.base_url, "api_key_env": "K", "token_env": "T",
             "boards": ["x"], "status_map": {"Done": "done"}}
        )  # fmt: skip
        session = TrelloSession("t", config, {"api_key_env": KEY, "token_env": TOKEN})
        try:
            with session.setup():
                assert session.get("members/me")["id"]
            assert session.batch(["/members/me", "/cards/000000000000000000000000"])[1] is None
        finally:
            session.close()
    assert (session.setup_requests, session.requests) == (1, 1)


class BeforeIgnored(TrelloEmulator):
    """A Trello behind a cache that keys its answers without `before`: every page is the first again."""

    def dispatch(self, request: Request) -> Response:
        query = {name: values for name, values in request.query.items() if name != "before"}
        return super().dispatch(replace(request, query=query))


def test_a_listing_answered_with_the_same_page_again_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full page asks for the next one `before` its last id; a tracker answering the same page again
    would be read forever. The pull and the census stop with `PaginationLoop` after two pages."""
    monkeypatch.setattr("bridge_trello.pull.ACTION_PAGE", 2)
    monkeypatch.setattr("bridge_trello.pull.CARD_PAGE", 2)
    emulator = BeforeIgnored()
    board = emulator.create_board("Design", ("To Do", "Done"))
    for name in ("A", "B", "C"):
        emulator.edit({"op": "create_card", "board": board.id, "list": "To Do", "name": name})
    with SandboxServer(emulator) as server:
        config = TrelloTrackerConfig.model_validate(
            {"kind": "trello", "url": server.base_url, "api_key_env": "K", "token_env": "T",
             "boards": [board.id], "status_map": {"To Do": "todo", "Done": "done"}}
        )  # fmt: skip
        connector = TrelloConnector.open("t", config, {"api_key_env": KEY, "token_env": TOKEN})
        control = Control(server.base_url)
        try:
            control.send("DELETE", "requests")
            with pytest.raises(PaginationLoop, match=f"t: the actions of {board.id}: .* again") as loop:
                list(connector.pull(f"board:{board.id}", None, NOW))
            assert loop.value.tracker == "t"
            with pytest.raises(PaginationLoop, match=f"t: the cards of {board.id}: .* again"):
                connector.census()
        finally:
            connector.close()
        assert control.get("requests")["by_route"] == {
            "GET /1/boards/{board}/actions": 2,
            "GET /1/boards/{board}/cards/{which}": 2,
        }


def test_blocker_phrases_start_a_line_or_an_attachment_name() -> None:
    card = {
        "desc": "Intro mentions blocked by https://trello.com/c/aaaaaaaa\n"
        "* BLOCKED BY https://trello.com/c/bbbbbbbb and https://trello.com/c/cccccccc\n"
        'depends on [x](https://trello.com/c/dddddddd/4-x "smartCard-inline")\n'
        "Blocked by https://trello.com/c/bbbbbbbb again",
        "attachments": [
            {"name": "Depends on the API", "url": "https://trello.com/c/eeeeeeee"},
            {"name": "https://trello.com/c/ffffffff", "url": "https://trello.com/c/ffffffff"},
            {"name": "Blocked by something", "url": "https://example.com/c/gggggggg"},
        ],
    }
    assert blocker_links(card, ["blocked by", "depends on"]) == [
        "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee"
    ]  # fmt: skip
    assert blocker_links(card, ["needs"]) == []
    assert blocker_links({"desc": "Needs https://trello.com/c/hhhhhhhh"}, ["needs"]) == ["hhhhhhhh"]


def test_a_task_naming_itself_or_the_configured_phrases_maps_to_blockers() -> None:
    mapping = _mapping(dependencies={"phrases": ["waits for"]})
    own = _card(
        "c1",
        shortLink="ownlink1",
        desc="Waits for https://trello.com/c/ownlink1\nwaits for https://trello.com/c/other123",
    )
    mapped = mapping.map_cards([own], {}, {})
    assert mapped.blockers == {"c1": ["other123"]}
