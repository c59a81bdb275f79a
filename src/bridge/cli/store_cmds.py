"""`bridge db ...`: the store's schema (where it is, its history, the SQL a migration runs, upgrading and
downgrading it), and copying a store into a new one."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bridge.cli.group import BridgeGroup
from bridge.cli.shared import ConfigOption, JsonOption, print_json, read_config
from bridge.cli_errors import reports_errors

if TYPE_CHECKING:
    from bridge.config import BridgeConfig
    from bridge.store import Store
    from bridge.store.migrate import Migration

db_app = typer.Typer(
    cls=BridgeGroup,
    help="The store's schema: its revision, history and migrations (and their SQL); copying a store.",
    no_args_is_help=True,
)

SqlOption = Annotated[
    bool,
    typer.Option(
        "--sql", help="Print the SQL the migration would run, for a DBA to review or run; change nothing."
    ),
]
DialectOption = Annotated[
    str | None,
    typer.Option(
        "--dialect",
        help="With --sql: the database to write it for, postgresql or sqlite (default: the store's).",
        show_default=False,
    ),
]


@db_app.command("upgrade")
@reports_errors
def db_upgrade(
    config: ConfigOption = None,
    sql: SqlOption = False,
    dialect: DialectOption = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="With --sql: the database's revision, `base` for an empty one (default: the store's).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create or migrate the store's schema to the newest revision (safe to run from several processes)."""
    if sql:
        if as_json:
            from bridge.errors import UserError

            raise UserError("--sql prints SQL; it does not go with --json")
        _print_sql(config, dialect, start, "head", down=False)
        return
    if dialect is not None or start is not None:
        from bridge.errors import UserError

        raise UserError("--dialect and --from go with --sql")
    cfg = read_config(config)
    with _open(cfg, create=True) as store:
        migration = store.upgrade()
    change = "already current"
    if migration.changed:
        change = f"migrated from {migration.before or 'an empty database'}"
    _report(store, migration, f"at revision {migration.after} ({change})", as_json)


@db_app.command("downgrade")
@reports_errors
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="The revision to go back to (see `bridge db history`), or `base`.")
    ],
    config: ConfigOption = None,
    sql: SqlOption = False,
    dialect: DialectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take the store's schema back to REVISION (before installing an older version); what the undone
    revisions added is dropped with its data."""
    if sql:
        _print_sql(config, dialect, None, revision, down=True)
        return
    cfg = read_config(config)
    with _open(cfg, create=False) as store:
        migration = store.downgrade(revision)
    if not migration.changed:
        text = f"at revision {migration.after or 'none'} (nothing to undo)"
    else:
        text = (
            f"at revision {migration.after or 'none (empty)'} (downgraded from {migration.before}); this "
            "version's commands refuse it, and those that migrate would upgrade it again: install the "
            "version that matches it, or set store.auto_upgrade = false"
        )
    _report(store, migration, text, as_json)


@db_app.command("current")
@reports_errors
def db_current(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Print the store's schema revision and the newest one this version knows."""
    from bridge.store import redact_url
    from bridge.store.migrate import head_revision

    cfg = read_config(config)
    with _open(cfg, create=False) as store:
        current = store.current_revision()
    head = head_revision()
    if as_json:
        print_json(
            {
                "store": redact_url(store.url),
                "revision": current,
                "newest": head,
                "up_to_date": current == head,
            }
        )
    else:
        state = "up to date" if current == head else "needs `bridge db upgrade`"
        typer.echo(f"store {redact_url(store.url)}: revision {current or 'none'}, newest {head} ({state})")
    if current != head:
        raise typer.Exit(1)


@db_app.command("history")
@reports_errors
def db_history(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List the schema's revisions, oldest first, marking the store's and the newest."""
    from dataclasses import asdict

    from bridge.errors import BridgeError
    from bridge.store.migrate import history

    revisions = history()
    current: str | None = None
    note = ""
    try:
        with _open(read_config(config), create=False) as store:
            current = store.current_revision()
    except BridgeError as exc:  # the history is this version's; the store's place in it is a bonus
        note = f"the store's revision is unknown: {exc}"
    if as_json:
        print_json({"revisions": [asdict(info) for info in revisions], "store_revision": current})
    else:
        for info in revisions:
            marks = [mark for mark, on in (("newest", info.head), ("the store", info.id == current)) if on]
            suffix = f"  <- {', '.join(marks)}" if marks else ""
            typer.echo(f"{info.id}  {info.summary}{suffix}")
        if current is None and not note:
            typer.echo("the store has no schema yet")
    if note:
        from bridge.text import terminal_safe

        typer.echo(terminal_safe(f"note: {note}", single_line=False), err=True)


def _print_sql(
    config: Path | None, dialect: str | None, start: str | None, target: str, *, down: bool
) -> None:
    """The migration's SQL from `start` (default: the store's revision) to `target`, for `dialect`
    (default: the store's), with a header naming both."""
    from bridge import __version__
    from bridge.store.migrate import head_revision, offline_sql

    if dialect is None or start is None or down:
        cfg = read_config(config)
        dialect = dialect or _backend(cfg.store_url())
        if start is None or down:
            start = _store_revision(cfg)
    origin = None if start in (None, "base") else start
    if down and origin is None:
        from bridge.errors import UserError

        raise UserError("the store has no schema, so there is nothing to downgrade")
    body = offline_sql(dialect, origin, target, down=down)
    shown = f"{head_revision()} (the newest)" if target == "head" else target
    typer.echo(
        f"-- Milestone Bridge {__version__}: the store's schema from {origin or 'an empty database'} to "
        f"{shown}, for {dialect}\n{body}",
        nl=False,
    )


def _backend(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def _store_revision(cfg: BridgeConfig) -> str | None:
    """The store's revision, read without changing anything; None for an SQLite file not made yet."""
    from bridge.store import StoreMissing

    try:
        with _open(cfg, create=False) as store:
            return store.current_revision()
    except StoreMissing:
        return None


def _open(cfg: BridgeConfig, *, create: bool) -> closing[Store]:
    """The configured store, reachable, closed when the block ends (without migrating it)."""
    from bridge.store import Store

    store = Store(cfg.store_url(), echo=cfg.store.echo, pool_size=cfg.store.pool_size, create=create)
    try:
        store.ping()
    except BaseException:
        store.close()
        raise
    return closing(store)


def _report(store: Store, migration: Migration, text: str, as_json: bool) -> None:
    from bridge.store import redact_url

    if as_json:
        print_json({"store": redact_url(store.url), "before": migration.before, "after": migration.after})
    else:
        typer.echo(f"store {redact_url(store.url)}: {text}")


@db_app.command("copy")
@reports_errors
def db_copy(
    to: Annotated[
        str | None, typer.Option("--to", help="The target store's URL (one without a password).")
    ] = None,
    to_env: Annotated[
        str | None,
        typer.Option("--to-env", help="An environment variable holding the target store's URL."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy every row of the configured store into a new, empty store (e.g. SQLite to PostgreSQL)."""
    from bridge.errors import UserError
    from bridge.store import Store, redact_url
    from bridge.store.copy import copy_store

    cfg = read_config(config)
    if (to is None) == (to_env is None):
        raise UserError("give the target store as exactly one of --to URL or --to-env VARIABLE")
    if to_env is not None:
        target_url = os.environ.get(to_env, "")
        if not target_url:
            raise UserError(f"--to-env: environment variable {to_env} is not set")
    else:
        target_url = str(to)
        if _url_has_password(target_url):
            raise UserError("--to: the URL carries a password; put it in a variable and use --to-env")
    source = Store(cfg.store_url(), echo=cfg.store.echo, pool_size=cfg.store.pool_size, create=False)
    target = Store(target_url)
    tables: dict[str, int] = {}

    def on_table(name: str, rows: int) -> None:
        tables[name] = rows
        if not as_json:
            typer.echo(f"  {name}: {rows:,} rows")

    try:
        source.ping()
        target.ping()
        result = copy_store(source, target, on_table=on_table)
    finally:
        source.close()
        target.close()
    if as_json:
        print_json(
            {
                "from": redact_url(source.url),
                "to": redact_url(target.url),
                "rows": result.total,
                "tables": tables,
            }
        )
        return
    typer.echo(
        f"copied {result.total:,} rows from {redact_url(source.url)} to {redact_url(target.url)}; "
        f"point store.url (or url_env) at the new store"
    )


@db_app.command("backfill-facts")
@reports_errors
def db_backfill_facts(
    config: ConfigOption = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            help="Stop after this many seconds (what is done stays done; the next run resumes).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the flow facts of tasks whose history has none (a store pulled before they existed), in
    short chunks that never hold the store for long; reports read facts instead of history afterwards."""
    from datetime import UTC, datetime

    from bridge.store import Store, redact_url
    from bridge.store.facts import backfill

    cfg = read_config(config)
    store = Store.open(cfg)

    def progress(done: int) -> None:
        if not as_json:
            typer.echo(f"  {done:,} tasks have their flow facts")

    try:
        result = backfill(store, datetime.now(UTC), budget_seconds=budget, report=progress)
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "store": redact_url(store.url),
                "tasks": result.tasks,
                "remaining": result.remaining,
                "seconds": round(result.seconds, 3),
            }
        )
        return
    left = (
        "every task with history has its facts"
        if result.remaining == 0
        else f"{result.remaining:,} tasks still without (those without any history never get any)"
    )
    typer.echo(f"flow facts written for {result.tasks:,} tasks in {result.seconds:.1f} s; {left}")


def _url_has_password(url: str) -> bool:
    """Whether a database URL carries a password (an unparsable one is left to the store to refuse)."""
    from sqlalchemy.engine import make_url

    try:
        return bool(make_url(url).password)
    except Exception:
        return False
