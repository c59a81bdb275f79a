"""The milestone completions the bridge has seen (`bridge.completion`), read and recorded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, tuple_

from bridge.completion import Completion
from bridge.domain import Ref, require_utc
from bridge.store.chunks import chunked
from bridge.store.models import CompletionWatchRow, MilestoneCompletionRow


def _table() -> Any:
    return MilestoneCompletionRow.__table__  # type: ignore[attr-defined]


def _watch() -> Any:
    return CompletionWatchRow.__table__  # type: ignore[attr-defined]


def _completion(row: Any) -> Completion:
    return Completion(
        Ref(row.source, row.milestone_id),
        row.name,
        bool(row.done),
        row.completions,
        row.done_at,
        bool(row.silent),
        row.seen_at,
    )


def load(conn: Connection, source: str | None = None) -> dict[Ref, Completion]:
    """The completions of tracker `source` (of every tracker when None)."""
    t = _table()
    query = select(t) if source is None else select(t).where(t.c.source == source)
    return {c.milestone: c for c in map(_completion, conn.execute(query))}


def recent(conn: Connection, since: datetime, *, announced: bool = False) -> list[Completion]:
    """The milestones done now whose last completion the bridge saw at `since` or later; with
    `announced`, only those whose completion is one to announce (`Completion.announced`): a tracker's
    first cycle records every milestone done before the bridge watched, thousands in a large store."""
    t = _table()
    wanted = and_(t.c.done.is_(True), t.c.done_at >= require_utc(since))
    if announced:
        wanted = and_(wanted, t.c.silent.is_(False), t.c.completions > 0)
    rows = conn.execute(select(t).where(wanted))
    return sorted(map(_completion, rows), key=lambda c: (c.name, str(c.milestone)))


def watched_since(conn: Connection, source: str) -> datetime | None:
    """When the bridge started watching tracker `source`'s milestones (None: not yet)."""
    t = _watch()
    found: datetime | None = conn.execute(select(t.c.since).where(t.c.source == source)).scalar()
    return found


def save(conn: Connection, source: str, completions: Iterable[Completion], *, now: datetime) -> None:
    """Record the changed `completions` of tracker `source`, and that the bridge watches it from `now`
    on (when it did not yet)."""
    rows = [
        {
            "source": c.milestone.source,
            "milestone_id": c.milestone.remote_id,
            "name": c.name,
            "done": c.done,
            "completions": c.completions,
            "done_at": c.done_at,
            "silent": c.silent,
            "seen_at": c.seen_at,
        }
        for c in completions
    ]
    if rows:
        # Written through the column types (not `upsert`'s driver path), so stored times compare with
        # bound ones in `recent`.
        t = _table()
        keys = [(row["source"], row["milestone_id"]) for row in rows]
        for chunk in chunked(keys):  # a first cycle records every milestone of the store at once
            conn.execute(t.delete().where(tuple_(t.c.source, t.c.milestone_id).in_(chunk)))
        conn.execute(t.insert(), rows)
    if watched_since(conn, source) is None:
        conn.execute(_watch().insert(), [{"source": source, "since": require_utc(now, "now")}])
