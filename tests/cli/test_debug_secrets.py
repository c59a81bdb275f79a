"""Every command of `bridge --help`, run with `--debug` and sentinel credentials against the sandbox
trackers: no sentinel may show up in what it prints, whether it succeeds or fails.

`--debug` turns on urllib3's request lines, which carry the whole URL; py-trello puts Trello's key and
token in the query string, so a command that does not scrub its log handlers prints them. Commands that
need something this test does not give them (a daemon's store lease, say) may fail; they still must not
print a secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from bridge.demo import ENV, JIRA_EMAIL, Sandbox, render_config, start_sandbox
from tests.secrets import SecretScan

BRIDGE = [sys.executable, "-c", "from bridge.cli import main; main()"]
LIMIT = 120
SERVING_LIMIT = 60.0
"""Seconds a command that serves until stopped (`run`, `sandbox serve`) may take to show what it does
(`run`: a cycle of every tracker; `sandbox serve`: the line with its trackers' URLs) before Ctrl-C."""
TRACKERS = ("jira", "trello", "asana")
"""The demo config's trackers, each of which `run` cycles at once."""


@pytest.fixture
def sentinel_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    secrets = {
        ENV["jira_token"]: f"sentinel-jira-{uuid.uuid4().hex}",
        ENV["trello_key"]: f"sentinel-tkey-{uuid.uuid4().hex}",
        ENV["trello_token"]: f"sentinel-ttok-{uuid.uuid4().hex}",
        ENV["asana_token"]: f"sentinel-asana-{uuid.uuid4().hex}",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)  # the sandbox takes its credentials from the environment
    monkeypatch.setenv(ENV["jira_email"], JIRA_EMAIL)
    sandbox = start_sandbox(seed=3, per_tracker=12)
    try:
        yield sandbox, secrets
    finally:
        sandbox.stop()


def _bridge(
    args: list[str], env: dict[str, str], *, serving: Callable[[str, str], bool] | None = None
) -> tuple[int, str, str]:
    """Run `bridge --debug ARGS`; one that serves until stopped gets Ctrl-C once `serving(stdout, stderr)`
    says it has shown what it does (or after `SERVING_LIMIT` seconds, or when it exits by itself)."""
    process = subprocess.Popen(
        [*BRIDGE, "--debug", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if serving is None:
            out, err = process.communicate(timeout=LIMIT)
            return process.returncode, out, err
        said: dict[str, list[str]] = {"out": [], "err": []}
        readers = [
            threading.Thread(target=_read, args=(stream, said[name]), daemon=True)
            for name, stream in (("out", process.stdout), ("err", process.stderr))
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + SERVING_LIMIT
        while process.poll() is None and time.monotonic() < deadline:
            if serving("".join(said["out"]), "".join(said["err"])):
                break
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        for reader in readers:
            reader.join(30)
        return process.returncode, "".join(said["out"]), "".join(said["err"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _read(stream: IO[str] | None, into: list[str]) -> None:
    assert stream is not None
    for line in iter(stream.readline, ""):
        into.append(line)


def _cycled_every_tracker(out: str, err: str) -> bool:
    return all(f"{tracker}: cycle " in err for tracker in TRACKERS)


def _listed_its_trackers(out: str, err: str) -> bool:
    return out.endswith("\n") and all(f'"{tracker}"' in out for tracker in TRACKERS)


def test_no_command_prints_a_credential_with_debug(
    sentinel_sandbox: tuple[Sandbox, dict[str, str]], tmp_path: Path
) -> None:
    sandbox, secrets = sentinel_sandbox
    env = dict(os.environ)
    config = tmp_path / "bridge.toml"
    config.write_text(render_config(sandbox, tmp_path / "bridge.db"), encoding="utf-8")
    c = ["--config", str(config)]
    trello_flags = [
        "--kind", "trello", "--url", sandbox.url("trello"),
        "--token-env", ENV["trello_token"], "--api-key-env", ENV["trello_key"],
    ]  # fmt: skip
    commands: list[tuple[list[str], Callable[[str, str], bool] | None]] = [
        (["check", *c], None),
        (["check", *c, "--online"], None),
        (["connectors"], None),
        (["discover", "trello", *c], None),  # the config form
        (["discover", *trello_flags], None),  # the flag form
        (["discover", "jira", *c], None),
        (["discover", "asana", *c], None),
        (["init", *trello_flags, "--yes", "--out", str(tmp_path / "init.toml")], None),
        (["pull", *c, "--tracker", "trello"], None),
        (["sync", *c, "--dry-run"], None),
        (["sync", *c], None),
        (["purge", *c, "--tracker", "trello", "--dry-run"], None),
        (["explain", "PAY-1", *c], None),
        (["status", *c], None),
        (["report", *c], None),
        (["okr", "suggest", *c], None),
        (["okr", "confirm", "PAY-1", "KR1.1", *c], None),
        (["db", "current", *c], None),
        (["db", "upgrade", *c], None),
        (["db", "history", *c], None),
        (["db", "upgrade", "--sql", *c], None),
        (["health", *c], None),  # no daemon runs: it fails, saying so
        (["db", "copy", *c, "--to", f"sqlite:///{tmp_path / 'copy.db'}"], None),
        (["sandbox", "generate", "--out", str(tmp_path / "seeds"), "--issues", "5"], None),
        (["demo", "--dir", str(tmp_path / "demo")], None),
        (["run", *c], _cycled_every_tracker),
        (["sandbox", "serve"], _listed_its_trackers),
    ]
    scan = SecretScan(set(secrets.values()))
    said: list[str] = []
    for args, serving in commands:
        code, out, err = _bridge(args, env, serving=serving)
        said.append(f"bridge {' '.join(args)}: exit {code}")
        scan.text(f"bridge {' '.join(args)} stdout", out)
        scan.text(f"bridge {' '.join(args)} stderr", err)
        if args[0] == "discover" and "trello" in args:
            assert code == 0, err[-2000:]
            assert "DEBUG urllib3" in err and "GET /1/" in err, "debug shows Trello's request lines"
    assert scan.scanned == 2 * len(commands)
    assert not scan.found, scan.report() + "\n" + "\n".join(said)


def test_every_command_of_the_help_is_run() -> None:
    """The list above keeps up with the commands `bridge --help` lists."""
    import typer.main

    from bridge.cli import app

    group = typer.main.get_command(app)
    listed = set(group.commands)  # type: ignore[attr-defined]
    source = Path(__file__).read_text(encoding="utf-8")
    assert listed, "bridge has commands"
    missing = {name for name in listed if f'(["{name}"' not in source}
    assert not missing, f"commands not run with --debug here: {sorted(missing)}"
