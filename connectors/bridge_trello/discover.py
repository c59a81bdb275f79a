"""What Trello boards have that a mapping refers to: the boards, their lists (the raw statuses), labels
and custom fields (id, name, type).

With a config, the configured boards are described from the reads the connector made when it opened
(no further request). From flags alone (no config yet), the token's member's open boards are listed
(`members/me/boards`) and the lists, labels and custom fields of at most `DETAILED_BOARDS` of them are
read, ten boards to a `batch` request.

Trello cards have no type: `item_types` stays empty and a note says how the bridge tells milestones,
key results and work types apart instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.connector import DiscoveredField, Discovery
from bridge.errors import FatalAPIError
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.mapping import option_texts, records
from bridge_trello.pull import BOARD_PARAMS
from bridge_trello.session import TrelloSession, batch_url

DETAILED_BOARDS = 50
"""From flags alone: lists, labels and fields of this many boards at most (a config names the rest)."""
SHOWN_OPTIONS = 8
NO_TYPES = (
    "Trello cards have no type; milestones are cards or labels (milestones.source: a label prefix or a "
    "list), key results the cards of [okrs] list, and work types come from labels or a custom field"
)

JSON = dict[str, Any]


def discover(
    session: TrelloSession, config: TrelloTrackerConfig, configured: Mapping[str, Mapping[str, Any]]
) -> Discovery:
    """`configured` holds the configured boards' setup answers (empty when opened from flags)."""
    extra: dict[str, Any] = {}
    if configured:
        boards = [dict(record) for record in configured.values()]
    else:
        boards = _listed_boards(session, extra)
    several = len(boards) > 1
    labels: set[str] = set()
    unnamed = 0
    for board in boards:
        for label in records(board.get("labels")):
            name = str(label.get("name") or "")
            if name.strip():
                labels.add(name)
            else:
                unnamed += 1
    extra["item_types"] = NO_TYPES
    okrs = getattr(config, "okrs", None)  # opened from flags, the config is not validated
    if okrs is not None and boards:
        extra["okrs_list"] = _okrs_list(okrs.list, boards)
    if unnamed:
        extra["unnamed_labels"] = f"{unnamed} (colour only); rules match labels by name or id"
    return Discovery(
        containers=[_container(board) for board in boards],
        statuses=[status for board in boards for status in _statuses(board, several)],
        item_types=(),
        labels=sorted(labels, key=lambda n: (n.casefold(), n)),
        fields=[found for board in boards for found in _fields(board, several)],
        extra=extra,
    )


def _listed_boards(session: TrelloSession, extra: dict[str, Any]) -> list[JSON]:
    """From flags alone: the member's open boards, the first `DETAILED_BOARDS` read in detail."""
    listed = _member_boards(session)
    if len(listed) > DETAILED_BOARDS:
        extra["boards_detailed"] = (
            f"lists, labels and fields of the first {DETAILED_BOARDS} of {len(listed)} boards; "
            "name boards in the config to see theirs"
        )
    extra["boards_listed"] = "open boards of the token's member"
    return _read_boards(session, listed[:DETAILED_BOARDS])


def _board_name(board: Mapping[str, Any]) -> str:
    return str(board.get("name") or board["id"])


def _statuses(board: Mapping[str, Any], several: bool) -> list[tuple[str, str]]:
    """The board's lists (the raw statuses), named after their board when there are several."""
    found = []
    for lst in records(board.get("lists")):
        name = str(lst.get("name") or "")
        shown = f"{_board_name(board)} / {name}" if several else name
        found.append((str(lst["id"]), shown + (" (archived list)" if lst.get("closed") else "")))
    return found


def _fields(board: Mapping[str, Any], several: bool) -> list[DiscoveredField]:
    where = f"; board {_board_name(board)}" if several else ""
    return [
        DiscoveredField(str(d["id"]), str(d.get("name") or ""), _field_type(d) + where)
        for d in records(board.get("customFields"))
    ]


def _okrs_list(wanted: str, boards: Sequence[Mapping[str, Any]]) -> str:
    """Whether `[okrs] list` is on every board, or on which it is missing."""
    folded = wanted.casefold()
    missing = [
        _board_name(b)
        for b in boards
        if not any(str(x.get("name") or "").casefold() == folded for x in records(b.get("lists")))
    ]
    return f"{wanted!r} " + (f"is missing on {', '.join(missing)}" if missing else "is on every board")


def _member_boards(session: TrelloSession) -> list[JSON]:
    listed = session.get("members/me/boards", {"filter": "open", "fields": "name,shortLink,closed"})
    if not isinstance(listed, list):
        raise FatalAPIError(f"{session.name}: unexpected answer to the member's boards", tracker=session.name)
    return records(listed)


def _read_boards(session: TrelloSession, listed: Sequence[JSON]) -> list[JSON]:
    """Each listed board with its lists, labels and custom fields; a board gone meanwhile left out."""
    bodies = session.batches([batch_url(f"boards/{board['id']}", BOARD_PARAMS) for board in listed])
    found = []
    for board, body in zip(listed, bodies, strict=True):
        if isinstance(body, dict) and body.get("id"):
            # The listing's name and short link win: a batch answer carries the board's default fields.
            found.append({**body, **{k: board[k] for k in ("name", "shortLink", "closed") if k in board}})
    return found


def _container(board: Mapping[str, Any]) -> tuple[str, str]:
    name = str(board.get("name") or "")
    short = board.get("shortLink")
    shown = f"{name} (short link {short})" if short else name
    return str(board["id"]), shown + (", archived" if board.get("closed") else "")


def _field_type(definition: Mapping[str, Any]) -> str:
    kind = str(definition.get("type") or "unknown")
    if kind != "list":
        return kind
    options = list(option_texts(definition).values())
    shown = ", ".join(options[:SHOWN_OPTIONS]) + (", ..." if len(options) > SHOWN_OPTIONS else "")
    return f"list, {len(options)} option{'s' if len(options) != 1 else ''}" + (
        f": {shown}" if options else ""
    )
