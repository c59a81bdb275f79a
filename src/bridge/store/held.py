"""The `held` table: what each tracker item holds of what the bridge manages, for the push to plan against.

A pull page that shows its items' managed fields, labels and place (`RemotePage.held`) stores them here,
and the push records what its own writes left (`record_held`), so the next cycle plans from the store and
reads from the tracker only what no page showed: items without a row, links no page showed since the
tracker last changed the item (`Held.links_hold`), and the place of an item the bridge moved (its new
place is the tracker's to tell).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select

from bridge.domain import ItemState, LinkTarget, Ref, require_utc
from bridge.store.engine import upsert
from bridge.store.models import HeldRow

TABLE: Any = HeldRow.__table__  # type: ignore[attr-defined]
LOAD_CHUNK = 500
"""Items asked for in one query (SQLite allows some 32,000 parameters, PostgreSQL 65,535)."""


@dataclass
class Held:
    """Stored states of some items, and which of them have no stored links or no stored place."""

    states: dict[Ref, ItemState] = field(default_factory=dict)
    at: dict[Ref, datetime] = field(default_factory=dict)
    """When each item's row was stored (a tracker change after it makes the row stale: `stale`)."""
    links_at: dict[Ref, datetime] = field(default_factory=dict)
    """When each item's links were read (an item without one has no links stored)."""
    unplaced: set[Ref] = field(default_factory=set)
    """Items whose place is unknown although they have a container (the bridge moved them since)."""

    def stale(self, ref: Ref, changed: datetime | None) -> bool:
        """Whether the tracker changed `ref` (`changed`, its last update as the pull saw it) after its
        row was stored: what showed it since did not store what it holds (a tracker whose pages carry
        no `held`)."""
        stored = self.at.get(ref)
        return stored is None or (changed is not None and changed > stored)

    def links_hold(self, ref: Ref, changed: datetime | None) -> bool:
        """Whether `ref`'s stored links still hold: read, and the tracker has not changed the item since
        (`changed`, its last update as the pull saw it)."""
        read = self.links_at.get(ref)
        return read is not None and (changed is None or changed <= read)


def load_held(conn: Connection, source: str, refs: Iterable[Ref]) -> Held:
    """The stored states of `refs` (those of tracker `source` having a row)."""
    wanted = sorted({ref.remote_id for ref in refs if ref.source == source})
    found = Held()
    for start in range(0, len(wanted), LOAD_CHUNK):
        chunk = wanted[start : start + LOAD_CHUNK]
        rows = conn.execute(select(TABLE).where(and_(TABLE.c.source == source, TABLE.c.remote_id.in_(chunk))))
        for row in rows:
            ref = Ref(source, row.remote_id)
            found.states[ref] = _state(ref, row)
            found.at[ref] = row.at
            if row.links is not None and row.links_at is not None:
                found.links_at[ref] = row.links_at
            if row.container is not None and row.position is None:
                found.unplaced.add(ref)
    return found


def _state(ref: Ref, row: Any) -> ItemState:
    links = {
        gid: LinkTarget(global_id=gid, url=str(target.get("url", "")), title=str(target.get("title", "")))
        for gid, target in (json.loads(row.links) if row.links is not None else {}).items()
    }
    return ItemState(
        item=ref,
        key=row.key,
        fields=json.loads(row.fields),
        labels=frozenset(json.loads(row.labels)),
        links=links,
        duplicates=frozenset(json.loads(row.duplicates)),
        container=row.container,
        position=json.loads(row.position) if row.position is not None else None,
    )


def save_held(
    conn: Connection,
    source: str,
    states: Iterable[ItemState],
    *,
    at: datetime,
    links_known: Collection[Ref] | bool,
    unplaced: Collection[Ref] = (),
) -> int:
    """Store `states` (replacing the items' rows); returns the rows changed.

    `links_known` says whose links the states carry (all, none, or the items named); the others' stored
    links stay as they were. The items in `unplaced` are stored without a place (see `Held.unplaced`).
    """
    at = require_utc(at, "at")
    rows: dict[str, dict[str, Any]] = {}
    for state in states:
        if state.item.source != source:
            continue
        known = links_known if isinstance(links_known, bool) else state.item in links_known
        placed = state.item not in unplaced
        row: dict[str, Any] = {
            "source": source,
            "remote_id": state.item.remote_id,
            "key": state.key[:255],
            "fields": _json(dict(state.fields)),
            "labels": _json(sorted(state.labels)),
            "duplicates": _json(sorted(state.duplicates)),
            "container": state.container,
            "position": _json(state.position) if placed and state.position is not None else None,
            "at": at,
        }
        if known:
            row["links"] = _json({gid: _link(t) for gid, t in sorted(state.links.items())})
            row["links_at"] = at
        rows[state.item.remote_id] = row
    # Rows without links leave the stored ones as they were (an upsert's rows share their columns).
    with_links = [row for row in rows.values() if "links" in row]
    without = [row for row in rows.values() if "links" not in row]
    return upsert(conn, TABLE, with_links) + upsert(conn, TABLE, without)


def forget_held(conn: Connection, source: str, remote_ids: Iterable[str]) -> None:
    """Drop the rows of `remote_ids` (items gone from the tracker)."""
    gone = sorted(set(remote_ids))
    for start in range(0, len(gone), LOAD_CHUNK):
        chunk = gone[start : start + LOAD_CHUNK]
        conn.execute(delete(TABLE).where(and_(TABLE.c.source == source, TABLE.c.remote_id.in_(chunk))))


def _link(target: LinkTarget) -> dict[str, str]:
    return {"url": target.url, "title": target.title}


_ENCODER = json.JSONEncoder(sort_keys=True, default=str)
"""`json.dumps(value, sort_keys=True, default=str)`, without making an encoder per value (four a row)."""


def _json(value: Any) -> str:
    if not value and isinstance(value, list | dict):  # most items hold no duplicates, many no labels
        return "[]" if isinstance(value, list) else "{}"
    return _ENCODER.encode(value)
