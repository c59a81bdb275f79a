"""`bridge check --online` against the sandbox trackers, with the demo's config for all three."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.demo import ENV, Sandbox, render_config, start_sandbox
from bridge.http import RetryPolicy


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(seed=7)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def good(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for var, value in sandbox.secrets.items():
        monkeypatch.setenv(var, value)
    return render_config(sandbox, tmp_path / "bridge.db")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    return str(path)


def edit(text: str, tracker: str, old: str, new: str) -> str:
    """Replace `old` with `new` in the table of one tracker only (and its sub-tables)."""
    start = text.index(f"[trackers.{tracker}]\n")
    end = text.find("\n# ---- ", start)
    end = len(text) if end < 0 else end
    part = text[start:end]
    assert old in part, (tracker, old)
    return text[:start] + part.replace(old, new, 1) + text[end:]


def secrets_absent(sandbox: Sandbox, output: str) -> bool:
    return not any(value in output for value in sandbox.secrets.values() if value != "demo@example.com")


@pytest.mark.parametrize("tracker", ["jira", "trello", "asana"])
def test_a_good_config_passes_for_each_tracker(
    run_cli: object, good: str, tmp_path: Path, tracker: str, sandbox: Sandbox
) -> None:
    config = write(tmp_path, good)
    result = run_cli("check", "--config", config, "--online", "--tracker", tracker)  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"online:\n  {tracker}: ok\n" in result.stdout
    assert f"{config}: ok\n  tracker jira: jira at" in result.stdout, "the offline summary comes first"
    assert secrets_absent(sandbox, result.stdout + result.stderr)


def test_all_enabled_trackers_are_checked_and_json_says_so(
    run_cli: object, good: str, tmp_path: Path
) -> None:
    text = good.replace(
        '[trackers.asana]\nkind = "asana"\n', '[trackers.asana]\nkind = "asana"\nenabled = false\n'
    )
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    assert found["ok"] is True
    assert [(t["name"], t["ok"], t["problems"]) for t in found["online"]] == [
        ("jira", True, []),
        ("trello", True, []),
    ], "a disabled tracker is not contacted"
    assert [t["name"] for t in found["trackers"]] == ["jira", "trello", "asana"]


def test_without_online_nothing_is_contacted(run_cli: object, tmp_path: Path, sandbox: Sandbox) -> None:
    text = render_config(sandbox, tmp_path / "bridge.db").replace(sandbox.url("jira"), "http://127.0.0.1:9")
    result = run_cli("check", "--config", write(tmp_path, text))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    assert "online:" not in result.stdout and "note: BRIDGE_DEMO_JIRA_TOKEN is not set" in result.stdout


def test_jira_problems_are_each_named_by_path(run_cli: object, good: str, tmp_path: Path) -> None:
    text = edit(good, "jira", '"In Review" = ', '"In Reveiw" = ')
    text = edit(text, "jira", 'value = "Value"', 'value = "Valeu"')
    text = edit(text, "jira", "projects = [", 'projects = ["NOPE", ')
    text = edit(text, "jira", 'rank_value = "score"', 'rank_value = "band"')
    result = run_cli("check", "--config", write(tmp_path, text), "--online")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    out = result.stdout
    assert "  jira: 4 problems\n" in out and "  trello: ok\n" in out and "  asana: ok\n" in out
    assert (
        "trackers.jira.status_map.\"In Reveiw\": Jira has no status 'In Reveiw' (did you mean 'In Review'?)"
        in out
    )
    assert "trackers.jira.fields.value: Jira has no custom field 'Valeu' (did you mean 'Value'?)" in out
    assert "trackers.jira.projects[0]: Jira has no project 'NOPE'" in out
    assert (
        "trackers.jira.write.rank_field: Jira field 'Value Rank' is a number field; "
        "the rank field must be string or option"
    ) in out


def test_trello_problems_are_each_named_by_path(
    run_cli: object, good: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    text = edit(good, "trello", '"Done" = "done"', '"Finished" = "done"\n"Done" = "done"')
    text = edit(text, "trello", 'effort = "Effort"', 'effort = "Efort"')
    text = edit(text, "trello", "boards = [", 'boards = ["nosuchboard", ')
    text = edit(text, "trello", 'rank_value = "score"', 'rank_value = "band"')
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--tracker", "trello")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    out = result.stdout
    assert "  trello: 4 problems\n" in out and "jira:" not in out.split("online:")[1]
    assert "trackers.trello.status_map.Finished: Trello has no list 'Finished'" in out
    assert "trackers.trello.fields.effort: Trello has no custom field 'Efort' (did you mean 'Effort'?)" in out
    assert "trackers.trello.boards[0]: Trello has no board 'nosuchboard' that this token can read" in out
    assert (
        "trackers.trello.write.rank_field: Trello field 'Value rank' is a number field; "
        "the rank field must be text or list"
    ) in out
    assert secrets_absent(sandbox, result.stdout + result.stderr)


def test_asana_problems_are_each_named_by_path(run_cli: object, good: str, tmp_path: Path) -> None:
    text = edit(good, "asana", '"Blocked" = ', '"Blockd" = ')
    text = edit(text, "asana", 'value = "Customer value"', 'value = "Customer valeu"')
    text = edit(text, "asana", "projects = [", 'projects = ["999999", ')
    text = edit(text, "asana", 'rank_value = "score"', 'rank_value = "band"')
    text = edit(text, "asana", 'workspace = "', 'workspace = "4')
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--json")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    found = {t["name"]: t for t in json.loads(result.stdout)["online"]}
    assert found["jira"]["ok"] and found["trello"]["ok"] and not found["asana"]["ok"]
    problems = {p["path"]: p["message"] for p in found["asana"]["problems"]}
    assert set(problems) == {
        "trackers.asana.workspace",
        "trackers.asana.projects[0]",
        "trackers.asana.status_map.Blockd",
        "trackers.asana.fields.value",
        "trackers.asana.write.rank_field",
    }
    assert problems["trackers.asana.projects[0]"] == "Asana has no project '999999' that this token can read"
    assert (
        problems["trackers.asana.status_map.Blockd"]
        == "Asana has no section 'Blockd' (did you mean 'Blocked'?)"
    )
    assert re.fullmatch(r"Asana field 'Value rank' is a number field; the rank field must be text or enum",
                        problems["trackers.asana.write.rank_field"])  # fmt: skip


def test_refused_credentials_are_named_without_the_secret(
    run_cli: object, good: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    monkeypatch.setenv(ENV["jira_token"], "wrong-jira-token-123")
    monkeypatch.setenv(ENV["trello_token"], "f" * 64)
    monkeypatch.setenv(ENV["asana_token"], "2/wrong-asana-token")
    result = run_cli("check", "--config", write(tmp_path, good), "--online")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    for name in ("jira", "trello", "asana"):
        assert f"  {name}: 1 problem, not reached\n" in result.stdout
        assert f"trackers.{name}: cannot check it: {name}: the credentials were refused" in result.stdout
    assert "Traceback" not in out
    for secret in ("wrong-jira-token-123", "f" * 64, "wrong-asana-token", sandbox.secrets[ENV["trello_key"]]):
        assert secret not in out


def test_an_unset_variable_is_named(
    run_cli: object, good: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV["asana_token"])
    result = run_cli("check", "--config", write(tmp_path, good), "--online", "--tracker", "asana")  # type: ignore[operator]
    assert result.exit_code == 1
    assert f"trackers.asana.token_env: environment variable {ENV['asana_token']} is not set" in result.stdout


def test_an_unreachable_tracker_is_one_problem(
    run_cli: object, good: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    attempts: list[int] = []
    real_call = RetryPolicy.call

    def counted(policy: RetryPolicy, function: Any) -> Any:
        attempts.append(policy.attempts)
        return real_call(policy, function)

    monkeypatch.setattr("bridge.http.RetryPolicy._sleep", lambda self, seconds: None)
    monkeypatch.setattr(RetryPolicy, "call", counted)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = good.replace(sandbox.url("trello"), f"http://127.0.0.1:{port}")
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--tracker", "trello")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "  trello: 1 problem, not reached\n    trackers.trello: cannot check it: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert secrets_absent(sandbox, result.stdout + result.stderr)
    assert attempts and set(attempts) == {2}, "someone waits on check: two attempts, not the daemon's six"


def test_tracker_needs_online_and_a_known_name(run_cli: object, good: str, tmp_path: Path) -> None:
    config = write(tmp_path, good)
    result = run_cli("check", "--config", config, "--tracker", "jira")  # type: ignore[operator]
    assert result.exit_code == 2 and "--tracker goes with --online" in result.stderr
    result = run_cli("check", "--config", config, "--online", "--tracker", "jiar")  # type: ignore[operator]
    assert result.exit_code == 2 and "did you mean 'jira'" in result.stderr


def test_a_label_prefix_already_in_use_is_warned_about(run_cli: object, good: str, tmp_path: Path) -> None:
    """The demo's Jira issues carry users' `okr-KR…` labels: a bridge prefix of `okr-` would look like
    theirs. The check still passes (the bridge removes only its own labels), with a warning naming them."""
    text = good.replace("[push]\n", '[push]\nlabel_prefix = "okr-"\n', 1)
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--tracker", "jira")  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    found = re.search(
        r"\n    warning: push\.label_prefix: 'okr-' begins (\d+) labels? already in use in jira \(",
        result.stdout,
    )
    assert found, result.stdout
    assert "'okr-KR" in result.stdout.split("warning: push.label_prefix")[1]
    plain = run_cli("check", "--config", write(tmp_path, good), "--online", "--tracker", "jira")  # type: ignore[operator]
    assert plain.exit_code == 0 and "warning:" not in plain.stdout, "the demo's labels do not use mb-"


def test_forecast_fields_must_be_date_fields_on_every_tracker(
    run_cli: object, good: str, tmp_path: Path
) -> None:
    text = good
    dates = {
        "jira": 'forecast_fields = { p50 = "Forecast finish", p85 = "Value Rank" }\n',
        "trello": 'forecast_fields = { p50 = "Value rank" }\n',
        "asana": 'forecast_fields = { p85 = "Value rank" }\n',
    }
    for tracker, line in dates.items():
        text = edit(text, tracker, f"[trackers.{tracker}.write]\n", f"[trackers.{tracker}.write]\n{line}")
    result = run_cli("check", "--config", write(tmp_path, text), "--online", "--json")  # type: ignore[operator]
    assert result.exit_code == 1, result.stdout + result.stderr
    found = {p["path"]: p["message"] for t in json.loads(result.stdout)["online"] for p in t["problems"]}
    assert found == {
        "trackers.jira.write.forecast_fields.p50": "Jira has no custom field 'Forecast finish'",
        "trackers.jira.write.forecast_fields.p85": (
            "Jira field 'Value Rank' is a number field; the P85 forecast field must be date"
        ),
        "trackers.trello.write.forecast_fields.p50": (
            "Trello field 'Value rank' is a number field; the P50 forecast field must be date"
        ),
        "trackers.asana.write.forecast_fields.p85": (
            "Asana field 'Value rank' is a number field; the P85 forecast field must be date"
        ),
    }
