"""The `bridge` command. Every user-facing error leaves here as a message and an exit code.

Exit codes: 0 ok; 1 a tracker or the store failed; 2 a user error (bad config, bad flag, unset
variable). Errors are one paragraph without a traceback; `--debug` adds the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from bridge import __version__
from bridge.cli_errors import reports_errors, set_debug
from bridge.config import CONFIG_ENV, BridgeConfig, default_config_path, load_config
from bridge.sandbox.cli import sandbox_app

log = logging.getLogger("bridge")


app = typer.Typer(
    name="bridge",
    help="Milestone Bridge: value ranks, OKR links and bottlenecks, synced with Jira, Trello and Asana.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"The TOML config (default: ${CONFIG_ENV}, then ./bridge.toml).",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bridge (milestone-bridge) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Log debug detail and show tracebacks.")] = False,
) -> None:
    set_debug(debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(logging.DEBUG if debug else logging.INFO)


def _load(config: Path | None) -> BridgeConfig:
    return load_config(default_config_path(config))


@app.command()
@reports_errors
def check(config: ConfigOption = None) -> None:
    """Validate the config and say what it configures."""
    cfg = _load(config)
    typer.echo(f"{cfg.path}: ok")
    for name, tracker in cfg.trackers.items():
        state = "" if tracker.enabled else " (disabled)"
        typer.echo(
            f"  tracker {name}: {tracker.kind} at {tracker.url}, {len(tracker.status_map)} statuses{state}"
        )
        for var in tracker.missing_secrets():
            typer.echo(f"    note: {var} is not set; commands that contact {name} will need it")
    objectives = cfg.okrs.objectives
    key_results = sum(len(objective.key_results) for objective in objectives)
    typer.echo(f"  okrs: {len(objectives)} objectives, {key_results} key results")
    if cfg.store.url_env is not None and not os.environ.get(cfg.store.url_env):
        typer.echo(
            f"  store: from ${cfg.store.url_env} (note: not set; commands that use the store will need it)"
        )
    else:
        from bridge.store import redact_url

        typer.echo(f"  store: {redact_url(cfg.store_url())}")


@app.command()
@reports_errors
def connectors() -> None:
    """List the installed tracker connectors and what each can do."""
    from bridge.connector import ConnectorError, ConnectorRegistry

    registry = ConnectorRegistry.default()
    broken = 0
    for kind in registry.kinds():
        point = registry.entry_point(kind)
        dist = f"{point.dist.name} {point.dist.version}" if point.dist is not None else "unknown distribution"
        try:
            connector = registry.load(kind)
        except ConnectorError as exc:
            broken += 1
            typer.echo(f"{kind}  {point.value}  ({dist})  BROKEN: {exc}")
            continue
        abilities = ", ".join(connector.capabilities.names()) or "none yet"
        typer.echo(f"{kind}  {point.value}  ({dist})  capabilities: {abilities}")
    if not registry.kinds():
        typer.echo("no connectors installed")
    if broken:
        raise typer.Exit(1)


@app.command()
@reports_errors
def pull(
    config: ConfigOption = None,
    tracker: Annotated[str | None, typer.Option(help="Only this tracker (its name in the config).")] = None,
    full: Annotated[bool, typer.Option(help="Read everything again and look for deleted items.")] = False,
) -> None:
    """Bring the trackers' milestones, tasks, histories and links into the store."""
    from datetime import UTC, datetime

    from bridge.http import install_redaction
    from bridge.store import Store
    from bridge.sync.pull import pull_all

    install_redaction()
    cfg = _load(config)
    store = Store.open(cfg)
    try:
        results = pull_all(store, cfg, now=datetime.now(UTC), tracker=tracker, full=full)
    finally:
        store.close()
    for result in results:
        state = "ok" if result.ok else f"FAILED: {result.error}"
        census = f", census: {result.deleted} deleted" if result.census else ""
        typer.echo(
            f"{result.tracker}: {result.items} items in {result.pages} pages, {result.changed} rows changed, "
            f"{result.skipped} skipped{census}, {result.requests} requests "
            f"(+{result.setup_requests} setup): {state}"
        )
        if result.skipped_keys:
            typer.echo(
                f"  skipped: {', '.join(result.skipped_keys[:20])}{' ...' if result.skipped > 20 else ''}"
            )
    if any(not result.ok for result in results):
        raise typer.Exit(1)


@app.command()
@reports_errors
def discover(
    tracker: Annotated[str | None, typer.Argument(help="A tracker named in the config.")] = None,
    config: ConfigOption = None,
    kind: Annotated[str | None, typer.Option(help="Without a config: jira, trello or asana.")] = None,
    url: Annotated[str | None, typer.Option(help="Without a config: the tracker's base URL.")] = None,
    token_env: Annotated[str | None, typer.Option(help="Variable holding the token.")] = None,
    email_env: Annotated[
        str | None, typer.Option(help="Jira Cloud: variable holding the account email.")
    ] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Trello: variable holding the API key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List what a tracker has that a mapping refers to: projects, statuses, types, labels, custom fields."""
    import dataclasses
    import json

    from bridge.discovery import connect_for_discovery

    connector = connect_for_discovery(
        tracker, None if kind else _load(config), kind=kind, url=url, token_env=token_env,
        email_env=email_env, api_key_env=api_key_env,
    )  # fmt: skip
    try:
        found = connector.discover()
    finally:
        connector.close()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(found), indent=2, ensure_ascii=False))
        return
    sections = [
        ("Projects / boards / workspaces (id, name)", [f"{i}  {n}" for i, n in found.containers]),
        ("Statuses (id, name): map them in status_map", [f"{i}  {n}" for i, n in found.statuses]),
        ("Item types", list(found.item_types)),
        ("Labels / tags", list(found.labels)),
        ("Custom fields (id, name, type)", [f"{f.id}  {f.name}  [{f.type}]" for f in found.fields]),
    ]
    for title, lines in sections:
        typer.echo(f"{title}:")
        for line in lines or ["(none)"]:
            typer.echo(f"  {line}")
    for key, value in found.extra.items():
        typer.echo(f"{key}: {value}")


@db_app.command("upgrade")
@reports_errors
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the store's schema to the newest revision (safe to run from several processes)."""
    from bridge.store import Store, redact_url

    cfg = _load(config)
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

    cfg = _load(config)
    url = cfg.store_url()
    store = Store(url)
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


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="bridge")


if __name__ == "__main__":
    main()
