"""A stateful emulator of the Trello REST API (`/1/...`), as `py-trello` and plain `requests` talk to it.

py-trello hard-codes `https://api.trello.com/1/`; clients reach the sandbox by mounting
`bridge_trello.transport.BaseURLAdapter` on that prefix. They authenticate with the `key` and `token`
query parameters given to the constructor (defaults `sandbox-key`, `sandbox-token`), as py-trello does.

Seed format (Trello's board export)
-----------------------------------
`TrelloEmulator.from_export(path_or_dict)` reads what a board's "Print, export and share -> Export as
JSON" writes: one board object with `id`, `name`, `shortLink`, `url`, ... and its `lists`, `cards`,
`labels`, `customFields`, `checklists`, `members` and `actions` (newest first, as exported). A file may
also hold a list of boards or `{"boards": [...]}`; `from_exports([...])` takes several sources. Keys the
emulator does not know pass through to the API's answers; missing ones get defaults (ids, positions,
short links, urls). A card's `labels` objects are rebuilt from `idLabels`; custom field items pointing
at a definition the board lacks are dropped (Trello deletes them with their definition).

Endpoints (all under /1)
------------------------
`boards/{id|shortLink}` (with `fields`, and nested `lists`, `cards`, `labels`, `customFields`),
`boards/{id}/cards[/{filter}]` (`filter`, `fields`, `customFieldItems`, `attachments`, `limit`, `before`,
`since`), `boards/{id}/cards/{card}`, `boards/{id}/lists[/{filter}]`, `boards/{id}/labels` (GET, POST),
`boards/{id}/labels/{label}`, `boards/{id}/customFields`, `boards/{id}/actions`, `boards/{id}/members`,
`boards/{id}/checklists`, `boards/{id}/dateLastActivity`, `members/{me|id}`, `members/{me|id}/boards`,
`lists` (POST), `lists/{id}`, `lists/{id}/cards`, `labels` (POST), `labels/{id}` (GET, DELETE),
`customFields` (POST), `customFields/{id}`, `cards` (POST), `cards/{id|shortLink}` (GET, PUT, DELETE),
`cards/{id}/{field}` (PUT: name, desc, closed, idList, pos, due, start, dueComplete),
`cards/{id}/idLabels` (POST), `cards/{id}/idLabels/{label}` (DELETE), `cards/{id}/labels` (POST),
`cards/{id}/customFieldItems`, `card[s]/{id}/customField/{field}/item` (PUT), `cards/{id}/attachments` (GET,
POST url or multipart file), `cards/{id}/attachments/{attachment}` (GET, DELETE), `cards/{id}/actions`,
`cards/{id}/checklists`, `cards/{id}/pluginData`, `batch?urls=...`.

Behaviour kept from the real service (each a thing a sync must survive), with its source:
- Errors are plain text, not JSON: 401 "invalid key", "invalid token", or "unauthorized permission
  requested" without a token (py-trello issue sarumont/py-trello#367 shows "invalid token"; the Atlassian
  developer community post "New Aux API Request Errors" quotes the last); 400 "invalid id" for an id of
  the wrong shape (bugwarrior issue #639); 404 "Could not find the card" for a card (obsidian-trello issue
  #21) and "The requested resource was not found." otherwise; 400 "invalid value for <param>" for a bad
  parameter. Other wordings are the emulator's own.
- Rate limit: 100 requests per 10 s per token, enforced only while the fault plan holds
  `{"kind": "vendor_limits"}`; the 429 body is `{"error": "API_TOKEN_LIMIT_EXCEEDED", "message":
  "Rate limit exceeded"}` (developer.atlassian.com/cloud/trello/guides/rest-api/rate-limits). Trello
  documents no Retry-After header; the sandbox adds one, so a client must cope with and without it.
- Ids are MongoDB ObjectIds: the first 8 hex digits are the creation time in seconds (py-trello's
  `Card.card_created_date`, Trello's help article 759). New ids here sort by creation, so `before=<id>`
  pages in time order.
- `dateLastActivity` of the card (and of its board) moves on any activity: edits, moves, archiving,
  labels, custom field values, attachments; the API client's own writes included (Card object,
  trello.json: "dateLastActivity").
- Every change writes a board action: `createCard`, `updateCard` (one per changed field, with `data.old`;
  a list move has `listBefore`/`listAfter`, which py-trello's `Card.list_movements` reads), `deleteCard`,
  `addLabelToCard`, `removeLabelFromCard`, `updateCustomFieldItem`, `addAttachmentToCard`,
  `deleteAttachmentFromCard`. API writes are by the token's member, control-API edits by a user, so a sync
  can tell its own writes from people's.
- Actions come newest first; `filter` is a comma list of types or `type:field` (`updateCard:idList`
  means an updateCard whose `data.old` has idList); `limit` defaults to 50 and must be 0..1000, anything
  else is 400; `before`/`since` take an action id or a date (trello.json, getBoardsIdActions). More than
  1000 actions need paging with `before=<oldest id seen>`; py-trello does not page.
- Archived cards appear only with `filter=closed` or `all`; `open` includes open cards of archived lists,
  `visible` leaves them out (filters from trello.json; the open/visible difference is the emulator's
  reading). Without `limit`/`before`/`since` board cards come in board order (lists left to right, cards
  top to bottom); with them the newest cards by id are picked, newest first (a paging experiment in gist
  hakunin/3c25a4c4ae30a2c2c299 shows `limit=1` answering the newest card).
- Cards carry `customFieldItems` only with `customFieldItems=true` and `attachments` only with
  `attachments=true`. Item values are strings (`{"number": "3"}`); an empty value removes the item
  (CustomFieldItems in trello.json; py-trello sends `str(value)`). An unchecked checkbox has no item.
- Positions are floats: `bottom` is the largest position plus 16384, `top` half the smallest. When a
  card is placed closer than `min_pos_gap` to a neighbour, the list is renumbered (every card of it at
  16384 apart, in its order), as Trello does once the gaps run out; only the placed card's move is an
  action (the threshold and the silent renumbering are the emulator's reading).
- An attachment's name is at most 256 characters (trello.json, POST cards/{id}/attachments), else 400.
- Adding a label a card already has is 400 "that label is already on the card"; removing one it lacks
  changes nothing.
- `batch?urls=/a,/b` runs up to 10 GET routes (more is 400) and answers a list of `{"<status>": body}`
  (trello.json /batch; the 2014 post "Batch Requests with the Trello API" on cjr.dev). It is one request
  for the rate limit and the request log.
- Creating answers 200, not 201.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import logging
import math
import re
import string
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from bridge_sandbox.messages import HTTPError, Request, Response
from bridge_sandbox.server import Emulator, Handler, Route, route

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Source = str | Path | dict[str, Any] | list[Any]

SITE = "https://trello.com"
TEXT = "text/plain; charset=utf-8"
NOT_FOUND = "The requested resource was not found."
ACTIONS_MAX = 1000
CARDS_MAX = 1000
LABELS_MAX = 1000
BATCH_MAX = 10
ATTACHMENT_NAME_MAX = 256
POS_STEP = 16384.0
CARD_FILTERS = ("all", "closed", "none", "open", "visible")
LIST_FILTERS = ("all", "closed", "none", "open")
BASE_COLORS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black")
COLORS = frozenset(BASE_COLORS + tuple(f"{c}_{v}" for c in BASE_COLORS for v in ("dark", "light")))
FIELD_TYPES = frozenset({"checkbox", "date", "list", "number", "text"})
CARD_ATTRIBUTES = frozenset({"name", "desc", "closed", "idList", "pos", "due", "start", "dueComplete"})
BOARD_NESTED = frozenset(
    {"lists", "cards", "labels", "customFields", "actions", "checklists", "members", "memberships"}
)
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_SHORT_LINK = re.compile(r"^[0-9A-Za-z]{8}$")
_ALPHABET = string.digits + string.ascii_letters
_MACHINE = "5a4d8b0c1e"  # the middle of every new ObjectId; the counter after it keeps ids in order


# ---- plain helpers ---------------------------------------------------------------------------------


def trello_error(status: int, text: str) -> HTTPError:
    """An error as Trello sends most of them: one plain-text sentence."""
    return HTTPError(status, text, {"Content-Type": TEXT})


def format_time(when: datetime) -> str:
    """Trello's timestamp form: UTC with milliseconds and a `Z`."""
    moment = when.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or timestamp as aware UTC (a value without a zone is read as UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def id_time(object_id: str) -> datetime:
    """When an ObjectId was made (its first 8 hex digits are Unix seconds)."""
    return datetime.fromtimestamp(int(object_id[:8], 16), tz=UTC)


def short_link(seed: str) -> str:
    """An 8-character short link, derived from `seed` so that the same seed gives the same link."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:8])


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "card"


class ObjectIds:
    """New 24-hex ids: creation second, a fixed middle, then a counter, so that later ids sort higher."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, when: datetime) -> str:
        with self._lock:
            number = next(self._counter) % 0x1000000
        return f"{int(when.timestamp()):08x}{_MACHINE}{number:06x}"


def _member(member_id: str, username: str, full_name: str) -> JSON:
    initials = "".join(word[0] for word in full_name.split()[:3]).upper()
    return {"id": member_id, "username": username, "fullName": full_name, "initials": initials,
            "activityBlocked": False, "avatarHash": None, "avatarUrl": None, "idMemberReferrer": None,
            "nonPublic": {}, "nonPublicAvailable": True}  # fmt: skip


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise trello_error(400, f"invalid value for {name}")


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "").lower() == "true"


def _fields(request: Request, name: str = "fields") -> list[str] | None:
    wanted = request.args(name)
    return None if not wanted or "all" in wanted else wanted


def _pick(record: JSON, fields: list[str] | None) -> JSON:
    return record if fields is None else {k: record[k] for k in ("id", *fields) if k in record}


def _limit(request: Request, default: int, high: int) -> int:
    raw = request.arg("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise trello_error(400, "invalid value for limit") from None
    if not 0 <= value <= high:
        raise trello_error(400, "invalid value for limit")
    return value


def _bound(request: Request, name: str) -> tuple[str, Any] | None:
    """`before`/`since`: an ObjectId (compared as ids) or a date (compared as times)."""
    raw = request.arg(name)
    if raw is None or raw in ("", "null"):
        return None
    if _OBJECT_ID.match(raw):
        return ("id", raw.lower())
    try:
        return ("date", parse_time(raw))
    except ValueError:
        raise trello_error(400, f"invalid value for {name}") from None


def _within(
    item_id: str, item_time: datetime, before: tuple[str, Any] | None, since: tuple[str, Any] | None
) -> bool:
    if before is not None and not (item_id.lower() if before[0] == "id" else item_time) < before[1]:
        return False
    return since is None or (item_id.lower() if since[0] == "id" else item_time) > since[1]


def _wrong_type(value: Any) -> Any:
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool | int | float):
        return "not-a-number"
    return "broken"


def _place(others: list[float], value: Any) -> float:
    """A position among `others`: `top`, `bottom` (also for None) or a non-negative number."""
    if value is None or value == "bottom":
        return max(others, default=0.0) + POS_STEP
    if value == "top":
        return min(others) / 2 if others else POS_STEP
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise trello_error(400, "invalid value for pos") from None
    if not math.isfinite(number) or number < 0:
        raise trello_error(400, "invalid value for pos")
    return number


def _body_params(request: Request) -> JSON:
    if not request.body:
        return {}
    kind = (request.header("content-type") or "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart(request)
    if kind == "application/x-www-form-urlencoded":
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in form.items()}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise trello_error(400, "invalid JSON in the request body") from None
    if not isinstance(body, dict):
        raise trello_error(400, "invalid request body")
    return body


def _multipart(request: Request) -> JSON:
    """Form fields as strings; file parts as {filename, bytes, mimeType}."""
    head = f"Content-Type: {request.header('content-type')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    out: JSON = {}
    for part in message.walk():
        name = part.get_param("name", header="content-disposition")
        if part.is_multipart() or not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            out[name] = data.decode("utf-8", "replace")
        else:
            out[name] = {"filename": filename, "bytes": data, "mimeType": part.get_content_type()}
    return out


def params_of(request: Request) -> JSON:
    """A request's parameters: the query (without key and token), then the body's (JSON, form, multipart)."""
    params: JSON = {k: v[0] for k, v in request.query.items() if k not in ("key", "token") and v}
    params.update(_body_params(request))
    return params


def _read(source: Source) -> Any:
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8") as handle:
            return json.load(handle)
    return source


def _boards_in(data: Any) -> list[JSON]:
    if isinstance(data, dict) and isinstance(data.get("boards"), list):
        data = data["boards"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(b, dict) and b.get("id") for b in data):
        raise ValueError("a Trello export is a board object with an id, a list of them, or {'boards': [...]}")
    return data


# ---- state ----------------------------------------------------------------------------------------


@dataclass
class Board:
    """One board and everything on it, stored in Trello's own field names."""

    record: JSON
    lists: dict[str, JSON] = field(default_factory=dict)
    labels: dict[str, JSON] = field(default_factory=dict)
    custom_fields: dict[str, JSON] = field(default_factory=dict)
    cards: dict[str, JSON] = field(default_factory=dict)
    checklists: dict[str, JSON] = field(default_factory=dict)
    members: list[JSON] = field(default_factory=list)
    actions: list[JSON] = field(default_factory=list)
    """Oldest first (by id), so that the newest are at the end."""
    comments: Counter[str] = field(default_factory=Counter)
    short_ids: int = 0
    """The highest `idShort` given out."""
    _label_uses: Counter[str] | None = None

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def ref(self) -> JSON:
        return {"id": self.id, "name": self.record["name"], "shortLink": self.record["shortLink"]}

    def ordered_cards(self) -> list[JSON]:
        """Board order: lists by position, cards by position inside them."""
        list_pos = {lst["id"]: float(lst["pos"]) for lst in self.lists.values()}
        return sorted(self.cards.values(), key=lambda c: (list_pos.get(c["idList"], math.inf), c["pos"]))

    def collection(self, kind: str) -> dict[str, JSON]:
        """The board's `lists`, `labels`, `custom_fields` or `checklists`, by that name."""
        found: dict[str, dict[str, JSON]] = {
            "lists": self.lists,
            "labels": self.labels,
            "custom_fields": self.custom_fields,
            "checklists": self.checklists,
        }
        return found[kind]

    def label_uses(self) -> Counter[str]:
        """How many cards carry each label (recounted after a change, not once per card shown)."""
        if self._label_uses is None:
            self._label_uses = Counter(i for card in self.cards.values() for i in card["idLabels"])
        return self._label_uses

    def labels_changed(self) -> None:
        self._label_uses = None


def _card_ref(card: JSON) -> JSON:
    return {
        "id": card["id"],
        "name": card["name"],
        "idShort": card["idShort"],
        "shortLink": card["shortLink"],
    }


def _list_ref(lst: JSON | None) -> JSON:
    return {"id": lst["id"], "name": lst["name"]} if lst else {}


def _label_ref(label: JSON) -> JSON:
    return {"id": label["id"], "name": label["name"], "color": label["color"]}


def _matches_filter(board: Board, card: JSON, which: str) -> bool:
    if which == "all":
        return True
    if which == "closed":
        return bool(card["closed"])
    if which == "visible":
        lst = board.lists.get(card["idList"])
        return not card["closed"] and not (lst and lst["closed"])
    return which == "open" and not card["closed"]


def _action_filters(text: str) -> list[tuple[str, str | None]] | None:
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries or "all" in entries:
        return None
    out: list[tuple[str, str | None]] = []
    for entry in entries:
        kind, _, attribute = entry.partition(":")
        out.append((kind, attribute or None))
    return out


def _action_wanted(action: JSON, filters: list[tuple[str, str | None]] | None) -> bool:
    if filters is None:
        return True
    old = (action.get("data") or {}).get("old") or {}
    return any(action.get("type") == kind and (name is None or name in old) for kind, name in filters)


class TrelloEmulator(Emulator):
    """Trello boards, their lists, labels, custom fields, cards and actions, behind Trello's REST API."""

    name: ClassVar[str] = "trello"
    vendor_limit: ClassVar[tuple[int, float] | None] = (100, 10.0)  # per token, Trello's published limit
    min_pos_gap: float = 1 / 64
    """A card placed closer than this to a neighbour makes the list be renumbered."""

    def __init__(self, key: str = "sandbox-key", token: str = "sandbox-token") -> None:
        super().__init__()
        self.key = key
        self.token = token
        self.ids = ObjectIds()
        self.boards: dict[str, Board] = {}
        self._owner: dict[str, str] = {}  # card, list, label, field or checklist id -> board id
        self._links: dict[str, str] = {}  # board or card short link -> id
        started = self.clock.now()
        self.api_member = _member(self.ids.new(started), "sandboxapi", "Sandbox API user")
        self._users: dict[str, JSON] = {}
        self.user = self._user("Sandbox User")

    # ---- seeding --------------------------------------------------------------------------------

    @classmethod
    def from_export(cls, source: Source, **kwargs: Any) -> TrelloEmulator:
        """Seed from a board export (a dict, a JSON file, or a list of boards in one)."""
        return cls.from_exports([source], **kwargs)

    @classmethod
    def from_exports(cls, sources: Iterable[Source], **kwargs: Any) -> TrelloEmulator:
        """Seed from several board exports."""
        emulator = cls(**kwargs)
        for source in sources:
            for raw in _boards_in(_read(source)):
                emulator.load_board(raw)
        log.info(
            "trello sandbox seeded: %d boards, %d cards",
            len(emulator.boards),
            sum(len(b.cards) for b in emulator.boards.values()),
        )
        return emulator

    def load_board(self, raw: JSON) -> Board:
        """Add one exported board as it is (its actions keep their ids and order)."""
        with self.lock:
            board = Board(self._board_record(raw))
            self.boards[board.id] = board
            self._links[board.record["shortLink"]] = board.id
            for item in raw.get("lists") or []:
                self._add_list(board, item)
            for item in raw.get("labels") or []:
                self._add_label(board, item)
            for item in raw.get("customFields") or []:
                self._add_custom_field(board, item)
            for item in raw.get("checklists") or []:
                self._own(board, board.checklists, dict(item))
            for item in raw.get("cards") or []:
                self._load_card(board, item)
            self._load_actions(board, raw.get("actions") or [])
            board.members = [dict(m) for m in raw.get("members") or [] if isinstance(m, dict)]
            return board

    def _board_record(self, raw: JSON) -> JSON:
        record = {k: copy.deepcopy(v) for k, v in raw.items() if k not in BOARD_NESTED}
        board_id = str(record["id"])
        record.setdefault("name", "")
        link = record.setdefault("shortLink", short_link(board_id))
        record.setdefault("url", f"{SITE}/b/{link}/{slug(record['name'])}")
        record.setdefault("shortUrl", f"{SITE}/b/{link}")
        defaults: JSON = {"desc": "", "descData": None, "closed": False, "idOrganization": None,
                          "pinned": False, "prefs": {}, "labelNames": {}}  # fmt: skip
        for name, value in defaults.items():
            record.setdefault(name, value)
        when = id_time(board_id) if _OBJECT_ID.match(board_id) else self.clock.now()
        record.setdefault("dateLastActivity", format_time(when))
        return record

    def _own(self, board: Board, into: dict[str, JSON], record: JSON) -> JSON:
        record.setdefault("id", self.ids.new(self.clock.now()))
        into[record["id"]] = record
        self._owner[record["id"]] = board.id
        return record

    def _add_list(self, board: Board, raw: JSON) -> JSON:
        record = dict(raw)
        record.setdefault("name", "")
        record.setdefault("closed", False)
        if record.get("pos") is None:
            record["pos"] = _place([float(x["pos"]) for x in board.lists.values()], None)
        record["pos"] = float(record["pos"])
        record.setdefault("subscribed", False)
        record.setdefault("softLimit", None)
        record["idBoard"] = board.id
        return self._own(board, board.lists, record)

    def _add_label(self, board: Board, raw: JSON) -> JSON:
        record = {**raw, "name": raw.get("name") or "", "color": raw.get("color"), "idBoard": board.id}
        return self._own(board, board.labels, record)

    def _add_custom_field(self, board: Board, raw: JSON) -> JSON:
        record = copy.deepcopy(raw)
        record.update(idModel=board.id, modelType="board")
        record.setdefault("name", "")
        record.setdefault("type", "text")
        record.setdefault("pos", (len(board.custom_fields) + 1) * POS_STEP)
        record.setdefault("display", {"cardFront": True})
        record.setdefault("fieldGroup", hashlib.sha256(str(record.get("id")).encode()).hexdigest())
        record.setdefault("isSuggestedField", False)
        field_record = self._own(board, board.custom_fields, record)
        if field_record["type"] == "list":
            options = [
                self._option(field_record, option, n) for n, option in enumerate(raw.get("options") or [])
            ]
            field_record["options"] = options
        return field_record

    def _option(self, definition: JSON, raw: Any, number: int) -> JSON:
        option = dict(raw) if isinstance(raw, dict) else {"value": {"text": str(raw)}}
        option.setdefault("id", self.ids.new(self.clock.now()))
        option.setdefault("color", "none")
        option.setdefault("pos", (number + 1) * POS_STEP)
        option["idCustomField"] = definition["id"]
        return option

    def _load_card(self, board: Board, raw: JSON) -> None:
        card = copy.deepcopy(raw)
        card_id = str(card.setdefault("id", self.ids.new(self.clock.now())))
        if card.get("idList") not in board.lists:
            raise ValueError(f"card {card_id} is in list {card.get('idList')!r}, which the export lacks")
        label_ids = card.get("idLabels") or [label.get("id") for label in card.get("labels") or []]
        for label in card.pop("labels", None) or []:
            if isinstance(label, dict) and label.get("id") and label["id"] not in board.labels:
                self._add_label(board, label)
        card["idLabels"] = [i for i in label_ids if i in board.labels]
        card.pop("badges", None)
        card.pop("shortUrl", None)
        items = card.get("customFieldItems") or []
        card["customFieldItems"] = [i for i in items if i.get("idCustomField") in board.custom_fields]
        if len(card["customFieldItems"]) < len(items):
            log.warning("trello sandbox: card %s drops custom field items of unknown fields", card_id)
        self._complete_card(board, card, id_time(card_id) if _OBJECT_ID.match(card_id) else self.clock.now())
        card["idChecklists"] = card.get("idChecklists") or [
            c["id"] for c in board.checklists.values() if c.get("idCard") == card_id
        ]
        self._register_card(board, card)

    def _complete_card(self, board: Board, card: JSON, when: datetime) -> None:
        card["idBoard"] = board.id
        card.setdefault("idShort", board.short_ids + 1)
        link = card.setdefault("shortLink", short_link(card["id"]))
        card.setdefault("name", "")
        card.setdefault("url", f"{SITE}/c/{link}/{card['idShort']}-{slug(card['name'])}")
        card["pos"] = float(card["pos"]) if card.get("pos") is not None else POS_STEP
        card.setdefault("dateLastActivity", format_time(when))
        defaults: JSON = {"desc": "", "descData": None, "closed": False, "due": None, "dueComplete": False,
                          "dueReminder": None, "start": None, "idMembers": [], "idMembersVoted": [],
                          "idChecklists": [], "checkItemStates": [], "idAttachmentCover": None,
                          "manualCoverAttachment": False, "subscribed": False, "isTemplate": False,
                          "cardRole": None, "email": None,
                          "cover": {"idAttachment": None, "color": None, "size": "normal"},
                          "customFieldItems": [], "attachments": []}  # fmt: skip
        for name, value in defaults.items():
            card.setdefault(name, copy.deepcopy(value))

    def _register_card(self, board: Board, card: JSON) -> None:
        board.cards[card["id"]] = card
        board.short_ids = max(board.short_ids, int(card["idShort"]))
        board.labels_changed()
        self._owner[card["id"]] = board.id
        self._links[card["shortLink"]] = card["id"]

    def _load_actions(self, board: Board, raw: list[JSON]) -> None:
        actions = [copy.deepcopy(a) for a in raw if isinstance(a, dict) and a.get("id") and a.get("type")]
        for action in actions:
            action.setdefault("date", format_time(id_time(action["id"])))
            action.setdefault("data", {})
            if action["type"] == "commentCard":
                board.comments[str((action["data"].get("card") or {}).get("id"))] += 1
        board.actions = sorted(board.actions + actions, key=lambda a: str(a["id"]).lower())

    # ---- hooks of the shared machinery ----------------------------------------------------------

    def _collect_routes(self) -> list[Route]:
        # Handlers run on the server's threads; taking the state lock per request keeps each one atomic.
        return [replace(r, handler=self._atomic(r.handler)) for r in super()._collect_routes()]

    def _atomic(self, handler: Handler) -> Handler:
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return handler(*args, **kwargs)

        return run

    def dispatch(self, request: Request) -> Response:
        """Serve a request; Trello's plain-text errors leave as text/plain, not as JSON strings."""
        response = super().dispatch(request)
        if isinstance(response.body, str) and response.raw is None:
            response.raw = response.body.encode("utf-8")
            response.headers = {**response.headers, "Content-Type": TEXT}
        return response

    def authenticate(self, request: Request) -> str:
        key, token = request.arg("key") or "", request.arg("token") or ""
        if not hmac.compare_digest(key.encode(), self.key.encode()):
            raise trello_error(401, "invalid key")
        if not token:
            raise trello_error(401, "unauthorized permission requested")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise trello_error(401, "invalid token")
        return str(self.api_member["id"])

    def rate_limit_key(self, request: Request) -> str | None:
        """Trello counts per token."""
        return request.arg("token")

    def credentials(self) -> dict[str, str]:
        return {"key": self.key, "token": self.token}

    def not_found(self, request: Request) -> HTTPError:
        return trello_error(404, NOT_FOUND)

    def error_body(self, status: int, message: str) -> Any:
        if status == 429:
            return {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
        return message

    def malform(self, body: Any, rule: JSON) -> Any:
        """Break one item of a good answer: an `id...` field disappears, any other gets a wrong type."""
        broken = copy.deepcopy(body)
        items = broken if isinstance(broken, list) else [broken]
        records = [item for item in items if isinstance(item, dict)]
        if not records:
            return body
        item = records[min(int(rule.get("item", 0)), len(records) - 1)]
        name = str(rule.get("field") or "id")
        if name.startswith("id"):
            item.pop(name, None)
        else:
            item[name] = _wrong_type(item.get(name))
        return broken

    def dump_state(self) -> JSON:
        return {"boards": [self._dump_board(b) for b in self.boards.values()],
                "now": format_time(self.clock.now())}  # fmt: skip

    def _dump_board(self, board: Board) -> JSON:
        def card_state(card: JSON) -> JSON:
            return {
                **{k: card[k] for k in ("id", "name", "idList", "pos", "closed", "idShort", "shortLink")},
                "list": board.lists[card["idList"]]["name"],
                "labels": [board.labels[i]["name"] for i in card["idLabels"]],
                "customFieldItems": copy.deepcopy(card["customFieldItems"]),
                "attachments": [{k: a.get(k) for k in ("id", "name", "url")} for a in card["attachments"]],
                "dateLastActivity": card["dateLastActivity"],
            }

        return {
            **{k: board.record[k] for k in ("id", "name", "shortLink", "closed", "dateLastActivity")},
            "lists": [{k: x[k] for k in ("id", "name", "closed", "pos")} for x in board.lists.values()],
            "labels": [_label_ref(label) for label in board.labels.values()],
            "customFields": [self._field_json(f) for f in board.custom_fields.values()],
            "cards": [card_state(card) for card in board.ordered_cards()],
            "actions": len(board.actions),
        }

    # ---- lookups ----------------------------------------------------------------------------------

    def _board(self, ref: str) -> Board:
        board_id = self._links.get(ref, ref)
        if board_id in self.boards:
            return self.boards[board_id]
        if not (_OBJECT_ID.match(ref) or _SHORT_LINK.match(ref)):
            raise trello_error(400, "invalid id")
        raise trello_error(404, NOT_FOUND)

    def _card(self, ref: str) -> tuple[Board, JSON]:
        card_id = self._links.get(ref, ref)
        board = self.boards.get(self._owner.get(card_id, ""))
        if board is not None and card_id in board.cards:
            return board, board.cards[card_id]
        if not (_OBJECT_ID.match(ref) or _SHORT_LINK.match(ref)):
            raise trello_error(400, "invalid id")
        raise trello_error(404, "Could not find the card")

    def _owned(self, ref: str, kind: str) -> tuple[Board, JSON]:
        """A list, label, custom field or checklist by id (`kind` names the Board attribute)."""
        board = self.boards.get(self._owner.get(ref, ""))
        found = board.collection(kind).get(ref) if board is not None else None
        if board is not None and found is not None:
            return board, found
        if not _OBJECT_ID.match(ref):
            raise trello_error(400, "invalid id")
        raise trello_error(404, NOT_FOUND)

    def _on_board(self, board: Board, ref: Any, kind: str, param: str) -> JSON:
        found = board.collection(kind).get(str(ref))
        if found is None:
            raise trello_error(400, f"invalid value for {param}")
        return found  # the stored record itself: callers change it in place

    # ---- rendering --------------------------------------------------------------------------------

    def _label_json(self, board: Board, label: JSON) -> JSON:
        return {**copy.deepcopy(label), "uses": board.label_uses()[label["id"]]}

    def _field_json(self, definition: JSON) -> JSON:
        return copy.deepcopy(definition)

    def _badges(self, board: Board, card: JSON) -> JSON:
        items = [
            item
            for checklist_id in card["idChecklists"]
            for item in (board.checklists.get(checklist_id) or {}).get("checkItems") or []
        ]
        return {"attachmentsByType": {"trello": {"board": 0, "card": 0}}, "location": False, "votes": 0,
                "viewingMemberVoted": False, "subscribed": False, "fogbugz": "", "checkItems": len(items),
                "checkItemsChecked": sum(1 for i in items if i.get("state") == "complete"),
                "checkItemsEarliestDue": None, "comments": board.comments[card["id"]],
                "attachments": len(card["attachments"]), "description": bool(card["desc"]),
                "due": card["due"], "dueComplete": card["dueComplete"],
                "start": card.get("start")}  # fmt: skip

    def card_json(self, board: Board, card: JSON, *, custom: bool = True, attachments: bool = False) -> JSON:
        """A card as the API shows it (labels and badges computed, stored-only parts on request)."""
        out = {k: copy.deepcopy(v) for k, v in card.items() if k not in ("customFieldItems", "attachments")}
        out["labels"] = [
            self._label_json(board, board.labels[i]) for i in card["idLabels"] if i in board.labels
        ]
        out["badges"] = self._badges(board, card)
        out["shortUrl"] = f"{SITE}/c/{card['shortLink']}"
        if custom:
            out["customFieldItems"] = copy.deepcopy(card["customFieldItems"])
        if attachments:
            out["attachments"] = copy.deepcopy(card["attachments"])
        return out

    def _card_out(self, request: Request, board: Board, card: JSON) -> JSON:
        out = self.card_json(board, card, custom=False, attachments=_flag(request, "attachments"))
        out = _pick(out, _fields(request))
        if _flag(request, "customFieldItems"):
            out["customFieldItems"] = copy.deepcopy(card["customFieldItems"])
        return out

    def _board_json(self, request: Request, board: Board) -> JSON:
        out = _pick(copy.deepcopy(board.record), _fields(request))
        lists = request.arg("lists")
        if lists in LIST_FILTERS and lists != "none":
            out["lists"] = self._lists(board, lists)
        cards = request.arg("cards")
        if cards in CARD_FILTERS and cards != "none":
            out["cards"] = [self._card_out(request, board, c) for c in self._cards(board, cards)]
        if request.arg("labels") in ("all", "true"):
            out["labels"] = [self._label_json(board, label) for label in board.labels.values()]
        if _flag(request, "customFields"):
            out["customFields"] = [self._field_json(f) for f in board.custom_fields.values()]
        return out

    def _lists(self, board: Board, which: str) -> list[JSON]:
        if which not in LIST_FILTERS:
            raise trello_error(400, "invalid value for filter")
        if which == "none":
            return []
        ordered = sorted(board.lists.values(), key=lambda x: float(x["pos"]))
        return [dict(x) for x in ordered if which == "all" or (which == "closed") == bool(x["closed"])]

    def _cards(self, board: Board, which: str) -> list[JSON]:
        if which not in CARD_FILTERS:
            raise trello_error(400, "invalid value for filter")
        return [card for card in board.ordered_cards() if _matches_filter(board, card, which)]

    def _page_cards(self, request: Request, cards: list[JSON]) -> list[JSON]:
        """Paging by id, as Trello pages cards: the newest `limit` cards before/since a bound."""
        if not any(request.arg(name) for name in ("limit", "before", "since")):
            return cards
        limit = _limit(request, CARDS_MAX, CARDS_MAX)
        before, since = _bound(request, "before"), _bound(request, "since")
        chosen = [c for c in cards if _within(c["id"], id_time(c["id"]), before, since)]
        chosen.sort(key=lambda c: str(c["id"]).lower(), reverse=True)
        return chosen[:limit]

    def _actions(self, request: Request, actions: list[JSON], default_filter: str) -> list[JSON]:
        """Newest first, filtered, from `before`/`since`, at most `limit` (`page` skips whole pages)."""
        filters = _action_filters(request.arg("filter") or default_filter)
        limit = _limit(request, 50, ACTIONS_MAX)
        before, since = _bound(request, "before"), _bound(request, "since")
        skip = request.int_arg("page", 0) * limit
        out: list[JSON] = []
        for action in reversed(actions):
            if len(out) >= limit:
                break
            if not _within(action["id"], parse_time(action["date"]), before, since):
                continue
            if not _action_wanted(action, filters):
                continue
            if skip:
                skip -= 1
                continue
            out.append(copy.deepcopy(action))
        return out

    # ---- recording changes --------------------------------------------------------------------------

    def _user(self, name: str) -> JSON:
        """The member a control-API edit is made by (one per display name)."""
        if name not in self._users:
            username = re.sub(r"[^a-z0-9]", "", name.lower()) or "user"
            self._users[name] = _member(self.ids.new(self.clock.now()), username, name)
        return self._users[name]

    def _record(self, board: Board, kind: str, data: JSON, by: JSON, when: datetime) -> JSON:
        action = {"id": self.ids.new(when), "idMemberCreator": by["id"],
                  "data": {**data, "board": board.ref()}, "appCreator": None, "type": kind,
                  "date": format_time(when), "limits": {}, "memberCreator": dict(by)}  # fmt: skip
        board.actions.append(action)
        return action

    def _card_changed(self, board: Board, card: JSON, kind: str, data: JSON, by: JSON) -> JSON:
        """Bump the card's and board's `dateLastActivity` and write the action."""
        when = self.clock.now()
        card["dateLastActivity"] = board.record["dateLastActivity"] = format_time(when)
        full = {"card": _card_ref(card), **data}
        if "listAfter" not in full:
            full.setdefault("list", _list_ref(board.lists.get(card["idList"])))
        return self._record(board, kind, full, by, when)

    def _position(self, board: Board, list_id: str, value: Any, moving: JSON | None = None) -> float:
        others = [float(c["pos"]) for c in board.cards.values() if c["idList"] == list_id and c is not moving]
        return _place(others, value)

    # ---- changes (the API and the control API share them) -----------------------------------------------

    def create_card(self, board: Board, lst: JSON, values: JSON, by: JSON) -> JSON:
        """A new card at `values["pos"]` (default bottom) with its createCard action."""
        name = values.get("name")
        if name is not None and not isinstance(name, str):
            raise trello_error(400, "invalid value for name")
        when = self.clock.now()
        card: JSON = {"id": self.ids.new(when), "name": name or "", "idList": lst["id"],
                      "desc": str(values.get("desc") or "")}  # fmt: skip
        card["pos"] = self._position(board, lst["id"], values.get("pos", "bottom"))
        card["due"] = self._date(values.get("due"), "due")
        card["idLabels"] = self._label_ids(board, values.get("idLabels"))
        self._complete_card(board, card, when)
        card["dateLastActivity"] = board.record["dateLastActivity"] = format_time(when)
        self._register_card(board, card)
        self._settle(board, card)
        self._record(board, "createCard", {"card": _card_ref(card), "list": _list_ref(lst)}, by, when)
        return card

    def _date(self, value: Any, name: str) -> str | None:
        if value is None or value in ("", "null"):
            return None
        try:
            return format_time(parse_time(str(value)))
        except ValueError:
            raise trello_error(400, f"invalid value for {name}") from None

    def _label_ids(self, board: Board, value: Any) -> list[str]:
        ids = value if isinstance(value, list) else [i for i in str(value or "").split(",") if i]
        for label_id in ids:
            self._on_board(board, label_id, "labels", "idLabels")
        return list(dict.fromkeys(str(i) for i in ids))

    def update_card(self, board: Board, card: JSON, changes: JSON, by: JSON) -> JSON:
        """Apply field changes; each changed field writes its own updateCard action, as Trello does."""
        wanted = self._normalise(board, card, changes)
        if "idList" in wanted:
            self._move(board, card, wanted.pop("idList"), wanted.pop("pos", None), by)
        if "idLabels" in wanted:
            self._set_labels(board, card, wanted.pop("idLabels"), by)
        for name, value in wanted.items():
            old = card.get(name)
            card[name] = value
            if name == "pos":
                self._settle(board, card)
                value = card["pos"]
            self._card_changed(board, card, "updateCard", {"card": {**_card_ref(card), name: value},
                                                           "old": {name: old}}, by)  # fmt: skip
        return card

    def _normalise(self, board: Board, card: JSON, changes: JSON) -> JSON:
        """The changes that really change something, validated, in Trello's stored form."""
        out: JSON = {}
        for name, value in changes.items():
            if name == "idBoard" and value not in (board.id, board.record["shortLink"]):
                raise trello_error(400, "invalid value for idBoard")  # moves between boards: not emulated
            if name in ("name", "desc"):
                if not isinstance(value, str) or (name == "name" and not value.strip()):
                    raise trello_error(400, f"invalid value for {name}")
                out[name] = value
            elif name in ("closed", "dueComplete"):
                out[name] = _bool(value, name)
            elif name in ("due", "start"):
                out[name] = self._date(value, name)
            elif name == "idList":
                out[name] = self._on_board(board, value, "lists", "idList")["id"]
            elif name == "idLabels":
                out[name] = self._label_ids(board, value)
        if "pos" in changes:
            target = str(out.get("idList", card["idList"]))
            out["pos"] = self._position(board, target, changes["pos"], card)
        return {k: v for k, v in out.items() if card.get(k) != v}

    def _move(self, board: Board, card: JSON, list_id: str, pos: float | None, by: JSON) -> None:
        """Another list (at `pos`, or at the bottom): one updateCard with listBefore and listAfter."""
        before, after = board.lists[card["idList"]], board.lists[list_id]
        card["pos"] = pos if pos is not None else self._position(board, list_id, "bottom", card)
        card["idList"] = list_id
        self._settle(board, card)
        data = {"card": {**_card_ref(card), "idList": list_id}, "old": {"idList": before["id"]},
                "listBefore": _list_ref(before), "listAfter": _list_ref(after)}  # fmt: skip
        self._card_changed(board, card, "updateCard", data, by)

    def _settle(self, board: Board, placed: JSON) -> None:
        """Renumber the placed card's list when it sits too close to a neighbour (or on one)."""
        in_list = sorted((c for c in board.cards.values() if c["idList"] == placed["idList"]),
                         key=lambda c: (c["pos"], c is not placed, c["id"]))  # fmt: skip
        at = next(i for i, c in enumerate(in_list) if c is placed)
        neighbours = in_list[max(0, at - 1) : at] + in_list[at + 1 : at + 2]
        if all(abs(c["pos"] - placed["pos"]) >= self.min_pos_gap for c in neighbours):
            return
        for number, card in enumerate(in_list, start=1):
            card["pos"] = number * POS_STEP

    def _set_labels(self, board: Board, card: JSON, label_ids: list[str], by: JSON) -> None:
        for label_id in [i for i in card["idLabels"] if i not in label_ids]:
            self.remove_label(board, card, board.labels[label_id], by)
        for label_id in [i for i in label_ids if i not in card["idLabels"]]:
            self.add_label(board, card, board.labels[label_id], by)

    def add_label(self, board: Board, card: JSON, label: JSON, by: JSON) -> None:
        if label["id"] in card["idLabels"]:
            raise trello_error(400, "that label is already on the card")
        card["idLabels"] = [*card["idLabels"], label["id"]]
        board.labels_changed()
        data = {"label": _label_ref(label), "text": label["name"], "value": label["id"]}
        self._card_changed(board, card, "addLabelToCard", data, by)

    def remove_label(self, board: Board, card: JSON, label: JSON, by: JSON) -> None:
        if label["id"] not in card["idLabels"]:
            return
        card["idLabels"] = [i for i in card["idLabels"] if i != label["id"]]
        board.labels_changed()
        data = {"label": _label_ref(label), "text": label["name"], "value": label["id"]}
        self._card_changed(board, card, "removeLabelFromCard", data, by)

    def delete_card(self, board: Board, card: JSON, by: JSON) -> None:
        del board.cards[card["id"]]
        board.labels_changed()
        self._owner.pop(card["id"], None)
        self._links.pop(card["shortLink"], None)
        when = self.clock.now()
        board.record["dateLastActivity"] = format_time(when)
        data = {"card": {k: card[k] for k in ("id", "idShort", "shortLink")},
                "list": _list_ref(board.lists.get(card["idList"]))}  # fmt: skip
        self._record(board, "deleteCard", data, by, when)

    def set_custom_field(self, board: Board, card: JSON, definition: JSON, body: JSON, by: JSON) -> JSON:
        """Set (or with an empty value, remove) the card's item of a custom field; answer the item."""
        new = self._item_value(definition, body)
        current = next((i for i in card["customFieldItems"] if i["idCustomField"] == definition["id"]), None)
        old = {k: current[k] for k in ("value", "idValue") if current and k in current}
        if new is None and current is None:
            return {}
        if new is not None and current is not None and old == new:
            return copy.deepcopy(current)  # nothing changes, so nothing is recorded
        others = [i for i in card["customFieldItems"] if i is not current]
        item = {"id": current["id"] if current else self.ids.new(self.clock.now()), **(new or {}),
                "idCustomField": definition["id"], "idModel": card["id"], "modelType": "card"}  # fmt: skip
        card["customFieldItems"] = others if new is None else [*others, item]
        shown = copy.deepcopy(item) if new is not None else {**item, "value": None}
        data = {"customField": {k: definition[k] for k in ("id", "name", "type")},
                "customFieldItem": shown, "old": old or {"value": None}}  # fmt: skip
        self._card_changed(board, card, "updateCustomFieldItem", data, by)
        return copy.deepcopy(item) if new is not None else {}

    def _item_value(self, definition: JSON, body: JSON) -> JSON | None:
        """The stored `{"value": {...}}` or `{"idValue": ...}` of a custom field item; None clears it."""
        kind = definition["type"]
        if kind == "list":
            chosen = body.get("idValue")
            if chosen in (None, ""):
                return None
            if not any(o["id"] == chosen for o in definition.get("options") or []):
                raise trello_error(400, "invalid value for idValue")
            return {"idValue": chosen}
        value = body.get("value")
        if value in (None, "", {}):
            return None
        key = "checked" if kind == "checkbox" else kind
        if not isinstance(value, dict) or key not in value:
            raise trello_error(400, "Invalid custom field item value.")
        stored = self._typed_value(kind, value[key])
        return None if stored is None else {"value": {key: stored}}

    def _typed_value(self, kind: str, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        try:
            if kind == "number":
                float(text)
            elif kind == "date":
                text = format_time(parse_time(text))
            elif kind == "checkbox" and _bool(text, "value") is False:
                return None
        except (ValueError, HTTPError):
            raise trello_error(400, "Invalid custom field item value.") from None
        return text

    def add_attachment(self, board: Board, card: JSON, values: JSON, by: JSON) -> JSON:
        """A link (`url`) or an uploaded file (`file`) attached to the card."""
        upload = values.get("file") if isinstance(values.get("file"), dict) else None
        url = str(values.get("url") or "")
        if upload is None and not url.startswith(("http://", "https://")):
            raise trello_error(400, "invalid value for url")
        when = self.clock.now()
        attachment_id = self.ids.new(when)
        name = values.get("name") or (upload["filename"] if upload else url)
        if len(str(name)) > ATTACHMENT_NAME_MAX:
            raise trello_error(400, "invalid value for name")
        if upload is not None:
            url = f"{SITE}/1/cards/{card['id']}/attachments/{attachment_id}/download/{upload['filename']}"
        mime = values.get("mimeType") or (upload["mimeType"] if upload else "")
        attachment = {"id": attachment_id, "bytes": len(upload["bytes"]) if upload else None,
                      "date": format_time(when), "edgeColor": None, "idMember": by["id"],
                      "isUpload": upload is not None, "mimeType": mime, "name": str(name), "previews": [],
                      "url": url, "pos": (len(card["attachments"]) + 1) * POS_STEP,
                      "fileName": upload["filename"] if upload else None}  # fmt: skip
        card["attachments"] = [*card["attachments"], attachment]
        data = {"attachment": {k: attachment[k] for k in ("id", "name", "url")}}
        self._card_changed(board, card, "addAttachmentToCard", data, by)
        return copy.deepcopy(attachment)

    def add_comment(self, board: Board, card: JSON, text: str, by: JSON) -> JSON:
        """A commentCard action on `card` (its badge counts it)."""
        board.comments[card["id"]] += 1
        return self._card_changed(board, card, "commentCard", {"text": text}, by)

    def remove_attachment(self, board: Board, card: JSON, attachment_id: str, by: JSON) -> None:
        found = next((a for a in card["attachments"] if a["id"] == attachment_id), None)
        if found is None:
            raise trello_error(404, NOT_FOUND)
        card["attachments"] = [a for a in card["attachments"] if a is not found]
        data = {"attachment": {k: found[k] for k in ("id", "name")}}
        self._card_changed(board, card, "deleteAttachmentFromCard", data, by)

    def create_board(self, name: str, lists: Iterable[str] = ("To Do", "Doing", "Done")) -> Board:
        """An empty board with these lists (as the control API's `create_board`)."""
        when = self.clock.now()
        board = self.load_board(
            {"id": self.ids.new(when), "name": name, "dateLastActivity": format_time(when)}
        )
        board.members = [dict(self.api_member)]
        for list_name in lists:
            self._add_list(board, {"id": self.ids.new(self.clock.now()), "name": list_name})
        return board

    def create_label(self, board: Board, name: Any, color: Any) -> JSON:
        if color in ("", "null", None):
            color = None
        elif color not in COLORS:
            raise trello_error(400, "invalid value for color")
        return dict(self._add_label(board, {"id": self.ids.new(self.clock.now()), "name": str(name or ""),
                                            "color": color}))  # fmt: skip

    def create_custom_field(self, board: Board, values: JSON) -> JSON:
        kind = values.get("type")
        if kind not in FIELD_TYPES:
            raise trello_error(400, "invalid value for type")
        if not str(values.get("name") or "").strip():
            raise trello_error(400, "invalid value for name")
        on_front = str(values.get("display_cardFront", True)).lower() != "false"
        raw = {"id": self.ids.new(self.clock.now()), "name": str(values["name"]), "type": kind,
               "options": values.get("options") or [], "display": {"cardFront": on_front}}  # fmt: skip
        return self._field_json(self._add_custom_field(board, raw))

    # ---- routes: boards ---------------------------------------------------------------------------

    @route("GET", "/1/boards/{board}")
    def get_board(self, request: Request, board: str) -> Any:
        return self._board_json(request, self._board(board))

    @route("GET", "/1/boards/{board}/dateLastActivity")
    def board_last_activity(self, request: Request, board: str) -> Any:
        return {"_value": self._board(board).record["dateLastActivity"]}

    @route("GET", "/1/boards/{board}/cards")
    def board_cards(self, request: Request, board: str) -> Any:
        return self._board_cards(request, self._board(board), request.arg("filter") or "open")

    @route("GET", "/1/boards/{board}/cards/{which}")
    def board_cards_filtered(self, request: Request, board: str, which: str) -> Any:
        found = self._board(board)
        if which in CARD_FILTERS:
            return self._board_cards(request, found, which)
        card_board, card = self._card(which)  # py-trello's board.get_card(id) uses this path too
        if card_board is not found:
            raise trello_error(404, "Could not find the card")
        return self._card_out(request, found, card)

    def _board_cards(self, request: Request, board: Board, which: str) -> list[JSON]:
        cards = self._page_cards(request, self._cards(board, which))
        return [self._card_out(request, board, card) for card in cards]

    @route("GET", "/1/boards/{board}/lists")
    def board_lists(self, request: Request, board: str) -> Any:
        return [
            _pick(x, _fields(request))
            for x in self._lists(self._board(board), request.arg("filter") or "open")
        ]

    @route("GET", "/1/boards/{board}/lists/{which}")
    def board_lists_filtered(self, request: Request, board: str, which: str) -> Any:
        return [_pick(x, _fields(request)) for x in self._lists(self._board(board), which)]

    @route("GET", "/1/boards/{board}/labels")
    def board_labels(self, request: Request, board: str) -> Any:
        found = self._board(board)
        labels = list(found.labels.values())[: _limit(request, 50, LABELS_MAX)]
        return [_pick(self._label_json(found, label), _fields(request)) for label in labels]

    @route("GET", "/1/boards/{board}/labels/{label}")
    def board_label(self, request: Request, board: str, label: str) -> Any:
        found = self._board(board)
        owner, record = self._owned(label, "labels")
        if owner is not found:
            raise trello_error(404, NOT_FOUND)
        return self._label_json(found, record)

    @route("POST", "/1/boards/{board}/labels")
    def board_add_label(self, request: Request, board: str) -> Any:
        values = params_of(request)
        return self.create_label(self._board(board), values.get("name"), values.get("color"))

    @route("POST", "/1/labels")
    def add_label_to_board(self, request: Request) -> Any:
        values = params_of(request)
        return self.create_label(self._board(str(values.get("idBoard") or "")), values.get("name"),
                                 values.get("color"))  # fmt: skip

    @route("GET", "/1/labels/{label}")
    def get_label(self, request: Request, label: str) -> Any:
        board, record = self._owned(label, "labels")
        return _pick(self._label_json(board, record), _fields(request))

    @route("DELETE", "/1/labels/{label}")
    def delete_label(self, request: Request, label: str) -> Any:
        """The label goes from the board and from every card carrying it."""
        board, record = self._owned(label, "labels")
        for card in board.cards.values():
            if record["id"] in card["idLabels"]:
                card["idLabels"] = [i for i in card["idLabels"] if i != record["id"]]
        del board.labels[record["id"]]
        self._owner.pop(record["id"], None)
        board.labels_changed()
        return {"_value": None}

    @route("GET", "/1/boards/{board}/customFields")
    def board_custom_fields(self, request: Request, board: str) -> Any:
        return [self._field_json(f) for f in self._board(board).custom_fields.values()]

    @route("POST", "/1/customFields")
    def add_custom_field(self, request: Request) -> Any:
        values = params_of(request)
        return self.create_custom_field(self._board(str(values.get("idModel") or "")), values)

    @route("GET", "/1/customFields/{definition}")
    def get_custom_field(self, request: Request, definition: str) -> Any:
        return self._field_json(self._owned(definition, "custom_fields")[1])

    @route("GET", "/1/boards/{board}/actions")
    def board_actions(self, request: Request, board: str) -> Any:
        return self._actions(request, self._board(board).actions, "all")

    @route("GET", "/1/boards/{board}/members")
    def board_members(self, request: Request, board: str) -> Any:
        members = list(self._board(board).members)
        if all(m.get("id") != self.api_member["id"] for m in members):
            members.append(self.api_member)  # the token's member is on every board it can read
        return copy.deepcopy(members)

    @route("GET", "/1/boards/{board}/checklists")
    def board_checklists(self, request: Request, board: str) -> Any:
        return copy.deepcopy(list(self._board(board).checklists.values()))

    # ---- routes: members ------------------------------------------------------------------------------

    def _me(self, member: str) -> JSON:
        if member not in ("me", self.api_member["id"], self.api_member["username"]):
            raise trello_error(404, NOT_FOUND)
        return self.api_member

    @route("GET", "/1/members/{member}")
    def get_member(self, request: Request, member: str) -> Any:
        me = self._me(member)
        return {**copy.deepcopy(me), "email": None, "status": "disconnected", "bio": "",
                "memberType": "normal", "url": f"{SITE}/{me['username']}",
                "idBoards": list(self.boards)}  # fmt: skip

    @route("GET", "/1/members/{member}/boards")
    def member_boards(self, request: Request, member: str) -> Any:
        self._me(member)
        which = request.arg("filter") or "all"
        boards = [b for b in self.boards.values() if which != "open" or not b.record["closed"]]
        boards = [b for b in boards if which != "closed" or b.record["closed"]]
        return [_pick(copy.deepcopy(b.record), _fields(request)) for b in boards]

    # ---- routes: lists --------------------------------------------------------------------------------

    @route("GET", "/1/lists/{list_id}")
    def get_list(self, request: Request, list_id: str) -> Any:
        return _pick(dict(self._owned(list_id, "lists")[1]), _fields(request))

    @route("GET", "/1/lists/{list_id}/cards")
    def list_cards(self, request: Request, list_id: str) -> Any:
        board, lst = self._owned(list_id, "lists")
        cards = [c for c in self._cards(board, request.arg("filter") or "open") if c["idList"] == lst["id"]]
        return [self._card_out(request, board, card) for card in self._page_cards(request, cards)]

    @route("POST", "/1/lists")
    def add_list(self, request: Request) -> Any:
        values = params_of(request)
        board = self._board(str(values.get("idBoard") or ""))
        if not str(values.get("name") or "").strip():
            raise trello_error(400, "invalid value for name")
        raw: JSON = {"id": self.ids.new(self.clock.now()), "name": str(values["name"])}
        raw["pos"] = _place([float(x["pos"]) for x in board.lists.values()], values.get("pos") or "bottom")
        return dict(self._add_list(board, raw))

    # ---- routes: cards --------------------------------------------------------------------------------

    @route("POST", "/1/cards")
    def add_card(self, request: Request) -> Any:
        values = params_of(request)
        board, lst = self._owned(str(values.get("idList") or ""), "lists")
        card = self.create_card(board, lst, values, self.api_member)
        return self.card_json(board, card)

    @route("GET", "/1/cards/{card}")
    def get_card(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        return self._card_out(request, board, found)

    @route("PUT", "/1/cards/{card}")
    def put_card(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        self.update_card(board, found, params_of(request), self.api_member)
        return self.card_json(board, found)

    @route("PUT", "/1/cards/{card}/{attribute}")
    def put_card_attribute(self, request: Request, card: str, attribute: str) -> Any:
        if attribute not in CARD_ATTRIBUTES:
            raise trello_error(404, NOT_FOUND)
        board, found = self._card(card)
        values = params_of(request)
        if "value" not in values:
            raise trello_error(400, "invalid value for value")
        self.update_card(board, found, {attribute: values["value"]}, self.api_member)
        return self.card_json(board, found)

    @route("DELETE", "/1/cards/{card}")
    def remove_card(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        self.delete_card(board, found, self.api_member)
        return {"limits": {}}

    @route("POST", "/1/cards/{card}/idLabels")
    def card_add_label(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        label = self._on_board(board, params_of(request).get("value"), "labels", "value")
        self.add_label(board, found, label, self.api_member)
        return list(found["idLabels"])

    @route("DELETE", "/1/cards/{card}/idLabels/{label}")
    def card_remove_label(self, request: Request, card: str, label: str) -> Any:
        board, found = self._card(card)
        self.remove_label(board, found, self._on_board(board, label, "labels", "idLabel"), self.api_member)
        return list(found["idLabels"])

    @route("POST", "/1/cards/{card}/labels")
    def card_create_label(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        values = params_of(request)
        label = self.create_label(board, values.get("name"), values.get("color"))
        self.add_label(board, found, board.labels[label["id"]], self.api_member)
        return list(found["idLabels"])

    @route("GET", "/1/cards/{card}/customFieldItems")
    def card_custom_field_items(self, request: Request, card: str) -> Any:
        return copy.deepcopy(self._card(card)[1]["customFieldItems"])

    @route("PUT", "/1/cards/{card}/customField/{definition}/item")
    @route("PUT", "/1/card/{card}/customField/{definition}/item")  # py-trello's path: the singular form
    def card_set_custom_field(self, request: Request, card: str, definition: str) -> Any:
        board, found = self._card(card)
        owner, record = self._owned(definition, "custom_fields")
        if owner is not board:
            raise trello_error(400, "invalid value for idCustomField")
        return self.set_custom_field(board, found, record, params_of(request), self.api_member)

    @route("GET", "/1/cards/{card}/attachments")
    def card_attachments(self, request: Request, card: str) -> Any:
        attachments = self._card(card)[1]["attachments"]
        if request.arg("filter") == "cover":
            return []
        return [_pick(copy.deepcopy(a), _fields(request)) for a in attachments]

    @route("POST", "/1/cards/{card}/attachments")
    def card_attach(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        return self.add_attachment(board, found, params_of(request), self.api_member)

    @route("GET", "/1/cards/{card}/attachments/{attachment}")
    def card_attachment(self, request: Request, card: str, attachment: str) -> Any:
        for item in self._card(card)[1]["attachments"]:
            if item["id"] == attachment:
                return copy.deepcopy(item)
        raise trello_error(404, NOT_FOUND)

    @route("DELETE", "/1/cards/{card}/attachments/{attachment}")
    def card_detach(self, request: Request, card: str, attachment: str) -> Any:
        board, found = self._card(card)
        self.remove_attachment(board, found, attachment, self.api_member)
        return {"limits": {}}

    @route("GET", "/1/cards/{card}/actions")
    def card_actions(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        mine = [
            a for a in board.actions if ((a.get("data") or {}).get("card") or {}).get("id") == found["id"]
        ]
        return self._actions(request, mine, "commentCard,updateCard:idList")

    @route("POST", "/1/cards/{card}/actions/comments")
    def card_comment(self, request: Request, card: str) -> Any:
        """post-cards-id-actions-comments: `text` (required) becomes a commentCard action, returned."""
        board, found = self._card(card)
        text = params_of(request).get("text")
        if not isinstance(text, str) or not text.strip():
            raise trello_error(400, "invalid value for text")
        return copy.deepcopy(self.add_comment(board, found, text, self.api_member))

    @route("DELETE", "/1/actions/{action}")
    def action_delete(self, request: Request, action: str) -> Any:
        """delete-actions-id: only comments can be deleted, by the member who wrote them."""
        for board in self.boards.values():
            found = next((a for a in board.actions if a["id"] == action), None)
            if found is None:
                continue
            if found["type"] != "commentCard" or found["idMemberCreator"] != self.api_member["id"]:
                raise trello_error(401, "unauthorized comment permission requested")
            board.actions = [a for a in board.actions if a is not found]
            board.comments[str(found["data"]["card"]["id"])] -= 1
            return {"_value": None}
        raise trello_error(404, NOT_FOUND)

    @route("GET", "/1/cards/{card}/checklists")
    def card_checklists(self, request: Request, card: str) -> Any:
        board, found = self._card(card)
        return [copy.deepcopy(board.checklists[c]) for c in found["idChecklists"] if c in board.checklists]

    @route("GET", "/1/cards/{card}/pluginData")
    def card_plugin_data(self, request: Request, card: str) -> Any:
        self._card(card)
        return []

    # ---- routes: batch ----------------------------------------------------------------------------------

    @route("GET", "/1/batch")
    def batch(self, request: Request) -> Any:
        urls = request.args("urls")
        if not urls:
            raise trello_error(400, "invalid value for urls")
        if len(urls) > BATCH_MAX:
            raise trello_error(400, f"a batch takes at most {BATCH_MAX} urls")
        return [self._batch_one(request, url) for url in urls]

    def _batch_one(self, request: Request, url: str) -> JSON:
        parts = urlsplit(url)
        path = parts.path if parts.path.startswith("/1/") else "/1" + parts.path
        inner = Request("GET", path, parse_qs(parts.query, keep_blank_values=True), request.headers, b"",
                        number=request.number, principal=request.principal)  # fmt: skip
        found = self.match("GET", path)
        try:
            if found is None or found[0].template == "/1/batch":
                raise self.not_found(inner)
            inner.params = found[1]
            result = found[0].handler(inner, **found[1])
        except HTTPError as exc:
            body = exc.body if exc.body is not None else HTTPStatus(exc.status).phrase
            return {str(exc.status): body}
        return {"200": result.body if isinstance(result, Response) else result}

    # ---- the control API's edits ----------------------------------------------------------------------

    def edit(self, change: JSON) -> Any:
        """Apply a change as a person would make it in Trello; return the created or changed object.

        Ops: create_board {name, lists?}, create_list {board, name, pos?}, create_label {board, name,
        color?}, create_custom_field {board, name, type, options?}, create_card {board, list, name,
        labels?, pos?, desc?, due?}, move_card {card, list, pos?}, update_card {card, fields | flat
        fields}, archive_card {card, closed?}, delete_card {card}, add_label / remove_label {card, label},
        set_custom_field {card, field, value}, add_attachment {card, url, name?}, remove_attachment {card,
        attachment}. Boards are named by id, short link or name; lists, labels and fields by id or name on
        the board; cards by id, short link or name. `by` names the person (default "Sandbox User").
        """
        edits: dict[str, Callable[[JSON, JSON], Any]] = {
            "create_board": self._edit_create_board,
            "create_list": self._edit_create_list,
            "create_label": self._edit_create_label,
            "create_custom_field": self._edit_create_custom_field,
            "create_card": self._edit_create_card,
            "move_card": self._edit_move_card,
            "update_card": self._edit_update_card,
            "archive_card": self._edit_archive_card,
            "delete_card": self._edit_delete_card,
            "add_label": self._edit_add_label,
            "remove_label": self._edit_remove_label,
            "set_custom_field": self._edit_set_custom_field,
            "add_attachment": self._edit_add_attachment,
            "remove_attachment": self._edit_remove_attachment,
        }
        op = str(change.get("op"))
        if op not in edits:
            raise HTTPError(400, {"error": f"unknown op {op!r}; one of {', '.join(edits)}"})
        by = self._user(str(change.get("by") or "Sandbox User"))
        return edits[op](change, by)

    def _edit_board(self, ref: Any) -> Board:
        for board in self.boards.values():
            if ref in (board.id, board.record["shortLink"], board.record["name"]):
                return board
        raise HTTPError(404, {"error": f"no board {ref!r}"})

    def _edit_card(self, ref: Any) -> tuple[Board, JSON]:
        for board in self.boards.values():
            for card in board.cards.values():
                if ref in (card["id"], card["shortLink"], card["name"]):
                    return board, card
        raise HTTPError(404, {"error": f"no card {ref!r}"})

    def _by_name(self, board: Board, kind: str, ref: Any, param: str) -> JSON:
        for record in board.collection(kind).values():
            if ref == record.get("name"):
                return record
        return self._on_board(board, ref, kind, param)

    def _edited(self, board: Board, card: JSON) -> JSON:
        return self.card_json(board, card, attachments=True)

    def _edit_create_board(self, change: JSON, by: JSON) -> Any:
        board = self.create_board(
            str(change.get("name") or "Board"), change.get("lists") or ("To Do", "Doing", "Done")
        )
        return self._dump_board(board)

    def _edit_create_list(self, change: JSON, by: JSON) -> Any:
        board = self._edit_board(change.get("board"))
        raw: JSON = {"id": self.ids.new(self.clock.now()), "name": str(change.get("name") or "")}
        if change.get("pos") is not None:
            raw["pos"] = float(change["pos"])
        return dict(self._add_list(board, raw))

    def _edit_create_label(self, change: JSON, by: JSON) -> Any:
        return self.create_label(
            self._edit_board(change.get("board")), change.get("name"), change.get("color")
        )

    def _edit_create_custom_field(self, change: JSON, by: JSON) -> Any:
        return self.create_custom_field(self._edit_board(change.get("board")), change)

    def _edit_create_card(self, change: JSON, by: JSON) -> Any:
        board = self._edit_board(change.get("board"))
        lst = self._by_name(board, "lists", change.get("list"), "list")
        labels = [self._by_name(board, "labels", ref, "labels")["id"] for ref in change.get("labels") or []]
        values: JSON = {k: change[k] for k in ("name", "pos", "desc", "due") if k in change}
        card = self.create_card(board, lst, {**values, "idLabels": labels}, by)
        return self._edited(board, card)

    def _edit_move_card(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        lst = self._by_name(board, "lists", change.get("list"), "list")
        moves: JSON = {"idList": lst["id"], **({"pos": change["pos"]} if "pos" in change else {})}
        self.update_card(board, card, moves, by)
        return self._edited(board, card)

    def _edit_update_card(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        fields = change.get("fields") or {k: v for k, v in change.items() if k not in ("op", "card", "by")}
        self.update_card(board, card, fields, by)
        return self._edited(board, card)

    def _edit_archive_card(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        self.update_card(board, card, {"closed": change.get("closed", True)}, by)
        return self._edited(board, card)

    def _edit_delete_card(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        self.delete_card(board, card, by)
        return {"id": card["id"], "deleted": True}

    def _edit_add_label(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        self.add_label(board, card, self._by_name(board, "labels", change.get("label"), "label"), by)
        return self._edited(board, card)

    def _edit_remove_label(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        self.remove_label(board, card, self._by_name(board, "labels", change.get("label"), "label"), by)
        return self._edited(board, card)

    def _edit_set_custom_field(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        definition = self._by_name(board, "custom_fields", change.get("field"), "field")
        self.set_custom_field(board, card, definition, self._item_body(definition, change.get("value")), by)
        return self._edited(board, card)

    def _item_body(self, definition: JSON, value: Any) -> JSON:
        """What the API would be sent for a plain value (a list field takes an option's text or id)."""
        kind = definition["type"]
        if kind == "list":
            options = definition.get("options") or []
            chosen = next(
                (o["id"] for o in options if value in (o["id"], (o.get("value") or {}).get("text"))), None
            )
            if value not in (None, "") and chosen is None:
                raise trello_error(400, "invalid value for idValue")
            return {"idValue": chosen or ""}
        if value is None or value == "":
            return {"value": ""}
        key = "checked" if kind == "checkbox" else kind
        return {"value": {key: str(value).lower() if isinstance(value, bool) else str(value)}}

    def _edit_add_attachment(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        return self.add_attachment(board, card, {k: change.get(k) for k in ("url", "name", "mimeType")}, by)

    def _edit_remove_attachment(self, change: JSON, by: JSON) -> Any:
        board, card = self._edit_card(change.get("card"))
        self.remove_attachment(board, card, str(change.get("attachment")), by)
        return self._edited(board, card)
