"""The Trello connector's write side against the sandbox: every kind of write lands through py-trello
and reads back, applying it again sends nothing, a user's labels and attachments are left alone, a
failing write is reported while the rest land, and the token stays out of every error and log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.domain import FieldWrite, LinkTarget, Ref, WriteKind
from bridge.errors import AuthError, RetriableAPIError, UserError
from bridge.http import RetryPolicy
from bridge.written import comment_marker
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import Board, TrelloEmulator
from bridge_trello import TrelloConnector
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.push import NAME_MAX, attachment_name, parse_attachment
from bridge_trello.session import TrelloSession
from tests.sandbox.conftest import Control

KEY, TOKEN = "sandbox-key", "tok-3f9a1c77e2b04d5e"
"""A token distinctive enough to search every message and log line for."""
SOURCE = "t"
GID = "milestone-bridge:kr:okrs:grow-revenue"
KR = LinkTarget(GID, "https://okrs.example.com/kr/grow-revenue", "Key result: Grow revenue")
WRITE_METHODS = ("PUT", "POST", "DELETE")


@dataclass
class Rig:
    emulator: TrelloEmulator
    server: SandboxServer
    control: Control
    board: Board
    cards: dict[str, str]
    """Card name -> id."""
    lists: dict[str, str]
    milestone: Ref
    """The label milestone `M:Checkout`, whose own card is "Checkout"."""

    def connector(self, token: str = TOKEN, timeout: str = "30s", **write: Any) -> TrelloConnector:
        config = TrelloTrackerConfig.model_validate(
            {
                "timeout": timeout,
                "kind": "trello",
                "url": self.server.base_url,
                "api_key_env": "T_KEY",
                "token_env": "T_TOKEN",
                "boards": [self.board.id],
                "status_map": {"To Do": "todo", "Doing": "in_progress", "Done": "done"},
                "max_requests_per_second": 1000,
                "write": write or {"rank_field": "Value rank", "okr_field": "OKR", "native_order": True},
            }
        )
        secrets = {"api_key_env": KEY, "token_env": token}
        session = TrelloSession(SOURCE, config, secrets, policy=RetryPolicy(sleep=lambda _: None))
        return TrelloConnector(SOURCE, config, secrets, session)

    def ref(self, name: str) -> Ref:
        return Ref(SOURCE, self.cards[name])

    def card(self, name: str) -> dict[str, Any]:
        return self.board.cards[self.cards[name]]

    def labels_of(self, name: str) -> list[str]:
        return sorted(self.board.labels[i]["name"] for i in self.card(name)["idLabels"])

    def order(self, list_name: str) -> list[str]:
        in_list = [c for c in self.board.cards.values() if c["idList"] == self.lists[list_name]]
        return [c["name"] for c in sorted(in_list, key=lambda c: c["pos"])]

    def writes_sent(self) -> list[str]:
        return [f"{e['method']} {e['route']}" for e in self.control.get("requests")["log"]
                if e["method"] in WRITE_METHODS]  # fmt: skip


@pytest.fixture
def rig() -> Iterator[Rig]:
    emulator = TrelloEmulator(key=KEY, token=TOKEN)
    board = emulator.create_board("Design", ("To Do", "Doing", "Done"))
    edit = emulator.edit
    for name, kind in (("Value rank", "number"), ("OKR", "text"), ("Notes", "text")):
        edit({"op": "create_custom_field", "board": board.id, "name": name, "type": kind})
    for name, colour in (("M:Checkout", "green"), ("milestone", "black"), ("bug", "red")):
        edit({"op": "create_label", "board": board.id, "name": name, "color": colour})
    cards = {}
    for name in ("A", "B", "C", "D", "E"):
        cards[name] = edit({"op": "create_card", "board": board.id, "list": "To Do", "name": name})["id"]
    cards["Checkout"] = edit({"op": "create_card", "board": board.id, "list": "Doing", "name": "Checkout",
                              "labels": ["M:Checkout", "milestone"]})["id"]  # fmt: skip
    edit({"op": "add_label", "card": cards["A"], "label": "bug"})
    edit({"op": "set_custom_field", "card": cards["A"], "field": "Notes", "value": "keep me"})
    edit({"op": "add_attachment", "card": cards["A"], "url": "https://example.com/spec", "name": "Spec"})
    label = next(i for i, x in board.labels.items() if x["name"] == "M:Checkout")
    lists = {x["name"]: i for i, x in board.lists.items()}
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        yield Rig(emulator, server, control, board, cards, lists, Ref(SOURCE, f"label:{label}"))


def field(ref: Ref, name: str, value: Any) -> FieldWrite:
    return FieldWrite(ref, name, value, kind=WriteKind.FIELD)


def label_add(ref: Ref, name: str, colour: str | None = "red") -> FieldWrite:
    return FieldWrite(ref, name, colour, kind=WriteKind.LABEL_ADD)


def label_remove(ref: Ref, name: str) -> FieldWrite:
    return FieldWrite(ref, name, None, kind=WriteKind.LABEL_REMOVE)


def link(ref: Ref, target: LinkTarget | None, gid: str = GID) -> FieldWrite:
    return FieldWrite(ref, gid, target, kind=WriteKind.LINK)


def move(rig: Rig, name: str, after: str | None = None, before: str | None = None) -> FieldWrite:
    value = (rig.ref(after) if after else None, rig.ref(before) if before else None)
    return FieldWrite(rig.ref(name), rig.lists["To Do"], value, kind=WriteKind.ORDER)


def every_kind(rig: Rig) -> list[FieldWrite]:
    return [
        field(rig.ref("A"), "rank", 3),
        field(rig.ref("A"), "okr", "Grow revenue"),
        field(rig.milestone, "rank", 1),
        label_add(rig.ref("A"), "mb-bottleneck", "red"),
        label_add(rig.milestone, "mb-at-risk", "orange"),
        link(rig.milestone, KR),
        move(rig, "E", after="A"),
        move(rig, "C", before="A"),
    ]


def test_each_kind_of_write_lands_and_reads_back(rig: Rig) -> None:
    connector = rig.connector()
    stamp = rig.card("A")["dateLastActivity"]
    actions = len(rig.board.actions)
    outcomes = connector.push(every_kind(rig))
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    assert [o.write for o in outcomes] == every_kind(rig), "one outcome per write, in order"

    assert rig.order("To Do") == ["C", "A", "E", "B", "D"]
    labels = {x["name"]: x["color"] for x in rig.board.labels.values()}
    assert (labels["mb-bottleneck"], labels["mb-at-risk"]) == ("red", "orange")
    assert rig.labels_of("A") == ["bug", "mb-bottleneck"]
    assert rig.labels_of("Checkout") == ["M:Checkout", "mb-at-risk", "milestone"]
    assert rig.card("A")["dateLastActivity"] > stamp
    kinds = {a["type"] for a in rig.board.actions[actions:]}
    assert kinds == {"updateCustomFieldItem", "addLabelToCard", "addAttachmentToCard", "updateCard"}

    states = connector.read_state([rig.ref("A"), rig.ref("E"), rig.ref("C"), rig.milestone])
    a, checkout = states[rig.ref("A")], states[rig.milestone]
    assert a.fields == {"rank": 3.0, "okr": "Grow revenue"}
    assert a.labels == {"bug", "mb-bottleneck"}
    assert a.links == {}, "the user's attachment is not one of the bridge's links"
    assert a.container == rig.lists["To Do"] and isinstance(a.position, float)
    assert states[rig.ref("C")].position < a.position < states[rig.ref("E")].position
    assert checkout.fields == {"rank": 1.0, "okr": None}
    assert checkout.links == {GID: KR}
    assert checkout.key == rig.card("Checkout")["shortLink"]
    assert [x["name"] for x in rig.card("A")["attachments"]] == ["Spec"]
    connector.close()


def test_applying_the_same_writes_again_sends_nothing(rig: Rig) -> None:
    first = rig.connector()
    assert all(o.ok for o in first.push(every_kind(rig)))
    first.close()
    before = rig.emulator.dump_state()["boards"]
    rig.control.send("DELETE", "requests")
    again = rig.connector()  # as after a restart: nothing cached
    outcomes = again.push(every_kind(rig))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert rig.writes_sent() == []
    assert rig.emulator.dump_state()["boards"] == before, "no duplicate label or attachment, no action"
    assert sum(1 for x in rig.board.labels.values() if x["name"] == "mb-bottleneck") == 1
    again.close()


def test_reading_state_batches_cards_and_leaves_gone_ones_out(rig: Rig) -> None:
    connector = rig.connector()
    gone = rig.cards["D"]
    rig.emulator.edit({"op": "delete_card", "card": gone})
    rig.control.send("DELETE", "requests")
    refs = [rig.ref(n) for n in ("A", "B", "C", "E")] + [Ref(SOURCE, gone)]
    states = connector.read_state(refs)
    assert set(states) == set(refs[:4])
    assert rig.control.get("requests")["by_route"] == {"GET /1/batch": 1}
    assert states[rig.ref("B")].fields == {"rank": None, "okr": None}
    connector.close()


def test_an_archived_card_has_no_place_in_its_lists_order(rig: Rig) -> None:
    """Trello lists only open cards in a list's order, so an archived card is never a move's anchor."""
    rig.emulator.edit({"op": "archive_card", "card": rig.cards["C"]})
    connector = rig.connector()
    states = connector.read_state([rig.ref("C"), rig.ref("B")])
    archived, open_card = states[rig.ref("C")], states[rig.ref("B")]
    assert (archived.container, archived.position) == (None, None)
    assert archived.fields == {"rank": None, "okr": None}
    assert open_card.container is not None and open_card.position is not None
    connector.close()


def test_a_label_milestone_without_its_own_card_is_left_out(rig: Rig) -> None:
    label = rig.emulator.edit({"op": "create_label", "board": rig.board.id, "name": "M:Bare", "color": "sky"})
    connector = rig.connector()
    bare = Ref(SOURCE, f"label:{label['id']}")
    assert set(connector.read_state([bare, rig.milestone])) == {rig.milestone}
    [outcome] = connector.push([field(bare, "rank", 2)])
    assert not outcome.ok and "not a card" in (outcome.error or "")
    connector.close()


def test_changes_and_removals_touch_only_the_bridges_own(rig: Rig) -> None:
    connector = rig.connector()
    rig.emulator.edit({"op": "add_attachment", "card": rig.cards["Checkout"], "url": KR.url, "name": "My KR"})
    assert all(o.ok for o in connector.push(every_kind(rig)))
    moved = LinkTarget(GID, "https://okrs.example.com/kr/grow-revenue-2027", "Key result: Grow revenue 2027")
    outcomes = connector.push([
        field(rig.ref("A"), "rank", None),
        field(rig.ref("A"), "okr", "Keep customers"),
        label_remove(rig.ref("A"), "mb-bottleneck"),
        link(rig.milestone, moved),
    ])  # fmt: skip
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    state = connector.read_state([rig.ref("A"), rig.milestone])
    assert state[rig.ref("A")].fields == {"rank": None, "okr": "Keep customers"}
    assert state[rig.ref("A")].labels == {"bug"}
    assert state[rig.milestone].links == {GID: moved}
    names = [x["name"] for x in rig.card("Checkout")["attachments"]]
    assert names == ["My KR", attachment_name(moved)], "the user's attachment with the same URL stays"
    notes = [i for i in rig.card("A")["customFieldItems"] if i["value"].get("text") == "keep me"]
    assert notes, "the user's own field is untouched"

    assert all(
        o.ok for o in connector.push([link(rig.milestone, None), label_remove(rig.milestone, "mb-at-risk")])
    )
    assert [x["name"] for x in rig.card("Checkout")["attachments"]] == ["My KR"]
    assert rig.labels_of("Checkout") == ["M:Checkout", "milestone"]
    assert connector.read_state([rig.milestone])[rig.milestone].links == {}
    connector.close()


def test_a_failing_write_is_reported_and_the_others_land(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge")
    caplog.set_level(logging.DEBUG, logger="bridge_trello")
    connector = rig.connector()
    rig.control.faults({"kind": "5xx", "status": 502, "method": "PUT", "path": "/customField/"})
    writes = [
        label_add(rig.ref("A"), "mb-bottleneck"),
        field(rig.ref("A"), "rank", 3),
        link(rig.ref("B"), LinkTarget(GID, "ftp://okrs.example.com/kr", "Not http")),
        move(rig, "D", before="B"),
        link(rig.ref("B"), KR),
    ]
    outcomes = connector.push(writes)
    assert [o.ok for o in outcomes] == [True, False, False, True, True]
    assert "502" in (outcomes[1].error or "") and "http(s)" in (outcomes[2].error or "")
    assert rig.labels_of("A") == ["bug", "mb-bottleneck"]
    assert rig.order("To Do") == ["A", "D", "B", "C", "E"]
    assert connector.read_state([rig.ref("B")])[rig.ref("B")].links == {GID: KR}
    assert rig.card("A")["customFieldItems"][0]["value"] == {"text": "keep me"}, "the failed field is unset"
    texts = [o.error or "" for o in outcomes] + [r.getMessage() for r in caplog.records]
    assert any("retrying" in t for t in texts)
    assert not [t for t in texts if TOKEN in t or KEY in t]
    connector.close()


def test_a_tracker_that_stays_down_or_refuses_the_token_raises(rig: Rig) -> None:
    connector = rig.connector()
    writes = [field(rig.ref(n), "rank", i) for i, n in enumerate(("A", "B", "C", "D"), start=1)]
    connector.read_state([w.item for w in writes])
    rig.control.faults({"kind": "5xx", "status": 503, "method": "PUT"})
    with pytest.raises(RetriableAPIError) as down:
        connector.push(writes)
    assert TOKEN not in str(down.value)
    rig.control.faults()
    refused = rig.connector()
    rig.emulator.token = "another-token"
    with pytest.raises(AuthError) as auth:
        refused.push(writes)
    assert TOKEN not in str(auth.value) and "another-token" not in str(auth.value)


def test_moves_read_the_list_again_after_trello_renumbers_it(rig: Rig) -> None:
    connector = rig.connector()
    rig.emulator.min_pos_gap = 6000.0  # cards sit 16384 apart: the second squeeze leaves too small a gap
    rig.control.send("DELETE", "requests")
    outcomes = connector.push(
        [move(rig, "E", after="A"), move(rig, "D", after="A"), move(rig, "C", after="D")]
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert rig.order("To Do") == ["A", "D", "C", "E", "B"]
    assert rig.control.get("requests")["by_route"]["GET /1/lists/{list_id}/cards"] == 2
    positions = [c["pos"] for c in rig.board.cards.values() if c["idList"] == rig.lists["To Do"]]
    assert len(set(positions)) == len(positions)
    assert connector.push([move(rig, "C", after="D")])[0].ok and rig.order("To Do")[2] == "C"
    connector.close()


def test_a_card_that_left_the_list_is_not_moved_back(rig: Rig) -> None:
    connector = rig.connector()
    write = move(rig, "B", before="A")
    rig.emulator.edit({"op": "move_card", "card": rig.cards["B"], "list": "Done"})
    [outcome] = connector.push([write])
    assert not outcome.ok and "no longer in list" in (outcome.error or "")
    assert rig.card("B")["idList"] == rig.lists["Done"]
    connector.close()


def test_a_managed_field_no_board_has_is_named_at_open(rig: Rig) -> None:
    with pytest.raises(UserError, match=r"write\.rank_field: no custom field 'Priority'"):
        rig.connector(rank_field="Priority")


def test_attachment_names_carry_the_link_id_and_fit_trello() -> None:
    long = LinkTarget(GID, "https://okrs.example.com/kr/1", "Key result: " + "x" * 400)
    name = attachment_name(long)
    assert len(name) == NAME_MAX and name.endswith(f" [{GID}]")
    parsed = parse_attachment({"name": name, "url": long.url})
    assert parsed is not None and parsed.global_id == GID and parsed.url == long.url
    assert parse_attachment({"name": attachment_name(KR), "url": KR.url}) == KR
    assert parse_attachment({"name": "Spec [draft]", "url": KR.url}) is None


def test_the_write_requests_follow_trello_json(rig: Rig) -> None:
    """Requests only: the emulator's card answers differ from the document in known ways (see
    tests/sandbox/test_fidelity.py), and the custom field item body's `oneOf` matches any object twice."""
    from tests.sandbox.conftest import shared_file
    from tests.sandbox.openapi import Recorder, contract

    document = contract("trello", shared_file("specs/trello.json"))
    connector = rig.connector()
    recorder = Recorder()
    recorder.attach(connector.writer.session.http)
    assert all(o.ok for o in connector.push(every_kind(rig)))
    removals = [
        link(rig.milestone, None),
        label_remove(rig.ref("A"), "mb-bottleneck"),
        field(rig.ref("A"), "rank", None),
    ]
    assert all(o.ok for o in connector.push(removals))
    verdicts = [document.check(exchange) for exchange in recorder.take()]
    found = {v.operation for v in verdicts}
    assert {"POST /labels", "POST /cards/{id}/idLabels", "POST /cards/{id}/attachments", "PUT /cards/{id}",
            "PUT /cards/{idCard}/customField/{idCustomField}/item", "DELETE /cards/{id}/idLabels/{idLabel}",
            "DELETE /cards/{id}/attachments/{idAttachment}", "GET /lists/{id}/cards"} <= found  # fmt: skip
    wrong = [
        f"{v.operation}: {p}"
        for v in verdicts
        for p in v.problems
        if p.startswith("request") and "is valid under each of" not in p
    ]
    assert wrong == []
    connector.close()


def test_writes_the_config_switches_off_are_refused_and_not_sent(rig: Rig) -> None:
    """What the template checks for every tracker: labels, links and order switched off, a field not
    managed. Taking back a label or a link the bridge made before stays allowed."""
    before = rig.connector()
    assert all(o.ok for o in before.push([label_add(rig.ref("A"), "mb-bottleneck"), link(rig.milestone, KR)]))
    before.close()
    connector = rig.connector(rank_field="Value rank", labels=False, okr_links=False)
    rig.control.send("DELETE", "requests")
    outcomes = connector.push([
        label_add(rig.ref("B"), "mb-at-risk"),
        link(rig.ref("B"), KR),
        move(rig, "E", after="A"),
        field(rig.ref("A"), "okr", "Grow revenue"),
        field(rig.ref("A"), "rank", 2),
        label_remove(rig.ref("A"), "mb-bottleneck"),
        link(rig.milestone, None),
    ])  # fmt: skip
    assert [o.ok for o in outcomes] == [False, False, False, False, True, True, True]
    errors = [o.error or "" for o in outcomes[:4]]
    assert all(e.startswith(f"{SOURCE}: ") for e in errors)
    assert "write.labels is off" in errors[0] and "write.okr_links is off" in errors[1]
    assert "write.native_order is off" in errors[2] and "write.okr_field is not set" in errors[3]
    assert sorted(rig.writes_sent()) == [
        "DELETE /1/cards/{card}/attachments/{attachment}",
        "DELETE /1/cards/{card}/idLabels/{label}",
        "PUT /1/cards/{card}/customField/{definition}/item",
    ]
    assert rig.labels_of("A") == ["bug"] and rig.labels_of("B") == []
    assert rig.order("To Do") == ["A", "B", "C", "D", "E"]
    connector.close()


@pytest.mark.parametrize("fault", ["slow", "drop"])
def test_a_label_whose_creation_got_no_answer_is_looked_for_made_and_merged(rig: Rig, fault: str) -> None:
    """Creating `mb-bottleneck` gets no answer (slower than the client waits, or the connection dropped):
    Trello may have made it or not. The bridge reads the board's labels again at once and, not finding
    it, creates it once more and goes on: every card gets the label in this push. A slow creation that
    lands later leaves a second label; the next push adding that label merges it into the oldest, so the
    board ends with one `mb-bottleneck`, on every card that wants it."""
    rule: dict[str, Any] = {"kind": fault, "method": "POST", "path": "^/1/labels$", "count": 1}
    if fault == "slow":
        rule["delay"] = 1.5
    rig.control.faults(rule)
    writes = [label_add(rig.ref(name), "mb-bottleneck") for name in ("A", "B", "C")]
    first = rig.connector(timeout="0.5s").push(writes)
    assert all(o.ok for o in first), [o.error for o in first]
    time.sleep(1.5)  # a slow creation lands meanwhile
    made = [x for x in rig.board.labels.values() if x["name"] == "mb-bottleneck"]
    assert len(made) == (2 if fault == "slow" else 1), made
    rig.control.faults()
    second = rig.connector(timeout="0.5s").push([label_add(rig.ref("D"), "mb-bottleneck")])
    assert all(o.ok for o in second), [o.error for o in second]
    made = [x for x in rig.board.labels.values() if x["name"] == "mb-bottleneck"]
    assert len(made) == 1, made
    assert all(rig.labels_of(name).count("mb-bottleneck") == 1 for name in ("A", "B", "C", "D"))


def test_a_label_whose_creation_got_no_answer_twice_waits_for_the_next_cycle(rig: Rig) -> None:
    """Both creations of `mb-bottleneck` are lost and the board still lacks it: its writes fail, and no
    third creation is sent in this push (one per card would risk a label each)."""
    rig.control.faults({"kind": "drop", "method": "POST", "path": "^/1/labels$", "count": 2})
    outcomes = rig.connector().push([label_add(rig.ref(name), "mb-bottleneck") for name in ("A", "B", "C")])
    assert not any(o.ok for o in outcomes)
    assert "got no answer twice" in str(outcomes[0].error)
    assert rig.writes_sent().count("POST /1/labels") == 2
    rig.control.faults()
    again = rig.connector().push([o.write for o in outcomes])
    assert all(o.ok for o in again), [o.error for o in again]
    assert len([x for x in rig.board.labels.values() if x["name"] == "mb-bottleneck"]) == 1


def test_copies_of_the_bridges_label_are_merged_into_the_oldest(rig: Rig) -> None:
    """A board already holding two `mb-bottleneck` labels (a duplicate made before), the newer on card
    C: the push adding it to A and B uses the oldest, moves C to it and deletes the copy; the user's
    labels stay."""
    edit = rig.emulator.edit
    older = edit({"op": "create_label", "board": rig.board.id, "name": "mb-bottleneck", "color": "red"})["id"]
    newer = edit({"op": "create_label", "board": rig.board.id, "name": "mb-bottleneck", "color": "red"})["id"]
    assert sorted([older, newer]) == [older, newer]
    edit({"op": "add_label", "card": rig.cards["C"], "label": newer})
    outcomes = rig.connector().push([label_add(rig.ref(name), "mb-bottleneck") for name in ("A", "B")])
    assert all(o.ok for o in outcomes)
    assert [older in rig.card(name)["idLabels"] for name in ("A", "B", "C")] == [True, True, True]
    assert newer not in rig.board.labels and not any(newer in c["idLabels"] for c in rig.board.cards.values())
    assert rig.labels_of("A") == ["bug", "mb-bottleneck"]
    assert {x["name"] for x in rig.board.labels.values()} >= {"bug", "milestone", "M:Checkout"}


def test_two_runs_racing_leave_two_attachments_that_the_next_merges(rig: Rig) -> None:
    """Two runs read card B before either writes (what the exclusive-run lock prevents, should it be
    slipped past), so each attaches the OKR link. The next read names the link as held twice, and
    writing it again leaves one copy; a user's attachment to the same URL stays."""
    rig.emulator.edit({"op": "add_attachment", "card": rig.cards["B"], "url": KR.url, "name": "Ours"})
    first, second = rig.connector(), rig.connector()
    for connector in (first, second):
        assert GID not in connector.read_state([rig.ref("B")])[rig.ref("B")].links
    for connector in (first, second):
        assert all(o.ok for o in connector.push([link(rig.ref("B"), KR)]))
    names = [a["name"] for a in rig.card("B")["attachments"]]
    assert names.count(attachment_name(KR)) == 2
    third = rig.connector()
    state = third.read_state([rig.ref("B")])[rig.ref("B")]
    assert state.duplicates == frozenset({GID}) and GID in state.links
    assert all(o.ok for o in third.push([link(rig.ref("B"), KR)]))
    assert sorted(a["name"] for a in rig.card("B")["attachments"]) == sorted([attachment_name(KR), "Ours"])


def test_a_cards_label_changes_go_in_one_put_that_keeps_the_users_labels(rig: Rig) -> None:
    """Card A carries the user's `bug` and the bridge's `mb-at-risk`; the bridge adds `mb-bottleneck` and
    takes `mb-at-risk` back: one `PUT cards/{id}` with `idLabels`, `bug` kept. Writes the card already
    holds send nothing."""
    connector = rig.connector(labels=True)
    assert all(o.ok for o in connector.push([label_add(rig.ref("A"), "mb-at-risk", "orange")]))
    rig.control.send("DELETE", "requests")
    writes = [label_add(rig.ref("A"), "mb-bottleneck", "red"), label_remove(rig.ref("A"), "mb-at-risk")]
    outcomes = connector.push(writes)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert rig.labels_of("A") == ["bug", "mb-bottleneck"]
    assert rig.writes_sent() == ["POST /1/labels", "PUT /1/cards/{card}"]  # the new label, then the card
    rig.control.send("DELETE", "requests")
    assert all(o.ok for o in connector.push(writes))
    assert rig.writes_sent() == []
    connector.close()


def comment(ref: Ref, text: str | None, completion: int = 1) -> FieldWrite:
    return FieldWrite(ref, comment_marker("reached", ref, completion), text, kind=WriteKind.COMMENT)


def comments_on(rig: Rig, name: str) -> list[str]:
    return [
        str(a["data"]["text"])
        for a in rig.board.actions
        if a["type"] == "commentCard" and a["data"]["card"]["id"] == rig.cards[name]
    ]


def test_a_card_comment_is_posted_once_with_its_marker_and_purged(rig: Rig) -> None:
    connector = rig.connector()
    ref = rig.ref("Checkout")
    first = connector.push([comment(ref, "Checkout reached.")])
    again = connector.push([comment(ref, "Checkout reached.")])  # a retry, another replica: found
    assert [o.ok for o in first + again] == [True, True]
    assert comments_on(rig, "Checkout") == [f"Checkout reached.\n\n{comment_marker('reached', ref, 1)}"]
    rig.emulator.add_comment(rig.board, rig.card("Checkout"), "a user's note", rig.emulator.api_member)
    purged = connector.push([comment(ref, None)])
    connector.close()
    assert purged[0].ok and comments_on(rig, "Checkout") == ["a user's note"]


def test_a_label_milestone_takes_its_comment_on_its_own_card_and_without_one_none(rig: Rig) -> None:
    label = rig.emulator.edit({"op": "create_label", "board": rig.board.id, "name": "M:Bare", "color": "sky"})
    bare = Ref(SOURCE, f"label:{label['id']}")
    connector = rig.connector()
    on_card, without = connector.push([comment(rig.milestone, "Checkout reached."), comment(bare, "Bare.")])
    connector.close()
    assert on_card.ok and len(comments_on(rig, "Checkout")) == 1
    assert not without.ok and "not a card" in str(without.error)


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_a_card_comment_whose_answer_was_lost_is_read_back_and_never_doubled(
    rig: Rig, fault: str, applied: bool
) -> None:
    """The post gets no answer: Trello took it (`lose`) or never saw it (`drop`). It is not sent again
    but read back by its marker; the next push finds it (or posts it): one comment either way."""
    ref = rig.ref("Checkout")
    rig.control.faults({"kind": fault, "method": "POST", "path": r"/actions/comments$"})
    connector = rig.connector()
    outcome = connector.push([comment(ref, "Checkout reached.")])[0]
    assert (outcome.ok, outcome.read_back) == (applied, True), outcome.error
    assert len(comments_on(rig, "Checkout")) == int(applied)
    rig.control.faults()
    assert connector.push([comment(ref, "Checkout reached.")])[0].ok
    connector.close()
    assert len(comments_on(rig, "Checkout")) == 1
