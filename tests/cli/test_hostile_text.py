"""Tracker text with terminal escape sequences, against every command that prints it for a terminal.

Anyone who can edit an item writes its title and its field values. Printed raw, `ESC [2J` clears the
operator's screen, `ESC ]0;...BEL` retitles the window and an OSC 8 sequence plants a hidden link; a
newline in a title starts a line that looks like the bridge's own. The commands run as a user runs them,
their output piped, against the sandbox trackers; `--json` stays exact.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.demo import ENV, JIRA_EMAIL, OKR_FIELD, Sandbox, render_config, start_sandbox
from bridge.text import html_escape, json_terminal_safe, terminal_markup, terminal_safe

BRIDGE = [sys.executable, "-c", "from bridge.cli import main; main()"]
HOSTILE = (
    "Checkout \u202e\x1b[2Jrev\u2066amp\x1b]0;pwned\x07 "
    "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ here\nnext line "
    "[bold]x[/bold] \x9b31m\x1b"
)
CLEAN = "Checkout revamp click here next line [bold]x[/bold]"
FORBIDDEN = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
"""Every C0 control (ESC among them) but the newline between lines, DEL, every C1 control and the
invisible characters that reorder or hide text (bidirectional marks, overrides and isolates)."""
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_terminal_safe_removes_sequences_and_controls_and_keeps_the_text() -> None:
    assert terminal_safe(HOSTILE) == CLEAN + " "
    assert terminal_safe("a\r\nb\tc\x00d\x85e") == "a b cd e"
    assert terminal_safe("one\r\ntwo\rthree\tfour\n", single_line=False) == "one\ntwothree\tfour\n"
    assert terminal_safe("\x1bc\x1b7reset\x1b8 \x1bP1;2q\x1b\\done") == "reset done"
    assert terminal_safe("plain, with ünïcödé and [brackets]") == "plain, with ünïcödé and [brackets]"
    assert terminal_markup("[bold]x[/bold]\x1b[1m") == "\\[bold]x\\[/bold]"


@pytest.mark.parametrize("single_line", [True, False])
def test_terminal_safe_removes_what_reorders_or_hides_text(single_line: bool) -> None:
    # U+202E shows "invoice\u202efdp.exe" as "invoiceexe.pdf"; isolates and marks reorder likewise; a
    # zero-width space, a word joiner, a BOM and tag characters (hidden ASCII) print as nothing.
    for char in BIDI:
        assert terminal_safe(f"invoice{char}fdp.exe", single_line=single_line) == "invoicefdp.exe", repr(char)
    hidden = "a\u200bb\u2060c\ufeffd\U000e0041\U000e0042e\u206af\ufff9g"
    assert terminal_safe(hidden, single_line=single_line) == "abcdefg"
    # What scripts and emoji need stays: joiners, right-to-left letters, accents.
    kept = (
        "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u0928\u092e\u0938\u094d\u200d\u0924\u0947 "
        "\U0001f469\u200d\U0001f4bb e\u0301"
    )
    assert terminal_safe(kept, single_line=single_line) == kept
    broken = terminal_safe("one\u202e\ntwo", single_line=single_line)
    assert broken == ("one two" if single_line else "one\ntwo")


def test_html_escaping_drops_controls_and_what_reorders_or_hides_text() -> None:
    title = f'<b>invoice</b>{BIDI}\x1b[2J\x00 & "q"\tend\U000e0041'
    assert html_escape(title) == "&lt;b&gt;invoice&lt;/b&gt;[2J &amp; &quot;q&quot;\tend"
    assert html_escape("'a'", quote=False) == "'a'"


def test_json_output_escapes_what_reorders_or_hides_text_and_parses_the_same() -> None:
    value = {"title": f"a{BIDI}b\U000e0041\u200bc\x9b"}
    document = json_terminal_safe(json.dumps(value, ensure_ascii=False))
    assert not FORBIDDEN.findall(document) and "\U000e0041" not in document, repr(document)
    assert "\\u202e" in document and "\\udb40\\udc41" in document
    assert json.loads(document) == value


@pytest.fixture
def hostile_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Sandbox, Path, str]]:
    monkeypatch.setenv(ENV["jira_email"], JIRA_EMAIL)
    sandbox = start_sandbox(seed=1, per_tracker=12)
    try:
        for name, value in sandbox.secrets.items():
            monkeypatch.setenv(name, value)
        from bridge_sandbox.jira import JiraEmulator

        jira = sandbox.servers["jira"].emulator
        assert isinstance(jira, JiraEmulator)
        milestone = min(
            (i for i in jira.issues.values() if i.fields["issuetype"]["name"] == "Epic"), key=lambda i: i.key
        )
        okr_field = next(f for f, c in jira.custom_fields.items() if c["name"] == OKR_FIELD)
        # The title, and a field the bridge writes (so the dry run's "now" column shows it).
        jira.edit({"op": "update", "key": milestone.key, "fields": {"summary": HOSTILE, okr_field: HOSTILE}})
        config = tmp_path / "bridge.toml"
        config.write_text(render_config(sandbox, tmp_path / "bridge.db"), encoding="utf-8")
        yield sandbox, config, milestone.key
    finally:
        sandbox.stop()


def _bridge(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"COLUMNS": "250"}  # wide enough that no table cell folds the text
    return subprocess.run(
        [*BRIDGE, *args], capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL
    )


def test_hostile_tracker_text_reaches_no_terminal_raw(hostile_sandbox: tuple[Sandbox, Path, str]) -> None:
    _, config, key = hostile_sandbox
    c = ["--config", str(config)]
    dry_run = _bridge("sync", "--dry-run", *c)
    assert dry_run.returncode == 0, dry_run.stderr[-2000:]
    pulled = _bridge("pull", *c)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    outputs = {
        "sync --dry-run": dry_run,
        "okr draft": _bridge("okr", "draft", "--milestones", "all", *c),  # the report then shows drafts too
        "report": _bridge("report", *c),
        "explain": _bridge("explain", key, *c),
        "okr suggest": _bridge("okr", "suggest", *c),
        "status": _bridge("status", *c),
        "debug report": _bridge("--debug", "report", *c),
    }
    problems = []
    for command, result in outputs.items():
        if result.returncode != 0:
            problems.append(f"bridge {command} failed: {result.stderr[-2000:]}")
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            found = FORBIDDEN.findall(text)
            if found:
                problems.append(f"bridge {command} {stream} holds {sorted(set(found))!r}")
            if "pwned" in text or "http://evil" in text:
                problems.append(f"bridge {command} {stream} shows an escape sequence's hidden part")
    for command in ("sync --dry-run", "report", "explain", "okr draft"):
        if CLEAN not in outputs[command].stdout:
            problems.append(f"bridge {command} does not show the title, markup as written")
    assert not problems, "\n".join(problems)

    exact = _bridge("explain", key, *c, "--json")
    assert json.loads(exact.stdout)["title"] == HOSTILE, "--json keeps the tracker's text exactly"
    report = _bridge("report", *c, "--json")
    assert HOSTILE in [m["title"] for m in json.loads(report.stdout)["milestones"]]
    for document in (exact.stdout, report.stdout):  # C1 controls too are escaped, not only C0
        assert not FORBIDDEN.findall(document), repr(document[:500])


def test_log_lines_lose_escape_sequences_and_a_title_keeps_to_its_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import io
    import logging

    from bridge.text import TerminalSafeFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TerminalSafeFilter())
    logger = logging.getLogger("bridge.test_hostile_text")
    logger.addHandler(handler)
    try:
        logger.warning("skipped %s: %s", "PAY-1", HOSTILE)
        logger.warning("failed: %s", ValueError(HOSTILE))
        try:
            raise ValueError(HOSTILE)
        except ValueError:
            logger.exception("pull failed")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert not FORBIDDEN.findall(logged), repr(logged)
    assert f"skipped PAY-1: {CLEAN} \n" in logged, "a title's newline does not start a log line"
    assert "[bold]x[/bold]" in logged and "pwned" not in logged


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_daemons_log_lines_carry_no_escape_sequence(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from bridge.config import DaemonConfig
    from bridge.daemon.logs import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("bridge").level)
    try:
        configure_logging(DaemonConfig(log_format=log_format))  # type: ignore[arg-type]
        logging.getLogger("bridge.sync.pull").warning("jira: skipped %s (%s)", "PAY-1", HOSTILE)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("bridge").setLevel(saved[2])
    logged = capsys.readouterr().err
    assert "skipped PAY-1" in logged and not FORBIDDEN.findall(logged.rstrip("\n")), repr(logged)
    if log_format == "json":  # JSON escapes the controls itself, and keeps the text exact
        assert json.loads(logged)["message"] == f"jira: skipped PAY-1 ({HOSTILE})"
    else:
        assert f"skipped PAY-1 ({CLEAN} )" in logged and logged.count("\n") == 1
