"""The `bridge` command as a user meets it: versions, exit codes, messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge import __version__
from tests.conftest import EXAMPLE_CONFIG
from tests.unit.test_config_errors import BASE


def test_version(run_cli: object) -> None:
    result = run_cli("--version")  # type: ignore[operator]
    assert result.exit_code == 0 and __version__ in result.stdout


def test_check_example_config(run_cli: object) -> None:
    result = run_cli("check", "--config", str(EXAMPLE_CONFIG))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    for name in ("acme-jira", "design-trello", "growth-asana"):
        assert f"tracker {name}" in result.stdout
    assert "2 objectives, 3 key results" in result.stdout


def test_connectors_lists_the_builtin_three(run_cli: object) -> None:
    result = run_cli("connectors")  # type: ignore[operator]
    assert result.exit_code == 0
    kinds = [line.split()[0] for line in result.stdout.splitlines()]
    assert kinds == ["asana", "jira", "trello"]
    assert "bridge_jira:JiraConnector" in result.stdout


def test_db_upgrade_then_current(run_cli: object, tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(BASE + '\n[store]\nurl = "sqlite:///state/bridge.db"\n')
    first = run_cli("db", "upgrade", "--config", str(config))  # type: ignore[operator]
    assert first.exit_code == 0, first.stderr
    assert "migrated from an empty database" in first.stdout
    assert (tmp_path / "state" / "bridge.db").exists()
    again = run_cli("db", "upgrade", "--config", str(config))  # type: ignore[operator]
    assert "already current" in again.stdout
    current = run_cli("db", "current", "--config", str(config))  # type: ignore[operator]
    assert current.exit_code == 0 and "up to date" in current.stdout


def test_unreachable_store_exits_1_without_leaking_the_password(
    run_cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(BASE + '\n[store]\nurl_env = "BRIDGE_DB"\n')
    monkeypatch.setenv(
        "BRIDGE_DB", "postgresql+psycopg://bridge:hunter2@127.0.0.1:9/bridge?connect_timeout=2"
    )
    result = run_cli("db", "upgrade", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 1
    assert "unreachable" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_unset_store_variable_exits_2_naming_it(
    run_cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(BASE + '\n[store]\nurl_env = "BRIDGE_DB"\n')
    monkeypatch.delenv("BRIDGE_DB", raising=False)
    check = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert check.exit_code == 0, "check does not contact the store"
    assert "BRIDGE_DB" in check.stdout
    result = run_cli("db", "upgrade", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 2
    assert "store.url_env: environment variable BRIDGE_DB is not set" in result.stderr


def test_debug_shows_the_traceback(run_cli: object, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    plain = run_cli("check", "--config", missing)  # type: ignore[operator]
    assert "Traceback" not in plain.stderr
    debug = run_cli("--debug", "check", "--config", missing)  # type: ignore[operator]
    assert debug.exit_code == 2 and "Traceback" in debug.stderr


def test_bad_flag_is_a_usage_error(run_cli: object) -> None:
    result = run_cli("check", "--no-such-flag")  # type: ignore[operator]
    assert result.exit_code == 2


def test_console_script_is_installed() -> None:
    """`bridge` on PATH next to this interpreter, as `pip install` puts it."""
    script = Path(sys.executable).with_name("bridge")
    assert script.exists(), f"{script} missing: is the package installed (pip install -e .)?"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and __version__ in result.stdout
