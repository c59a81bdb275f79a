"""What `bridge sandbox serve` and `bridge sandbox generate` do.

The typer commands themselves live in the bridge's CLI (`bridge.cli.demo_cmds`), which imports this
module only when one of them runs, so no other command loads the emulators.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any

from bridge.errors import UserError
from bridge_sandbox.server import Emulator, RequestLog, SandboxServer


def build_emulators(
    jira: Path | None = None,
    jira_flavour: str = "cloud",
    trello: Path | None = None,
    asana: Path | None = None,
) -> dict[str, Emulator]:
    """The three emulators, seeded from the given files (empty where none is given)."""
    from bridge_sandbox.jira import JiraEmulator

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
    return getattr(importlib.import_module(f"bridge_sandbox.{module}"), name)


def serve(
    emulators: dict[str, Emulator],
    *,
    record: Path | None,
    host: str,
    ports: dict[str, int],
) -> None:
    """Serve the emulators until SIGTERM or Ctrl-C; first print one JSON line with their URLs and
    credentials. With `record`, every request is appended to it as a JSON line."""
    recording: IO[str] | None = record.open("a", encoding="utf-8") if record else None
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


def generate(out: Path, seed: int, issues: int, now: str | None) -> dict[str, Path]:
    """Write a generated organisation as one seed file per tracker; `now` is an aware ISO date or
    datetime the histories end at (default: today, UTC). Returns tracker -> the file written."""
    from datetime import datetime

    from bridge_sandbox import seeds

    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            raise UserError(f"--now {now!r} is not an ISO date or datetime") from None
        if moment.tzinfo is None:
            raise UserError("--now needs a time zone (for example 2026-06-01T00:00:00+00:00)")
    return seeds.write(out, seed, issues, moment)
