"""A config file that other users can read is worth a warning (never an error): by `bridge check` and at
every daemon start, naming the file and the fix."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from bridge.config import config_warnings, load_config, log_config_warnings, permission_warning
from bridge.connector import ConnectorRegistry
from tests.conftest import EXAMPLE_CONFIG

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    path.write_text(text.replace('url = "sqlite:///bridge.db"', f'url = "sqlite:///{tmp_path / "b.db"}"'))
    return path


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o644, "other users"), (0o604, "other users"), (0o640, "its group"), (0o440, "its group")],
)
def test_readable_by_others_is_a_warning_with_the_fix(config_file: Path, mode: int, who: str) -> None:
    config_file.chmod(mode)
    cfg = load_config(config_file, ConnectorRegistry.default())
    warning = permission_warning(cfg.path)
    assert warning is not None
    resolved = config_file.resolve()
    assert warning.startswith(f"{resolved} can be read by {who} (mode {mode:03o})")
    assert warning.endswith(f"chmod 600 {resolved}")
    assert warning in config_warnings(cfg)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_owner_only_is_quiet(config_file: Path, mode: int) -> None:
    config_file.chmod(mode)
    cfg = load_config(config_file, ConnectorRegistry.default())
    assert permission_warning(cfg.path) is None
    assert config_warnings(cfg) == []


def test_a_config_without_a_file_has_no_permission_warning() -> None:
    assert permission_warning(None) is None
    assert permission_warning(Path("/nonexistent/bridge.toml")) is None


def test_bridge_check_prints_the_warning_and_still_passes(config_file: Path, run_cli: Any) -> None:
    config_file.chmod(0o644)
    result = run_cli("check", "--config", str(config_file))
    assert result.exit_code == 0, result
    assert f"{config_file.resolve()}: ok" in result.stdout
    assert f"warning: {config_file.resolve()} can be read by other users (mode 644)" in result.stderr
    assert f"chmod 600 {config_file.resolve()}" in result.stderr

    config_file.chmod(0o600)
    quiet = run_cli("check", "--config", str(config_file))
    assert quiet.exit_code == 0, quiet
    assert "warning:" not in quiet.stderr


def test_the_daemon_logs_it_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bridge.daemon.service import Daemon
    from bridge.store import Store

    config_file = tmp_path / "bridge.toml"
    config_file.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "b.db"}"\n\n'
        '[trackers.t]\nkind = "jira"\nurl = "https://jira.example.com"\ntoken_env = "T"\n'
        'projects = ["P"]\nenabled = false\nverify_tls = false\n\n[trackers.t.status_map]\n"Done" = "done"\n'
    )
    config_file.chmod(0o640)
    cfg = load_config(config_file, ConnectorRegistry.default())
    store = Store.open(cfg)
    daemon = Daemon(cfg, store, replica="test-replica")
    try:
        with caplog.at_level(logging.WARNING, logger="bridge.daemon.service"):
            daemon.start()
    finally:
        daemon.shutdown()
        store.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    permission = [w for w in warnings if "chmod 600" in w]
    assert len(permission) == 1
    assert permission[0].startswith(f"{config_file.resolve()} can be read by its group")
    assert any(w.startswith("trackers.t.verify_tls is false") for w in warnings)


def test_log_config_warnings_returns_what_it_logged(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file.chmod(0o604)
    cfg = load_config(config_file, ConnectorRegistry.default())
    with caplog.at_level(logging.WARNING, logger="bridge.config"):
        logged = log_config_warnings(cfg)
    assert logged == config_warnings(cfg)
    assert [r.getMessage() for r in caplog.records if r.name == "bridge.config"] == logged
