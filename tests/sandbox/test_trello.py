"""The Trello emulator, driven through the real `py-trello` SDK over HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from trello import ResourceUnavailable, TrelloClient, Unauthorized

from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import TrelloEmulator, format_time, parse_time
from bridge_trello.transport import TRELLO_API, BaseURLAdapter
from tests.sandbox.conftest import Control

KEY, TOKEN = "sandbox-key", "sandbox-token"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # well before any real "now", so new ids sort after the seed


def oid(at: datetime, n: int) -> str:
    """A Trello id made at `at`: 8 hex digits of Unix seconds, then 16 more."""
    return f"{int(at.timestamp()):08x}{n:016x}"


BOARD, OTHER_BOARD = oid(T0, 1), oid(T0, 2)
LISTS = {"To Do": oid(T0, 11), "Doing": oid(T0, 12), "Done": oid(T0, 13), "Old": oid(T0, 14)}
LABELS = {"M:Checkout": (oid(T0, 21), "green"), "bug": (oid(T0, 22), "red")}
RANK, WORK_TYPE, NOTES = oid(T0, 31), oid(T0, 32), oid(T0, 33)
RESEARCH, VISUAL = oid(T0, 41), oid(T0, 42)


def _item(card_id: str, n: int, field_id: str, **value: Any) -> dict[str, Any]:
    return {
        "id": oid(T0, 500 + n),
        "idCustomField": field_id,
        "idModel": card_id,
        "modelType": "card",
        **value,
    }


def _card(
    n: int, name: str, list_name: str, *, closed: bool = False, labels: tuple[str, ...] = ()
) -> dict[str, Any]:
    created = T0 + timedelta(hours=n)
    card_id = oid(created, 100 + n)
    return {
        "id": card_id,
        "idShort": n,
        "name": name,
        "idBoard": BOARD,
        "idList": LISTS[list_name],
        "pos": 16384.0 * n,
        "closed": closed,
        "desc": "",
        "due": None,
        "shortLink": f"card{n:04d}",
        "dateLastActivity": format_time(created),
        "idLabels": [LABELS[label][0] for label in labels],
        "labels": [{"id": LABELS[label][0], "name": label, "color": LABELS[label][1]} for label in labels],
        "customFieldItems": [],
    }


def _move(n: int, card: dict[str, Any], before: str, after: str) -> dict[str, Any]:
    at = T0 + timedelta(days=1, minutes=n)
    return {
        "id": oid(at, 10_000 + n),
        "idMemberCreator": "member1",
        "type": "updateCard",
        "date": format_time(at),
        "data": {
            "card": {"id": card["id"], "name": card["name"], "idList": LISTS[after]},
            "old": {"idList": LISTS[before]},
            "listBefore": {"id": LISTS[before], "name": before},
            "listAfter": {"id": LISTS[after], "name": after},
            "board": {"id": BOARD, "name": "Design"},
        },
    }


def _export(moves: int = 3) -> dict[str, Any]:
    """Board "Design": 5 cards, one archived, one open in an archived list; `moves` list moves of card 1."""
    cards = [
        _card(1, "Checkout milestone", "Doing", labels=("M:Checkout",)),
        _card(2, "Fix card form", "To Do", labels=("bug",)),
        _card(3, "Write copy", "Done"),
        _card(4, "Old idea", "To Do", closed=True),
        _card(5, "Forgotten", "Old"),
    ]
    cards[0]["customFieldItems"] = [
        _item(cards[0]["id"], 1, RANK, value={"number": "3"}),
        _item(cards[0]["id"], 2, WORK_TYPE, idValue=RESEARCH),
    ]
    # An item of a definition the board no longer has: py-trello's parser would crash on it.
    cards[1]["customFieldItems"] = [_item(cards[1]["id"], 3, oid(T0, 999), value={"text": "gone"})]
    moves_list = [
        _move(n, cards[0], ("To Do", "Doing")[n % 2], ("Doing", "To Do")[n % 2]) for n in range(moves)
    ]
    return {
        "id": BOARD,
        "name": "Design",
        "shortLink": "dsgnBrd1",
        "url": "https://trello.com/b/dsgnBrd1/design",
        "closed": False,
        "lists": [
            {"id": list_id, "name": name, "closed": name == "Old", "pos": 16384.0 * (i + 1), "idBoard": BOARD}
            for i, (name, list_id) in enumerate(LISTS.items())
        ],
        "labels": [
            {"id": i, "name": name, "color": color, "idBoard": BOARD} for name, (i, color) in LABELS.items()
        ],
        "customFields": [
            {"id": RANK, "name": "Value rank", "type": "number"},
            {"id": NOTES, "name": "Notes", "type": "text"},
            {
                "id": WORK_TYPE,
                "name": "Work type",
                "type": "list",
                "options": [
                    {"id": RESEARCH, "value": {"text": "research"}, "color": "blue", "pos": 16384},
                    {"id": VISUAL, "value": {"text": "visual"}, "color": "red", "pos": 32768},
                ],
            },
        ],
        "cards": cards,
        "actions": list(reversed(moves_list)),  # exports list actions newest first
        "checklists": [],
        "members": [{"id": "member1", "username": "ana", "fullName": "Ana Lead"}],
    }


def _other_board() -> dict[str, Any]:
    list_id = oid(T0, 60)
    return {
        "id": OTHER_BOARD,
        "name": "Content",
        "lists": [{"id": list_id, "name": "Ideas", "pos": 1}],
        "cards": [{"id": oid(T0, 61), "name": "Video", "idList": list_id}],
    }


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(TrelloEmulator.from_exports([_export(), _other_board()])) as running:
        yield running


@pytest.fixture
def responses() -> list[requests.Response]:
    """Every response the client below received (py-trello's exceptions keep no headers)."""
    return []


def _client(server: SandboxServer, token: str = TOKEN, key: str = KEY, seen: list[Any] | None = None) -> Any:
    session = requests.Session()
    session.mount(TRELLO_API, BaseURLAdapter(server.base_url, timeout=5))
    if seen is not None:
        session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(response))
    return TrelloClient(key, api_secret=token, http_service=session)


@pytest.fixture
def client(server: SandboxServer, responses: list[requests.Response]) -> Any:
    return _client(server, seen=responses)


@pytest.fixture
def control(server: SandboxServer) -> Control:
    return Control(server.base_url)


def _card_named(board: Any, name: str) -> Any:
    return next(card for card in board.all_cards() if card.name == name)


def _raw_card(client: Any, card_id: str) -> dict[str, Any]:
    return dict(client.fetch_json(f"/cards/{card_id}", query_params={"customFieldItems": "true"}))


# ---- reading ---------------------------------------------------------------------------------------


def test_boards_by_id_short_link_and_discovery(client: Any) -> None:
    board = client.get_board(BOARD)
    assert (board.name, board.url, board.closed) == ("Design", "https://trello.com/b/dsgnBrd1/design", False)
    assert client.get_board("dsgnBrd1").id == BOARD
    assert {b.name for b in client.list_boards()} == {"Design", "Content"}
    with pytest.raises(ResourceUnavailable) as missing:
        client.get_board(oid(T0, 12345))
    assert missing.value._status == 404
    with pytest.raises(ResourceUnavailable) as malformed:
        client.get_board("not-an-id!")
    assert malformed.value._status == 400 and "invalid id" in str(malformed.value)


def test_lists_labels_and_custom_field_definitions(client: Any) -> None:
    board = client.get_board(BOARD)
    assert [x.name for x in board.get_lists("open")] == ["To Do", "Doing", "Done"]
    assert [x.name for x in board.get_lists("all")] == ["To Do", "Doing", "Done", "Old"]
    labels = {label.name: label.color for label in board.get_labels()}
    assert labels == {"M:Checkout": "green", "bug": "red"}
    definitions = {d.name: d for d in board.get_custom_field_definitions()}
    assert {name: d.field_type for name, d in definitions.items()} == {
        "Value rank": "number",
        "Notes": "text",
        "Work type": "list",
    }
    assert definitions["Work type"].list_options == {RESEARCH: "research", VISUAL: "visual"}


def test_open_closed_all_and_visible_cards(client: Any) -> None:
    board = client.get_board(BOARD)
    assert [c.name for c in board.open_cards()] == [
        "Fix card form",
        "Checkout milestone",
        "Write copy",
        "Forgotten",
    ]
    assert [c.name for c in board.closed_cards()] == ["Old idea"]
    assert len(board.all_cards()) == 5
    assert "Forgotten" not in {c.name for c in board.visible_cards()}, "visible leaves out archived lists"
    milestone = _card_named(board, "Checkout milestone")
    values = {field.name: field.value for field in milestone.custom_fields}
    assert values == {"Value rank": 3.0, "Work type": "research"}
    assert [label.name for label in milestone.labels] == ["M:Checkout"]
    assert _card_named(board, "Fix card form").custom_fields == [], "items of unknown fields are dropped"
    plain = client.fetch_json(f"/boards/{BOARD}/cards", query_params={"fields": "name,idList"})
    assert all(set(card) == {"id", "name", "idList"} for card in plain), "no customFieldItems unless asked"


def test_board_actions_page_past_1000_with_before(responses: list[requests.Response]) -> None:
    with SandboxServer(TrelloEmulator.from_export(_export(moves=2500))) as server:
        board = _client(server, seen=responses).get_board(BOARD)
        seen: list[dict[str, Any]] = []
        before = None
        while True:
            page = board.fetch_actions("updateCard:idList", action_limit=1000, before=before)
            seen += page
            if len(page) < 1000:
                break
            before = page[-1]["id"]
        calls = [r for r in responses if r.request.url and "/actions" in r.request.url]
        assert len(calls) == 3
        assert len(seen) == 2500 and len({a["id"] for a in seen}) == 2500
        assert [a["id"] for a in seen] == sorted((a["id"] for a in seen), reverse=True), "newest first"
        assert len(board.fetch_actions("updateCard:idList")) == 50, "limit defaults to 50"
        with pytest.raises(ResourceUnavailable) as too_many:
            board.fetch_actions("updateCard", action_limit=1001)
        assert too_many.value._status == 400
        since = format_time(T0 + timedelta(days=1, minutes=2489, seconds=30))
        assert len(board.fetch_actions("updateCard:idList", action_limit=1000, since=since)) == 10


# ---- writing ---------------------------------------------------------------------------------------


def test_add_and_remove_a_label(client: Any) -> None:
    board = client.get_board(BOARD)
    card = _card_named(board, "Write copy")
    stamp = card.date_last_activity
    bottleneck = board.add_label("bottleneck", "black")
    card.add_label(bottleneck)
    card.fetch(eager=False)
    assert [label.name for label in card.labels] == ["bottleneck"]
    assert card.date_last_activity > stamp
    with pytest.raises(ResourceUnavailable) as twice:
        card.add_label(bottleneck)
    assert twice.value._status == 400 and "already on the card" in str(twice.value)
    card.remove_label(bottleneck)
    card.fetch(eager=False)
    assert card.labels == []
    kinds = [a["type"] for a in board.fetch_actions("addLabelToCard,removeLabelFromCard", action_limit=5)]
    assert kinds == ["removeLabelFromCard", "addLabelToCard"]


def test_set_and_clear_custom_fields(client: Any) -> None:
    board = client.get_board(BOARD)
    definitions = {d.name: d for d in board.get_custom_field_definitions()}
    card = _card_named(board, "Write copy")
    card.set_custom_field(7, definitions["Value rank"])
    card.set_custom_field("visual", definitions["Work type"])
    card.set_custom_field("needs legal", definitions["Notes"])
    fetched = client.get_card(card.id)
    assert {f.name: f.value for f in fetched.custom_fields} == {
        "Value rank": 7.0,
        "Work type": "visual",
        "Notes": "needs legal",
    }
    items = _raw_card(client, card.id)["customFieldItems"]
    assert {"number": "7"} in [i.get("value") for i in items], "numbers are stored as strings"
    card.set_custom_field("", definitions["Value rank"])
    assert "Value rank" not in {f.name for f in client.get_card(card.id).custom_fields}
    action = board.fetch_actions("updateCustomFieldItem", action_limit=1)[0]
    assert action["data"]["customField"]["name"] == "Value rank" and action["data"]["old"]["value"] == {
        "number": "7"
    }
    with pytest.raises(ResourceUnavailable) as bad:
        client.fetch_json(f"/cards/{card.id}/customField/{RANK}/item", http_method="PUT",
                          post_args={"value": {"number": "seven"}})  # fmt: skip
    assert bad.value._status == 400


def test_positions_top_bottom_and_number(client: Any) -> None:
    board = client.get_board(BOARD)
    card = _card_named(board, "Fix card form")
    client.fetch_json("/cards", http_method="POST", post_args={"idList": LISTS["To Do"], "name": "New"})
    card.set_pos("bottom")
    in_list = sorted((c for c in board.open_cards() if c.idList == LISTS["To Do"]), key=lambda c: c.pos)
    assert in_list[-1].id == card.id
    card.set_pos("top")
    in_list = sorted((c for c in board.open_cards() if c.idList == LISTS["To Do"]), key=lambda c: c.pos)
    assert in_list[0].id == card.id and isinstance(in_list[0].pos, float)
    card.set_pos(12345.5)
    assert _raw_card(client, card.id)["pos"] == 12345.5
    with pytest.raises(ResourceUnavailable):
        card.set_pos("middle")


def test_a_card_squeezed_too_close_to_its_neighbour_renumbers_the_list(client: Any) -> None:
    board = client.get_board(BOARD)
    for name in ("New 1", "New 2"):
        client.fetch_json("/cards", http_method="POST", post_args={"idList": LISTS["To Do"], "name": name})
    card = _card_named(board, "New 2")
    in_list = sorted((c for c in board.all_cards() if c.idList == LISTS["To Do"]), key=lambda c: c.pos)
    first = in_list[0]
    card.set_pos(first.pos + 1 / 1024)  # far below the gap Trello keeps between cards
    assert _raw_card(client, card.id)["pos"] == 2 * 16384.0, "answered with its renumbered place"
    in_list = sorted((c for c in board.all_cards() if c.idList == LISTS["To Do"]), key=lambda c: c.pos)
    assert [c.pos for c in in_list] == [16384.0 * n for n in range(1, len(in_list) + 1)]
    assert [c.id for c in in_list][:2] == [first.id, card.id]
    action = board.fetch_actions("updateCard:pos", action_limit=1)[0]
    assert action["data"]["card"]["pos"] == 2 * 16384.0
    card.set_pos(2 * 16384.0 + 4096)  # a gap this wide is kept as sent
    assert _raw_card(client, card.id)["pos"] == 2 * 16384.0 + 4096


def test_change_list_writes_a_list_movement(client: Any) -> None:
    board = client.get_board(BOARD)
    card = _card_named(board, "Write copy")
    card.change_list(LISTS["Doing"])
    assert _raw_card(client, card.id)["idList"] == LISTS["Doing"]
    movement = card.list_movements()[0]
    assert (movement["source"]["name"], movement["destination"]["name"]) == ("Done", "Doing")
    action = board.fetch_actions("updateCard:idList", action_limit=1)[0]
    assert action["data"]["old"] == {"idList": LISTS["Done"]}
    assert action["memberCreator"]["fullName"] == "Sandbox API user"


def test_archived_cards_leave_the_open_filter(client: Any) -> None:
    board = client.get_board(BOARD)
    card = _card_named(board, "Write copy")
    card.set_closed(True)
    assert card.id not in {c.id for c in board.open_cards()}
    assert card.id in {c.id for c in board.closed_cards()}
    assert board.fetch_actions("updateCard:closed", action_limit=1)[0]["data"]["old"] == {"closed": False}


def test_attachments_add_list_and_remove(client: Any) -> None:
    card = client.get_card(_card_named(client.get_board(BOARD), "Checkout milestone").id)
    link = card.attach(name="OKR KR1.1", url="https://okrs.example.com/kr/1.1")
    upload = card.attach(name="notes.txt", file=io.BytesIO(b"hello"), mimeType="text/plain")
    assert (link["isUpload"], upload["isUpload"], upload["bytes"]) == (False, True, 5)
    attachments = card.get_attachments()
    assert [a.name for a in attachments] == ["OKR KR1.1", "notes.txt"]
    assert attachments[0].url == "https://okrs.example.com/kr/1.1"
    card.remove_attachment(link["id"])
    assert [a.name for a in card.get_attachments()] == ["notes.txt"]
    with pytest.raises(ResourceUnavailable):
        card.attach(name="bad", url="ftp://nowhere")
    with pytest.raises(ResourceUnavailable) as too_long:
        card.attach(name="x" * 257, url="https://okrs.example.com/kr/1")
    assert too_long.value._status == 400
    assert len(card.attach(name="x" * 256, url="https://okrs.example.com/kr/1")["name"]) == 256


# ---- errors, faults, limits and the request log ------------------------------------------------------


def test_wrong_token_or_key_is_unauthorized_in_plain_text(server: SandboxServer) -> None:
    with pytest.raises(Unauthorized, match="invalid token"):
        _client(server, token="wrong").get_board(BOARD)
    with pytest.raises(Unauthorized, match="invalid key"):
        _client(server, key="wrong").get_board(BOARD)
    plain = requests.get(f"{server.base_url}/1/boards/{BOARD}", params={"key": KEY}, timeout=5)
    assert plain.status_code == 401 and plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text == "unauthorized permission requested"


def test_a_429_fault_has_retry_after_and_is_logged(
    client: Any, control: Control, responses: list[requests.Response]
) -> None:
    control.faults({"kind": "429", "count": 1, "retry_after": 7})
    with pytest.raises(ResourceUnavailable) as limited:
        client.get_board(BOARD)
    assert limited.value._status == 429
    assert responses[-1].headers["Retry-After"] == "7"
    assert responses[-1].json() == {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
    entry = control.get("requests")["log"][-1]
    assert (entry["status"], entry["fault"]) == (429, "429")
    assert client.get_board(BOARD).name == "Design", "the next request goes through"


def test_vendor_limit_refuses_the_101st_request_in_ten_seconds(
    client: Any, control: Control, responses: list[requests.Response]
) -> None:
    control.faults({"kind": "vendor_limits"})
    for _ in range(100):
        client.get_board(BOARD)
    with pytest.raises(ResourceUnavailable) as limited:
        client.get_board(BOARD)
    assert limited.value._status == 429
    assert 0 < int(responses[-1].headers["Retry-After"]) <= 10
    assert responses[-1].json()["error"] == "API_TOKEN_LIMIT_EXCEEDED"


def test_the_request_log_redacts_key_and_token(client: Any, control: Control) -> None:
    client.get_board(BOARD)
    snapshot = control.get("requests")
    entry = snapshot["log"][-1]
    assert entry["query"]["key"] == "***" and entry["query"]["token"] == "***"
    assert TOKEN not in json.dumps(snapshot) and KEY not in json.dumps(snapshot)


def test_a_malformed_fault_breaks_exactly_one_card(client: Any, control: Control) -> None:
    control.faults({"kind": "malformed", "path": "/cards", "field": "idList", "count": 1})
    broken = client.fetch_json(f"/boards/{BOARD}/cards/open")
    assert len(broken) == 4 and sum("idList" not in card for card in broken) == 1
    assert all("id" in card and "name" in card for card in broken)
    assert all("idList" in card for card in client.fetch_json(f"/boards/{BOARD}/cards/open"))
    control.faults({"kind": "malformed", "path": "/cards", "field": "name", "item": 2, "count": 1})
    names = [card["name"] for card in client.fetch_json(f"/boards/{BOARD}/cards/open")]
    assert sum(not isinstance(name, str) for name in names) == 1 and not isinstance(names[2], str)


def test_batch_answers_each_url_with_its_status(client: Any) -> None:
    card_id = oid(T0 + timedelta(hours=1), 101)
    answers = client.fetch_json(
        "/batch", query_params={"urls": f"/cards/{card_id},/boards/{BOARD},/cards/{oid(T0, 7)}"}
    )
    assert [list(answer) for answer in answers] == [["200"], ["200"], ["404"]]
    assert answers[0]["200"]["name"] == "Checkout milestone" and answers[1]["200"]["name"] == "Design"
    with pytest.raises(ResourceUnavailable) as too_many:
        client.fetch_json("/batch", query_params={"urls": ",".join([f"/boards/{BOARD}"] * 11)})
    assert too_many.value._status == 400


def test_the_adapter_rewrites_urls_and_times_out(server: SandboxServer, control: Control) -> None:
    adapter = BaseURLAdapter("http://gateway.example:8080/trello/")
    assert (
        adapter.rewrite("https://api.trello.com/1/boards/x?key=k")
        == "http://gateway.example:8080/trello/1/boards/x?key=k"
    )
    session = requests.Session()
    session.mount(TRELLO_API, BaseURLAdapter(server.base_url, timeout=0.3))
    control.faults({"kind": "slow", "delay": 1, "count": 1})
    with pytest.raises(requests.Timeout):
        TrelloClient(KEY, api_secret=TOKEN, http_service=session).get_board(BOARD)
    with pytest.raises(ValueError):
        BaseURLAdapter("127.0.0.1:9")


# ---- the control API and seeding ------------------------------------------------------------------------


def test_control_edits_bump_date_last_activity_and_write_actions(client: Any, control: Control) -> None:
    board = client.get_board(BOARD)
    card = _card_named(board, "Fix card form")
    stamp = card.date_last_activity
    control.edit(op="move_card", card="Fix card form", list="Doing", by="Ana Lead")
    control.edit(op="add_label", card=card.id, label="M:Checkout")
    control.edit(op="set_custom_field", card="card0002", field="Work type", value="visual")
    edited = control.edit(op="archive_card", card="Fix card form")
    assert edited["closed"] is True and parse_time(edited["dateLastActivity"]) > stamp
    actions = board.fetch_actions("all", action_limit=4)
    assert [a["type"] for a in actions] == [
        "updateCard",
        "updateCustomFieldItem",
        "addLabelToCard",
        "updateCard",
    ]
    assert actions[-1]["data"]["listAfter"]["name"] == "Doing"
    assert actions[-1]["memberCreator"]["fullName"] == "Ana Lead"
    assert actions[0]["memberCreator"]["fullName"] == "Sandbox User", "not the API's member"
    created = control.edit(
        op="create_card", board="Design", list="To Do", name="From a person", labels=["bug"]
    )
    assert client.get_card(created["id"]).labels[0].name == "bug"
    control.edit(op="delete_card", card=created["id"])
    assert board.fetch_actions("deleteCard", action_limit=1)[0]["data"]["card"]["id"] == created["id"]
    with pytest.raises(ResourceUnavailable) as gone:
        client.get_card(created["id"])
    assert gone.value._status == 404


def test_an_empty_emulator_gets_boards_through_the_control_api() -> None:
    with SandboxServer(TrelloEmulator()) as server:
        control = Control(server.base_url)
        board = control.edit(op="create_board", name="Roadmap", lists=["Now", "Next"])
        control.edit(op="create_custom_field", board="Roadmap", name="Value rank", type="number")
        control.edit(op="create_card", board="Roadmap", list="Next", name="First")
        client = _client(server)
        assert [b.name for b in client.list_boards()] == ["Roadmap"]
        found = client.get_board(board["id"])
        assert [c.name for c in found.open_cards()] == ["First"]
        assert [d.name for d in found.get_custom_field_definitions()] == ["Value rank"]
        assert found.fetch_actions("createCard")[0]["data"]["list"]["name"] == "Next"


def test_dump_state_and_seed_files(tmp_path: Path, control: Control) -> None:
    state = control.get("state")
    design = next(board for board in state["boards"] if board["name"] == "Design")
    assert len(design["cards"]) == 5 and design["actions"] == 3
    milestone = next(card for card in design["cards"] if card["name"] == "Checkout milestone")
    assert milestone["labels"] == ["M:Checkout"] and milestone["list"] == "Doing"
    path = tmp_path / "trello.json"
    path.write_text(json.dumps({"boards": [_export(), _other_board()]}), encoding="utf-8")
    assert len(TrelloEmulator.from_export(path).boards) == 2
    with pytest.raises(ValueError):
        TrelloEmulator.from_export({"name": "no id"})
    broken = _export()
    broken["cards"][0]["idList"] = oid(T0, 4242)
    with pytest.raises(ValueError, match="lacks"):
        TrelloEmulator.from_export(broken)
