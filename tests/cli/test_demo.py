"""`bridge demo`: sandbox trackers, a config for them, one cycle with writes into all three, in under 60 s;
`--serve` keeps the daemon's status page up until Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.demo import CONFIG_NAME, ENV, STORE_NAME, render_config, start_sandbox
from bridge.store import Store
from bridge.store.models import RunRow

LIMIT = 60.0
SECTIONS = (
    "One cycle: pull, analyse, write back",
    "Top milestones by value",
    "Objectives and key results",
    "Bottlenecks (",
    "At-risk milestones (",
    "Written back into each tracker",
    "2 hours later: one milestone reached, another given more work",
    "Where to look",
)
BRIDGE = [sys.executable, "-c", "from bridge.cli import main; main()"]


def _env() -> dict[str, str]:
    """This environment without the demo's credential variables, as a fresh shell would have it."""
    return {k: v for k, v in os.environ.items() if k not in ENV.values()}


@dataclass
class Demo:
    directory: Path
    stdout: str
    stderr: str
    exit_code: int
    seconds: float

    @property
    def config(self) -> Path:
        return self.directory / CONFIG_NAME

    @property
    def first_cycle(self) -> str:
        """What the demo printed of its first cycle (before the second act)."""
        return self.stdout.split("2 hours later:")[0]

    @property
    def second_act(self) -> str:
        return self.stdout.split("2 hours later:")[1].split("Where to look")[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    directory = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    done = subprocess.run(
        [*BRIDGE, "demo", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=LIMIT + 30,
        env=_env(),
    )
    return Demo(directory, done.stdout, done.stderr, done.returncode, time.monotonic() - started)


def test_the_demo_finishes_within_a_minute_and_prints_every_section(finished: Demo) -> None:
    assert finished.exit_code == 0, finished.stdout + finished.stderr
    assert finished.seconds < LIMIT, finished.seconds
    positions = [finished.stdout.find(title) for title in SECTIONS]
    assert all(p >= 0 for p in positions), [t for t, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "sections in order"
    assert re.search(r"demo finished in [0-9.]+ s", finished.stdout)
    assert f"bridge report --config {finished.config}" in finished.stdout
    assert re.search(r"where a key result stands: +bridge explain '[^']+' --config ", finished.stdout)
    # the sandboxes stop with the demo: none of their URLs is printed, --serve is named instead
    assert "http://" not in finished.stdout
    assert f"bridge demo --serve --dir {finished.directory}" in finished.stdout


def test_each_team_has_its_bottleneck_and_the_okr_tree_spans_config_and_asana(finished: Demo) -> None:
    found = re.search(r"Bottlenecks \((\d+) of (\d+) team work types\)", finished.stdout)
    assert found is not None and int(found.group(1)) >= 3, finished.stdout
    for slow in ("payments / security-review", "design / prototype", "data / migration"):
        assert slow in finished.stdout
    # by title, from the config and from an Asana goal; no id beside them
    assert (
        "Make checkout effortless" in finished.stdout
        and "Grow through content and insight" in finished.stdout
    )
    assert "(config:" not in finished.stdout and "(asana:" not in finished.stdout
    # a key result reads "title: progress, status": the title's own figures stay apart from its progress
    assert re.search(r"^    - .+: \d+%, on track, moved by \d+ milestones?;", finished.stdout, re.M)
    assert not re.search(r"(?<![\w:])\d{16}(?!\w)|(?<![\w:])[0-9a-f]{24}(?!\w)", finished.stdout), "no raw id"
    assert "weight" not in finished.stdout, "the order of bottlenecks is explained in their reasons"
    assert re.search(r"At-risk milestones \(\d+ of \d+ open, \d+ with a forecast\)", finished.stdout)


def test_writes_were_done_in_every_tracker(finished: Demo) -> None:
    summary = {
        m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
        for m in re.finditer(
            r"^(jira|trello|asana): \d+ items pulled, (\d+) writes planned, (\d+) done, (\d+) failed",
            finished.first_cycle,
            re.MULTILINE,
        )
    }
    assert set(summary) == {"jira", "trello", "asana"}, finished.stdout
    for tracker, (planned, done, failed) in summary.items():
        assert planned == done > 0 and failed == 0, tracker
    written = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"^  (jira|trello|asana): \d+ writes done, 0 failed: (.*)$", finished.first_cycle, re.M
        )
    }
    assert set(written) == {"jira", "trello", "asana"}
    for tracker, kinds in written.items():
        assert "rank fields" in kinds and "label mb-bottleneck added to" in kinds, (tracker, kinds)
        assert not re.search(r"\b1 \w+s\b|_", kinds), ("plurals and words, not field names", kinds)
    assert "moves in the tracker's own order" in written["jira"], "native order on Jira"
    # a goal's status update reads as words, with its reason, not as a field and its enum value
    assert "status update posted: on track: " in finished.first_cycle
    assert "status_update" not in finished.stdout and "on_track" not in finished.stdout
    store = Store(f"sqlite:///{finished.directory / STORE_NAME}")
    table: Any = RunRow.__table__  # type: ignore[attr-defined]
    try:
        with store.read() as conn:
            rows = conn.execute(
                select(table.c.source, table.c.writes_done).where(table.c.kind == "push")
            ).all()
    finally:
        store.close()
    assert {r.source for r in rows if r.writes_done > 0} == {"jira", "trello", "asana"}


def test_the_second_act_reaches_one_milestone_and_labels_the_other_slipping(finished: Demo) -> None:
    act = finished.second_act
    reached = re.search(r"in Jira, ([A-Z]+-\d+ [^:]+): its last (open task|\d+ open tasks) and the epic", act)
    grown = re.search(r"in Jira, ([A-Z]+-\d+ [^:]+): (\d+) tasks added", act)
    assert reached is not None and grown is not None, act
    slipped = re.search(
        rf"^  {re.escape(grown.group(1))}: label mb-slipping added \(its P85 date moved \d+ days? later "
        rf"since [0-9-]+, more than 20% of the \d+ days? it had left: {grown.group(2)} tasks added",
        act,
        re.MULTILINE,
    )
    assert slipped is not None, act
    assert f"{reached.group(1)}: rank field cleared (done: no rank)" in act
    comment = act.split(f"{reached.group(1)}: comment posted:\n")[1].splitlines()
    assert comment[0] == f"      | Milestone reached: {reached.group(1)}", act
    for line in ("Delivered: ", "Key result", "Took: ", "First forecast: ", "Team: "):
        assert any(row.startswith(f"      | {line}") for row in comment), (line, act)
    assert sum(reached.group(1) in row for row in comment) == 1, (
        "the milestone is named once, in the headline"
    )


def test_the_config_names_its_secrets_and_passes_check(finished: Demo, run_cli: Any) -> None:
    text = finished.config.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(token|api_key|key|email|password)\s*=", text, re.MULTILINE)
    for variable in ENV.values():
        assert f'"{variable}"' in text
    checked = run_cli("check", "--config", str(finished.config))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert "tracker jira: jira" in checked.stdout and "tracker asana: asana" in checked.stdout


def test_the_report_reads_the_demos_store(finished: Demo, run_cli: Any) -> None:
    result = run_cli("report", "--config", str(finished.config), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["milestones"] and document["okrs"]
    assert any(b["bottleneck"] for b in document["bottlenecks"])
    assert {m["id"].split(":", 1)[0] for m in document["milestones"]} == {"jira", "trello", "asana"}


def test_no_credential_value_reaches_the_config(tmp_path: Path) -> None:
    sandbox = start_sandbox(seed=3, per_tracker=20)
    try:
        text = render_config(sandbox, tmp_path / STORE_NAME)
    finally:
        sandbox.stop()
    for name, value in sandbox.secrets.items():
        if name != ENV["jira_email"]:
            assert value not in text, name


def status_page_url(process: subprocess.Popen[str], limit: float) -> tuple[str, list[str]]:
    """The status page `bridge demo --serve` announces, and the lines it printed up to it."""
    assert process.stdout is not None
    printed: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        printed.append(line)
        found = re.search(r"status page: (http://\S+)", line)
        if found:
            return found.group(1), printed
    raise AssertionError(f"no status page announced (exit code {process.poll()})")


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    process = subprocess.Popen(
        [*BRIDGE, "demo", "--serve", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        url, printed = status_page_url(process, LIMIT + 30)
        yield process, url, "".join(printed)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_keeps_the_status_page_up_until_ctrl_c(serving: tuple[subprocess.Popen[str], str, str]) -> None:
    process, url, printed = serving
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
        assert response.status == 200
    # with --serve the sandboxes stay up, so their URLs are printed, and each one answers
    states = re.findall(r"whole state, no credentials: (http://\S+)", printed)
    assert len(states) == 3 and re.search(r"http://127\.0\.0\.1:\d+/rest/api/3/issue/[A-Z]+-\d+", printed)
    for state in states:
        with urllib.request.urlopen(state, timeout=10) as response:
            assert response.status == 200
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert process.wait(timeout=20) == 0
    assert time.monotonic() - started < 15
