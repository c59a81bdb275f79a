"""Drafted key results and objectives (`bridge okr draft`), kept until adopted.

A draft's id is a digest of its members, so drafting again keeps the ids (and when each draft was first
proposed) of the groups whose members did not change; drafts that no longer hold are dropped, unless
adopted: an adopted draft stays as the record of what it became.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, delete, select, update

from bridge.domain import require_utc
from bridge.store.models import OkrDraftRow


def _drafts() -> Table:
    table: Table = OkrDraftRow.__table__  # type: ignore[attr-defined]
    return table


@dataclass(frozen=True, slots=True)
class StoredDraft:
    """One stored draft: a key result (members: milestones) or an objective (members: drafted key results)."""

    id: str
    kind: str
    position: int
    title: str
    measure: str | None
    unit: str | None
    parent_id: str | None
    members: tuple[str, ...]
    value: float
    share: float
    reasons: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    adopted_as: str | None = None
    adopted_at: datetime | None = None
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SavedDrafts:
    kept: int
    """Drafts already stored with the same members (same id)."""
    added: int
    dropped: int


def save_drafts(conn: Connection, drafts: Sequence[StoredDraft], *, now: datetime) -> SavedDrafts:
    """Make the stored drafts those of `drafts`: a draft already stored keeps its `created_at` and its
    adoption, one no longer drafted is dropped unless it was adopted."""
    now = require_utc(now, "now")
    table = _drafts()
    stored = {row.id: row for row in conn.execute(select(table.c.id, table.c.created_at, table.c.adopted_as))}
    wanted = {d.id for d in drafts}
    doomed = [i for i, row in stored.items() if i not in wanted and row.adopted_as is None]
    if doomed:
        conn.execute(delete(table).where(table.c.id.in_(doomed)))
    kept = 0
    for draft in drafts:
        values = _values(draft, now)
        if draft.id in stored:
            kept += 1
            values.pop("created_at")
            conn.execute(update(table).where(table.c.id == draft.id).values(**values))
        else:
            conn.execute(table.insert().values(**values))
    return SavedDrafts(kept=kept, added=len(drafts) - kept, dropped=len(doomed))


def _values(draft: StoredDraft, now: datetime) -> dict[str, object]:
    return {
        "id": draft.id,
        "kind": draft.kind,
        "position": draft.position,
        "title": draft.title,
        "measure": draft.measure,
        "unit": draft.unit,
        "parent_id": draft.parent_id,
        "members": list(draft.members),
        "value": draft.value,
        "share": draft.share,
        "reasons": list(draft.reasons),
        "terms": list(draft.terms),
        "created_at": now,
        "updated_at": now,
    }


def read_drafts(conn: Connection) -> list[StoredDraft]:
    """Every stored draft: objectives first, then key results, each in the last draft's order."""
    table = _drafts()
    rows = conn.execute(select(table).order_by(table.c.kind.desc(), table.c.position, table.c.id))
    return [
        StoredDraft(
            id=row.id,
            kind=row.kind,
            position=row.position,
            title=row.title,
            measure=row.measure,
            unit=row.unit,
            parent_id=row.parent_id,
            members=tuple(row.members or ()),
            value=row.value,
            share=row.share,
            reasons=tuple(row.reasons or ()),
            created_at=row.created_at,
            updated_at=row.updated_at,
            adopted_as=row.adopted_as,
            adopted_at=row.adopted_at,
            terms=tuple(row.terms or ()),
        )
        for row in rows
    ]


def mark_adopted(conn: Connection, draft_id: str, adopted_as: str, *, now: datetime) -> None:
    """Record what a draft became (`config:KR2.3`, `asana:<goal gid>`)."""
    table = _drafts()
    conn.execute(
        update(table)
        .where(table.c.id == draft_id)
        .values(adopted_as=adopted_as, adopted_at=require_utc(now, "now"))
    )
