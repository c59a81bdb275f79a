"""Links an admin manages: OKR suggestions (origin `suggested`) and confirmations (origin `confirmed`).

Pulls replace only the links with origin `tracker` or `rule` (see `pages.py`), so what is stored here
outlives later pulls. A suggestion is advice: the analysis ignores it until it is confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, select

from bridge.domain import LinkOrigin, Milestone, Ref, require_utc
from bridge.store.engine import upsert
from bridge.store.facts import bump_data_version
from bridge.store.models import KeyResultRow, MilestoneKeyResultRow, MilestoneRow


def _links() -> Table:
    table: Table = MilestoneKeyResultRow.__table__  # type: ignore[attr-defined]
    return table


@dataclass(frozen=True, slots=True)
class StoredSuggestions:
    added: int
    """New suggestions, or stored ones whose score changed."""
    removed: int
    """Stored suggestions that no longer hold (the milestone got a link, or the text changed)."""


def store_suggestions(
    conn: Connection, suggestions: Iterable[tuple[Ref, Ref, float]], *, now: datetime
) -> StoredSuggestions:
    """Make the stored suggestions equal `suggestions` (milestone, key result, score).

    Running it twice on the same store stores nothing the second time. A pair already linked with
    another origin keeps that origin.
    """
    now = require_utc(now, "now")
    table = _links()
    wanted = {(m, kr): score for m, kr, score in suggestions}
    linked: set[tuple[Ref, Ref]] = set()
    stale: list[tuple[Ref, Ref]] = []
    rows = conn.execute(
        select(
            table.c.milestone_source, table.c.milestone_id, table.c.kr_source, table.c.kr_id, table.c.origin
        )
    )
    for row in rows:
        pair = (Ref(row.milestone_source, row.milestone_id), Ref(row.kr_source, row.kr_id))
        if row.origin != LinkOrigin.SUGGESTED.value:
            linked.add(pair)
        elif pair not in wanted:
            stale.append(pair)
    for milestone, kr in stale:
        conn.execute(delete(table).where(_pair(table, milestone, kr)))
    added = upsert(
        conn,
        table,
        [
            _row(m, kr, LinkOrigin.SUGGESTED, score, now)
            for (m, kr), score in wanted.items()
            if (m, kr) not in linked
        ],
    )
    if added or stale:
        bump_data_version(conn, now)
    return StoredSuggestions(added=added, removed=len(stale))


def confirm_link(conn: Connection, milestone: Ref, key_result: Ref, *, now: datetime) -> LinkOrigin | None:
    """Store the link with origin `confirmed`; returns the origin it had before (None when new).

    A suggestion's score is kept as the evidence for the confirmation.
    """
    now = require_utc(now, "now")
    table = _links()
    found = conn.execute(
        select(table.c.origin, table.c.score).where(_pair(table, milestone, key_result))
    ).first()
    score = found.score if found is not None else None
    if upsert(conn, table, [_row(milestone, key_result, LinkOrigin.CONFIRMED, score, now)]):
        bump_data_version(conn, now)
    return LinkOrigin(found.origin) if found is not None else None


def _pair(table: Table, milestone: Ref, key_result: Ref) -> ColumnElement[bool]:
    return and_(
        table.c.milestone_source == milestone.source,
        table.c.milestone_id == milestone.remote_id,
        table.c.kr_source == key_result.source,
        table.c.kr_id == key_result.remote_id,
    )


def _row(
    milestone: Ref, key_result: Ref, origin: LinkOrigin, score: float | None, now: datetime
) -> dict[str, object]:
    return {
        "milestone_source": milestone.source,
        "milestone_id": milestone.remote_id,
        "kr_source": key_result.source,
        "kr_id": key_result.remote_id,
        "origin": origin.value,
        "score": score,
        "synced_at": now,
    }


# --- finding what a user names ------------------------------------------------------------------------


def find_milestones(conn: Connection, name: str) -> list[Milestone]:
    """Milestones `name` refers to: `source:remote_id` first, else the milestone's key (in any tracker).

    Deleted milestones are not found.
    """
    from bridge.store.snapshot import read_milestones

    table: Table = MilestoneRow.__table__  # type: ignore[attr-defined]
    live = table.c.deleted.is_(False)
    if ":" in name:
        source, remote_id = name.split(":", 1)
        found = read_milestones(conn, and_(live, table.c.source == source, table.c.remote_id == remote_id))
        if found:
            return found
    return read_milestones(conn, and_(live, table.c.key == name))


def stored_key_result(conn: Connection, ref: Ref) -> str | None:
    """The title of a key result held in the store, or None."""
    table: Table = KeyResultRow.__table__  # type: ignore[attr-defined]
    return conn.execute(
        select(table.c.title).where(and_(table.c.source == ref.source, table.c.remote_id == ref.remote_id))
    ).scalar()


def stored_key_result_ids(conn: Connection, limit: int = 20) -> list[Ref]:
    table: Table = KeyResultRow.__table__  # type: ignore[attr-defined]
    rows = conn.execute(
        select(table.c.source, table.c.remote_id).order_by(table.c.source, table.c.remote_id).limit(limit)
    )
    return [Ref(r.source, r.remote_id) for r in rows]
