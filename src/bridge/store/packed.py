"""A pulled page packed into bytes, with its history as the store's own rows: how a page crosses from the
pull's worker process (`bridge.sync.pull_worker`) to the process that stores it.

Pickling a page as it is would cost more than the worker saves: a page of 100 Jira issues carries about
a thousand status changes, each a frozen dataclass with an aware datetime, and building them again on
the storing side is as slow as mapping them was. So the worker packs a page's history as plain tuples in
the column order of the `status_change` table, its time already the text the store writes
(`PackedChanges`), and its tasks' flow facts as the JSON text the store keeps; the rest of the page
(tasks, milestones, what the items hold: a tenth of the objects) is pickled as it is. The storing side
writes the tuples as they are; anything else that reads the page's history gets `StatusChange` values,
built on first access.
"""

from __future__ import annotations

import marshal
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, overload

from bridge.domain import RemotePage, StatusCategory, StatusChange
from bridge.store.facts import page_flow_facts

UNSTORABLE = "\x00"
"""The character no store keeps in text (see `bridge.store.pages`)."""

_TEXT = {category: category.value for category in StatusCategory}
_CATEGORY = {category.value: category for category in StatusCategory}
_TEXT_COLUMNS = (0, 1, 2, 4, 5)
"""The columns of a packed row that hold tracker text (source, ids, statuses)."""


class PackedChanges(Sequence[StatusChange]):
    """A page's status changes as the store's rows: `(source, remote_id, item_id, at, from_status,
    to_status, from_category, to_category)`, `at` as the text `dialect`'s store writes for aware UTC
    (SQLite: `YYYY-MM-DD HH:MM:SS.ffffff`; others: the same with `+00:00`), categories as their text.

    As a sequence it holds `StatusChange` values, made from the rows on first access."""

    __slots__ = ("_values", "dialect", "holds_unstorable", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], dialect: str, holds_unstorable: bool) -> None:
        self.rows = rows
        self.dialect = dialect
        self.holds_unstorable = holds_unstorable
        """Whether any text of the rows holds `UNSTORABLE` (the page must be cleaned the slow way)."""
        self._values: list[StatusChange] | None = None

    def _changes(self) -> list[StatusChange]:
        if self._values is None:
            read = _read_sqlite_time if self.dialect == "sqlite" else datetime.fromisoformat
            self._values = [
                StatusChange(
                    source,
                    remote_id,
                    item_id,
                    read(at),
                    from_status,
                    to_status,
                    None if from_category is None else _CATEGORY[from_category],
                    _CATEGORY[to_category],
                )
                for source, remote_id, item_id, at, from_status, to_status, from_category, to_category in (
                    self.rows
                )
            ]
        return self._values

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> StatusChange: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[StatusChange]: ...

    def __getitem__(self, index: int | slice) -> StatusChange | Sequence[StatusChange]:
        return self._changes()[index]

    def __iter__(self) -> Iterator[StatusChange]:
        return iter(self._changes())


def _read_sqlite_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def pack_changes(changes: Sequence[StatusChange], dialect: str) -> PackedChanges:
    """`changes` as rows for a store of `dialect` (see `PackedChanges`)."""
    sqlite = dialect == "sqlite"
    text = _TEXT
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for change in changes:
        at = change.at
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        stamp = at.isoformat(" ", "microseconds")
        from_category = change.from_category
        append(
            (
                change.source,
                change.remote_id,
                change.item_id,
                stamp[:-6] if sqlite else stamp,
                change.from_status,
                change.to_status,
                None if from_category is None else text[from_category],
                text[change.to_category],
            )
        )
    return PackedChanges(rows, dialect, _holds_unstorable(rows))


def _holds_unstorable(rows: list[tuple[Any, ...]]) -> bool:
    if not rows:
        return False
    columns = list(zip(*rows, strict=True))
    return any(UNSTORABLE in "".join(filter(None, columns[i])) for i in _TEXT_COLUMNS)


def pack_page(page: RemotePage, dialect: str) -> bytes:
    """`page` as bytes for `unpack_page`, its history packed for a store of `dialect` and its tasks' flow
    facts (computed here when the connector did not) as the JSON text the store keeps."""
    facts = page_flow_facts(page)
    texts = None if facts is None else {k: v if isinstance(v, str) else v.to_json() for k, v in facts.items()}
    changes = pack_changes(page.status_changes, dialect)
    rest = replace(page, status_changes=(), flow_facts=texts)
    return pickle.dumps(
        (rest, marshal.dumps(changes.rows), changes.dialect, changes.holds_unstorable), protocol=5
    )


def unpack_page(data: bytes) -> RemotePage:
    """The page `pack_page` packed, its history a `PackedChanges`."""
    rest, rows, dialect, unstorable = pickle.loads(data)  # bytes from our own worker process
    page: RemotePage = replace(rest, status_changes=PackedChanges(marshal.loads(rows), dialect, unstorable))
    return page
