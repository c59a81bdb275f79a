"""`bridge db copy`: every row of one store into another, e.g. from SQLite to PostgreSQL.

Moving a store keeps what a fresh pull could not bring back: confirmed and suggested OKR links, what the
bridge last wrote into each tracker (so it never mistakes its own values for a user's), cursors (so the
next pull is incremental), run history and the analysis generation. The copy reads the source in one
transaction (a consistent snapshot) and writes the target in one transaction, so it lands whole or not
at all. The target must be empty: it is migrated to the newest schema first and refused if any table
holds a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Integer, func, select, text

from bridge.errors import UserError
from bridge.store.engine import Store, redact_url
from bridge.store.migrate import head_revision
from bridge.store.models import metadata

BATCH = 5_000
"""Rows read and inserted at a time: bounded memory whatever the store's size."""


@dataclass
class CopyResult:
    rows: dict[str, int] = field(default_factory=dict)
    """Table name -> rows copied, in the order the tables were copied (parents before children)."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_store(
    source: Store, target: Store, *, on_table: Callable[[str, int], None] | None = None
) -> CopyResult:
    """Copy every table of `source` into the empty store `target`; `on_table(name, rows)` after each."""
    if _same_database(source, target):
        raise UserError(f"the source and the target are the same store ({redact_url(source.url)})")
    head = head_revision()
    current = source.current_revision()
    if current != head:
        raise UserError(
            f"the source store {redact_url(source.url)} is at revision {current or 'none'}, not {head}: "
            "run `bridge db upgrade` on it first"
        )
    target.upgrade()
    tables = list(metadata.sorted_tables)
    with target.read() as conn:
        filled = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar_one()]
    if filled:
        raise UserError(
            f"the target store {redact_url(target.url)} is not empty (rows in {', '.join(filled)}): "
            "copy only into a new, empty database"
        )
    result = CopyResult()
    with source.read() as src, target.write() as dst:
        for table in tables:
            count = 0
            rows = src.execution_options(yield_per=BATCH).execute(select(table))
            for chunk in rows.partitions(BATCH):
                dst.execute(table.insert(), [dict(row._mapping) for row in chunk])
                count += len(chunk)
            result.rows[table.name] = count
            if on_table is not None:
                on_table(table.name, count)
        if target.dialect == "postgresql":
            for table in tables:
                for column in table.primary_key.columns:
                    if isinstance(column.type, Integer) and column.autoincrement is True:
                        # Rows came with their ids: move the sequence past them for the next insert.
                        dst.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                                f'COALESCE(MAX("{column.name}"), 1), MAX("{column.name}") IS NOT NULL) '
                                f'FROM "{table.name}"'
                            ),
                            {"table": table.name, "column": column.name},
                        )
    return result


def _same_database(source: Store, target: Store) -> bool:
    a, b = source.engine.url, target.engine.url
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return False
        return Path(a.database).resolve() == Path(b.database).resolve()
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)
