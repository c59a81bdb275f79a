"""The `run` table: one row per pull, push and analysis. Every write and query of it is here.

A pull's row is started before its first request (status `running`) and finished with its counts; a
push's row is written once it is done; an analysis's row gives the cycle its generation, a number no
earlier analysis had (replicas sharing a store share the sequence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, func, insert, select, update

from bridge.store.engine import Store
from bridge.store.models import RunRow

ANALYSIS_SOURCE = "*"
"""The `run` rows of whole-store analyses carry this source; they belong to no tracker."""

_TABLE: Any = RunRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RunSummary:
    """One row of the `run` table."""

    id: int
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    items_pulled: int
    items_skipped: int
    writes_planned: int
    writes_done: int
    writes_failed: int
    requests: int
    error: str | None

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at is not None else None


@dataclass(frozen=True)
class RunHistory:
    """The runs of every tracker, as the status page and `bridge status` show them."""

    recent: dict[str, list[RunSummary]]
    """Each tracker's last runs, newest first."""
    last_at: dict[tuple[str, str], datetime]
    """(tracker, `ok` or `failed`) -> when its last run with that outcome finished."""
    last_push: dict[str, RunSummary]
    """Each tracker's newest push."""


def start_pull(store: Store, source: str, now: datetime) -> int:
    """Record that a pull of tracker `source` started at `now`; returns the run's id."""
    with store.write() as conn:
        row = conn.execute(
            insert(_TABLE).values(source=source, kind="pull", started_at=now, status="running")
        )
        key = row.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_pull(
    store: Store,
    run_id: int,
    now: datetime,
    *,
    status: str,
    items_pulled: int,
    items_skipped: int,
    requests: int,
    error: str | None,
) -> None:
    """Record how the pull `run_id` (started at `now`) ended; it finishes no earlier than it started."""
    values = {
        "finished_at": max(now, datetime.now(UTC)),
        "status": status,
        "items_pulled": items_pulled,
        "items_skipped": items_skipped,
        "requests": requests,
        "error": error,
    }
    with store.write() as conn:
        conn.execute(update(_TABLE).where(_TABLE.c.id == run_id).values(**values))


def record_push(
    store: Store,
    source: str,
    now: datetime,
    *,
    failed: bool,
    writes_planned: int,
    writes_done: int,
    writes_failed: int,
    requests: int,
    error: str | None,
) -> None:
    """Record a push of tracker `source` started at `now` and finished just now."""
    values = {
        "source": source,
        "kind": "push",
        "started_at": now,
        "finished_at": max(now, datetime.now(UTC)),
        "status": "failed" if failed else "ok",
        "writes_planned": writes_planned,
        "writes_done": writes_done,
        "writes_failed": writes_failed,
        "requests": requests,
        "error": error,
    }
    with store.write() as conn:
        conn.execute(insert(_TABLE).values(**values))


def new_generation(store: Store, now: datetime) -> int:
    """A number no earlier analysis had, from the store (so replicas share one sequence)."""
    with store.write() as conn:
        row = conn.execute(
            insert(_TABLE).values(
                source=ANALYSIS_SOURCE,
                kind="analyse",
                started_at=now,
                finished_at=max(now, datetime.now(UTC)),
                status="ok",
            )
        )
        key = row.inserted_primary_key
        assert key is not None
        return int(key[0])


def run_history(store: Store, *, limit: int) -> RunHistory:
    """The last `limit` runs of each tracker, its last success and failure, and its newest push, read in
    one transaction. Raises `StoreError` when the store cannot be read."""
    table = _TABLE
    newest = func.row_number().over(
        partition_by=table.c.source, order_by=(table.c.started_at.desc(), table.c.id.desc())
    )
    ranked = select(table, newest.label("position")).where(table.c.source != ANALYSIS_SOURCE).subquery()
    recent = select(ranked).where(ranked.c.position <= limit).order_by(ranked.c.source, ranked.c.position)
    finished = func.max(table.c.finished_at)
    outcomes = (
        select(table.c.source, table.c.status, finished.label("at"))
        .where(table.c.source != ANALYSIS_SOURCE, table.c.status.in_(("ok", "failed")))
        .group_by(table.c.source, table.c.status)
    )
    latest = func.row_number().over(
        partition_by=table.c.source, order_by=(table.c.started_at.desc(), table.c.id.desc())
    )
    pushes_ranked = select(table, latest.label("position")).where(table.c.kind == "push").subquery()
    last_push = select(pushes_ranked).where(pushes_ranked.c.position == 1)
    with store.read() as conn:
        runs = conn.execute(recent).mappings().all()
        ends = conn.execute(outcomes).all()
        pushes = conn.execute(last_push).mappings().all()
    by_tracker: dict[str, list[RunSummary]] = {}
    for row in runs:
        by_tracker.setdefault(row["source"], []).append(_summary(row))
    return RunHistory(
        recent=by_tracker,
        last_at={(source, status): at for source, status, at in ends if at},
        last_push={row["source"]: _summary(row) for row in pushes},
    )


def runs_version(store: Store) -> tuple[Any, ...]:
    """A value that changes whenever a run is recorded, started or finished."""
    query = select(func.count(), func.max(_TABLE.c.id), func.max(_TABLE.c.finished_at))
    with store.read() as conn:
        row = conn.execute(query).one()
    return tuple(row)


def _summary(row: RowMapping) -> RunSummary:
    return RunSummary(
        id=int(row["id"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        items_pulled=int(row["items_pulled"] or 0),
        items_skipped=int(row["items_skipped"] or 0),
        writes_planned=int(row["writes_planned"] or 0),
        writes_done=int(row["writes_done"] or 0),
        writes_failed=int(row["writes_failed"] or 0),
        requests=int(row["requests"] or 0),
        error=row["error"] or None,
    )
