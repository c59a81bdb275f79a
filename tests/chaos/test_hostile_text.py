"""Chaos: hostile tracker text, end to end, on SQLite and on PostgreSQL.

Items on all three sandbox trackers get titles (and a Jira field the bridge writes) holding every kind
of text that attacks a terminal, a log, a browser or a store: CSI and OSC sequences (an OSC 8 hidden
link among them), C1 controls, bidirectional overrides and isolates, tag characters, NUL, HTML and rich
markup, and a title 4,000 characters long. Then a user's day runs: `sync --dry-run`, `pull`, `report`
(terminal, `--json`, `--html`), `explain`, `sync`, and `sync --dry-run` again. Asserted:

- nothing raw reaches a terminal: no control, escape sequence or bidirectional character on stdout or
  stderr of any command, and no escape sequence's hidden part (the retitle, the link's target);
- the HTML report escapes the markup and drops controls and bidirectional overrides; the JSON documents
  carry the text exactly (escaped);
- nothing is lost: every title lands in the store as written, NUL alone replaced by U+FFFD, counted and
  logged with the item's key (on PostgreSQL, which refuses NUL, the pages land all the same); the
  trackers keep the users' titles; the push applies, and the next plan is empty.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.demo import OKR_FIELD, Sandbox
from bridge.store import Store
from bridge.store.models import MilestoneRow, TaskRow
from bridge.text import terminal_safe
from tests.conftest import CliResult
from tests.demo_world import demo_config, emulators, running_sandbox

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

HOSTILE = [
    "csi \x1b[2J\x1b[1;1Hcleared \x1b[31mred\x1b[0m",
    "osc \x1b]0;pwned\x07titled \x1b]8;;http://evil.example/\x1b\\hidden link\x1b]8;;\x1b\\ end",
    "c1 \x9b2J\x9d0;pwned\x9c \x85next \x90dcs\x9c \x7fdel",
    "bidi invoice\u202efdp.exe\u202c \u2066isolated\u2069 \u200fmark \u061calm \U000e0041\U000e0042 tags",
    "nul a\x00b\x00c",
    "<script>alert('x')</script> <img src=x onerror=alert(1)> &amp; [bold]markup[/bold] [/]",
    "lines one\ntwo\r\nthree\tfour\rfive",
    "long " + "x" * 4000,
]
"""Each starts with a word of its own, so each is found where it is shown."""
FORBIDDEN = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
"""Every C0 control (ESC among them) but the newline between lines, DEL, every C1 control and what
reorders or hides text."""
HIDDEN = ("pwned", "evil.example")
"""Parts of escape sequences a terminal would act on without showing."""


def stored(title: str) -> str:
    """The title as a store keeps it: NUL, which none can hold, as U+FFFD."""
    return title.replace("\x00", "\ufffd")


def hostile_title(n: int, what: str) -> str:
    return f"{HOSTILE[n % len(HOSTILE)]} #{what}"


def _hostile_items(sandbox: Sandbox) -> dict[str, str]:
    """Edit titles on every tracker (and the Jira OKR field the bridge writes); item id -> new title."""
    jira, trello, asana = emulators(sandbox)
    titles: dict[str, str] = {}
    okr_field = next(f for f, c in jira.custom_fields.items() if c["name"] == OKR_FIELD)
    issues = sorted(jira.issues.values(), key=lambda i: (i.fields["issuetype"]["name"] != "Epic", i.key))
    for n, issue in enumerate(issues[: len(HOSTILE)]):
        titles[issue.key] = hostile_title(n, f"jira{n}")
        fields = {"summary": titles[issue.key]} | ({okr_field: HOSTILE[n]} if n < 2 else {})
        jira.edit({"op": "update", "key": issue.key, "fields": fields})
    # Task cards: a milestone card is found by its name (its `M:` label names it), so retitling one
    # would make it a card of no milestone, which the bridge does not store.
    cards = [
        card
        for board in trello.boards.values()
        for card in board.ordered_cards()
        if not {f"M:{card['name']}"} & {str(board.labels[i].get("name")) for i in card.get("idLabels", [])}
        and any(str(board.labels[i].get("name", "")).startswith("M:") for i in card.get("idLabels", []))
    ]
    for n, card in enumerate(cards[:4]):
        titles[card["id"]] = hostile_title(n + 2, f"trello{n}")
        trello.edit({"op": "update_card", "card": card["id"], "fields": {"name": titles[card["id"]]}})
    tasks = sorted(asana.state.tasks.values(), key=lambda t: (t.subtype != "milestone", t.gid))
    for n, task in enumerate(tasks[:4]):
        titles[task.gid] = hostile_title(n + 4, f"asana{n}")
        asana.edit({"op": "update_task", "task": task.gid, "fields": {"name": titles[task.gid]}})
    return titles


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hostile(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Sandbox, Path, str, dict[str, str]]]:
    """The sandboxes with hostile titles, a config, its store's URL and the titles by item id."""
    monkeypatch.setenv("COLUMNS", "250")
    with running_sandbox(monkeypatch, seed=7, per_tracker=12) as sandbox:
        titles = _hostile_items(sandbox)
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
        if request.param == "postgresql":
            url = str(request.getfixturevalue("pg_database_url"))
        monkeypatch.setenv("HOSTILE_STORE_URL", url)
        yield sandbox, demo_config(sandbox, tmp_path, "HOSTILE_STORE_URL"), url, titles


def _piped(*args: str) -> CliResult:
    """`bridge ARGS` in a process of its own, output piped, so its log lines are on stderr as a user's."""
    env = dict(os.environ) | {"COLUMNS": "250"}
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, env=env, timeout=120,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return CliResult(done.returncode, done.stdout, done.stderr)


def _terminal_problems(command: str, result: CliResult) -> list[str]:
    problems = []
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        found = FORBIDDEN.findall(text)
        if found:
            problems.append(f"bridge {command}: {stream} holds {sorted(set(found))!r}")
        if "--json" not in command:  # JSON keeps the text exactly, its controls escaped
            problems.extend(f"bridge {command}: {stream} shows {h!r}" for h in HIDDEN if h in text)
    return problems


def _stored_items(url: str) -> dict[str, tuple[str, str]]:
    """Every stored task and milestone: remote id and key -> (key, title)."""
    store = Store(url, create=False)
    try:
        with store.read() as conn:
            rows = [*conn.execute(select(TaskRow.remote_id, TaskRow.key, TaskRow.title))]
            rows += [*conn.execute(select(MilestoneRow.remote_id, MilestoneRow.key, MilestoneRow.title))]
    finally:
        store.close()
    found: dict[str, tuple[str, str]] = {}
    for remote_id, key, title in rows:
        found[remote_id] = found[key] = (key, title)
    return found


def _tracker_titles(sandbox: Sandbox) -> dict[str, str]:
    jira, trello, asana = emulators(sandbox)
    titles = {issue.key: issue.fields["summary"] for issue in jira.issues.values()}
    titles |= {card["id"]: card["name"] for board in trello.boards.values() for card in board.cards.values()}
    return titles | {task.gid: task.name for task in asana.state.tasks.values()}


def test_hostile_text_reaches_no_terminal_raw_and_nothing_is_lost(
    hostile: tuple[Sandbox, Path, str, dict[str, str]], run_cli: Any, tmp_path: Path
) -> None:
    sandbox, config, url, titles = hostile
    c = ["--config", str(config)]
    page = tmp_path / "report.html"
    milestone, markup = (next(k for k, t in titles.items() if t.endswith(f" #jira{n}")) for n in (0, 5))
    steps = [
        ("sync --dry-run", ["sync", "--dry-run", *c]),
        ("pull", ["pull", *c]),
        ("report", ["report", *c]),
        ("report --json", ["report", "--json", *c]),
        ("report --html", ["report", "--html", str(page), *c]),
        ("explain", ["explain", milestone, *c]),
        ("explain markup", ["explain", markup, *c]),
        ("explain --json", ["explain", milestone, "--json", *c]),
        ("sync", ["sync", *c]),
        ("sync --dry-run --json", ["sync", "--dry-run", "--json", *c]),
    ]
    results: dict[str, CliResult] = {}
    problems: list[str] = []
    for command, args in steps:
        # The commands that pull and push run as a user runs them (their log lines on stderr).
        piped = command in ("sync --dry-run", "sync")
        results[command] = result = _piped(*args) if piped else run_cli(*args)
        if result.exit_code != 0:
            problems.append(f"bridge {command} exit {result.exit_code}: {result.stderr[-1500:]}")
        problems.extend(_terminal_problems(command, result))
    assert not problems, "\n".join(problems)

    # Shown, cleaned: a milestone's title in the report and both explained titles whole, markup as written.
    assert "#jira0" in results["report"].stdout, results["report"].stdout[:3000]
    for command, item in (("explain", milestone), ("explain markup", markup)):
        assert terminal_safe(titles[item]) in results[command].stdout, results[command].stdout[:2000]
    assert "[bold]markup[/bold] [/]" in results["explain markup"].stdout

    # The JSON documents keep the text exactly (NUL as a store keeps it) and escape every control.
    report = json.loads(results["report --json"].stdout)
    reported = {m["key"]: m["title"] for m in report["milestones"]}
    assert reported[milestone] == stored(titles[milestone])
    assert json.loads(results["explain --json"].stdout)["title"] == stored(titles[milestone])

    # The HTML page shows a milestone's markup escaped, as text, and no sequence's target as a link.
    html = page.read_text(encoding="utf-8")
    assert any("<script>alert" in title for title in reported.values()), "a milestone's title holds markup"
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="http://evil' not in html
    assert "&lt;script&gt;alert(" in html
    assert not re.findall(r"[\x00-\x08\x1b\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", html), (
        "no control or bidirectional override reorders the page"
    )

    # Nothing lost: every title in the store as written, NUL replaced, counted and logged by key.
    in_store = _stored_items(url)
    lost = {item: title for item, title in titles.items() if in_store.get(item, ("", ""))[1] != stored(title)}
    assert not lost, f"titles not stored as written: {sorted(lost)}"
    nul_keys = [in_store[item][0] for item, title in titles.items() if "\x00" in title]
    assert len(nul_keys) >= 3, "the hostile set puts NUL in a title on every tracker"
    pulled = results["sync --dry-run"]
    assert pulled.stdout.count("(1 with NUL replaced)") == 3, pulled.stdout
    for key in nul_keys:
        assert f"{key} holds NUL characters" in pulled.stderr, (key, pulled.stderr[-2000:])

    # The push applied, the users' titles stay, and the next plan is empty.
    applied = results["sync"].stdout
    assert "FAILED" not in applied, applied
    on_trackers = _tracker_titles(sandbox)
    assert all(on_trackers[item] == title for item, title in titles.items()), "the bridge kept off titles"
    planned = json.loads(results["sync --dry-run --json"].stdout)["trackers"]
    assert [t["writes_planned"] for t in planned] == [0, 0, 0], planned
