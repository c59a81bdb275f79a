"""`bridge sandbox ...`: run the emulators as a process, and generate seed data for them."""

from __future__ import annotations

import importlib
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import typer

from bridge.cli_errors import reports_errors
from bridge.errors import UserError
from bridge.sandbox.server import Emulator, RequestLog, SandboxServer

sandbox_app = typer.Typer(help="Local emulators of the Jira, Trello and Asana APIs.", no_args_is_help=True)

FileOption = Annotated[Path | None, typer.Option(exists=False, dir_okay=False, show_default=False)]


def build_emulators(
    jira: Path | None = None,
    jira_flavour: str = "cloud",
    trello: Path | None = None,
    asana: Path | None = None,
) -> dict[str, Emulator]:
    """The three emulators, seeded from the given files (empty where none is given)."""
    from bridge.sandbox.jira import JiraEmulator

    trello_emulator = _emulator("trello", "TrelloEmulator")
    asana_emulator = _emulator("asana", "AsanaEmulator")
    for path in (jira, trello, asana):
        if path is not None and not path.is_file():
            raise UserError(f"seed file {path} does not exist")
    if jira_flavour not in ("cloud", "dc"):
        raise UserError(f"--jira-flavour must be cloud or dc, not {jira_flavour!r}")
    try:
        return {
            "jira": JiraEmulator.from_search(jira, flavour=jira_flavour)
            if jira
            else JiraEmulator(jira_flavour),
            "trello": trello_emulator.from_export(trello) if trello else trello_emulator(),
            "asana": asana_emulator.from_seed(asana) if asana else asana_emulator(),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"a seed file could not be read: {exc}") from exc


def _emulator(module: str, name: str) -> Any:
    """An emulator class, imported by name (each vendor's module loads only when served)."""
    return getattr(importlib.import_module(f"bridge.sandbox.{module}"), name)


@sandbox_app.command("serve")
@reports_errors
def serve(
    jira: FileOption = None,
    jira_flavour: Annotated[str, typer.Option(help="cloud or dc (Data Center).")] = "cloud",
    trello: FileOption = None,
    asana: FileOption = None,
    record: Annotated[Path | None, typer.Option(help="Append every request, as JSON lines, to FILE.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    jira_port: int = 0,
    trello_port: int = 0,
    asana_port: int = 0,
) -> None:
    """Serve the emulators until stopped; first print one JSON line with their URLs and credentials."""
    emulators = build_emulators(jira, jira_flavour, trello, asana)
    recording: IO[str] | None = record.open("a", encoding="utf-8") if record else None
    ports = {"jira": jira_port, "trello": trello_port, "asana": asana_port}
    servers: dict[str, SandboxServer] = {}
    for name, emulator in emulators.items():
        if recording is not None:
            emulator.requests = RequestLog(recording, label=name)
        servers[name] = SandboxServer(emulator, host=host, port=ports[name]).start()
    announcement: dict[str, Any] = {
        name: {"url": server.base_url, **server.emulator.credentials()} for name, server in servers.items()
    }
    stop = _stop_on_signals()  # before announcing: a caller may send SIGTERM as soon as it reads the line
    sys.stdout.write(json.dumps(announcement) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    for server in servers.values():
        server.stop()
    if recording is not None:
        recording.close()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


@sandbox_app.command("generate")
@reports_errors
def generate(
    out: Annotated[Path, typer.Option(help="Folder for jira.json, trello.json and asana.json.")],
    seed: Annotated[int, typer.Option(help="The same seed gives the same files.")] = 1,
    issues: Annotated[int, typer.Option(min=1, help="Work items per tracker.")] = 300,
    now: Annotated[
        str | None, typer.Option(help="ISO date the histories end at (default: today, UTC).")
    ] = None,
) -> None:
    """Write a generated organisation as one seed file per tracker, in each vendor's own format."""
    from datetime import datetime

    from bridge.sandbox import generate as generator

    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            raise UserError(f"--now {now!r} is not an ISO date or datetime") from None
        if moment.tzinfo is None:
            raise UserError("--now needs a time zone (for example 2026-06-01T00:00:00+00:00)")
    written = generator.write(out, seed, issues, moment)
    for tracker, path in written.items():
        typer.echo(f"{tracker}: {path}")
