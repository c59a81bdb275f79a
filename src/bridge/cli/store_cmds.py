"""`bridge db ...`: the store's schema, and copying a store into a new one."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from bridge.cli.shared import ConfigOption, read_config
from bridge.cli_errors import reports_errors

db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)


@db_app.command("upgrade")
@reports_errors
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the store's schema to the newest revision (safe to run from several processes)."""
    from bridge.store import Store, redact_url

    cfg = read_config(config)
    url = cfg.store_url()
    store = Store(url, echo=cfg.store.echo, pool_size=cfg.store.pool_size)
    try:
        store.ping()
        migration = store.upgrade()
    finally:
        store.close()
    change = "already current"
    if migration.changed:
        change = f"migrated from {migration.before or 'an empty database'}"
    typer.echo(f"store {redact_url(url)}: at revision {migration.after} ({change})")


@db_app.command("current")
@reports_errors
def db_current(config: ConfigOption = None) -> None:
    """Print the store's schema revision and the newest one this version knows."""
    from bridge.store import Store, redact_url
    from bridge.store.migrate import head_revision

    cfg = read_config(config)
    url = cfg.store_url()
    store = Store(url, create=False)
    try:
        store.ping()
        current = store.current_revision()
    finally:
        store.close()
    head = head_revision()
    state = "up to date" if current == head else "needs `bridge db upgrade`"
    typer.echo(f"store {redact_url(url)}: revision {current or 'none'}, newest {head} ({state})")
    if current != head:
        raise typer.Exit(1)


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
    try:
        source.ping()
        target.ping()
        result = copy_store(
            source, target, on_table=lambda name, rows: typer.echo(f"  {name}: {rows:,} rows")
        )
    finally:
        source.close()
        target.close()
    typer.echo(
        f"copied {result.total:,} rows from {redact_url(source.url)} to {redact_url(target.url)}; "
        f"point store.url (or url_env) at the new store"
    )


def _url_has_password(url: str) -> bool:
    """Whether a database URL carries a password (an unparsable one is left to the store to refuse)."""
    from sqlalchemy.engine import make_url

    try:
        return bool(make_url(url).password)
    except Exception:
        return False
