"""Every command the README shows is run here, as written, and every file it shows is the one shipped.

The README's shell blocks are read from the README itself, so a command changed there is a command tested
here. Lines are run in a fresh folder through bash with this interpreter's `bridge` first on PATH; the
only changes are the ones a reader makes too: a real tracker's URL and credentials become a sandbox's,
and a database URL becomes a test database's. The commands table's syntax is checked against each
command's --help, flag by flag.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.demo import ENV, Sandbox, start_sandbox
from tests.cli.test_demo import status_page_url

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = str(Path(sys.executable).parent)
LIMIT = 120


# ---- reading the README ------------------------------------------------------------------------------


def section(title: str) -> str:
    """The text of the README section headed `title`, up to the next heading of the same or a higher
    level (a `#` line inside a fenced block is code, not a heading)."""
    lines = README.splitlines(keepends=True)
    fenced, start, level = False, None, 0
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = None if fenced else re.match(r"(#+) (.*)\n?$", line)
        if heading is None:
            continue
        if start is not None and len(heading.group(1)) <= level:
            return "".join(lines[start:number])
        if start is None and heading.group(2) == title:
            start, level = number + 1, len(heading.group(1))
    assert start is not None, f"README has no section {title!r}"
    return "".join(lines[start:])


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def commands(text: str) -> list[str]:
    """The command lines of a section's sh blocks, comments dropped."""
    lines = []
    for block in blocks(text, "sh"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


# ---- running it --------------------------------------------------------------------------------------


class Shell:
    """Runs README lines in one folder, carrying `export`s from line to line like a terminal."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if k not in ENV.values() and k != "BRIDGE_CONFIG"}
        self.env["PATH"] = BIN + os.pathsep + self.env.get("PATH", "")
        self.env.update(env or {})

    def export(self, line: str, values: dict[str, str]) -> None:
        """`export A=... B=...`: each variable gets the value the test supplies for it."""
        for name in re.findall(r"\b([A-Z_][A-Z0-9_]*)=", line):
            assert name in values, f"README exports {name}; the test has no value for it"
            self.env[name] = values[name]

    def run(self, line: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", line], cwd=self.folder, env=self.env, input=stdin, capture_output=True,
            text=True, timeout=LIMIT,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"`{line}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
        return result


def test_the_first_command_installs_and_runs_the_demo(tmp_path: Path) -> None:
    first = commands(section("Two commands"))
    assert first[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && ")
    assert first[1] == "pip install -c constraints.txt -e '.[test]' && pytest", "CI runs this one (.ci/run)"
    assert (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip().endswith(first[1])
    demo = first[0].rsplit(" && ", 1)[1]
    assert demo == "bridge demo"
    started = time.monotonic()
    out = Shell(tmp_path).run(demo).stdout
    assert time.monotonic() - started < 60
    assert "Top milestones by value" in out and "demo finished in" in out


def test_a_first_look_runs_line_by_line(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    lines = commands(section("A first look"))
    look = lines[: lines.index(next(line for line in lines if line.startswith("export")))]
    assert look[0] == "bridge demo --dir demo"
    outputs = {line: shell.run(line).stdout for line in look}
    assert "ok" in outputs["bridge check --config demo/bridge.toml"]
    team = next(line for line in look if "--team" in line)
    assert "payments" in outputs[team]
    html = next(line for line in look if "--html" in line)
    page = tmp_path / html.split("--html ", 1)[1].split()[0]
    assert page.stat().st_size > 10_000 and "<svg" in page.read_text(encoding="utf-8")
    explain = next(line for line in look if line.startswith("bridge explain"))
    assert "rank:" in outputs[explain]
    status = next(line for line in look if line.startswith("bridge status"))
    assert "last success" in outputs[status]


def test_the_demo_serves_its_status_page_and_report_until_ctrl_c(tmp_path: Path) -> None:
    text = section("A first look")
    serve = re.search(r"`(bridge demo [^`]*--serve)`", text)
    assert serve, "the README names the --serve command"
    shell = Shell(tmp_path)
    process = subprocess.Popen(
        ["bash", "-c", f"exec {serve.group(1)}"], cwd=tmp_path, env=shell.env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        url, _ = status_page_url(process, LIMIT)
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            page = response.read().decode()
        assert "report.html" in page, "the status page links to the HTML report"
        with urllib.request.urlopen(url + "/report.html", timeout=30) as response:
            assert "<svg" in response.read().decode()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(seed=11, per_tracker=30)
    try:
        yield running
    finally:
        running.stop()


def test_starting_on_real_trackers_with_init_check_and_a_dry_run(sandbox: Sandbox, tmp_path: Path) -> None:
    lines = commands(section("A first look"))
    real = lines[next(i for i, line in enumerate(lines) if line.startswith("export")) :]
    shell = Shell(tmp_path)
    jira_url = "https://acme.atlassian.net"
    for line in real:
        if line.startswith("export"):
            shell.export(
                line,
                {"JIRA_EMAIL": sandbox.secrets[ENV["jira_email"]],
                 "JIRA_API_TOKEN": sandbox.secrets[ENV["jira_token"]]},
            )  # fmt: skip
            continue
        assert line.startswith("bridge "), line
        # Every question `bridge init` asks is answered with its default, as pressing Enter would.
        result = shell.run(line.replace(jira_url, sandbox.url("jira")), stdin="\n" * 20)
        if line.startswith("bridge init"):
            assert (tmp_path / "bridge.toml").stat().st_mode & 0o077 == 0
        if line.startswith("bridge check"):
            assert "ok" in result.stdout
    assert any(line.startswith("bridge sync --dry-run") for line in real)


def test_the_worked_mappings_are_one_valid_config(tmp_path: Path, run_cli: object) -> None:
    parts = blocks(section("Worked mappings"), "toml")
    assert len(parts) == 4, "the OKR catalogue and one table per tracker"
    assert {re.search(r'kind = "(\w+)"', p).group(1) for p in parts[1:]} == {"jira", "trello", "asana"}  # type: ignore[union-attr]
    path = tmp_path / "bridge.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    path.chmod(0o600)
    config = load_config(path, ConnectorRegistry.default())
    assert set(config.trackers) == {"acme-jira", "design-trello", "growth-asana"}
    result = run_cli("check", "--config", str(path))  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.mark.postgres
def test_moving_to_postgresql_as_the_readme_says(pg_database_url: str, tmp_path: Path) -> None:
    lines = commands(section("PostgreSQL and several replicas"))
    shell = Shell(tmp_path)
    shell.run("bridge demo --dir demo")
    (tmp_path / "bridge.toml").write_text(
        (tmp_path / "demo" / "bridge.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    for line in lines:
        if line.startswith("export"):
            shell.export(line, {"BRIDGE_DATABASE_URL": pg_database_url})
        else:
            out = shell.run(line).stdout
            assert "copied" in out
    moved = (tmp_path / "bridge.toml").read_text(encoding="utf-8")
    moved, replaced = re.subn(r'(?m)^url = "sqlite:.*$', 'url_env = "BRIDGE_DATABASE_URL"', moved)
    assert replaced == 1
    (tmp_path / "bridge.toml").write_text(moved, encoding="utf-8")
    assert "last success" in shell.run("bridge status --config bridge.toml").stdout


# ---- the commands table --------------------------------------------------------------------------------


def table_rows() -> list[str]:
    """Every `bridge ...` syntax in the first column of the commands table."""
    found = []
    for line in section("Commands").splitlines():
        if line.startswith("| `bridge"):
            first = re.split(r"(?<!\\)\|", line)[1]
            found += re.findall(r"`(bridge [^`]+)`", first)
    return found


@pytest.mark.parametrize("syntax", table_rows())
def test_each_row_of_the_commands_table_matches_the_command(syntax: str) -> None:
    words = syntax.replace("\\|", "|").split()
    path = []
    for word in words[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    if syntax.startswith("bridge --version"):
        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip()
        return
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, f"{' '.join(path)}: {result.output}"
    for flag in set(re.findall(r"--[a-z][a-z-]*", syntax)):
        assert flag in result.output, f"`bridge {' '.join(path)}` has no {flag}"


def test_every_command_is_in_the_table() -> None:
    named = {" ".join(row.split()[1:3]) for row in table_rows()}
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    listed = re.findall(r"^(?:│ |  )(\w[\w-]*)\s{2,}", result.output.split("Commands", 1)[1], re.M)
    assert listed, result.output
    for command in listed:
        assert any(n == command or n.startswith(command + " ") for n in named), command


# ---- the service files ---------------------------------------------------------------------------------


def test_the_service_examples_are_the_shipped_files(tmp_path: Path) -> None:
    text = section("Running as a service")
    unit = (ROOT / "deploy" / "milestone-bridge.service").read_text(encoding="utf-8")
    container = (ROOT / "deploy" / "Containerfile").read_text(encoding="utf-8")
    assert blocks(text, "ini") == [unit]
    assert blocks(text, "dockerfile") == [container]
    for source in re.findall(r"^COPY (.+) \./", container, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"the Containerfile copies {name}, which does not exist"
    entry = re.search(r'^ENTRYPOINT \["(\w+)"\]\nCMD \["(\w+)"\]', container, re.M)
    assert entry and entry.groups() == ("bridge", "run")
    start = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    assert start and start.group(1).endswith("/bin/bridge")
    assert CliRunner().invoke(app, [*start.group(2).split(), "--help"]).exit_code == 0

    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed, so the unit's syntax is not verified here")
    copy = tmp_path / "milestone-bridge.service"
    copy.write_text(unit.replace(start.group(1), str(Path(BIN) / "bridge")), encoding="utf-8")
    result = subprocess.run([verify, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "milestone-bridge" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_security_section_names_a_defence_and_existing_tests_for_each_finding() -> None:
    text = section("Security")
    findings = re.findall(r"^(\d+)\. \*\*", text, re.M)
    assert findings == [str(n) for n in range(1, 13)], "the twelve findings of the hardening, in order"
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(named) >= 30, named
    missing = []
    for path, name in named:
        file = ROOT / path
        source = file.read_text(encoding="utf-8") if file.is_file() else ""
        if not re.search(rf"^(?:async )?def {name}\(", source, re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"the Security section names tests that do not exist: {missing}"
