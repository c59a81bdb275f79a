"""`bridge demo` and `bridge sandbox ...`: the bridge against the sandbox trackers, and the sandbox itself.

The only commands that load the tracker emulators (`bridge_sandbox`, through `bridge.demo` or directly),
and only inside their bodies, so no other command loads them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.group import BridgeGroup
from bridge.cli.shared import JsonOption, print_json
from bridge.cli.sync_cmds import print_cycle
from bridge.cli_errors import reports_errors

sandbox_app = typer.Typer(
    cls=BridgeGroup, help="Local emulators of the Jira, Trello and Asana APIs.", no_args_is_help=True
)

SeedFileOption = Annotated[Path | None, typer.Option(exists=False, dir_okay=False, show_default=False)]


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
        demo_module.print_run(run, console, lambda result: print_cycle(result, dry_run=False), serving=serve)
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


@sandbox_app.command("serve")
@reports_errors
def sandbox_serve(
    jira: SeedFileOption = None,
    jira_flavour: Annotated[str, typer.Option(help="cloud or dc (Data Center).")] = "cloud",
    trello: SeedFileOption = None,
    asana: SeedFileOption = None,
    record: Annotated[Path | None, typer.Option(help="Append every request, as JSON lines, to FILE.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    jira_port: int = 0,
    trello_port: int = 0,
    asana_port: int = 0,
) -> None:
    """Serve the emulators until stopped; first print one JSON line with their URLs and credentials."""
    from bridge_sandbox.commands import build_emulators, serve

    emulators = build_emulators(jira, jira_flavour, trello, asana)
    ports = {"jira": jira_port, "trello": trello_port, "asana": asana_port}
    serve(emulators, record=record, host=host, ports=ports)


@sandbox_app.command("generate")
@reports_errors
def sandbox_generate(
    out: Annotated[Path, typer.Option(help="Folder for jira.json, trello.json and asana.json.")],
    seed: Annotated[int, typer.Option(help="The same seed gives the same files.")] = 1,
    issues: Annotated[int, typer.Option(min=1, help="Work items per tracker.")] = 300,
    now: Annotated[
        str | None, typer.Option(help="ISO date the histories end at (default: today, UTC).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a generated organisation as one seed file per tracker, in each vendor's own format."""
    from bridge_sandbox.commands import generate

    written = generate(out, seed, issues, now)
    if as_json:
        print_json({tracker: str(path) for tracker, path in written.items()})
        return
    for tracker, path in written.items():
        typer.echo(f"{tracker}: {path}")
