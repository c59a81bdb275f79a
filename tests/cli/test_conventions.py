"""The conventions of Python command-line tools: `python -m bridge`, shell completion, `--json` on every
command that reports something, `--debug` anywhere on the line, and `--help` summaries in full."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from bridge import __version__
from bridge import demo as demo_module
from bridge.cli import app
from bridge.cli.group import debug_first, summary
from tests.conftest import CliResult

NOT_REPORTING = {
    "bridge run": "the daemon: it logs (daemon.log_format = json) and serves /status.json",
    "bridge demo": "a walkthrough for people; `bridge report --json --config DIR/bridge.toml` reads it",
    "bridge sandbox serve": "always prints one JSON line with the emulators' URLs",
}
"""Commands without `--json`, and why."""


def _commands(group: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    ctx = typer.Context(group, info_name=prefix)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = f"{prefix} {name}"
        if hasattr(command, "list_commands"):
            yield from _commands(command, path)
        else:
            yield path, command


def _tree() -> list[tuple[str, Any]]:
    return list(_commands(typer.main.get_command(app), "bridge"))


def _cli(run_cli: object, *args: str) -> CliResult:
    result: CliResult = run_cli(*args)  # type: ignore[operator]
    return result


def test_every_command_that_reports_something_has_json() -> None:
    missing = []
    for path, command in _tree():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if "--json" not in options and path not in NOT_REPORTING:
            missing.append(path)
    assert not missing, f"without --json: {missing}"
    assert set(NOT_REPORTING) <= {path for path, _ in _tree()}


def test_help_lists_each_command_with_its_whole_summary() -> None:
    runner = CliRunner()
    for group in ([], ["db"], ["okr"], ["sandbox"]):
        output = runner.invoke(app, [*group, "--help"], terminal_width=80).output
        flat = " ".join(output.split())
        for path, command in _tree():
            if path.split()[1:-1] == group:
                whole = summary(command.help)
                assert whole and whole in flat, f"{path}: {whole!r} not in full in:\n{output}"
        assert "..." not in output.split("Commands:", 1)[1], output


def test_debug_after_the_command_shows_the_traceback(run_cli: object, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    assert "Traceback" not in _cli(run_cli, "db", "current", "--config", missing).stderr
    for args in (
        ["db", "current", "--debug", "--config", missing],
        ["check", "--config", missing, "--debug"],
    ):
        result = _cli(run_cli, *args)
        assert result.exit_code == 2 and "Traceback" in result.stderr, args


def test_debug_moves_to_the_front_but_not_past_a_double_dash() -> None:
    assert debug_first(["pull", "--debug", "--full"]) == ["--debug", "pull", "--full"]
    assert debug_first(["--debug", "pull"]) == ["--debug", "pull"]
    assert debug_first(["explain", "--", "--debug"]) == ["explain", "--", "--debug"]
    assert debug_first(["report"]) == ["report"]


def test_python_dash_m_bridge_is_the_bridge_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and f"bridge (milestone-bridge) {__version__}" in result.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.stdout.startswith("Usage: bridge "), usage.stdout


def test_shell_completion_is_offered_and_completes_commands() -> None:
    output = CliRunner().invoke(app, ["--help"], terminal_width=120).output
    assert "--install-completion" in output and "--show-completion" in output
    script = Path(sys.executable).with_name("bridge")
    env = {**os.environ, "_BRIDGE_COMPLETE": "complete_bash", "COMP_WORDS": "bridge db hi", "COMP_CWORD": "2"}
    result = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.split() == ["history"], result.stdout + result.stderr


def test_connectors_json(run_cli: object) -> None:
    document = json.loads(_cli(run_cli, "connectors", "--json").stdout)
    kinds = {entry["kind"]: entry for entry in document["connectors"]}
    assert {"jira", "trello", "asana"} <= set(kinds)
    assert "pull" in kinds["jira"]["capabilities"]


def test_pull_purge_and_confirm_json_against_the_sandboxes(run_cli: object, tmp_path: Path) -> None:
    with demo_module.demo(tmp_path, seed=3, per_tracker=20) as run:
        assert run.result.ok
        config = str(tmp_path / "bridge.toml")
        pulled = _cli(run_cli, "pull", "--json", "--config", config)
        assert pulled.exit_code == 0, pulled.stderr
        trackers = json.loads(pulled.stdout)["trackers"]
        assert trackers and all(t["ok"] and t["items"] > 0 and t["requests"] > 0 for t in trackers)

        name = trackers[0]["tracker"]
        planned = _cli(run_cli, "purge", "--tracker", name, "--dry-run", "--json", "--config", config)
        assert planned.exit_code == 0, planned.stderr
        document = json.loads(planned.stdout)
        assert document["dry_run"] is True and document["removals"], document
        assert {"item", "field", "now"} <= set(document["removals"][0])
        # as text: each removal said once ("remove label mb-at-risk", not "... mb-at-risk mb-at-risk")
        text = _cli(run_cli, "purge", "--tracker", name, "--dry-run", "--config", config).stdout
        lines = text.splitlines()[:-1]
        assert lines and all(not re.search(r"(\S+) \1$", line) for line in lines), text
        assert any(re.search(r": clear rank \(now [0-9.]+\)$", line) for line in lines), text
        assert all(
            ": clear " in line for line in text.splitlines() if " rank" in line.split(": ", 1)[-1][:12]
        )

        purged = json.loads(_cli(run_cli, "purge", "--tracker", name, "--json", "--config", config).stdout)
        assert purged["removed"] == len(document["removals"]) and purged["failed"] == 0


def test_a_purge_dry_run_says_each_removal_once() -> None:
    from bridge.cli.sync_cmds import _describe, _field_name, _removal
    from bridge.domain import FieldWrite, Ref, WriteKind

    ref = Ref("jira", "10001")
    label = FieldWrite(ref, "mb-at-risk", None, previous="mb-at-risk", kind=WriteKind.LABEL_REMOVE)
    rank = FieldWrite(ref, "rank", None, previous=7.692, kind=WriteKind.FIELD)
    said = [
        _removal(w, {"field": _field_name(w), "now": _describe(w)[0], "item": "PAY-1"}) for w in (label, rank)
    ]
    assert said == ["remove label mb-at-risk", "clear rank (now 7.692)"]
