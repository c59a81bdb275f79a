"""Connecting to the store, migrating it under a lock, and bulk upserts.

SQLite runs in WAL mode with explicit transactions (`BEGIN`, or `BEGIN IMMEDIATE` for writers, so a
writer waits for the lock up front instead of failing half-way). PostgreSQL serialises migrations with a
transaction-level advisory lock, which also works behind PgBouncer's transaction pooling.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, Table, create_engine, event, or_, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.engine.cursor import CursorFetchStrategy
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bridge.errors import StoreError, StoreLost, UserError
from bridge.store.chunks import chunked
from bridge.store.types import JSONList, UTCDateTime, json_list_text

if TYPE_CHECKING:
    from bridge.config import BridgeConfig
    from bridge.store.migrate import Migration

log = logging.getLogger(__name__)

UPSERT_CHUNK = 5000
SQLITE_BUSY_TIMEOUT_S = 60
SQLITE_CHECKPOINT_PAGES = 10_000
SQLITE_CACHE_KIB = 32 * 1024
"""Page cache per connection: large enough for the indexes a page of upserts touches."""
SQLITE_VALUES = 999
"""Values bound in one multi-row SQLite `INSERT` (the limit of SQLite before 3.32; 124 rows of status
history a statement)."""
SCHEMA_HEAD = "announce01"
"""The newest migration's revision (a test holds it equal to the migrations' one head): a store found at
it is current, told by one query, without loading the migration tooling (opening a current store:
0.075 -> 0.008 s, Alembic's import included)."""
PROBE_TIMEOUT_S = 5
"""How long the connection that tells a lost store from a failed statement waits for the server."""


def redact_url(url: str) -> str:
    """A URL safe to print: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is printed as nothing but its scheme
        return url.split(":", 1)[0] + ":..."


class StoreMissing(UserError):
    """The store a command reads is not there, or has no current schema: the message names the store
    and the command that makes it (`bridge db upgrade`, `bridge pull`)."""


class Store:
    """The normalised store behind one SQLAlchemy engine.

    An SQLite store's file is created only when `create` is true (the commands that set a store up:
    `db upgrade`, `pull`, `sync`, `run`, `demo`); every connection after that opens the file read-write
    without creating it, and each transaction first checks that the file it opened is still the one at
    the path, so a file deleted or replaced under a running process is an error, never a new empty store.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5, create: bool = True) -> None:
        self.url = url
        self._file = _sqlite_file(url)
        self._identity: tuple[int, int] | None = None
        if self._file is not None:
            _prepare_file(self._file, url, create=create)
            self._identity = _identity(self._file)
        self.engine = _create_engine(url, echo=echo, pool_size=pool_size, file=self._file)

    @classmethod
    def open(cls, config: BridgeConfig, *, upgrade: bool = True, create: bool = True) -> Store:
        """The configured store, reachable and (unless told otherwise) migrated to the newest schema.

        Long-running commands (`sync`, the daemon) open the store this way, so a new version's
        migrations apply on start, under the migration lock. Without `upgrade` (the commands that only
        read: `report`, `explain`, `status`), or with `store.auto_upgrade = false` in the config, the
        store must already exist at the newest schema: nothing is created or migrated, and
        `StoreMissing` names what to run. Without `create`, a store must exist (it may be migrated).
        """
        migrate = upgrade and config.store.auto_upgrade
        try:
            store = cls(
                config.store_url(),
                echo=config.store.echo,
                pool_size=config.store.pool_size,
                create=create and migrate,
            )
        except StoreMissing as exc:
            if migrate or not upgrade:
                raise
            held_back = "with store.auto_upgrade = false only `bridge db upgrade` does"
            raise StoreMissing(f"{exc}; {held_back}") from None
        try:
            store.ping()
            if migrate:
                if not store.at_head():
                    store.upgrade()
            else:
                store.require_current(held_back=upgrade)
        except BaseException:
            store.close()
            raise
        return store

    def require_current(self, *, held_back: bool = False) -> None:
        """Raise `StoreMissing` unless the schema is at the newest revision this version knows;
        `held_back` says the command would have migrated it but for `store.auto_upgrade = false`."""
        if self.at_head():
            return
        from bridge.store.migrate import head_revision, is_known

        current, head = self.current_revision(), head_revision()
        if current == head:
            return
        where = redact_url(self.url)
        why = (
            " (store.auto_upgrade is false, so no command migrates it: review the SQL with "
            "`bridge db upgrade --sql`, then run `bridge db upgrade`)"
            if held_back
            else ""
        )
        if current is None:
            raise StoreMissing(
                f"the store at {where} has no schema yet{why}: run `bridge db upgrade`"
                f"{'' if held_back else ' (or `bridge pull`)'} to create it, or check store.url"
            )
        if not is_known(current):
            raise StoreMissing(
                f"the store at {where} is at schema revision {current}, which this version does not know "
                f"(its newest is {head}): a newer version migrated it; run that version, or take the store "
                "back with its `bridge db downgrade`"
            )
        raise StoreMissing(
            f"the store at {where} is at schema revision {current}, this version needs {head}{why}: "
            "run `bridge db upgrade`"
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)})"

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise `StoreError` unless the database answers."""
        self._check_file()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise self._failure(exc, "is unreachable") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self._guard(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: everything in it lands together or not at all."""
        with self._guard(), self.engine.connect() as raw:
            conn = raw.execution_options(sqlite_begin="IMMEDIATE") if self.dialect == "sqlite" else raw
            with conn.begin():
                yield conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Database errors leave as `StoreError` (a `BridgeError`): the tracker whose transaction failed is
        recorded as failed and the others go on; the message names the store without its password."""
        self._check_file()
        try:
            yield
        except DBAPIError as exc:
            raise self._failure(exc, "failed") from exc

    def _failure(self, exc: DBAPIError, what: str) -> StoreError:
        """The error for a failed database call: `StoreLost`, naming the fix, when a new connection
        cannot reach the database either (a server's connection errors on PostgreSQL); else a
        `StoreError` quoting the driver's first line."""
        if (
            self._file is None
            and self.dialect != "sqlite"
            and isinstance(exc, OperationalError | InterfaceError)
        ):
            reason = self._probe()
            if reason is not None:
                return StoreLost(lost_store_message(self.url, reason))
        return StoreError(f"the store at {redact_url(self.url)} {what}: {_reason(exc)}")

    def _probe(self) -> str | None:
        """None when a new connection (outside the pool) reaches the database; else why not."""
        dialect = self.engine.dialect
        args, options = dialect.create_connect_args(self.engine.url)
        if self.dialect == "postgresql":
            options.setdefault("connect_timeout", PROBE_TIMEOUT_S)
        try:
            dialect.connect(*args, **options).close()
        except Exception as exc:
            # psycopg says `connection failed: connection to server at "h", port 5432 failed: FATAL:  why`
            return _first_line(str(exc)).rpartition("FATAL:")[2].strip() or type(exc).__name__
        return None

    def _check_file(self) -> None:
        """An SQLite store whose file is gone or replaced since it was opened is an error: pooled
        connections would go on writing to the deleted file, and new ones would find nothing."""
        if self._file is None:
            return
        if _identity(self._file) != self._identity:
            state = "was deleted" if not self._file.exists() else "was replaced by another file"
            raise StoreError(
                f"the store at {redact_url(self.url)} is unreachable: unable to open database file "
                f"{self._file}, it {state} while this command ran (nothing more is written to it). "
                "Restore it, or run `bridge db upgrade` to create a new store, then start again"
            )

    def upgrade(self, revision: str = "head") -> Migration:
        """Bring the schema to `revision` under a lock, so concurrent starters do not race."""
        from bridge.store.migrate import run_upgrade

        return self._migrate(run_upgrade, revision)

    def downgrade(self, revision: str) -> Migration:
        """Take the schema back to `revision` under the same lock."""
        from bridge.store.migrate import run_downgrade

        return self._migrate(run_downgrade, revision)

    def _migrate(self, step: Callable[[Store, str], Migration], revision: str) -> Migration:
        try:
            return step(self, revision)
        except OperationalError as exc:
            raise self._failure(exc, "could not be migrated") from exc

    def at_head(self) -> bool:
        """Whether the schema is at `SCHEMA_HEAD` (one revision, this version's newest), read directly.
        False also when there is no schema or no database: the migration path then says which."""
        try:
            with self.read() as conn:
                # asked first, so a new store's first start leaves no error in PostgreSQL's log
                if not conn.dialect.has_table(conn, "alembic_version"):
                    return False
                found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        except StoreError:
            return False
        return list(found) == [SCHEMA_HEAD]

    def current_revision(self) -> str | None:
        from bridge.store.migrate import current_revision

        with self.read() as conn:
            return current_revision(conn)


def _reason(exc: DBAPIError) -> str:
    reason = _first_line(str(exc.orig)) if exc.orig is not None else str(exc)
    return reason or type(exc).__name__


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def lost_store_message(url: str, reason: str) -> str:
    """What to tell a user whose store's database is missing, refuses the credentials or cannot be
    reached (`reason`: the driver's words): which store (password hidden), what is wrong, and the fix."""
    parsed, where = make_url(url), redact_url(url)
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    if parsed.database and "does not exist" in reason:
        return (
            f"the store at {where} is missing: {reason} (dropped or renamed, or store.url names another "
            f"database); nothing was written to it. Create it (`createdb {parsed.database}`) and run "
            "`bridge db upgrade` to set it up, or point store.url (or store.url_env) at the right database"
        )
    if "authentication failed" in reason:
        return (
            f"the store at {where} refuses the credentials: {reason}. Check the user and password in "
            "store.url (or store.url_env)"
        )
    server = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return (
        f"the store at {where} is unreachable: {reason}. Check that the database server at {server} is "
        "running and accepts connections, and that store.url (or store.url_env) is right, then run the "
        "command again"
    )


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite store given as a plain path (not in memory, not an SQLite URI)."""
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or "uri" in parsed.query:
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).absolute()


def _prepare_file(file: Path, url: str, *, create: bool) -> None:
    """Create an SQLite store's file (and its folder) when `create`; else require it to exist."""
    if file.exists():
        return
    if not create:
        raise StoreMissing(
            f"no store at {file} (store.url {redact_url(url)}): run `bridge pull` or `bridge db upgrade` "
            "to create it, or check store.url"
        )
    file.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(file).close()


def _identity(file: Path) -> tuple[int, int] | None:
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def _create_engine(url: str, *, echo: bool, pool_size: int, file: Path | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if file is not None:
            # Read-write without create: a connection opened after the file vanished fails instead of
            # making a new empty database at the path.
            parsed = parsed.set(database=f"file:{quote(str(file))}").update_query_dict(
                {"mode": "rw", "uri": "true"}
            )
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _sqlite_setup(engine, memory=database in ("", ":memory:"))
        return engine
    if parsed.get_backend_name() == "postgresql":
        _require_psycopg(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, echo=echo, pool_size=pool_size, pool_pre_ping=True, future=True)


def _require_psycopg(url: str) -> None:
    """A PostgreSQL store needs the driver that the `postgres` extra installs; without it, say so."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UserError(
            f"the store {redact_url(url)} is PostgreSQL, but its driver (psycopg) is not installed: "
            "pip install 'milestone-bridge[postgres]'"
        ) from None


def _sqlite_setup(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            _enter_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Pulls commit a page at a time: checkpoint the WAL every ~40 MB rather than every 4 MB
            # (each checkpoint syncs the database file), and cut the file back after a checkpoint.
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_CHECKPOINT_PAGES * 4096 * 2}")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _enter_wal(cursor: Any) -> None:
    """Put the store's file in WAL mode (a no-op once it is).

    A new file, or one in rollback-journal mode, is switched by rewriting its header, and SQLite does not
    wait (busy_timeout) for that write lock: the connection already holds a read lock, so waiting could
    deadlock. When two processes open a new store at the same instant (the daemon starting, and anyone
    reading its store: `bridge status`, a health check), one of them failed at once with "database is
    locked", and a daemon whose first connection failed so exited. Try again until the other process's
    switch is committed (ours then finds the file in WAL mode), within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, stamp: str | None = None
) -> int:
    """Insert `rows`, or update the stored row with the same primary key where any value differs.

    Rows whose values all equal the stored ones are left alone (their `stamp` column, `synced_at` by
    default, does not move). Returns how many rows were inserted or changed. Runs in chunks inside the
    caller's transaction. All rows must have the same keys.
    """
    if not rows:
        return 0
    stamp = stamp if stamp is not None else ("synced_at" if "synced_at" in table.c else None)
    keys = [column.name for column in table.primary_key.columns]
    columns = list(rows[0].keys())
    compared = [name for name in columns if name not in keys and name != stamp]
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return _sqlite_upsert(conn, table, rows, keys, columns, compared)
    # PostgreSQL refuses to update one row twice in a statement (CardinalityViolation) where SQLite
    # lets the later row win: keep the last row for each key, as SQLite ends up with.
    by_key = {tuple(row[name] for name in keys): row for row in rows}
    if len(by_key) < len(rows):
        rows = list(by_key.values())
    stmt = postgresql.insert(table)
    updates = {name: stmt.excluded[name] for name in columns if name not in keys}
    if updates:
        changed = [table.c[name].is_distinct_from(stmt.excluded[name]) for name in compared]
        where = or_(*changed) if changed else None
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=updates, where=where)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    # psycopg does not sum rowcounts through SQLAlchemy, so PostgreSQL counts the rows RETURNING hands
    # back (batched by SQLAlchemy's insertmanyvalues, its fastest path there).
    counted = stmt.returning(table.c[keys[0]])
    total = 0
    for chunk in chunked(rows, UPSERT_CHUNK):
        total += len(conn.execute(counted, list(chunk)).all())
    return total


def _sqlite_upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: list[str],
    columns: list[str],
    compared: list[str],
) -> int:
    """SQLite's path: one statement text, rows as tuples straight to the driver's executemany.

    Each value still goes through its column type's bind processor (so `UTCDateTime` refuses naive
    datetimes and `JSONList` writes its JSON), but without SQLAlchemy's per-row parameter handling,
    which costs more than SQLite's own work. `IS NOT` is SQLite's null-safe "is distinct from";
    executemany's rowcount counts the rows inserted or changed, not those left alone.
    """
    dialect = conn.dialect
    processors = [_sqlite_processor(table.c[name].type, dialect) for name in columns]
    quoted = [dialect.identifier_preparer.quote(name) for name in columns]
    name_of = dict(zip(columns, quoted, strict=True))
    target = dialect.identifier_preparer.format_table(table)
    head = f"INSERT INTO {target} ({', '.join(quoted)})"
    conflict = ", ".join(name_of[k] for k in keys)
    updates = [name_of[name] for name in columns if name not in keys]
    if updates:
        assignments = ", ".join(f"{q} = excluded.{q}" for q in updates)
        tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
        if compared:
            tail += " WHERE " + " OR ".join(
                f"{target}.{name_of[n]} IS NOT excluded.{name_of[n]}" for n in compared
            )
    else:
        tail = f" ON CONFLICT ({conflict}) DO NOTHING"
    converting = [(i, proc) for i, proc in enumerate(processors) if proc is not None]
    # each column's last value and its text: rows share one stamp (`synced_at`), converted once
    last: list[Any] = [None] * len(columns)
    text: list[Any] = [None] * len(columns)
    prepared = []
    for row in rows:
        values = [row[name] for name in columns]
        for i, proc in converting:
            value = values[i]
            if value is None:
                continue
            if value is not last[i]:
                last[i], text[i] = value, proc(value)
            values[i] = text[i]
        prepared.append(tuple(values))
    return _sqlite_insert_rows(conn, head, tail, len(columns), prepared)


def insert_new(
    conn: Connection,
    table: Table,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    *,
    times_as_text: bool = False,
) -> int:
    """Insert rows that never change once written (status history), skipping those already stored.

    The fast path for the largest table: on SQLite the rows go to the driver as the values of multi-row
    statements, with datetimes already in the store's UTC text form, bypassing per-row type processing.
    `times_as_text`: the rows' time columns already hold that text for aware UTC (on PostgreSQL, ISO text
    with its `+00:00`), as `bridge.store.packed` makes them. Returns how many rows were new.
    """
    if not rows:
        return 0
    if conn.dialect.name != "sqlite":
        return _postgres_copy_new(conn, table, rows, columns, checked=times_as_text)
    head = f"INSERT INTO {table.name} ({', '.join(columns)})"
    timestamps = [] if times_as_text else _time_columns(table, columns)
    prepared: Sequence[Any] = rows
    if timestamps:
        # column by column: the time columns converted in one comprehension each, then the rows put
        # back together by `zip` (a history has millions: half the CPU of a copy and a tuple per row)
        values: list[Any] = list(zip(*rows, strict=True))
        for i in timestamps:
            # `sqlite_time` inline for the common aware-UTC value
            values[i] = [
                v.isoformat(" ", "microseconds")[:-6] if v is not None and v.tzinfo is UTC else sqlite_time(v)
                for v in values[i]
            ]
        prepared = list(zip(*values, strict=True))
    return _sqlite_insert_rows(conn, head, " ON CONFLICT DO NOTHING", len(columns), prepared)


def _sqlite_insert_rows(conn: Connection, head: str, tail: str, width: int, rows: Sequence[Any]) -> int:
    """`head VALUES (...), (...) tail` for `rows` (each `width` values), as many rows a statement as
    `SQLITE_VALUES` allows; returns the rows inserted or changed.

    One statement for many rows does SQLite's work for a row in its own loop, where the driver's
    executemany binds, steps and resets a statement for each row: 200,000 rows of status history,
    0.86-0.94 -> 0.41-0.47 s of CPU. Rows go in their order, so a later row for a key still meets the
    earlier one as a conflict, as it would in separate statements."""
    per = max(1, SQLITE_VALUES // width)
    one = f"({', '.join('?' * width)})"
    full = f"{head} VALUES {', '.join([one] * per)}{tail}"
    total = 0
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        sql = full if len(chunk) == per else f"{head} VALUES {', '.join([one] * len(chunk))}{tail}"
        result = conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        total += max(result.rowcount, 0)
    return total


def _time_columns(table: Table, columns: Sequence[str]) -> list[int]:
    """The positions in `columns` of `table`'s time columns (`UTCDateTime`)."""
    return [i for i, name in enumerate(columns) if isinstance(table.c[name].type, UTCDateTime)]


def _postgres_copy_new(
    conn: Connection, table: Table, rows: Sequence[Sequence[Any]], columns: Sequence[str], *, checked: bool
) -> int:
    """PostgreSQL's path: the rows go by `COPY` into a temporary table shaped like `table`, then one
    `INSERT ... SELECT ... ON CONFLICT DO NOTHING` keeps the new ones; all in the caller's transaction
    (the driver connection is the one SQLAlchemy holds), so a page's history still lands with its cursor.
    Timestamps are checked for an offset first, as `UTCDateTime` would (unless `checked`: text made with
    its offset by `bridge.store.packed`)."""
    timestamps = [] if checked else _time_columns(table, columns)
    for row in rows:
        for i in timestamps:
            value = row[i]
            if value is not None and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None):
                raise ValueError(
                    f"naive datetime {value.isoformat()} refused: the store keeps aware UTC only"
                )
    quote_name = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    staging = quote_name(f"incoming_{table.name}")
    names = ", ".join(quote_name(name) for name in columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {target}) ON COMMIT DROP")
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING")
        inserted = max(cursor.rowcount, 0)
        cursor.execute(f"DROP TABLE {staging}")
    return int(inserted)


def sqlite_time(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime writes (so `UTCDateTime` reads it back), from aware UTC."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _require_aware(value).astimezone(UTC)
    # `YYYY-MM-DD HH:MM:SS.ffffff+00:00` without its offset: one call, no intermediate naive datetime
    return value.isoformat(" ", "microseconds")[:-6]


def _sqlite_processor(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """How a value of `column_type` is bound on SQLite: the store's own types straight to the text
    SQLAlchemy would have written through them (without its two steps per value), others as SQLAlchemy
    binds them."""
    if isinstance(column_type, UTCDateTime):
        return sqlite_time
    if isinstance(column_type, JSONList):
        return json_list_text
    processor: Callable[[Any], Any] | None = column_type.bind_processor(dialect)
    return processor


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: the store keeps aware UTC only")
    return value


def driver_batches(conn: Connection, query: Any, size: int = 20_000) -> Iterator[Sequence[Any]]:
    """The rows of `query` as the driver's own tuples, `size` at a time: on PostgreSQL from a
    server-side cursor of the driver itself, so no SQLAlchemy row objects, no column types' conversions
    (the caller selects what needs none) and no whole result held in memory at once. Measured at a
    million tasks, SQLAlchemy's rows and the UTC column type's call for each timestamp were over half of
    the load. The query's parameters go to the driver as they are: plain values only (no column type's
    conversion of them is applied). The results come in the binary format: the server sends a
    million tasks' timestamps and numbers without writing them as text, and the driver reads them without
    parsing it (a million tasks' columns, measured by `COPY`: 1.7-1.85 s as text, 1.37 s binary; the
    driver's own reading 3 % less CPU). On SQLite, the tuples of the driver's cursor SQLAlchemy executed
    the query on, without its rows (at 100,000 tasks a tenth of the load's CPU went to making them).
    Elsewhere, the rows SQLAlchemy gives, in the same batches."""
    dialect = conn.dialect.name
    if dialect != "postgresql":
        result = conn.execute(query)
        # the cursor's rows are the result's only where SQLAlchemy buffers none of them (its default)
        if dialect != "sqlite" or type(result.cursor_strategy) is not CursorFetchStrategy:
            yield from result.partitions(size)
            return
        try:
            cursor = result.cursor
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            result.close()
        return
    compiled = query.compile(dialect=conn.dialect)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor(name="bridge_batches", binary=True) as cursor:
        cursor.itersize = size
        cursor.execute(str(compiled), compiled.params)
        while batch := cursor.fetchmany(size):
            yield batch
