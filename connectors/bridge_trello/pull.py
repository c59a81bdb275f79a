"""Reading Trello boards incrementally: one stream per board, driven by the board's actions.

Each configured board is a stream (`board:<id or short link>`) whose cursor is JSON:
`{"since": newest action id seen, "milestones": {card id: [name, short link]}}` (the second only for
`milestones.source = "list"`). Trello ids are ObjectIds, whose first digits are the creation second, so
"newer than the cursor" is `since=<id>`.

- First pull (or an unreadable cursor): every action of the board, newest first, 1000 to a request and
  paged with `before=<oldest id seen>`; then every card (`boards/{id}/cards/all`, archived ones
  included, with their custom field items, paged the same way by the lowest id). Actions are read
  first, so a change made while the cards are read is newer than the cursor and is seen next cycle.
  Both listings go through the kit's `KeyPaginator`: a Trello (or a cache before it) answering a page
  again stops the pull with `PaginationLoop` instead of reading the same page forever.
- Later cycles: the actions `since` the cursor (one request when nothing changed, so a quiet cycle costs
  one request per board). The cards they touched are read again with their own histories, a card and
  its actions being two GETs of one `batch` request (five cards a request); past `MANY` touched cards,
  the board is read whole instead. A `deleteCard` action leaves no card to read: the census marks it.
  A milestone label made since the cursor (its id is newer) is stored as a milestone too.

The cards are mapped together (a task finds its milestone's label or card wherever it sits), then
stored `page_size` tasks to a page; milestones, objectives and key results (the cards of `[okrs] list`)
go on the first page and only the last page carries the new cursor, so a pull killed half way reads the
board again. A key result card is read again, like any card, when an action touches it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.domain import Dependency, ItemState, Ref, RemotePage, StatusName
from bridge.errors import FatalAPIError, UserError
from bridge.kit import KeyPaginator
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.mapping import (
    LABEL_ID,
    BoardInfo,
    Mapped,
    TrelloMapping,
    card_of,
    known_milestones,
    names,
    option_texts,
)
from bridge_trello.session import TrelloSession, batch_url

log = logging.getLogger(__name__)

BOARD_STREAM = "board:"
ACTION_PAGE = 1000  # the most actions Trello gives in one answer
CARD_PAGE = 1000  # the most cards Trello gives in one answer
MANY = 50
"""Past this many touched cards (ten batch requests), reading the board whole is as cheap."""
NO_ACTION = "0" * 24
"""The cursor of a board without any action yet: every real id is newer."""
BOARD_PARAMS = {"lists": "all", "labels": "all", "labels_limit": "1000", "customFields": "true"}
"""What a board's setup read nests: every list, label and custom field definition."""


def board_stream(board: str) -> str:
    return f"{BOARD_STREAM}{board}"


@dataclass
class BoardCursor:
    since: str | None = None
    milestones: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> BoardCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            since = raw.get("since")
            return cls(str(since) if since else None, known_milestones(raw.get("milestones") or {}))
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable Trello cursor: reading the board again")
            return cls()

    def dump(self) -> str:
        return json.dumps({"since": self.since, "milestones": dict(sorted(self.milestones.items()))})


class TrelloPuller:
    """The read side of one Trello tracker: a stream per board and a census, over one `TrelloSession`."""

    def __init__(self, name: str, config: TrelloTrackerConfig, session: TrelloSession) -> None:
        self.name = name
        self.config = config
        self.session = session
        self.records: dict[str, dict[str, Any]] = {}
        """Each configured board's setup answer as Trello gave it (for `bridge discover`)."""
        with session.setup():
            self.boards = {ref: self._board_info(ref) for ref in config.boards}
        self.mappings = {ref: TrelloMapping(name, config, info) for ref, info in self.boards.items()}
        self._check_fields()
        self.held: Callable[[Ref, dict[str, Any]], ItemState] | None = None
        """What a card holds of what the bridge manages (the writer's reading, set when it is made):
        stored with each page, so the push need not read the cards again."""

    def streams(self) -> list[str]:
        """`board:<id>` for each configured board, in the config's order."""
        return [board_stream(ref) for ref in self.config.boards]

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        """The pages of stream `stream` (one of `streams`) since `cursor`."""
        for ref in self.config.boards:
            if stream == board_stream(ref):
                return self.pull_board(ref, cursor, signpost)
        raise ValueError(f"the trello connector has no stream {stream!r}")

    # ---- setup ----------------------------------------------------------------------------------------

    def _board_info(self, ref: str) -> BoardInfo:
        """The board's lists, labels and custom field definitions: one request."""
        params = {"fields": "name,shortLink,closed", **BOARD_PARAMS}
        try:
            body = self.session.get(f"boards/{ref}", params)
        except FatalAPIError as exc:
            if exc.status in (400, 404):
                raise UserError(f"trackers.{self.name}.boards: Trello has no board {ref!r}") from None
            raise
        if not isinstance(body, dict) or not body.get("id"):
            raise FatalAPIError(f"{self.name}: unexpected answer for board {ref!r}", tracker=self.name)
        self.records[ref] = body
        return board_info(body, ref)

    def _check_fields(self) -> None:
        """A value, effort, target or current field the config names must exist on some board."""
        okrs = self.config.okrs
        for where, wanted in (
            ("fields.value", self.config.fields.value),
            ("fields.effort", self.config.fields.effort),
            ("okrs.target_field", okrs.target_field if okrs is not None else None),
            ("okrs.current_field", okrs.current_field if okrs is not None else None),
        ):
            if wanted is None:
                continue
            if not any(
                wanted in m.board.fields or wanted in m.board.fields.values() for m in self.mappings.values()
            ):
                raise UserError(
                    f"trackers.{self.name}.{where}: no custom field {wanted!r} on the configured boards "
                    "(see `bridge discover`)"
                )

    # ---- a board --------------------------------------------------------------------------------------

    def pull_board(self, ref: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        """Pages of the board's changed cards; see the module docstring for how change is found."""
        state = BoardCursor.load(cursor)
        board = self.boards[ref]
        if state.since is None:
            yield from self._whole(ref)
            return
        actions = self._actions(board.id, state.since)
        if not actions:  # no card changed: the lists are named all the same (a store may lack their names)
            yield RemotePage(self.name, board_stream(ref), statuses=self._list_names(ref))
            return
        touched = list(dict.fromkeys(c for c in (card_of(a) for a in actions) if c))
        if len(touched) > MANY:
            log.info("%s: board %s: %d cards changed; reading it whole", self.name, ref, len(touched))
            yield from self._whole(ref)
            return
        cards, histories = self._read_cards(board.id, touched)
        mapping = self.mappings[ref]
        # Ids are time-ordered: a milestone label newer than the cursor was made since the last read.
        fresh = [label for label in mapping.by_label if label.lower() > state.since.lower()]
        mapped = mapping.map_cards(cards, histories, state.milestones, labels=fresh)
        after = BoardCursor(str(actions[0]["id"]), {**state.milestones, **mapped.list_milestones})
        yield from self._pages(ref, mapped, after, self._held(mapping, cards))

    def _whole(self, ref: str) -> Iterator[RemotePage]:
        board = self.boards[ref]
        actions = self._actions(board.id, None)
        cards = self.all_cards(board.id, self._card_params())
        histories: dict[str, list[dict[str, Any]]] = {}
        for action in actions:
            card = card_of(action)
            if card:
                histories.setdefault(card, []).append(action)
        mapping = self.mappings[ref]
        mapped = mapping.map_cards(cards, histories, {}, labels=mapping.by_label)
        newest = str(actions[0]["id"]) if actions else NO_ACTION
        held = self._held(mapping, cards)
        yield from self._pages(ref, mapped, BoardCursor(newest, mapped.list_milestones), held)

    def _held(self, mapping: TrelloMapping, cards: Sequence[Any]) -> list[ItemState]:
        """What `cards` hold (a milestone card also for its label milestone, `label:<id>`)."""
        if self.held is None:
            return []
        found: dict[Ref, ItemState] = {}
        for card in cards:
            if not isinstance(card, dict) or not card.get("id"):
                continue
            ref = Ref(self.name, str(card["id"]))
            found[ref] = self.held(ref, card)
            label = mapping.milestone_label(card)
            if label is not None and label in mapping.by_label and mapping.is_milestone_card(card):
                label_ref = Ref(self.name, LABEL_ID + str(label))
                found.setdefault(label_ref, self.held(label_ref, card))
        return list(found.values())

    def _card_params(self) -> dict[str, str]:
        # attachments: a task joins its milestone by one (`tasks.attach = "attachment"`), and one can
        # name a blocker (`dependencies.phrases`)
        return {"customFieldItems": "true", "attachments": "true"}

    def _actions(self, board: str, since: str | None) -> list[dict[str, Any]]:
        """The board's actions newer than `since` (all for None), newest first, paged with `before`."""

        def oldest(page: list[Any]) -> str | None:
            # Newest first: the next page starts before the last action of a full one.
            kept = [a for a in page if isinstance(a, dict) and a.get("id")]
            return str(kept[-1]["id"]) if len(page) >= ACTION_PAGE and kept else None

        params = {"limit": str(ACTION_PAGE), **({"since": since} if since else {})}
        pages = self._before_pages(f"boards/{board}/actions", params, f"the actions of {board}", oldest)
        return [a for page in pages for a in page if isinstance(a, dict) and a.get("id")]

    def all_cards(self, board: str, params: Mapping[str, str]) -> list[Any]:
        """Every card of the board, archived ones included, paged by id when there are more than 1000."""

        def lowest(page: list[Any]) -> str | None:
            # Cards come in no promised order: the next page starts before the lowest id of a full one.
            ids = [str(c["id"]) for c in page if isinstance(c, dict) and isinstance(c.get("id"), str)]
            return min(ids) if len(page) >= CARD_PAGE and ids else None

        query = {**params, "limit": str(CARD_PAGE)}
        pages = self._before_pages(f"boards/{board}/cards/all", query, f"the cards of {board}", lowest)
        return [card for page in pages for card in page]

    def _before_pages(
        self, path: str, params: Mapping[str, str], what: str, key_of: Callable[[list[Any]], str | None]
    ) -> Iterator[list[Any]]:
        """The pages of a Trello listing, each a fresh query `before=<key_of(the page before)>`."""

        def fetch(before: str | None) -> list[Any]:
            page = self.session.get(path, {**params, **({"before": before} if before else {})})
            if not isinstance(page, list):
                raise FatalAPIError(f"{self.name}: unexpected answer to {what}", tracker=self.name)
            return page

        return KeyPaginator(f"{self.name}: {what}", key_of, tracker=self.name).pages(fetch)

    def _read_cards(
        self, board: str, cards: Sequence[str]
    ) -> tuple[list[Any], dict[str, list[dict[str, Any]]]]:
        """The cards still on the board and each one's whole history: a card's two GETs share a batch."""
        params = self._card_params()
        urls: list[str] = []
        for card in cards:
            urls.append(batch_url(f"cards/{card}", params))
            urls.append(batch_url(f"cards/{card}/actions", {"filter": "all", "limit": str(ACTION_PAGE)}))
        bodies = self.session.batches(urls)
        found: list[Any] = []
        histories: dict[str, list[dict[str, Any]]] = {}
        for index, card in enumerate(cards):
            body, actions = bodies[2 * index], bodies[2 * index + 1]
            if body is None or (isinstance(body, dict) and body.get("idBoard") not in (None, board)):
                continue  # deleted or moved away: the census tells the store
            found.append(body)
            histories[card] = [a for a in actions or [] if isinstance(a, dict)]
        return found, histories

    def _list_names(self, ref: str) -> list[StatusName]:
        """The board's lists by name, as the cards' raw statuses (a list id) are shown."""
        return [
            StatusName(self.name, list_id, name) for list_id, name in self.boards[ref].lists.items() if name
        ]

    def _pages(
        self, ref: str, mapped: Mapped, after: BoardCursor, held: Sequence[ItemState]
    ) -> Iterator[RemotePage]:
        for skipped in mapped.skipped:
            log.warning("%s: skipped card %s: %s", self.name, skipped.key, skipped.reason)
        dependencies = self.dependencies(mapped)
        size = self.config.page_size
        chunks = [mapped.tasks[i : i + size] for i in range(0, len(mapped.tasks), size)] or [[]]
        for index, tasks in enumerate(chunks):
            ids = {t.remote_id for t in tasks}
            first, last = index == 0, index == len(chunks) - 1
            yield RemotePage(
                source=self.name,
                stream=board_stream(ref),
                milestones=mapped.milestones if first else (),
                objectives=mapped.objectives if first else (),
                key_results=mapped.key_results if first else (),
                links=mapped.links if first else (),
                tasks=tasks,
                status_changes=[c for c in mapped.changes if c.item_id in ids],
                dependencies=[d for d in dependencies if d.blocked_id in ids],
                skipped=mapped.skipped if first else (),
                statuses=self._list_names(ref) if first else (),
                cursor=after.dump() if last else None,
                held=held if first else (),
                held_links=True,
            )

    # ---- dependencies -------------------------------------------------------------------------------------

    def dependencies(self, mapped: Mapped) -> list[Dependency]:
        """The blockers the mapped task cards name, each a task card of a configured board.

        A short link is found among the cards just mapped, else read with the others not found, ten to a
        `batch` request; a card that is gone, on a board not configured, or no task (a milestone's card,
        a key result, in an unmapped list) is no blocker.
        """
        known: dict[str, str | None] = {t.key: t.remote_id for t in mapped.tasks if not t.deleted}
        unknown = list(
            dict.fromkeys(s for shorts in mapped.blockers.values() for s in shorts if s not in known)
        )
        if unknown:
            params = {"fields": "id,idBoard,idList,idLabels,name,closed"}
            bodies = self.session.batches([batch_url(f"cards/{short}", params) for short in unknown])
            known.update(zip(unknown, map(self._task_card, bodies), strict=True))
        found = []
        for blocked, shorts in mapped.blockers.items():
            for short in shorts:
                blocker = known[short]
                if blocker is None:
                    what = "no task card of the configured boards"
                    log.info("%s: card %s names card %s as a blocker: %s", self.name, blocked, short, what)
                elif blocker != blocked:
                    found.append(Dependency(self.name, blocker, blocked))
        return found

    def _task_card(self, card: Any) -> str | None:
        """The id of a card read by its short link when it is a task card of a configured board."""
        if not isinstance(card, dict):
            return None
        for mapping in self.mappings.values():
            if mapping.board.id == card.get("idBoard") and mapping.is_task_card(card):
                return str(card["id"])
        return None

    # ---- census -------------------------------------------------------------------------------------------

    def census(self) -> list[str]:
        """Every card id of every board (archived included), and each milestone label's id."""
        ids: list[str] = []
        for ref, board in self.boards.items():
            cards = self.all_cards(board.id, {"fields": "id"})
            ids.extend(str(c["id"]) for c in cards if isinstance(c, dict) and isinstance(c.get("id"), str))
            ids.extend(LABEL_ID + label for label in self.mappings[ref].by_label)
        return ids


def board_info(body: Mapping[str, Any], ref: str) -> BoardInfo:
    """A `boards/{id}` answer nesting `BOARD_PARAMS` as what the mapping needs of the board."""
    return BoardInfo(
        id=str(body["id"]),
        name=str(body.get("name") or ref),
        lists=names(body.get("lists")),
        labels=names(body.get("labels")),
        fields=names(body.get("customFields")),
        options={
            option: text
            for definition in body.get("customFields") or []
            if isinstance(definition, dict)
            for option, text in option_texts(definition).items()
        },
    )


__all__ = ["BOARD_PARAMS", "BOARD_STREAM", "BoardCursor", "TrelloPuller", "board_info", "board_stream"]
