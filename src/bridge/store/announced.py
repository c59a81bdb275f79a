"""The `announced` and `key_result_met` tables: chat announcements recorded before they are sent, and
whether each key result's target was met when a cycle last looked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.domain import Ref, require_utc
from bridge.store.engine import upsert
from bridge.store.models import AnnouncedRow, KeyResultMetRow


def _announced() -> Any:
    return AnnouncedRow.__table__  # type: ignore[attr-defined]


def _met() -> Any:
    return KeyResultMetRow.__table__  # type: ignore[attr-defined]


def claim(conn: Connection, key: str, channel: str, *, kind: str, headline: str, now: datetime) -> bool:
    """Record that `key` is about to be sent to `channel`; False when it already was (or is being) sent.

    The caller commits before sending. The insert does nothing where the row exists, so of two
    processes racing for the same key exactly one gets True (the other's insert waits for the first's
    commit on PostgreSQL, for its write lock on SQLite, then finds the row)."""
    t = _announced()
    row = {"key": key, "channel": channel, "kind": kind, "headline": headline, "outcome": "sending",
           "recorded_at": require_utc(now, "now")}  # fmt: skip
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    # RETURNING, not rowcount: drivers differ on what rowcount says of an insert that did nothing.
    inserted = conn.execute(dialect.insert(t).values(**row).on_conflict_do_nothing().returning(t.c.key))
    return inserted.first() is not None


def finish(
    conn: Connection,
    key: str,
    channel: str,
    *,
    sent: bool,
    status: int | None,
    detail: str | None,
    now: datetime,
) -> None:
    """The POST's outcome: `sent`, or `failed` with its HTTP status (None when no answer came)."""
    t = _announced()
    conn.execute(
        update(t)
        .where(and_(t.c.key == key, t.c.channel == channel))
        .values(
            outcome="sent" if sent else "failed",
            status=status,
            detail=detail,
            finished_at=require_utc(now, "now"),
        )
    )


@dataclass(frozen=True, slots=True)
class Announced:
    key: str
    channel: str
    kind: str
    headline: str
    outcome: str
    status: int | None
    detail: str | None
    recorded_at: datetime
    finished_at: datetime | None


def announced(conn: Connection, channel: str | None = None) -> list[Announced]:
    """Every recorded announcement (of one channel), oldest first."""
    t = _announced()
    query = select(t).order_by(t.c.recorded_at, t.c.key)
    if channel is not None:
        query = query.where(t.c.channel == channel)
    return [
        Announced(
            r.key, r.channel, r.kind, r.headline, r.outcome, r.status, r.detail, r.recorded_at, r.finished_at
        )
        for r in conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class MetState:
    """A key result's target met or not when last seen, and how many times it has been met."""

    met: bool
    times: int


def met_states(conn: Connection) -> dict[Ref, MetState]:
    t = _met()
    return {Ref(r.source, r.remote_id): MetState(bool(r.met), int(r.times)) for r in conn.execute(select(t))}


def save_met_states(conn: Connection, states: dict[Ref, MetState], *, now: datetime) -> None:
    """Store `states` (inserted or updated: two cycles of a daemon's trackers may store the same one)."""
    at = require_utc(now, "now")
    rows = [
        {"source": ref.source, "remote_id": ref.remote_id, "met": state.met, "times": state.times, "at": at}
        for ref, state in sorted(states.items(), key=lambda item: str(item[0]))
    ]
    upsert(conn, _met(), rows, stamp="at")
