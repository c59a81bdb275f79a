"""Writing back to Trello: the managed custom fields, the bridge's labels, its link attachments and the
order of cards within their lists.

Reading state (`read_state`) asks for each card with its custom field items and attachments, ten cards
to a `batch` request. A board is read whole instead (`boards/{id}/cards/all`, a thousand cards a
request) when it holds more than `READ_WHOLE` of the wanted cards, or when a wanted item is a label
milestone (`label:<id>`): such a milestone is written on its own card (the card carrying the label and
the `milestone` mark, as the puller finds it), and only the board's cards tell which that is. A label
milestone without a card has nothing to write on and is left out of the answer, as a deleted card is.

What an item holds:
- `fields`: the logical fields the config manages (`rank` from `write.rank_field`, `okr` from
  `write.okr_field`, the forecast days from `write.forecast_fields`), each resolved by id or name on the
  card's board: a number field reads as a float, a text field as text, a list field as its option's
  text, a date field as its UTC day (`YYYY-MM-DD`); None when the card has no value;
- `labels`: the names of every label on the card;
- `links`: the bridge's attachments by global id. Trello attachments carry no id of ours, so the global
  id travels in the attachment's name, after its title: `Key result: Grow revenue [milestone-bridge:...]`.
  Only attachments whose name ends with such a marker are the bridge's; a user's attachments (even one
  with the same URL) are never read as links, changed or removed;
- `container` and `position`: the card's list and its `pos`; none for an archived (closed) card, which
  keeps its list and `pos` but has no place in the list's order (`lists/{id}/cards` leaves it out).

Pushing (`push`) applies each write in order, skipping any that the card already holds (so applying the
same writes twice sends nothing the second time) and reading only the cards `read_state` did not:
- a field: `PUT cards/{id}/customField/{field}/item` with `{"value": {"number": "3"}}`,
  `{"value": {"text": ...}}` or, for a forecast day in a date field, `{"value": {"date":
  "2027-01-08T00:00:00.000Z"}}` (midnight UTC; read back as that UTC day) (`{"idValue": option}` for a
  list field); clearing sends `{"value": ""}`;
- a label: the board's label of that name (the oldest, when a board has several), created with its
  colour when missing (`POST labels`), then `POST cards/{id}/idLabels`; these and the attachment's
  parameters go in the query, as trello.json declares them; removing `DELETE cards/{id}/idLabels/{label}`
  for each label of that name. The board's labels are read again before one is created, and again when
  the creation gets no answer (Trello may have made it): a label found then is used, and one still
  missing is created once more (after two lost creations its writes fail and the next cycle looks
  again). A card with more than one label write gets them all in one `PUT cards/{id}` naming its
  labels (`idLabels`: those it carries as just read, a user's kept, with the bridge's added and
  removed); a single one stays an add or a remove, which cannot undo a label a user adds meanwhile.
  Copies of a label the bridge adds (a lost creation that landed late, two runs racing) are
  merged into the oldest when the bridge next adds it: cards carrying a copy get the oldest
  (`boards/{id}/cards/all` read once), then `DELETE labels/{copy}`;
- a link: Trello cannot edit an attachment, so a changed link is deleted and attached again
  (`DELETE cards/{id}/attachments/{a}`, then `POST cards/{id}/attachments` with url and name): deleting
  first means a push stopped half way leaves a link missing, which the next cycle adds, and never two.
  A card carrying the bridge's attachment more than once reports it in `ItemState.duplicates`, so the
  plan writes the link again and every copy but one is deleted (a user's attachments are not the
  bridge's, whatever their URL, and never touched). An attachment whose creation got no answer is read
  back by the kit's template, like every write without an answer;
- an order move: `PUT cards/{id}` with a `pos` between the new neighbours' positions, read from the list
  (`GET lists/{id}/cards`, once a push per list): just after X is the midpoint of X and the card after
  it (X's pos + 16384 at the bottom), just before Y the midpoint of Y and the card before it (half Y's
  pos at the top). When Trello answers another pos than the one sent, it has renumbered the list, and
  the list is read again before the next move there. A card that left the list is not moved back.

`TrelloWriter` fills in the kit's write template (`bridge.kit.Writer`): the config's checks are the
template's, what no card could take is refused up front (`refuse`), and the rest is sent in order
(`send`). A write Trello refuses for that card (400, 404) is reported in its outcome and the others go on.
A write that still gets no answer after every retry is read back by the template (the cards read again,
batched) and settled as Trello holds it, until the template's breaker counts three such requests in a
row: the tracker is down and `push` raises, as it does when the credentials are refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bridge.config import FIELD_KEYS
from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteKind
from bridge.errors import AuthError, BridgeError, FatalAPIError, RetriableAPIError, UserError, WriteRefused
from bridge.http import redact
from bridge.kit import Outcomes, Writer
from bridge.mapping import resolve_field
from bridge.written import LINK_ID_PREFIX, with_marker
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.mapping import LABEL_ID, TrelloMapping, option_texts, records
from bridge_trello.pull import TrelloPuller
from bridge_trello.session import TrelloSession, batch_url

WRITABLE = frozenset(WriteKind) - {WriteKind.LINK, WriteKind.ORDER}
"""The kinds of write checked no further here (links and moves are checked above)."""
COMMENT_PAGE = 1000
"""Comment actions listed a request when looking for the bridge's marker (Trello's most)."""

log = logging.getLogger(__name__)

JSON = dict[str, Any]

NAME_MAX = 256
"""Trello's longest attachment name (`name` of POST cards/{id}/attachments in trello.json)."""
POS_STEP = 16384.0
"""The gap Trello leaves after the last card of a list (`pos=bottom`)."""
READ_WHOLE = 100
"""Past this many wanted cards per configured board, the boards are read whole (1000 cards a request)."""
CARD_PARAMS = {"customFieldItems": "true", "attachments": "true"}
BASE_COLOURS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black")
COLOURS = frozenset(BASE_COLOURS + tuple(f"{c}_{v}" for c in BASE_COLOURS for v in ("dark", "light")))
MANAGED = tuple(FIELD_KEYS.items())
"""Logical field -> the `[trackers.X.write]` key (dotted) naming its custom field."""


# ---- link attachments -------------------------------------------------------------------------------


def attachment_name(target: LinkTarget) -> str:
    """The attachment's name: the link's title, then its global id in brackets, at most 256 characters."""
    marker = f"[{target.global_id}]"
    room = NAME_MAX - len(marker) - 1
    if room < 0:
        raise WriteRefused(f"the link id {target.global_id!r} is too long for a Trello attachment name")
    title = target.title[:room].rstrip()
    return f"{title} {marker}" if title else marker


def parse_attachment(attachment: Mapping[str, Any]) -> LinkTarget | None:
    """The bridge's link an attachment holds, or None when it is not one of the bridge's."""
    name, url = str(attachment.get("name") or ""), str(attachment.get("url") or "")
    at = name.rfind("[" + LINK_ID_PREFIX)
    if at < 0 or not name.endswith("]") or not url:
        return None
    title = name[:at]
    return LinkTarget(global_id=name[at + 1 : -1], url=url, title=title.removesuffix(" "))


# ---- custom fields ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomField:
    """One board's custom field definition that a logical field is written to."""

    id: str
    name: str
    type: str
    options: Mapping[str, str] = field(default_factory=dict)
    """Option id -> text, for a `list` field."""

    def read(self, card: Mapping[str, Any]) -> Any:
        """The card's value of this field (None when it has none)."""
        item = _item(card, self.id)
        if item is None:
            return None
        if self.type == "list":
            return self.options.get(str(item.get("idValue") or ""))
        value = item.get("value")
        raw = value.get(self.type) if isinstance(value, dict) else None
        if raw is None or raw == "":
            return None
        if self.type == "number":
            try:
                return float(raw)
            except (TypeError, ValueError):
                return raw
        if self.type == "date":
            return _utc_day(raw)
        return raw

    def body(self, value: Any) -> JSON:
        """What `PUT cards/{id}/customField/{field}/item` is sent to give the card `value` (None clears)."""
        empty = value is None or value == ""
        if self.type == "list":
            if empty:
                return {"idValue": ""}
            wanted = str(value).casefold()
            chosen = next((i for i, text in self.options.items() if text.casefold() == wanted), None)
            if chosen is None:
                raise WriteRefused(f"list field {self.name!r} has no option {value!r}")
            return {"idValue": chosen}
        if empty:
            return {"value": ""}
        if self.type == "number":
            return {"value": {"number": _number_text(value, self.name)}}
        if self.type == "text":
            return {"value": {"text": str(value)}}
        if self.type == "date":
            return {"value": {"date": _midnight(value, self.name)}}
        raise WriteRefused(
            f"custom field {self.name!r} is a {self.type} field; the bridge writes number, text, date or list"
        )


def _utc_day(raw: Any) -> Any:
    """A date field's value (`2027-01-08T00:00:00.000Z`) as the UTC day the bridge writes and compares
    (`2027-01-08`); a value that is no time is given as it is."""
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return raw
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def _midnight(value: Any, name: str) -> str:
    """The day `value` (`YYYY-MM-DD`) as a Trello date field takes it: midnight UTC of that day."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise WriteRefused(f"date field {name!r} cannot hold {value!r}") from None
    return f"{day.isoformat()}T00:00:00.000Z"


def _number_text(value: Any, name: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WriteRefused(f"number field {name!r} cannot hold {value!r}") from None
    if not math.isfinite(number):
        raise WriteRefused(f"number field {name!r} cannot hold {value!r}")
    return str(int(number)) if number.is_integer() else repr(number)


def _item(card: Mapping[str, Any], field_id: str) -> JSON | None:
    for item in card.get("customFieldItems") or []:
        if isinstance(item, dict) and item.get("idCustomField") == field_id:
            return item
    return None


def same_value(a: Any, b: Any) -> bool:
    """Equal as Trello shows it: 3 and 3.0 and "3" are one number; None and "" are both empty."""
    if a in (None, "") or b in (None, ""):
        return a in (None, "") and b in (None, "")
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


# ---- one board ---------------------------------------------------------------------------------------


@dataclass
class BoardTarget:
    """What writing to one configured board needs: its managed fields, its labels, its mapping."""

    id: str
    name: str
    mapping: TrelloMapping
    fields: dict[str, CustomField]
    """Logical field -> this board's definition (absent when the board lacks the field)."""
    labels: dict[str, str]
    """Label name -> id (the oldest label of each name), refreshed before a label is created."""
    copies: dict[str, list[str]] = field(default_factory=dict)
    """Label name -> the ids of its newer copies (a board holding several labels of one name)."""

    def know_labels(self, records: Any) -> None:
        """Take the board's labels as listed: the oldest of each name, and the newer copies."""
        found = _label_ids(records)
        self.labels = {name: ids[0] for name, ids in found.items()}
        self.copies = {name: ids[1:] for name, ids in found.items() if len(ids) > 1}


def board_target(config: TrelloTrackerConfig, body: Mapping[str, Any], mapping: TrelloMapping) -> BoardTarget:
    """A board's setup answer as what writing to it needs: the definitions of its managed fields."""
    listed = records(body.get("customFields"))
    pairs = [(str(d["id"]), str(d.get("name") or "")) for d in listed]
    fields: dict[str, CustomField] = {}
    for logical, _ in MANAGED:
        found = resolve_field(config.write.field_named(logical), pairs)
        definition = next((d for d in listed if str(d["id"]) == found), None)
        if definition is not None:
            name, kind = str(definition.get("name") or ""), str(definition.get("type") or "")
            fields[logical] = CustomField(str(definition["id"]), name, kind, option_texts(definition))
    target = BoardTarget(str(body["id"]), str(body.get("name") or body["id"]), mapping, fields, {})
    target.know_labels(body.get("labels"))
    return target


def _label_ids(records: Any) -> dict[str, list[str]]:
    """Label name -> its ids, oldest first (a Trello id begins with the time it was made): of several
    labels sharing a name, every write uses the oldest."""
    found: dict[str, list[str]] = {}
    for label in records or []:
        if isinstance(label, dict) and label.get("id") and label.get("name"):
            found.setdefault(str(label["name"]), []).append(str(label["id"]))
    return {name: sorted(ids) for name, ids in found.items()}


# ---- the writer -------------------------------------------------------------------------------------


class TrelloWriter(Writer[TrelloTrackerConfig]):
    """The write side of one Trello tracker, over the puller's session and its boards' setup reads."""

    def __init__(
        self, name: str, config: TrelloTrackerConfig, session: TrelloSession, puller: TrelloPuller
    ) -> None:
        super().__init__(name, config)
        self.session = session
        self.puller = puller
        targets = (board_target(config, body, puller.mappings[ref]) for ref, body in puller.records.items())
        self.boards: dict[str, BoardTarget] = {target.id: target for target in targets}
        self.managed = [logical for logical, _ in MANAGED if config.write.field_named(logical) is not None]
        self._check_managed()
        self._cards: dict[str, JSON] = {}
        """Remote id (a card id, or `label:<id>` of a label milestone) -> the card, as read or written."""
        self._lists: dict[str, dict[str, float]] = {}
        """List id -> its open cards' positions, read when a move there needs them."""
        self._unanswered: dict[tuple[str, str], int] = {}
        """(Board id, label name) -> creations of it that got no answer; after two, not tried again."""

    def _check_managed(self) -> None:
        """A managed field must exist on some configured board (named at open, before any cycle)."""
        for logical, key in MANAGED:
            wanted = self.config.write.field_named(logical)
            if wanted is None or not self.boards or any(logical in b.fields for b in self.boards.values()):
                continue
            raise UserError(
                f"trackers.{self.name}.write.{key}: no custom field {wanted!r} on the configured boards "
                "(see `bridge discover`)"
            )

    # ---- reading -------------------------------------------------------------------------------------

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        self._cards.clear()
        self._lists.clear()
        self._load([ref.remote_id for ref in items if ref.source == self.name])
        states: dict[Ref, ItemState] = {}
        for ref in items:
            card = self._cards.get(ref.remote_id) if ref.source == self.name else None
            if card is not None:
                states[ref] = self.state(ref, card)
        return states

    def _load(self, remote_ids: Iterable[str]) -> None:
        """Read the cards of `remote_ids` not read yet into `_cards` (gone ones stay absent)."""
        wanted = list(dict.fromkeys(r for r in remote_ids if r not in self._cards))
        if not wanted:
            return
        labels = [r[len(LABEL_ID) :] for r in wanted if r.startswith(LABEL_ID)]
        cards = [r for r in wanted if not r.startswith(LABEL_ID)]
        whole = {b.id for b in self.boards.values() if any(label in b.mapping.by_label for label in labels)}
        if len(cards) > READ_WHOLE * max(1, len(self.boards)):
            whole = set(self.boards)
        wanted_cards = set(cards)
        for board_id in sorted(whole):
            self._read_board(self.boards[board_id], wanted_cards, labels)
        if whole != set(self.boards):
            self._read_cards([c for c in cards if c not in self._cards])

    def _read_board(self, board: BoardTarget, cards: set[str], labels: Sequence[str]) -> None:
        mapping = board.mapping
        for card in self.puller.all_cards(board.id, CARD_PARAMS):
            if not isinstance(card, dict) or not card.get("id"):
                continue
            card_id = str(card["id"])
            if card_id in cards:
                self._cards[card_id] = card
            label = mapping.milestone_label(card)
            if label in labels and mapping.is_milestone_card(card):
                self._cards.setdefault(LABEL_ID + str(label), card)

    def _read_cards(self, cards: Sequence[str]) -> None:
        bodies = self.session.batches([batch_url(f"cards/{card}", CARD_PARAMS) for card in cards])
        for card, body in zip(cards, bodies, strict=True):
            if isinstance(body, dict) and str(body.get("idBoard")) in self.boards:
                self._cards[card] = body

    def state(self, ref: Ref, card: JSON) -> ItemState:
        """What `card` (as a listing or a card read with `CARD_PARAMS` gives it) holds for item `ref`."""
        board = self.boards[str(card["idBoard"])]
        fields = {
            logical: board.fields[logical].read(card) for logical in self.managed if logical in board.fields
        }
        links: dict[str, LinkTarget] = {}
        duplicates: set[str] = set()
        for attachment in card.get("attachments") or []:
            target = parse_attachment(attachment) if isinstance(attachment, dict) else None
            if target is not None:
                if target.global_id in links:
                    duplicates.add(target.global_id)
                links.setdefault(target.global_id, target)
        pos = card.get("pos")
        placed = bool(card.get("idList")) and not card.get("closed")
        return ItemState(
            item=ref,
            key=str(card.get("shortLink") or card["id"]),
            fields=fields,
            labels=frozenset(_label_names(card, board)),
            links=links,
            duplicates=frozenset(duplicates),
            container=str(card["idList"]) if placed else None,
            position=float(pos) if placed and isinstance(pos, int | float) else None,
        )

    # ---- writing -------------------------------------------------------------------------------------

    def refuse(self, write: FieldWrite) -> None:
        """What no card could take: a nameless label, a link or a move given an unusable value."""
        if write.kind is WriteKind.LABEL_ADD and not write.field:
            raise WriteRefused("a label needs a name")
        if write.kind is WriteKind.LINK:
            _check_link(write.field, write.value)
        elif write.kind is WriteKind.ORDER:
            _anchors(write.value)
        elif write.kind not in (
            WriteKind.FIELD,
            WriteKind.LABEL_ADD,
            WriteKind.LABEL_REMOVE,
            WriteKind.COMMENT,
        ):
            raise WriteRefused(f"unknown kind of write {write.kind!r}")

    def requests_for(self, writes: Sequence[FieldWrite]) -> int:
        """Each write is a request of its own (see `send`)."""
        return len(writes)

    def send(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Each write in order, on the cards `read_state` read (the others read first, batched): one
        refused by Trello for its card (400, 404) fails alone and the others go on."""
        needed: list[str] = []
        for _, write in writes:
            needed.append(write.item.remote_id)
            if write.kind is WriteKind.ORDER:
                needed.extend(anchor.remote_id for anchor in _anchors(write.value) if anchor is not None)
        try:
            self._load(needed)
            together = _label_sets(writes)
            for index, write in writes:
                if index not in together:
                    outcomes.settle(index, self._failure(write))
            for card_id, label_writes in _by_card(writes, together).items():
                self._set_labels(card_id, label_writes, outcomes)
        finally:
            self._cards.clear()
            self._lists.clear()

    def _failure(self, write: FieldWrite) -> BridgeError | None:
        """Make `write`; why it failed, or None. Refused credentials and a tracker down raise."""
        try:
            self._apply(write)
        except AuthError:
            raise
        except (WriteRefused, FatalAPIError) as exc:
            return exc
        return None

    def _apply(self, write: FieldWrite) -> None:
        card = self._cards.get(write.item.remote_id)
        if card is None:
            raise WriteRefused(f"{write.item.remote_id} is not a card on the configured boards (any more)")
        board = self.boards[str(card["idBoard"])]
        if write.kind is WriteKind.FIELD:
            self._set_field(board, card, write)
        elif write.kind is WriteKind.LABEL_ADD:
            self._add_label(board, card, write.field, write.value)
        elif write.kind is WriteKind.LABEL_REMOVE:
            self._remove_label(card, write.field)
        elif write.kind is WriteKind.LINK:
            self._link(card, write.field, write.value)
        elif write.kind is WriteKind.COMMENT:
            self._comment(str(card["id"]), write.field, write.value)
        else:
            self._move(card, write.field, write.value)

    def _send(self, method: str, path: str, body: JSON | None = None, **options: Any) -> Any:
        """One `TrelloSession.send` through the breaker, which counts writes failing in a row."""
        return self.breaker.call(lambda: self.session.send(method, path, body, **options), f"{method} {path}")

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """A read a write needs; failing after every retry, it fails that write (not counted as down)."""
        try:
            return self.session.get(path, params)
        except RetriableAPIError as exc:
            raise WriteRefused(redact(str(exc))) from exc

    # ---- fields ----------------------------------------------------------------------------------------

    def _set_field(self, board: BoardTarget, card: JSON, write: FieldWrite) -> None:
        definition = board.fields.get(write.field)
        if definition is None:
            wanted = self.config.write.field_named(write.field)
            raise WriteRefused(f"board {board.name!r} has no custom field {wanted!r}")
        if same_value(definition.read(card), write.value):
            return
        body = definition.body(write.value)
        answer = self._send("PUT", f"cards/{card['id']}/customField/{definition.id}/item", body)
        others = [
            i
            for i in card.get("customFieldItems") or []
            if not (isinstance(i, dict) and i.get("idCustomField") == definition.id)
        ]
        cleared = write.value is None or write.value == ""
        if not cleared and isinstance(answer, dict) and answer.get("idCustomField") == definition.id:
            others.append(answer)
        card["customFieldItems"] = others

    # ---- labels ----------------------------------------------------------------------------------------

    def _add_label(self, board: BoardTarget, card: JSON, name: str, colour: Any) -> None:
        if name in _label_names(card, board):
            return
        label_id = self._board_label(board, name, colour)
        self._add_card_label(str(card["id"]), label_id)
        card["idLabels"] = [*(card.get("idLabels") or []), label_id]
        card["labels"] = [*(card.get("labels") or []), {"id": label_id, "name": name}]

    def _set_labels(self, card_id: str, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """A card's label writes in one `PUT cards/{id}` naming all its labels (`idLabels`): the card's
        labels as just read, the user's kept, with the bridge's added and removed. A label that cannot be
        found or made fails its write alone."""
        card = self._cards.get(card_id)
        if card is None:
            for index, write in writes:
                outcomes.settle(index, self._failure(write))
            return
        board = self.boards[str(card["idBoard"])]
        known = {str(x["id"]): x for x in card.get("labels") or [] if isinstance(x, dict) and x.get("id")}
        current = [str(i) for i in card.get("idLabels") or known]
        wanted, sent = list(current), []
        for index, write in writes:
            if write.kind is WriteKind.LABEL_REMOVE:
                wanted = [i for i in wanted if known.get(i, {}).get("name") != write.field]
            elif write.field not in {known.get(i, {}).get("name") for i in wanted}:
                try:
                    added = self._board_label(board, write.field, write.value)
                except AuthError:
                    raise
                except (WriteRefused, FatalAPIError) as exc:
                    outcomes.fail(index, exc)
                    continue
                wanted.append(added)
                known[added] = {"id": added, "name": write.field}
            sent.append(index)
        if wanted != current:
            try:
                # The card's own id: a label milestone's item id (`label:<id>`) names no card.
                self._send("PUT", f"cards/{card['id']}", params={"idLabels": ",".join(wanted)})
            except AuthError:
                raise
            except (WriteRefused, FatalAPIError) as exc:
                for index in sent:
                    outcomes.fail(index, exc)
                return
            card["idLabels"], card["labels"] = wanted, [known[i] for i in wanted if i in known]
        for index in sent:
            outcomes.ok(index)

    def _board_label(self, board: BoardTarget, name: str, colour: Any) -> str:
        """The id of the board's label `name`: known, found on a fresh read, or created. Newer copies of
        it on the board (made by a creation whose answer was lost, or by two runs racing) are merged
        into it first."""
        if name not in board.labels:
            self._read_labels(board)
        if name not in board.labels:
            board.labels[name] = self._create_label(board, name, colour)
        if board.copies.get(name):
            self._merge_labels(board, name)
        return board.labels[name]

    def _create_label(self, board: BoardTarget, name: str, colour: Any) -> str:
        """A new label `name` on the board (just read without one). When a creation gets no answer, the
        board is read again at once: a label found is used; none found, it is created once more (should
        the lost one land later, the next push adding that label merges the two). A second creation
        without an answer fails its writes until the next cycle."""
        lost = self._unanswered.get((board.id, name), 0)
        if lost >= 2:
            raise WriteRefused(
                f"creating label {name!r} got no answer twice and board {board.name!r} does not show it; "
                "it is looked for again next cycle"
            )
        if colour is not None and colour not in COLOURS:
            log.warning(
                "%s: %r is not a Trello colour; label %s is made without one", self.name, colour, name
            )
        query = {"name": name, "color": colour if colour in COLOURS else "null", "idBoard": board.id}
        try:
            created = self._send("POST", "labels", params=query, idempotent=False)
        except WriteRefused as exc:
            if not isinstance(exc.__cause__, RetriableAPIError):
                raise
            self._read_labels(board)
            if name in board.labels:
                log.info("%s: label %s was made although its creation got no answer", self.name, name)
                return board.labels[name]
            self._unanswered[(board.id, name)] = lost + 1
            log.info("%s: creating label %s got no answer and the board lacks it: creating it again",
                     self.name, name)  # fmt: skip
            return self._create_label(board, name, colour)
        if not isinstance(created, dict) or not created.get("id"):
            raise WriteRefused(f"unexpected answer to creating label {name!r}")
        return str(created["id"])

    def _merge_labels(self, board: BoardTarget, name: str) -> None:
        """Move every card carrying a newer copy of label `name` to the oldest, then delete the copies.

        Only labels of a name the bridge adds get here: the bridge's own labels, never a user's other
        labels."""
        kept, copies = board.labels[name], board.copies.pop(name)
        for card in self.puller.all_cards(board.id, {"fields": "idLabels"}):
            on_card = [str(i) for i in card.get("idLabels") or []] if isinstance(card, dict) else []
            if kept not in on_card and any(i in copies for i in on_card):
                self._add_card_label(str(card["id"]), kept)
        for label_id in copies:
            try:
                self._send("DELETE", f"labels/{label_id}")
            except FatalAPIError as exc:
                if exc.status != 404:  # already gone: what was wanted
                    raise
        for card in self._cards.values():
            _relabel(card, copies, kept, name)
        log.info("%s: board %s held label %s %d times; merged into the oldest", self.name, board.name, name,
                 len(copies) + 1)  # fmt: skip

    def _add_card_label(self, card_id: str, label_id: str) -> None:
        try:
            self._send("POST", f"cards/{card_id}/idLabels", params={"value": label_id})
        except FatalAPIError as exc:
            if exc.status != 400 or "already on the card" not in str(exc):
                raise

    def _read_labels(self, board: BoardTarget) -> None:
        listed = self._get(f"boards/{board.id}/labels", {"limit": "1000"})
        board.know_labels(listed if isinstance(listed, list) else [])

    def _remove_label(self, card: JSON, name: str) -> None:
        on_card = [label for label in card.get("labels") or [] if isinstance(label, dict)]
        for label in [x for x in on_card if x.get("name") == name]:
            self._send("DELETE", f"cards/{card['id']}/idLabels/{label['id']}")
            card["idLabels"] = [i for i in card.get("idLabels") or [] if i != label["id"]]
            card["labels"] = [x for x in card.get("labels") or [] if x.get("id") != label["id"]]

    # ---- links -----------------------------------------------------------------------------------------

    def _link(self, card: JSON, global_id: str, value: LinkTarget | None) -> None:
        """Make the card's attachment `global_id` point at `value` (checked by `refuse`), or remove it."""
        mine = [a for a in card.get("attachments") or [] if _link_id(a) == global_id]
        keep: JSON | None = None
        if value is not None:
            name = attachment_name(value)
            keep = next((a for a in mine if a.get("url") == value.url and a.get("name") == name), None)
        for attachment in mine:
            if attachment is not keep:
                self._detach(card, attachment)
        if value is not None and keep is None:
            query = {"url": value.url, "name": attachment_name(value), "setCover": "false"}
            created = self._send("POST", f"cards/{card['id']}/attachments", params=query, idempotent=False)
            if isinstance(created, dict):
                card["attachments"] = [*(card.get("attachments") or []), created]

    def _detach(self, card: JSON, attachment: JSON) -> None:
        try:
            self._send("DELETE", f"cards/{card['id']}/attachments/{attachment['id']}")
        except FatalAPIError as exc:
            if exc.status != 404:  # already gone: what was wanted
                raise
        card["attachments"] = [a for a in card.get("attachments") or [] if a is not attachment]

    # ---- order -----------------------------------------------------------------------------------------

    # ---- comments --------------------------------------------------------------------------------------

    def _comment(self, card_id: str, marker: str, text: str | None) -> None:
        """Post the comment unless the card carries one with its marker (its post is never retried
        after an unanswered attempt: it is read back instead); with no text, delete the bridge's comments
        carrying the marker."""
        found = self._marked_comments(card_id, marker)
        if text is None:
            for action_id in found:
                self._send("DELETE", f"actions/{action_id}")
        elif not found:
            params = {"text": with_marker(text, marker)}
            self._send("POST", f"cards/{card_id}/actions/comments", params=params, idempotent=False)

    def _marked_comments(self, card_id: str, marker: str) -> list[str]:
        """The ids of the card's comments carrying `marker`, newest first, a page of 1000 at a time."""
        found: list[str] = []
        params = {"filter": "commentCard", "limit": str(COMMENT_PAGE)}
        while True:
            page = [a for a in self._get(f"cards/{card_id}/actions", params) or [] if isinstance(a, dict)]
            found.extend(str(a["id"]) for a in page if marker in str((a.get("data") or {}).get("text") or ""))
            if len(page) < COMMENT_PAGE:
                return found
            params = {**params, "before": str(page[-1]["id"])}

    def comment_found(self, write: FieldWrite) -> bool:
        return bool(self._marked_comments(write.item.remote_id, write.field))

    def _move(self, card: JSON, container: str, value: Any) -> None:
        after, before = _anchors(value)
        if str(card.get("idList")) != container:
            raise WriteRefused(f"card {card.get('shortLink') or card['id']} is no longer in list {container}")
        positions = self._positions(container)
        card_id = str(card["id"])
        anchor_ref = after if after is not None else before
        assert anchor_ref is not None
        anchor = self._cards.get(anchor_ref.remote_id)
        if anchor is None or str(anchor["id"]) not in positions:
            raise WriteRefused(f"{anchor_ref.remote_id} is not an open card in list {container}")
        target = _new_pos(positions, card_id, str(anchor["id"]), after=after is not None, container=container)
        if target is None:
            return
        answer = self._send("PUT", f"cards/{card_id}", {"pos": target})
        placed = answer.get("pos") if isinstance(answer, dict) else None
        card["pos"] = positions[card_id] = float(placed) if isinstance(placed, int | float) else target
        if card["pos"] != target:
            # Trello renumbered the list's positions to make room: read them again before the next move.
            self._lists.pop(container, None)

    def _positions(self, list_id: str) -> dict[str, float]:
        if list_id not in self._lists:
            cards = self._get(f"lists/{list_id}/cards", {"fields": "pos"})
            self._lists[list_id] = {
                str(c["id"]): float(c["pos"])
                for c in (cards if isinstance(cards, list) else [])
                if isinstance(c, dict) and c.get("id") and isinstance(c.get("pos"), int | float)
            }
        return self._lists[list_id]


def _new_pos(
    positions: Mapping[str, float], card: str, anchor: str, *, after: bool, container: str
) -> float | None:
    """The `pos` that puts `card` just after (or before) `anchor` among list `container`'s `positions`;
    None when it is there already. Just after X is the midpoint of X and the card after it (X's pos +
    `POS_STEP` at the bottom), just before Y the midpoint of Y and the card before it (half Y's pos at
    the top)."""
    if anchor == card:
        raise WriteRefused("a card cannot be moved next to itself")
    order = sorted(positions, key=lambda c: (positions[c], c))
    at = order.index(anchor)
    beside = at + 1 if after else at - 1
    if 0 <= beside < len(order) and order[beside] == card:
        return None
    others = [c for c in order if c != card]
    at = others.index(anchor)
    high: float | None
    if after:
        low = positions[anchor]
        high = positions[others[at + 1]] if at + 1 < len(others) else None
        target = (low + high) / 2 if high is not None else low + POS_STEP
    else:
        high = positions[anchor]
        low = positions[others[at - 1]] if at > 0 else 0.0
        target = (low + high) / 2
    if not (low < target and (high is None or target < high)):
        raise WriteRefused(f"no room in list {container} between positions {low} and {high}")
    return target


def _check_link(global_id: str, value: Any) -> None:
    """Refuse a link that is not the bridge's, or a target Trello cannot attach under that id."""
    if not global_id.startswith(LINK_ID_PREFIX):
        raise WriteRefused(f"link {global_id!r} is not the bridge's (no {LINK_ID_PREFIX!r} prefix)")
    if value is None:
        return
    if not isinstance(value, LinkTarget):
        raise WriteRefused("a link's value is a LinkTarget or None")
    if value.global_id != global_id:
        raise WriteRefused(f"link {global_id!r} is given the target of {value.global_id!r}")
    attachment_name(value)  # refuses an id too long for an attachment's name
    if not value.url.startswith(("http://", "https://")):
        raise WriteRefused(f"Trello attaches only http(s) URLs, not {value.url!r}")


def _anchors(value: Any) -> tuple[Ref | None, Ref | None]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise WriteRefused(f"a move's value is (after, before), not {value!r}")
    after, before = value
    if after is None and before is None:
        raise WriteRefused("a move needs a card to go after or before")
    for ref in (after, before):
        if ref is not None and not isinstance(ref, Ref):
            raise WriteRefused(f"{ref!r} is not an item to move next to")
    return after, before


def _link_id(attachment: Any) -> str | None:
    target = parse_attachment(attachment) if isinstance(attachment, dict) else None
    return target.global_id if target is not None else None


def _relabel(card: JSON, copies: Collection[str], kept: str, name: str) -> None:
    """A card as read, after label `name`'s `copies` were merged into `kept`."""
    had = [i for i in card.get("idLabels") or [] if i in copies]
    if not had:
        return
    ids = [i for i in card.get("idLabels") or [] if i not in copies and i != kept]
    card["idLabels"] = [*ids, kept]
    labels = [
        x for x in card.get("labels") or [] if isinstance(x, dict) and x.get("id") not in (*copies, kept)
    ]
    card["labels"] = [*labels, {"id": kept, "name": name}]


def _label_sets(writes: Sequence[tuple[int, FieldWrite]]) -> set[int]:
    """The label writes of cards with more than one: they go in one `PUT cards/{id}` a card (a single one
    stays a single add or remove, which leaves alone a label a user puts on the card meanwhile)."""
    per_card: dict[str, list[int]] = {}
    for index, write in writes:
        if write.kind in (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE):
            per_card.setdefault(write.item.remote_id, []).append(index)
    return {index for indexes in per_card.values() if len(indexes) > 1 for index in indexes}


def _by_card(
    writes: Sequence[tuple[int, FieldWrite]], chosen: set[int]
) -> dict[str, list[tuple[int, FieldWrite]]]:
    grouped: dict[str, list[tuple[int, FieldWrite]]] = {}
    for index, write in writes:
        if index in chosen:
            grouped.setdefault(write.item.remote_id, []).append((index, write))
    return grouped


def _label_names(card: Mapping[str, Any], board: BoardTarget) -> set[str]:
    """The names of the card's labels (colour-only labels have none)."""
    labels = card.get("labels")
    if isinstance(labels, list):
        return {str(x["name"]) for x in labels if isinstance(x, dict) and x.get("name")}
    names = {i: n for n, i in board.labels.items()}
    return {names[i] for i in card.get("idLabels") or [] if i in names}
