"""Alembic migrations run from code, under a lock, on the store's own engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from bridge.store.engine import Store

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_ID = 0x6D62_7269_6467_6501 & 0x7FFF_FFFF_FFFF_FFFF
"""The PostgreSQL advisory lock key held while migrating ("mbridge" in hex, kept positive)."""


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True, slots=True)
class Migration:
    """The schema revision before and after an upgrade, both read under the migration lock."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def run_upgrade(store: Store, revision: str = "head") -> Migration:
    """Upgrade inside one transaction that first takes the migration lock.

    SQLite: `BEGIN IMMEDIATE` holds the database's write lock (DDL is transactional there).
    PostgreSQL: `pg_advisory_xact_lock`, released when the transaction ends.
    Whoever waits finds the schema already at head and does nothing.
    """
    with store.write() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        before = current_revision(conn)
        command.upgrade(alembic_config(conn), revision)
        after = current_revision(conn)
    if before != after:
        log.info("store migrated from %s to %s", before or "empty", after)
    return Migration(before, after)
