"""The generated organisation's Trello teams as board exports for `TrelloEmulator.from_export`.

One board per Trello team, named by the team's container, shaped as Trello's "Export as JSON" writes
it: `lists`, `labels`, `customFields`, `cards`, `members`, `checklists` and `actions` (newest first).

- Lists: the raw statuses in workflow order ("To Do" ... "Done"), then "Key Results", which holds one
  card per key result of the generator's objectives (`okrs.list = "Key Results"`), labelled with its
  objective's id ("O1"); the card is named "<key result id>: <title>" and its description gives the
  objective, start, target and current value.
- Milestones follow the bridge's Trello defaults (`milestones.source = "label_prefix"`,
  `label_prefix = "M:"`, `tasks.attach = "label"`): each milestone has a label `M:<milestone title>`,
  carried by its tasks. Because a label holds no numbers or dates, each milestone also gets a card of its
  own, in the list of its status (To Do, In Progress or Done, following its tasks over time), labelled
  with its `M:` label and "milestone", with the "Value" and "Effort" custom field items (absent when the
  plan has none), its `due` (noon UTC of the due date, so that the date reads the same in most time
  zones) and, when it serves a key result, a label `okr-<key result id>` (an `okr_rules` label match,
  as the Jira seed's epics carry).
- Cards of live tasks sit in the list of their current status, in the order they arrived there (`pos`
  increasing). Work types are labels, one per work type; the task's person is its member; blockers are
  named by their cards' short URLs (Trello has no dependencies), on a description line "Blocked by
  <url>" or, on every third task card, as link attachments named "Depends on <blocker's title>" (the
  bridge's default `dependencies.phrases`). Archived tasks
  are closed cards; deleted tasks have no card, only their actions ending in `deleteCard`.
- Custom fields on every board: "Value", "Effort", "Value rank" (numbers) and "Key result" (text); the
  last two sit empty for the bridge to write.
- Actions: `createCard` when a card is made (in "To Do"), one `updateCard` with `listBefore`/`listAfter`
  and `data.old.idList` per real list move (a change to the status a card already has writes nothing,
  as a drop into the same list does), `updateCustomFieldItem` for a milestone's values, `updateCard`
  closing an archived card and `deleteCard` for a deleted one. A card is archived (and deleted) halfway
  between its last move and `now`. A real export carries at most the 1000 newest actions; this seed
  carries the whole history, so that a sync must page it with `before`.

Ids are 24-hex ObjectIds as Trello's: the first 8 hex digits are the Unix second the object was made,
then a kind and a number from the plan, so that the same organisation renders the same seed and actions'
ids sort in time order (ties within a second in the order they happened). `dateLastActivity` is a
card's last action (its last move, or its archiving).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from bridge_sandbox.generate import (
    OBJECTIVES,
    STATUSES,
    Change,
    MilestonePlan,
    Organisation,
    TaskPlan,
    TeamPlan,
)
from bridge_sandbox.trello import SITE, format_time, short_link, slug

JSON = dict[str, Any]

TODO, IN_PROGRESS, DONE = "To Do", "In Progress", "Done"
KEY_RESULTS = "Key Results"
LIST_NAMES = (*STATUSES, KEY_RESULTS)
MILESTONE_PREFIX = "M:"
MILESTONE_LABEL = "milestone"
OKR_PREFIX = "okr-"
FIELDS = (("Value", "number"), ("Effort", "number"), ("Value rank", "number"), ("Key result", "text"))
POS_STEP = 16384.0
PEOPLE = (("Robin Okafor", "robinokafor"), ("Alex Chen", "alexchen"), ("Sam Rivera", "samrivera"))
WORK_TYPE_COLORS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink")
MILESTONE_COLOR, OBJECTIVE_COLOR, OKR_COLOR = "sky_dark", "black", "lime_dark"

# The middle of an id: one kind per sort of object, so that no two objects share an id.
BOARD, LIST, LABEL, FIELD, TASK_CARD, MILESTONE_CARD, KR_CARD, ITEM, ACTION, MEMBER, ORG, ATTACHMENT = range(
    1, 13
)
BOARD_BLOCK = 100_000_000
"""Numbers of a board's lists, labels, fields and actions start at its team's index times this."""
# The generator's objectives, typed: (id, title, [(key result id, title, start, target, current)]).
Objectives = tuple[tuple[str, str, Sequence[tuple[str, str, float, float, float]]], ...]
TYPED_OBJECTIVES: Objectives = OBJECTIVES


def object_id(when: datetime, kind: int, number: int) -> str:
    """A Trello ObjectId made at `when`: 8 hex digits of Unix seconds, the kind, then the number."""
    return f"{int(when.timestamp()):08x}{kind:04x}{number:012x}"


def task_created(task: TaskPlan) -> datetime:
    """When the task's card was made: its creation, or its first change if that came earlier."""
    return min([task.created, *(c.at for c in task.changes[:1])])


def task_card_id(task: TaskPlan) -> str:
    """The id of the plan's task's card."""
    return object_id(task_created(task), TASK_CARD, task.number)


def milestone_card_id(milestone: MilestonePlan) -> str:
    """The id of the plan's milestone's card."""
    return object_id(milestone.created, MILESTONE_CARD, milestone.number)


class Move(NamedTuple):
    """A card going from one list to another."""

    at: datetime
    before: str
    after: str


@dataclass
class _Card:
    """One card's whole life: the list it starts in, its moves, and how it ends."""

    id: str
    name: str
    created: datetime
    author: int
    """Index into PEOPLE: who made and moved the card."""
    labels: list[str]
    moves: list[Move] = field(default_factory=list)
    initial: str = TODO
    archived_at: datetime | None = None
    deleted_at: datetime | None = None
    desc: str = ""
    due: str | None = None
    items: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    assigned: bool = True
    id_short: int = 0
    pos: float = 0.0

    @property
    def status(self) -> str:
        return self.moves[-1].after if self.moves else self.initial

    @property
    def arrived(self) -> datetime:
        """When the card came into the list it is in now."""
        return self.moves[-1].at if self.moves else self.created

    @property
    def last(self) -> datetime:
        """The card's last activity (deletion aside, which leaves no card to show it)."""
        return self.archived_at or self.arrived

    @property
    def short_link(self) -> str:
        return short_link(self.id)

    def ref(self) -> JSON:
        return {"id": self.id, "name": self.name, "idShort": self.id_short, "shortLink": self.short_link}


@dataclass(frozen=True)
class _Board:
    """One Trello team's board: its ids, and the ids of its lists, labels and custom fields by name."""

    team: TeamPlan
    index: int
    """The team's place in the organisation, which numbers the board's objects."""
    created: datetime
    members: tuple[JSON, ...]
    lists: dict[str, str] = field(default_factory=dict)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Label name -> (id, colour)."""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return object_id(self.created, BOARD, self.index)

    @property
    def short_link(self) -> str:
        return short_link(self.id)

    def number(self, local: int) -> int:
        return self.index * BOARD_BLOCK + local

    def ref(self) -> JSON:
        return {"id": self.id, "name": self.team.container, "shortLink": self.short_link}

    def list_ref(self, name: str) -> JSON:
        return {"id": self.lists[name], "name": name}

    def label_json(self, name: str) -> JSON:
        label_id, color = self.labels[name]
        return {"id": label_id, "idBoard": self.id, "name": name, "color": color}


class _Event(NamedTuple):
    at: datetime
    type: str
    data: JSON
    author: int


def render_trello(organisation: Organisation) -> dict[str, Any]:
    """The organisation's Trello teams as `{"boards": [...]}`, one board export per team."""
    milestones, tasks = organisation.for_tracker("trello")
    members = tuple(_member(organisation.now, i) for i in range(len(PEOPLE)))
    boards = []
    for index, team in enumerate(organisation.teams):
        if team.tracker != "trello":
            continue
        mine = [m for m in milestones if m.team == team]
        work = [t for t in tasks if t.team == team]
        board = _make_board(team, index, mine, work, organisation.now, members)
        boards.append(_export(board, _cards(board, mine, work, organisation.now)))
    return {"boards": boards}


# ---- the board and its vocabulary ---------------------------------------------------------------------


def _member(now: datetime, number: int) -> JSON:
    full_name, username = PEOPLE[number]
    initials = "".join(word[0] for word in full_name.split())
    # Everyone joined a year before the histories end, well before any board.
    return {"id": object_id(now - timedelta(days=365), MEMBER, number + 1), "username": username,
            "fullName": full_name, "initials": initials, "activityBlocked": False, "avatarHash": None,
            "avatarUrl": None, "idMemberReferrer": None, "nonPublic": {},
            "nonPublicAvailable": True}  # fmt: skip


def _make_board(
    team: TeamPlan,
    index: int,
    milestones: list[MilestonePlan],
    tasks: list[TaskPlan],
    now: datetime,
    members: tuple[JSON, ...],
) -> _Board:
    """The board, set up a day before its first milestone or task, with its lists, labels and fields."""
    first = min([*(m.created for m in milestones), *(task_created(t) for t in tasks)], default=now)
    board = _Board(team, index, first - timedelta(days=1), members)
    for i, name in enumerate(LIST_NAMES):
        board.lists[name] = object_id(board.created, LIST, board.number(i))
    names = [(w, WORK_TYPE_COLORS[i % len(WORK_TYPE_COLORS)]) for i, w in enumerate(team.work_types)]
    names += [(w, "green") for t in tasks for w in t.labels if w not in team.work_types]
    names.append((MILESTONE_LABEL, MILESTONE_COLOR))
    names += [(_milestone_label(m), MILESTONE_COLOR) for m in milestones]
    names += [(objective, OBJECTIVE_COLOR) for objective, _, _ in TYPED_OBJECTIVES]
    names += [(OKR_PREFIX + kr[0], OKR_COLOR) for _, _, krs in TYPED_OBJECTIVES for kr in krs]
    for i, (name, color) in enumerate(dict(names).items()):
        board.labels[name] = (object_id(board.created, LABEL, board.number(i)), color)
    for i, (name, _) in enumerate(FIELDS):
        board.fields[name] = object_id(board.created, FIELD, board.number(i))
    return board


def _milestone_label(milestone: MilestonePlan) -> str:
    return MILESTONE_PREFIX + milestone.title


def _export(board: _Board, cards: list[_Card]) -> JSON:
    actions = _actions(board, cards)
    stamp = format_time(board.created)
    link = board.short_link
    return {
        "id": board.id,
        "name": board.team.container,
        "desc": f"Work of the {board.team.name} team.",
        "descData": None,
        "closed": False,
        "idOrganization": object_id(board.created, ORG, 1),
        "pinned": False,
        "url": f"{SITE}/b/{link}/{slug(board.team.container)}",
        "shortUrl": f"{SITE}/b/{link}",
        "shortLink": link,
        "prefs": {"permissionLevel": "org", "background": "blue", "cardAging": "regular"},
        "labelNames": {},
        "dateLastActivity": actions[0]["date"] if actions else stamp,
        "lists": [_list_json(board, name, i) for i, name in enumerate(LIST_NAMES)],
        "labels": [board.label_json(name) for name in board.labels],
        "customFields": [_field_json(board, i, name, kind) for i, (name, kind) in enumerate(FIELDS)],
        "cards": [_card_json(board, c) for c in cards if c.deleted_at is None],
        "members": [dict(m) for m in board.members],
        "memberships": [_membership(board, i, m) for i, m in enumerate(board.members)],
        "checklists": [],
        "actions": actions,
    }


def _list_json(board: _Board, name: str, number: int) -> JSON:
    return {"id": board.lists[name], "name": name, "closed": False, "idBoard": board.id,
            "pos": POS_STEP * (number + 1), "subscribed": False, "softLimit": None}  # fmt: skip


def _field_json(board: _Board, number: int, name: str, kind: str) -> JSON:
    field_id = board.fields[name]
    return {"id": field_id, "idModel": board.id, "modelType": "board",
            "fieldGroup": hashlib.sha256(field_id.encode()).hexdigest(), "display": {"cardFront": True},
            "name": name, "pos": POS_STEP * (number + 1), "type": kind,
            "isSuggestedField": False}  # fmt: skip


def _membership(board: _Board, number: int, member: JSON) -> JSON:
    return {"id": object_id(board.created, MEMBER, board.number(100 + number)), "idMember": member["id"],
            "memberType": "admin" if number == 0 else "normal", "unconfirmed": False,
            "deactivated": False}  # fmt: skip


# ---- cards --------------------------------------------------------------------------------------------


def _cards(
    board: _Board, milestones: list[MilestonePlan], tasks: list[TaskPlan], now: datetime
) -> list[_Card]:
    """Every card the board ever had, numbered (`idShort`) in the order they were made."""
    live = {t.number: t for t in tasks if not t.deleted}
    cards = _key_result_cards(board)
    cards += [
        _milestone_card(board, m, [t for t in live.values() if t.milestone == m.number]) for m in milestones
    ]
    cards += [_task_card(t, live, milestones, now) for t in tasks]
    cards.sort(key=lambda c: (c.created, c.id))
    for number, card in enumerate(cards, 1):
        card.id_short = number
    _place(cards)
    return cards


def _place(cards: list[_Card]) -> None:
    """Positions: in each list, cards in the order they arrived there, as Trello drops them at the bottom."""
    by_list: dict[str, list[_Card]] = {}
    for card in sorted(cards, key=lambda c: (c.arrived, c.id_short)):
        if card.deleted_at is None:
            by_list.setdefault(card.status, []).append(card)
    for in_list in by_list.values():
        for i, card in enumerate(in_list):
            card.pos = POS_STEP * (i + 1)


def _key_result_cards(board: _Board) -> list[_Card]:
    cards: list[_Card] = []
    for objective_id, objective, key_results in TYPED_OBJECTIVES:
        for kr_id, title, start, target, current in key_results:
            desc = f"Objective {objective_id}: {objective}. Start {start}, target {target}, now {current}."
            number = board.number(len(cards))
            card_id = object_id(board.created, KR_CARD, number)
            card = _Card(card_id, f"{kr_id}: {title}", board.created, 0, [objective_id], initial=KEY_RESULTS)
            card.desc, card.assigned = desc, False
            cards.append(card)
    return cards


def _milestone_card(board: _Board, milestone: MilestonePlan, members: list[TaskPlan]) -> _Card:
    """A milestone's card: its list follows its tasks' statuses over time (the generator's rollup)."""
    initial, moves = _rollup_moves(members, milestone.created)
    labels = [_milestone_label(milestone), MILESTONE_LABEL]
    if milestone.key_result:
        labels.append(OKR_PREFIX + milestone.key_result)
    card = _Card(milestone_card_id(milestone), milestone.title, milestone.created, 0, labels, moves, initial)
    card.desc = milestone.description
    card.due = format_time(_noon(milestone.due)) if milestone.due else None
    pairs = (("Value", milestone.value), ("Effort", milestone.effort))
    card.items = [
        {"id": object_id(milestone.created, ITEM, milestone.number * 10 + i), "value": {"number": _number(v)},
         "idCustomField": board.fields[name], "idModel": card.id, "modelType": "card"}
        for i, (name, v) in enumerate(pairs) if v is not None
    ]  # fmt: skip
    return card


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def _number(value: float) -> str:
    """A number as Trello keeps a custom field's: the text typed, so 13 rather than 13.0."""
    return str(int(value)) if value.is_integer() else str(value)


def _task_card(
    task: TaskPlan, live: dict[int, TaskPlan], milestones: list[MilestonePlan], now: datetime
) -> _Card:
    labels = list(dict.fromkeys([task.work_type, *task.labels]))
    milestone = next((m for m in milestones if m.number == task.milestone), None)
    if milestone is not None:
        labels.append(_milestone_label(milestone))
    card = _Card(task_card_id(task), task.title, task_created(task), task.number % len(PEOPLE), labels)
    card.moves = _moves(TODO, task.changes)
    blockers = [live[n] for n in task.blocked_by if n in live]
    if task.number % 3:
        card.desc = "\n".join(f"Blocked by {SITE}/c/{short_link(task_card_id(b))}" for b in blockers)
    else:
        card.attachments = [_blocker_attachment(card, b, i) for i, b in enumerate(blockers)]
    if task.archived:
        card.archived_at = _halfway(card.arrived, now)
    if task.deleted:
        card.deleted_at = _halfway(card.last, now)
    return card


def _blocker_attachment(card: _Card, blocker: TaskPlan, index: int) -> JSON:
    """A link attachment to the blocker's card, named as a person would: "Depends on <its title>"."""
    attachment_id = object_id(card.created, ATTACHMENT, int(card.id[-12:], 16) * 16 + index)
    return {"id": attachment_id, "bytes": None, "date": format_time(card.created), "edgeColor": None,
            "idMember": None, "isUpload": False, "mimeType": "", "name": f"Depends on {blocker.title}",
            "previews": [], "url": f"{SITE}/c/{short_link(task_card_id(blocker))}",
            "pos": (index + 1) * POS_STEP, "fileName": None}  # fmt: skip


def _halfway(start: datetime, now: datetime) -> datetime:
    return start + max(now - start, timedelta(0)) / 2


def _moves(initial: str, changes: Iterable[Change]) -> list[Move]:
    """The real list moves: a change to the status a card already has moves nothing."""
    moves: list[Move] = []
    previous = initial
    for change in changes:
        if change.status != previous:
            moves.append(Move(change.at, previous, change.status))
            previous = change.status
    return moves


def _rollup(statuses: Iterable[str]) -> str:
    """A milestone's status from its tasks' (the generator's rule): Done when all are, begun when any is."""
    seen = list(statuses)
    if seen and all(s == DONE for s in seen):
        return DONE
    return IN_PROGRESS if any(s != TODO for s in seen) else TODO


def _rollup_moves(tasks: list[TaskPlan], since: datetime) -> tuple[str, list[Move]]:
    """A milestone's status when it was made, and its moves after, replayed from its tasks' changes."""
    current = {t.number: TODO for t in tasks}
    status = initial = TODO
    moves: list[Move] = []
    for at, number, new in sorted((c.at, t.number, c.status) for t in tasks for c in t.changes):
        current[number] = new
        rolled = _rollup(current.values())
        if rolled == status:
            continue
        if at <= since:
            initial = rolled
        else:
            moves.append(Move(at, status, rolled))
        status = rolled
    return initial, moves


def _card_json(board: _Board, card: _Card) -> JSON:
    link = card.short_link
    return {"id": card.id, "name": card.name, "desc": card.desc, "descData": None,
            "closed": card.archived_at is not None, "idBoard": board.id, "idList": board.lists[card.status],
            "idShort": card.id_short, "pos": card.pos, "shortLink": link, "shortUrl": f"{SITE}/c/{link}",
            "url": f"{SITE}/c/{link}/{card.id_short}-{slug(card.name)}",
            "dateLastActivity": format_time(card.last), "due": card.due,
            "dueComplete": card.due is not None and card.status == DONE, "dueReminder": None, "start": None,
            "idLabels": [board.labels[name][0] for name in card.labels],
            "labels": [board.label_json(name) for name in card.labels],
            "idMembers": [board.members[card.author]["id"]] if card.assigned else [], "idMembersVoted": [],
            "idChecklists": [], "checkItemStates": [], "idAttachmentCover": None,
            "manualCoverAttachment": False, "subscribed": False, "isTemplate": False, "cardRole": None,
            "email": None, "cover": {"idAttachment": None, "color": None, "size": "normal"},
            "customFieldItems": [dict(item) for item in card.items],
            "attachments": [dict(attachment) for attachment in card.attachments]}  # fmt: skip


# ---- actions ------------------------------------------------------------------------------------------


def _actions(board: _Board, cards: list[_Card]) -> list[JSON]:
    """Every card's actions, newest first, with ids numbered in the order they happened."""
    events = [event for card in cards for event in _card_events(board, card)]
    events.sort(key=lambda e: e.at)  # stable: a card's events at the same moment keep their order
    actions = [_action(board, event, board.number(n + 1)) for n, event in enumerate(events)]
    actions.reverse()
    return actions


def _card_events(board: _Board, card: _Card) -> list[_Event]:
    created = {"card": card.ref(), "list": board.list_ref(card.initial)}
    events = [_Event(card.created, "createCard", created, card.author)]
    events += [_value_event(board, card, item) for item in card.items]
    for move in card.moves:
        data = {"card": {**card.ref(), "idList": board.lists[move.after]},
                "old": {"idList": board.lists[move.before]}, "listBefore": board.list_ref(move.before),
                "listAfter": board.list_ref(move.after)}  # fmt: skip
        events.append(_Event(move.at, "updateCard", data, card.author))
    where = board.list_ref(card.status)
    if card.archived_at is not None:
        data = {"card": {**card.ref(), "closed": True}, "old": {"closed": False}, "list": where}
        events.append(_Event(card.archived_at, "updateCard", data, card.author))
    if card.deleted_at is not None:
        data = {"card": {k: v for k, v in card.ref().items() if k != "name"}, "list": where}
        events.append(_Event(card.deleted_at, "deleteCard", data, card.author))
    return events


def _value_event(board: _Board, card: _Card, item: JSON) -> _Event:
    name = next(n for n, field_id in board.fields.items() if field_id == item["idCustomField"])
    kind = dict(FIELDS)[name]
    data = {"card": card.ref(), "list": board.list_ref(card.initial),
            "customField": {"id": item["idCustomField"], "name": name, "type": kind},
            "customFieldItem": dict(item), "old": {"value": None}}  # fmt: skip
    return _Event(card.created, "updateCustomFieldItem", data, card.author)


def _action(board: _Board, event: _Event, number: int) -> JSON:
    member = board.members[event.author]
    return {"id": object_id(event.at, ACTION, number), "idMemberCreator": member["id"],
            "data": {**event.data, "board": board.ref()}, "appCreator": None, "type": event.type,
            "date": format_time(event.at), "limits": {}, "memberCreator": dict(member)}  # fmt: skip
