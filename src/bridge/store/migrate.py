"""Alembic migrations run from code, under a lock, on the store's own engine; and what a DBA reviews
before they run: the revision history and the SQL a migration would execute (offline, per dialect)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, text

from bridge.errors import UserError

if TYPE_CHECKING:
    from bridge.store.engine import Store

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_ID = 0x6D62_7269_6467_6501 & 0x7FFF_FFFF_FFFF_FFFF
"""The PostgreSQL advisory lock key held while migrating ("mbridge" in hex, kept positive)."""


DIALECTS = ("postgresql", "sqlite")
"""The databases a store can live in, and so the dialects offline SQL is rendered for."""


def alembic_config(connection: Connection | None = None, output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    return scripts().get_current_head()


def heads() -> list[str]:
    """Every head of the revision graph: one, unless two branches each added a revision on the same one."""
    return list(scripts().get_heads())


def is_known(revision: str) -> bool:
    """Whether `revision` is one of this version's revisions (a store migrated by a newer version is not)."""
    try:
        return scripts().get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """One revision of the schema: its id, the one it follows, and the first line of its description."""

    id: str
    follows: str | None
    summary: str
    head: bool


def history() -> list[RevisionInfo]:
    """Every revision this version knows, oldest first."""
    found = []
    for script in scripts().walk_revisions():
        follows = script.down_revision
        found.append(
            RevisionInfo(
                id=script.revision,
                follows=follows if isinstance(follows, str) or follows is None else ",".join(follows),
                summary=(script.doc or "").strip().splitlines()[0] if script.doc else "",
                head=script.is_head,
            )
        )
    return found[::-1]


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
    return _migrate(store, revision, down=False)


def run_downgrade(store: Store, revision: str) -> Migration:
    """Take the schema back to `revision` (an id, `base`, or `-1` for one step), under the same lock as
    an upgrade; what the undone revisions added is dropped with its data."""
    return _migrate(store, revision, down=True)


def _migrate(store: Store, revision: str, *, down: bool) -> Migration:
    with store.write() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        before = current_revision(conn)
        with _revision_errors(revision):
            (command.downgrade if down else command.upgrade)(alembic_config(conn), revision)
        after = current_revision(conn)
    if before != after:
        log.info("store migrated from %s to %s", before or "empty", after or "empty")
    return Migration(before, after)


def offline_sql(dialect: str, start: str | None, target: str = "head", *, down: bool = False) -> str:
    """The SQL that takes a `dialect` database from revision `start` (None: an empty database) to
    `target`, as a script a DBA can review and run; nothing is connected to."""
    if dialect not in DIALECTS:
        raise UserError(f"{dialect!r} is not a store's database; one of {', '.join(DIALECTS)}")
    output = io.StringIO()
    cfg = alembic_config(output=output)
    cfg.attributes["dialect"] = dialect
    with _revision_errors(target):
        if down:
            command.downgrade(cfg, f"{start}:{target}", sql=True)
        else:
            command.upgrade(cfg, f"{start}:{target}" if start else target, sql=True)
    return output.getvalue()


@contextmanager
def _revision_errors(revision: str) -> Iterator[None]:
    """Alembic's complaint about a revision it cannot find or reach, as a user error naming the known ones."""
    try:
        yield
    except (CommandError, RevisionError) as exc:
        known = ", ".join(info.id for info in history())
        raise UserError(
            f"cannot migrate to revision {revision!r}: {exc} (known revisions: {known}, base)"
        ) from None
