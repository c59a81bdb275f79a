"""`bridge sandbox serve` and `bridge sandbox generate` as processes, as tests that kill things use them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jira import JIRA

BRIDGE = [sys.executable, "-m", "bridge.cli"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seeds")
    done = subprocess.run(
        [*BRIDGE, "sandbox", "generate", "--seed", "2", "--issues", "120", "--out", str(folder),
         "--now", "2026-06-01T00:00:00+00:00"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {p.name for p in folder.iterdir()} == {"jira.json", "trello.json", "asana.json"}
    return folder


@pytest.fixture
def served(seeds: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    record = tmp_path / "requests.jsonl"
    files = ["--jira", str(seeds / "jira.json"), "--trello", str(seeds / "trello.json")]
    files += ["--asana", str(seeds / "asana.json"), "--record", str(record), "--jira-flavour", "dc"]
    process = subprocess.Popen(
        [*BRIDGE, "sandbox", "serve", *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    info = json.loads(process.stdout.readline())
    yield process, info, record
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_serve_prints_urls_and_credentials_then_serves(
    served: tuple[subprocess.Popen[str], dict[str, Any], Path],
) -> None:
    _, info, record = served
    assert set(info) == {"jira", "trello", "asana"}
    jira = info["jira"]
    client = JIRA(server=jira["url"], basic_auth=(jira["email"], jira["token"]), max_retries=0)
    assert client.deploymentType == "Server"
    assert len(client.search_issues("project in (PAY, MOB)", maxResults=False, fields="summary")) > 100
    for name in ("trello", "asana"):
        state = requests.get(f"{info[name]['url']}/_sandbox/state", timeout=10)
        assert state.status_code == 200
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines and {line["emulator"] for line in lines} == {"jira"}
    assert jira["token"] not in record.read_text()


def test_sigterm_stops_it_promptly(served: tuple[subprocess.Popen[str], dict[str, Any], Path]) -> None:
    process, _, _ = served
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert time.monotonic() - started < 5


def test_missing_seed_file_is_a_user_error(tmp_path: Path) -> None:
    done = subprocess.run([*BRIDGE, "sandbox", "serve", "--jira", str(tmp_path / "none.json")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
