"""`bridge discover` against the Jira sandbox: from a configured tracker and from flags alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
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


# ---- Asana ------------------------------------------------------------------------------------------------

ASANA_ENV = "D_ASANA_TOKEN"
BUDGET = "503"
"""A workspace custom field that no project carries."""


@pytest.fixture
def asana_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    from bridge_sandbox.asana import AsanaEmulator
    from tests.sandbox import test_asana as sandbox

    seed = sandbox._seed()
    seed["custom_fields"].append({"gid": BUDGET, "name": "Budget", "type": "number", "precision": 2})
    monkeypatch.setenv(ASANA_ENV, sandbox.TOKEN)
    with SandboxServer(AsanaEmulator.from_seed(seed)) as s:
        yield s


def _asana_token() -> str:
    from tests.sandbox.test_asana import TOKEN as ASANA_TOKEN

    return ASANA_TOKEN


def test_asana_discover_from_flags_alone(
    run_cli: object, asana_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge_asana.session.AsanaSession.vendor_rate", 1000.0)  # 150 a minute, lifted
    flags = ["--kind", "asana", "--url", asana_server.base_url, "--token-env", ASANA_ENV]
    result = run_cli("discover", *flags, "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["containers"] == [
        ["100", "workspace: Acme"],
        ["301", "project: Backlog"],
        ["300", "project: Roadmap"],
    ]
    assert ["400", "Roadmap / To Do"] in found["statuses"] and ["410", "Backlog / Column 0"] in found[
        "statuses"
    ]
    assert found["statuses"][-1][0] == "completed"
    assert found["item_types"] == ["default_task", "milestone", "approval"]
    assert found["labels"] == ["ui"]
    fields = {f["id"]: (f["name"], f["type"]) for f in found["fields"]}
    assert fields["501"] == ("Priority", "enum, 2 options: Low, High")
    assert fields["500"] == ("Value", "number, precision 0")
    assert fields[BUDGET] == ("Budget", "number, precision 2; on none of the projects listed")
    extra = found["extra"]
    assert extra["goals"] == "3 (FY26 2, FY27 1)"
    assert extra["time_periods"].startswith("750 FY26 (2026-01-01 to 2026-12-31)")
    assert extra["task_subtypes_sampled"].startswith("default_task 103, milestone 1, approval 0")
    assert _asana_token() not in result.stdout + result.stderr


def test_asana_discover_a_configured_tracker(
    run_cli: object, asana_server: SandboxServer, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[trackers.growth]\nkind = "asana"\nurl = "{asana_server.base_url}"\ntoken_env = "{ASANA_ENV}"\n'
        'workspace = "100"\nprojects = ["300"]\nmax_requests_per_second = 100\n'
        'status_map = { "To Do" = "todo", "completed" = "done" }\n'
    )
    result = run_cli("discover", "growth", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "100  workspace: Acme" in out and "300  project: Roadmap" in out and "Backlog" not in out
    assert "400  To Do" in out and "402  Done" in out and "Column 0" not in out
    assert "completed  any task marked complete" in out
    assert "501  Priority  [enum, 2 options: Low, High]" in out
    assert f"{BUDGET}  Budget  [number, precision 2; on none of the projects listed]" in out
    assert "goals: 3 (FY26 2, FY27 1)" in out and "750 FY26" in out
    assert _asana_token() not in out + result.stderr


def test_asana_discover_with_a_wrong_token_names_the_tracker(
    run_cli: object, asana_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge_asana.session.AsanaSession.vendor_rate", 1000.0)
    monkeypatch.setenv(ASANA_ENV, "0/not-the-sandbox-token")
    flags = ["--kind", "asana", "--url", asana_server.base_url, "--token-env", ASANA_ENV]
    result = run_cli("discover", *flags)  # type: ignore[operator]
    assert result.exit_code == 1 and "asana: the credentials were refused" in result.stderr
    assert "not-the-sandbox-token" not in result.stdout + result.stderr


# ---- Trello -----------------------------------------------------------------------------------------------

TRELLO_KEY, TRELLO_TOKEN = "sandbox-key", "sandbox-token"


@pytest.fixture
def trello_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    from datetime import UTC, datetime

    from bridge_sandbox.generate import build
    from bridge_sandbox.generate_trello import render_trello
    from bridge_sandbox.trello import TrelloEmulator

    seed = render_trello(build(seed=21, per_tracker=30, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = TrelloEmulator.from_export(seed)
    emulator.edit({"op": "create_custom_field", "board": "Design", "name": "Size", "type": "list",
                   "options": ["S", "M", "L"]})  # fmt: skip
    emulator.edit({"op": "create_label", "board": "Design", "name": "", "color": "red"})
    monkeypatch.setenv("D_TRELLO_KEY", TRELLO_KEY)
    monkeypatch.setenv("D_TRELLO_TOKEN", TRELLO_TOKEN)
    with SandboxServer(emulator) as s:
        yield s


def _trello_board(server: SandboxServer, name: str) -> dict[str, str]:
    from bridge_sandbox.trello import TrelloEmulator

    emulator = server.emulator
    assert isinstance(emulator, TrelloEmulator)
    board = next(b for b in emulator.boards.values() if b.record["name"] == name)
    lists = {x["name"]: x["id"] for x in board.lists.values()}
    fields = {f["name"]: f["id"] for f in board.custom_fields.values()}
    return {"id": board.id, "short": board.record["shortLink"], **lists, **fields}


def test_trello_discover_from_flags_alone(run_cli: object, trello_server: SandboxServer) -> None:
    flags = ["--kind", "trello", "--url", trello_server.base_url, "--token-env", "D_TRELLO_TOKEN",
             "--api-key-env", "D_TRELLO_KEY"]  # fmt: skip
    result = run_cli("discover", *flags, "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    design, content = _trello_board(trello_server, "Design"), _trello_board(trello_server, "Content")
    assert found["containers"] == [
        [design["id"], f"Design (short link {design['short']})"],
        [content["id"], f"Content (short link {content['short']})"],
    ]
    assert [design["To Do"], "Design / To Do"] in found["statuses"]
    assert [content["Key Results"], "Content / Key Results"] in found["statuses"]
    assert len(found["statuses"]) == 12
    assert found["item_types"] == [] and "no type" in found["extra"]["item_types"]
    assert {"milestone", "O1", "prototype"} <= set(found["labels"]) and "" not in found["labels"]
    assert found["extra"]["unnamed_labels"].startswith("1 ")
    fields = {f["id"]: (f["name"], f["type"]) for f in found["fields"]}
    assert fields[design["Value"]] == ("Value", "number; board Design")
    assert fields[content["Key result"]] == ("Key result", "text; board Content")
    assert fields[design["Size"]] == ("Size", "list, 3 options: S, M, L; board Design")
    assert requests_by_route(trello_server) == {
        "GET /1/members/{member}/boards": 1,
        "GET /1/batch": 1,
    }, "the boards listed, then both boards' lists, labels and fields in one batch"
    assert TRELLO_KEY not in result.stdout + result.stderr
    assert TRELLO_TOKEN not in result.stdout + result.stderr


def test_trello_discover_a_configured_tracker(
    run_cli: object, trello_server: SandboxServer, tmp_path: Path
) -> None:
    design = _trello_board(trello_server, "Design")
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[trackers.boards]\nkind = "trello"\nurl = "{trello_server.base_url}"\n'
        'api_key_env = "D_TRELLO_KEY"\ntoken_env = "D_TRELLO_TOKEN"\n'
        f'boards = ["{design["short"]}"]\nmax_requests_per_second = 100\n'
        'status_map = { "Done" = "done" }\n\n[trackers.boards.okrs]\nlist = "Key Results"\n'
    )
    result = run_cli("discover", "boards", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"{design['id']}  Design (short link {design['short']})" in out and "Content" not in out
    assert f"{design['To Do']}  To Do" in out and f"{design['Key Results']}  Key Results" in out
    assert "Item types:\n  (none)\n" in out
    assert f"{design['Size']}  Size  [list, 3 options: S, M, L]" in out
    assert f"{design['Effort']}  Effort  [number]" in out
    assert "okrs_list: 'Key Results' is on every board" in out
    assert requests_by_route(trello_server) == {"GET /1/boards/{board}": 1}, "the setup read only"
    assert TRELLO_KEY not in out + result.stderr and TRELLO_TOKEN not in out + result.stderr


def test_trello_discover_with_a_wrong_token_names_the_tracker(
    run_cli: object, trello_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D_TRELLO_TOKEN", "not-the-sandbox-token")
    flags = ["--kind", "trello", "--url", trello_server.base_url, "--token-env", "D_TRELLO_TOKEN",
             "--api-key-env", "D_TRELLO_KEY"]  # fmt: skip
    result = run_cli("discover", *flags)  # type: ignore[operator]
    assert result.exit_code == 1 and "trello: the credentials were refused" in result.stderr
    assert "not-the-sandbox-token" not in result.stdout + result.stderr
    assert TRELLO_KEY not in result.stdout + result.stderr


def requests_by_route(server: SandboxServer) -> dict[str, int]:
    from tests.sandbox.conftest import Control

    return dict(Control(server.base_url).get("requests")["by_route"])
