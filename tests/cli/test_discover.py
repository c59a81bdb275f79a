"""`bridge discover` against the Jira sandbox: from a configured tracker and from flags alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.sandbox.jira import JiraEmulator
from bridge.sandbox.server import SandboxServer
from tests.sandbox.test_jira import EMAIL, TOKEN, _seed


@pytest.fixture(params=["cloud", "dc"])
def server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    with SandboxServer(JiraEmulator.from_search(_seed(count=20, long_history=3), flavour=request.param)) as s:
        yield s


def test_discover_from_flags_alone(
    run_cli: object, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D_EMAIL", EMAIL)
    monkeypatch.setenv("D_TOKEN", TOKEN)
    flags = ["--kind", "jira", "--url", server.base_url, "--token-env", "D_TOKEN", "--email-env", "D_EMAIL"]
    result = run_cli("discover", *flags, "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert ["PAY", "Payments"] in found["containers"]
    assert ["10000", "To Do"] in found["statuses"]
    assert "Story" in found["item_types"]
    assert "ui" in found["labels"]
    assert any(f["id"] == "customfield_10100" for f in found["fields"])
    assert TOKEN not in result.stdout + result.stderr


def test_discover_a_configured_tracker(
    run_cli: object, server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D_EMAIL", EMAIL)
    monkeypatch.setenv("D_TOKEN", TOKEN)
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[trackers.acme]\nkind = "jira"\nurl = "{server.base_url}"\n'
        'email_env = "D_EMAIL"\ntoken_env = "D_TOKEN"\n'
        'projects = ["PAY"]\nstatus_map = { "10001" = "done" }\n'
    )
    result = run_cli("discover", "acme", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    assert "Statuses (id, name)" in result.stdout and "10000  To Do" in result.stdout


def test_discover_names_an_unset_variable(run_cli: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    result = run_cli(
        "discover", "--kind", "jira", "--url", "https://x.example.com", "--token-env", "NOPE_TOKEN"
    )  # type: ignore[operator]
    assert result.exit_code == 2 and "NOPE_TOKEN" in result.stderr
