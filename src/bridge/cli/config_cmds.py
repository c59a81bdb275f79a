"""`bridge check`, `connectors`, `discover` and `init`: the config, and what the trackers offer for it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli.shared import ConfigOption, JsonOption, print_json, read_config
from bridge.cli_errors import reports_errors
from bridge.config import BridgeConfig, auth_token_problem, config_warnings
from bridge.text import json_terminal_safe, terminal_safe


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
    cfg = read_config(config)
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
        suggestion = settings.write.rank_value_suggestion()
        if suggestion is not None:
            lines.append(f"    suggestion: trackers.{name}.{suggestion}")
        summary["trackers"].append(
            {"name": name, "kind": settings.kind, "url": settings.url, "enabled": settings.enabled,
             "statuses": len(settings.status_map), "unset_variables": unset,
             "suggestions": [f"trackers.{name}.{suggestion}"] if suggestion else []}
        )  # fmt: skip
    objectives = cfg.okrs.objectives
    key_results = sum(len(objective.key_results) for objective in objectives)
    lines.append(f"  okrs: {len(objectives)} objectives, {key_results} key results")
    summary["okrs"] = {"objectives": len(objectives), "key_results": key_results}
    lines.extend(_announce_notes(cfg, summary))
    if cfg.store.url_env is not None and not os.environ.get(cfg.store.url_env):
        lines.append(
            f"  store: from ${cfg.store.url_env} (note: not set; commands that use the store will need it)"
        )
        summary["store"] = f"${cfg.store.url_env}"
    else:
        from bridge.store import redact_url

        summary["store"] = redact_url(cfg.store_url())
        lines.append(f"  store: {summary['store']}")
    lines.extend(_daemon_notes(cfg, summary))
    for override in cfg.overrides:
        lines.append(terminal_safe(f"  {override.path} = {override.value} (from {override.variable})"))
    summary["overrides"] = [dataclasses.asdict(override) for override in cfg.overrides]
    failed = False
    if online:
        from bridge.checks import check_trackers, problems_text

        if not as_json:
            typer.echo("\n".join(lines))
            lines = []
        results = check_trackers(cfg, tracker)
        failed = any(not result.ok for result in results)
        summary["online"] = [result.summary() for result in results]
        lines.append("online:")
        lines.extend(terminal_safe(line) for line in problems_text(results))
        if not results:
            lines.append("  no enabled tracker")
    summary["ok"] = not failed
    if as_json:
        import json

        typer.echo(json_terminal_safe(json.dumps(summary, indent=2, ensure_ascii=False)))
    elif lines:
        typer.echo("\n".join(lines))
    if failed:
        raise typer.Exit(1)


def _announce_notes(cfg: BridgeConfig, summary: dict[str, Any]) -> list[str]:
    """One line per `[announce]` channel, with a note when its URL variable is unset, empty or holds no
    URL here (the variable is named, its value never shown)."""
    summary["announce"] = []
    lines = []
    for channel in cfg.announce.channels:
        problem = cfg.announce.url_problem(channel)
        lines.append(
            f"  announce {channel.name}: {channel.kind} webhook from ${channel.url_env}, "
            f"events {', '.join(channel.events)}"
        )
        if problem is not None:
            lines.append(f"    note: {problem}; nothing will be announced in {channel.name} until it is set")
        summary["announce"].append(
            {"name": channel.name, "kind": channel.kind, "url_env": channel.url_env,
             "events": list(channel.events), "note": problem}
        )  # fmt: skip
    return lines


def _daemon_notes(cfg: BridgeConfig, summary: dict[str, Any]) -> list[str]:
    """A note when the status page's token (`daemon.auth_token_env`) is unset, empty or too short here:
    the daemon (`bridge run`) refuses to start without it. Only a note, as for the trackers' variables:
    the daemon may run where the token is set."""
    problem = auth_token_problem(cfg.daemon)
    summary["daemon"] = {"auth_token_env": cfg.daemon.auth_token_env, "note": problem}
    if problem is None:
        return []
    return [f"  daemon: note: {problem}; until that is fixed, the daemon (`bridge run`) refuses to start"]


@reports_errors
def connectors(as_json: JsonOption = False) -> None:
    """List the installed tracker connectors and what each can do."""
    from bridge.connector import ConnectorError, ConnectorRegistry

    registry = ConnectorRegistry.default()
    found: list[dict[str, Any]] = []
    for kind in registry.kinds():
        point = registry.entry_point(kind)
        dist = f"{point.dist.name} {point.dist.version}" if point.dist is not None else "unknown distribution"
        entry: dict[str, Any] = {"kind": kind, "entry_point": point.value, "distribution": dist}
        try:
            entry["capabilities"] = list(registry.load(kind).capabilities.names())
        except ConnectorError as exc:
            entry["error"] = str(exc)
        found.append(entry)
    if as_json:
        print_json({"connectors": found})
    else:
        _print_connectors(found)
    if any("error" in entry for entry in found):
        raise typer.Exit(1)


def _print_connectors(found: list[dict[str, Any]]) -> None:
    for entry in found:
        abilities = ", ".join(entry.get("capabilities", [])) or "none yet"
        state = f"BROKEN: {entry['error']}" if "error" in entry else f"capabilities: {abilities}"
        typer.echo(
            terminal_safe(f"{entry['kind']}  {entry['entry_point']}  ({entry['distribution']})  {state}")
        )
    if not found:
        typer.echo("no connectors installed")


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
    import json

    from bridge.discovery import connect_for_discovery

    connector = connect_for_discovery(
        tracker, None if kind else read_config(config), kind=kind, url=url, token_env=token_env,
        email_env=email_env, api_key_env=api_key_env,
    )  # fmt: skip
    try:
        found = connector.discover()
    finally:
        connector.close()
    if as_json:
        typer.echo(json_terminal_safe(json.dumps(dataclasses.asdict(found), indent=2, ensure_ascii=False)))
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
            typer.echo(f"  {terminal_safe(line)}")
    for key, value in found.extra.items():
        typer.echo(terminal_safe(f"{key}: {value}"))


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
    as_json: JsonOption = False,
) -> None:
    """Write a starting config for one tracker from what `discover` finds there."""
    from bridge import init as init_module
    from bridge.config import parse_config
    from bridge.connector import ConnectorRegistry
    from bridge.discovery import connect_for_discovery
    from bridge.errors import ConfigError, UserError

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
    show = lambda line: typer.echo(terminal_safe(line), err=True)  # noqa: E731
    chosen, workspace = init_module.choose(answers.kind, found, asker, show)
    text = init_module.render(answers, found, chosen=chosen, workspace=workspace)
    init_module.write_config(out, text, force=force)
    guess = init_module.guess_statuses(answers.kind, found, chosen)
    needs_editing: str | None = None
    try:
        parse_config(text, ConnectorRegistry.default(), source=str(out), path=out.resolve())
    except ConfigError as exc:
        needs_editing = str(exc)
    if as_json:
        print_json(
            {"path": str(out), "tracker": answers.name, "kind": answers.kind, "containers": len(chosen),
             "statuses_mapped": len(guess.mapped), "statuses_to_map": [name for name, _ in guess.unknown],
             "needs_editing": needs_editing}
        )  # fmt: skip
        return
    typer.echo(
        f"wrote {out}: tracker {answers.name} ({answers.kind}), {len(chosen)} "
        f"{'boards' if answers.kind == 'trello' else 'projects'}, {len(guess.mapped)} statuses mapped"
        + (f", {len(guess.unknown)} left for you to map (listed in the file)" if guess.unknown else "")
    )
    if needs_editing is not None:
        typer.echo(f"warning: the file needs editing before use:\n{needs_editing}", err=True)
    typer.echo(f"next: bridge check --config {out} --online, then bridge pull --config {out}")
