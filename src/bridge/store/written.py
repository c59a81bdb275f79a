"""The `written` table: what the bridge last wrote into each tracker field, read and recorded."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select

from bridge.domain import Ref, require_utc
from bridge.store.engine import upsert
from bridge.store.models import WrittenRow
from bridge.written import Written, WrittenValue, value_hash, value_text


@dataclass(frozen=True, slots=True)
class Record:
    """One field of one item now holds `value` because the bridge wrote it (or found it so).

    With `forget`, the bridge no longer owns the field (a link or label it removed): the row goes.
    """

    item: Ref
    field: str
    value: Any = None
    forget: bool = False


def load_written(conn: Connection, source: str) -> Written:
    table: Any = WrittenRow.__table__  # type: ignore[attr-defined]
    rows = conn.execute(select(table).where(table.c.source == source))
    found = {}
    for row in rows:
        value = json.loads(row.value) if row.value is not None else None
        found[(Ref(source, row.remote_id), row.field)] = WrittenValue(value, row.at, row.generation)
    return Written(found)


def record_written(
    conn: Connection, source: str, records: Iterable[Record], *, at: datetime, generation: int = 0
) -> int:
    """Upsert the records' rows (and delete the forgotten ones); returns rows changed."""
    at = require_utc(at, "at")
    table: Any = WrittenRow.__table__  # type: ignore[attr-defined]
    keep: dict[tuple[str, str], dict[str, Any]] = {}
    gone: set[tuple[str, str]] = set()
    for record in records:
        key = (record.item.remote_id, record.field)
        if record.forget:
            gone.add(key)
            keep.pop(key, None)
            continue
        gone.discard(key)
        keep[key] = {
            "source": source,
            "remote_id": record.item.remote_id,
            "field": record.field,
            "value_hash": value_hash(record.value),
            "value": value_text(record.value),
            "generation": generation,
            "at": at,
        }
    changed = 0
    for remote_id, field in sorted(gone):
        result = conn.execute(
            delete(table).where(
                and_(table.c.source == source, table.c.remote_id == remote_id, table.c.field == field)
            )
        )
        changed += max(result.rowcount, 0)
    # `at` is compared too: a value found unchanged is stamped again, so it is not read next cycle.
    return changed + upsert(conn, table, list(keep.values()))
