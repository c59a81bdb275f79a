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
from typing import Annotated, Any

import typer

from bridge import __version__
from bridge.cli_errors import reports_errors, set_debug
from bridge.config import CONFIG_ENV, BridgeConfig, config_warnings, default_config_path, load_config
from bridge.connector import ConnectorRegistry
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
    return load_config(default_config_path(config), ConnectorRegistry.default())


@app.command()
@reports_errors
def check(
    config: ConfigOption = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also connect to each tracker and check that everything the mapping names exists there.",
        ),
    ] = False,
    tracker: Annotated[
        str | None, typer.Option(help="With --online: only this tracker (its name in the config).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Validate the config and say what it configures; with --online, check it against each tracker."""
    cfg = _load(config)
    typer.echo("".join(f"warning: {w}\n" for w in config_warnings(cfg)), err=True, nl=False)
    if tracker is not None:
        if not online:
            from bridge.errors import UserError

            raise UserError("--tracker goes with --online")
        cfg.tracker(tracker)
    summary: dict[str, Any] = {"config": str(cfg.path), "trackers": []}
    lines = [f"{cfg.path}: ok"]
    for name, settings in cfg.trackers.items():
        state = "" if settings.enabled else " (disabled)"
        lines.append(
            f"  tracker {name}: {settings.kind} at {settings.url}, {len(settings.status_map)} statuses{state}"
        )
        unset = settings.missing_secrets()
        for var in unset:
            lines.append(f"    note: {var} is not set; commands that contact {name} will need it")
        summary["trackers"].append(
            {"name": name, "kind": settings.kind, "url": settings.url, "enabled": settings.enabled,
             "statuses": len(settings.status_map), "unset_variables": unset}
        )  # fmt: skip
    objectives = cfg.okrs.objectives
    key_results = sum(len(objective.key_results) for objective in objectives)
    lines.append(f"  okrs: {len(objectives)} objectives, {key_results} key results")
    summary["okrs"] = {"objectives": len(objectives), "key_results": key_results}
    if cfg.store.url_env is not None and not os.environ.get(cfg.store.url_env):
        lines.append(
            f"  store: from ${cfg.store.url_env} (note: not set; commands that use the store will need it)"
        )
        summary["store"] = f"${cfg.store.url_env}"
    else:
        from bridge.store import redact_url

        summary["store"] = redact_url(cfg.store_url())
        lines.append(f"  store: {summary['store']}")
    failed = False
    if online:
        from bridge.checks import check_trackers, problems_text
        from bridge.http import install_redaction

        install_redaction()
        if not as_json:
            typer.echo("\n".join(lines))
            lines = []
        results = check_trackers(cfg, tracker)
        failed = any(not result.ok for result in results)
        summary["online"] = [result.summary() for result in results]
        lines.append("online:")
        lines.extend(problems_text(results))
        if not results:
            lines.append("  no enabled tracker")
    summary["ok"] = not failed
    if as_json:
        import json

        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    elif lines:
        typer.echo("\n".join(lines))
    if failed:
        raise typer.Exit(1)


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
    from bridge.progress import for_terminal
    from bridge.store import Store
    from bridge.sync.pull import pull_all

    install_redaction()
    cfg = _load(config)
    store = Store.open(cfg)
    progress = for_terminal()
    try:
        results = pull_all(store, cfg, now=datetime.now(UTC), tracker=tracker, full=full, progress=progress)
    finally:
        if progress is not None:
            progress.close()
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
def sync(
    config: ConfigOption = None,
    tracker: Annotated[str | None, typer.Option(help="Only this tracker (its name in the config).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan as a table and write nothing.")] = False,
    force: Annotated[
        bool, typer.Option(help="Apply a plan that changes more than push.max_change_share of the items.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary per tracker.")] = False,
) -> None:
    """Run one whole cycle: pull, analyse, plan and push back ranks, OKR links and labels."""
    import json
    from datetime import UTC, datetime

    from bridge.http import install_redaction
    from bridge.progress import for_terminal
    from bridge.store import Store
    from bridge.sync.cycle import run_cycle

    install_redaction()
    cfg = _load(config)
    store = Store.open(cfg)
    progress = for_terminal()
    try:
        result = run_cycle(
            store,
            cfg,
            now=datetime.now(UTC),
            tracker=tracker,
            dry_run=dry_run,
            force=force,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
        store.close()
    if json_output:
        typer.echo(
            json.dumps({"dry_run": dry_run, "trackers": [t.summary() for t in result.trackers]}, indent=2)
        )
    else:
        _print_cycle(result, dry_run=dry_run)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@reports_errors
def purge(
    tracker: Annotated[str, typer.Option(help="The tracker to take the bridge's writes back from.")],
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print what would be removed and change nothing.")] = False,
) -> None:
    """Remove everything the bridge ever wrote into a tracker: its labels, field values and links."""
    from bridge.connector import ConnectorRegistry
    from bridge.http import install_redaction
    from bridge.progress import for_terminal
    from bridge.store import Store
    from bridge.sync.push import purge_tracker

    install_redaction()
    cfg = _load(config)
    settings = cfg.tracker(tracker)
    store = Store.open(cfg)
    connector = None
    progress = None if dry_run else for_terminal()
    try:
        connector = (
            ConnectorRegistry.default()
            .load(settings.kind)
            .open(tracker, settings, cfg.require_secrets(tracker))
        )
        result = purge_tracker(store, tracker, connector, dry_run=dry_run, progress=progress)
    finally:
        if progress is not None:
            progress.close()
        if connector is not None:
            connector.close()
        store.close()
    writes = result.plan.writes
    if dry_run:
        for write in writes:
            now, _ = _describe(write)
            typer.echo(
                f"{result.keys.get(write.item, str(write.item))}: remove {_field_name(write)} {now}".rstrip()
            )
        typer.echo(f"{tracker}: {len(writes)} removals planned, nothing changed (dry run)")
        return
    typer.echo(f"{tracker}: {result.done} removed, {result.failed} failed")
    for failure in result.failures[:20]:
        typer.echo(f"  failed: {failure}")
    if result.failed:
        raise typer.Exit(1)


@app.command()
@reports_errors
def explain(
    item: Annotated[str, typer.Argument(help="An item's key (PAY-12) or tracker:id.")],
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why an item has its rank, OKR link and labels, from the store (no tracker is contacted)."""
    import json
    from datetime import UTC, datetime, timedelta

    from bridge.analytics.report import analyse
    from bridge.store import Store
    from bridge.store.snapshot import load_snapshot
    from bridge.store.written import load_written
    from bridge.sync.explain import explain as explain_item
    from bridge.sync.explain import find_item

    cfg = _load(config)
    store = Store.open(cfg, upgrade=False)
    now = datetime.now(UTC)
    try:
        settings = cfg.analytics
        snapshot = load_snapshot(
            store, since=now - max(settings.window, settings.forecast_window, timedelta(0))
        )
        found = find_item(snapshot, item)
        with store.read() as conn:
            written = load_written(conn, found.source)
    finally:
        store.close()
    result = explain_item(analyse(snapshot, cfg, now), snapshot, cfg, item, written)
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(f"{result.key} ({result.kind}, {result.item}): {result.title}")
    for what, value, why in result.lines:
        typer.echo(f"  {what}: {value}" + (f" - {why}" if why else ""))
    for name, value, at in result.written:
        typer.echo(f"  last written {name} = {value} at {at}")


@app.command()
@reports_errors
def run(config: ConfigOption = None) -> None:
    """Run the daemon: each tracker's cycle on its schedule, with health, metrics and a status page."""
    from bridge.daemon.logs import configure_logging
    from bridge.daemon.service import serve
    from bridge.store import Store

    cfg = _load(config)
    configure_logging(cfg.daemon, debug=logging.getLogger().level == logging.DEBUG)
    for name, tracker in cfg.trackers.items():
        if tracker.enabled:
            cfg.require_secrets(name)
    store = Store.open(cfg)
    try:
        serve(
            cfg,
            store,
            lambda daemon, url: typer.echo(f"bridge daemon {daemon.replica}: status at {url}", err=True),
        )
    finally:
        store.close()


@app.command()
@reports_errors
def status(
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each tracker's last cycles, last success, errors and pending writes, from the store."""
    import json
    from dataclasses import asdict
    from datetime import UTC, datetime

    from bridge.report.status_page import render_status_text, status_rows
    from bridge.store import Store

    cfg = _load(config)
    store = Store.open(cfg, upgrade=False)
    try:
        rows = status_rows(store, datetime.now(UTC), trackers=list(cfg.trackers))
    finally:
        store.close()
    if json_output:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2, default=str))
    else:
        typer.echo(render_status_text(rows), nl=False)


def _print_cycle(result: Any, *, dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    for entry in result.trackers:
        plan = entry.plan
        line = (
            f"{entry.tracker}: {entry.pull.items if entry.pull else 0} items pulled, "
            f"{len(plan.writes) if plan else 0} writes planned"
        )
        if plan is not None and plan.deferred:
            line += f" (+{len(plan.deferred)} over the write budget)"
        if entry.push is not None and not dry_run:
            line += f", {entry.push.done} done, {entry.push.failed} failed"
        line += f", {entry.requests} requests"
        if entry.error:
            line += f": FAILED: {entry.error}"
        elif entry.note:
            line += f" ({entry.note})"
        console.print(line, markup=False)
        if dry_run and plan is not None and plan.writes:
            keys = entry.push.keys if entry.push is not None else {}
            table = Table("item", "field", "now", "will be", "why")
            for write in plan.writes:
                now, later = _describe(write)
                table.add_row(
                    keys.get(write.item, str(write.item)), _field_name(write), now, later, write.reason
                )
            console.print(table)
        if entry.push is not None:
            for failure in entry.push.failures[:20]:
                console.print(f"  failed: {failure}", markup=False)


def _field_name(write: Any) -> str:
    from bridge.domain import WriteKind

    names: dict[WriteKind, str] = {
        WriteKind.FIELD: write.field,
        WriteKind.LABEL_ADD: f"label {write.field}",
        WriteKind.LABEL_REMOVE: f"label {write.field}",
        WriteKind.LINK: "link",
        WriteKind.ORDER: f"order in {write.field}",
    }
    return names[write.kind]


def _describe(write: Any) -> tuple[str, str]:
    from bridge.domain import WriteKind

    def show(value: Any) -> str:
        return "" if value is None else str(value)

    if write.kind is WriteKind.LABEL_ADD:
        return "", write.field
    if write.kind is WriteKind.LABEL_REMOVE:
        return write.field, ""
    if write.kind is WriteKind.LINK:
        before = write.previous.url if write.previous is not None else ""
        return before, write.value.url if write.value is not None else ""
    if write.kind is WriteKind.ORDER:
        after, before = write.value
        return show(write.previous), f"after {after.remote_id}" if after else f"before {before.remote_id}"
    return show(write.previous), show(write.value)


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

    cfg = _load(config)
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
    source = Store(cfg.store_url(), echo=cfg.store.echo, pool_size=cfg.store.pool_size)
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


# --- report and OKR links: read from the store only, no tracker is contacted -------------------------

okr_app = typer.Typer(help="Suggest and confirm which key result each milestone moves.", no_args_is_help=True)
app.add_typer(okr_app, name="okr")


@app.command()
@reports_errors
def report(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    team: Annotated[str | None, typer.Option(help="Only this team's milestones, work and warnings.")] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the report as one self-contained HTML page with charts to FILE and print its path.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Show value ranks, the OKR tree, work types and bottlenecks, time in status, forecasts, warnings."""
    from datetime import UTC, datetime

    from bridge.report.commands import report_command

    report_command(_load(config), now=datetime.now(UTC), as_json=as_json, team=team, html=html)


@okr_app.command("suggest")
@reports_errors
def okr_suggest(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Suggest key results for open milestones without one, by text similarity; store them as suggested."""
    from datetime import UTC, datetime

    from bridge.report.commands import suggest_command

    suggest_command(_load(config), now=datetime.now(UTC), as_json=as_json)


@okr_app.command("confirm")
@reports_errors
def okr_confirm(
    milestone: Annotated[str, typer.Argument(help="The milestone's key (PAY-12) or source:remote_id.")],
    key_result: Annotated[str, typer.Argument(help="The key result's config id (KR1) or source:remote_id.")],
    config: ConfigOption = None,
) -> None:
    """Link MILESTONE to KEY_RESULT with origin `confirmed`: later pulls keep the link."""
    from datetime import UTC, datetime

    from bridge.report.commands import confirm_command

    confirm_command(_load(config), milestone, key_result, now=datetime.now(UTC))


# --- bridge demo: the sandbox trackers, a config for them, one cycle, and optionally the daemon --------


@app.command()
@reports_errors
def demo(
    serve: Annotated[
        bool, typer.Option("--serve", help="Then keep the daemon and the sandboxes running until Ctrl-C.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generated organisation.")] = 1,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the config and the store (default: a new temporary one)."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="Append every request the sandbox trackers serve, as JSON lines, to FILE."),
    ] = None,
) -> None:
    """Run the bridge against generated sandbox trackers and show what it finds and writes back."""
    from rich.console import Console

    from bridge import demo as demo_module

    console = Console(highlight=False, soft_wrap=True)
    with demo_module.demo(directory, seed=seed, record=record) as run:
        demo_module.print_run(run, console, lambda result: _print_cycle(result, dry_run=False))
        console.print(f"\ndemo finished in {run.seconds:.1f} s")
        if not run.result.ok:
            raise typer.Exit(1)
        if serve:

            def announce(url: str) -> None:
                typer.echo(
                    f"\nstatus page: {url}  (the daemon syncs the sandboxes every minute; Ctrl-C stops)"
                )
                sys.stdout.flush()

            demo_module.serve(run, announce)
            typer.echo("stopped")


# --- bridge init: a starting config from a tracker's discovery ------------------------------------------


@app.command("init")
@reports_errors
def init_config(
    kind: Annotated[str | None, typer.Option(help="jira, trello or asana (asked when not given).")] = None,
    url: Annotated[str | None, typer.Option(help="The tracker's base URL.")] = None,
    token_env: Annotated[str | None, typer.Option(help="Variable holding the token.")] = None,
    email_env: Annotated[
        str | None, typer.Option(help="Jira Cloud: variable holding the account email.")
    ] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Trello: variable holding the API key.")] = None,
    name: Annotated[
        str | None, typer.Option(help="The tracker's name in the config (default: its kind).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="The file to write.")] = Path("bridge.toml"),
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: defaults for what is not given, every project.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starting config for one tracker from what `discover` finds there."""
    from bridge import init as init_module
    from bridge.config import parse_config
    from bridge.discovery import connect_for_discovery
    from bridge.errors import ConfigError, UserError
    from bridge.http import install_redaction

    install_redaction()
    if out.exists() and not force:
        raise UserError(f"{out} exists; pass --force to overwrite it")

    def ask(prompt: str, default: str | None) -> str:
        return str(typer.prompt(prompt, default=default, err=True))

    asker = None if yes else ask
    answers = init_module.gather(
        kind=kind, url=url, token_env=token_env, email_env=email_env, api_key_env=api_key_env,
        name=name, ask=asker,
    )  # fmt: skip
    connector = connect_for_discovery(
        None, None, kind=answers.kind, url=answers.url, token_env=answers.token_env,
        email_env=answers.email_env, api_key_env=answers.api_key_env,
    )  # fmt: skip
    try:
        found = connector.discover()
    finally:
        connector.close()
    show = lambda line: typer.echo(line, err=True)  # noqa: E731
    chosen, workspace = init_module.choose(answers.kind, found, asker, show)
    text = init_module.render(answers, found, chosen=chosen, workspace=workspace)
    init_module.write_config(out, text, force=force)
    guess = init_module.guess_statuses(answers.kind, found, chosen)
    typer.echo(
        f"wrote {out}: tracker {answers.name} ({answers.kind}), {len(chosen)} "
        f"{'boards' if answers.kind == 'trello' else 'projects'}, {len(guess.mapped)} statuses mapped"
        + (f", {len(guess.unknown)} left for you to map (listed in the file)" if guess.unknown else "")
    )
    try:
        parse_config(text, ConnectorRegistry.default(), source=str(out), path=out.resolve())
    except ConfigError as exc:
        typer.echo(f"warning: the file needs editing before use:\n{exc}", err=True)
    typer.echo(f"next: bridge check --config {out} --online, then bridge pull --config {out}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="bridge")


if __name__ == "__main__":
    main()
