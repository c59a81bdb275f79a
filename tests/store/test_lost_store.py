"""A PostgreSQL store that vanishes under a running command (its database dropped), or that cannot be
reached, is one error naming the store (without its password) and the fix, not a stream of driver
errors: a tracker's pull failing, the lease release failing, then the error again."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bridge.demo import Sandbox
from tests.conftest import PG_ADMIN_URL
from tests.demo_world import demo_config, running_sandbox
from tests.unit.test_config_errors import BASE

pytestmark = pytest.mark.timeout(120)
PASSWORD = "sentinel-store-password"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox(monkeypatch, seed=3, per_tracker=6) as running:
        yield running


def _bridge(config: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LOST_STORE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *args, "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def _one_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"one message, not a stream:\n{stderr}"
    (line,) = lines
    assert line.startswith("error: the store at postgresql+psycopg://postgres:***@127.0.0.1:"), line
    assert PASSWORD not in stderr and "Traceback" not in stderr
    return line


@pytest.mark.postgres
def test_a_database_dropped_under_a_running_sync_is_one_error_naming_the_store_and_the_fix(
    sandbox: Sandbox, tmp_path: Path, pg_available: None
) -> None:
    from tests.conftest import fresh_pg_database

    with fresh_pg_database() as plain:
        url, name = _with_password(plain), make_url(plain).database
        config = demo_config(sandbox, tmp_path, "LOST_STORE_URL")
        upgraded = _bridge(config, url, "db", "upgrade")
        assert upgraded.wait(60) == 0, upgraded.communicate()[1]
        jira = sandbox.servers["jira"].emulator
        jira.holds.hold(jira.requests.count + 3)  # the sync waits on Jira, part-way through its pull
        running = _bridge(config, url, "sync")
        deadline = time.monotonic() + 60
        while not jira.holds.waiting():
            assert running.poll() is None and time.monotonic() < deadline, running.communicate()
            time.sleep(0.1)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        jira.holds.release()
        _, stderr = running.communicate(timeout=60)
    assert running.returncode == 1
    line = _one_error(stderr)
    assert f'is missing: database "{name}" does not exist' in line
    assert f"`createdb {name}`" in line and "`bridge db upgrade`" in line and "store.url" in line


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["sync"], ["pull"], ["report"], ["status"], ["db", "upgrade"]])
def test_an_unreachable_postgresql_store_is_one_error_naming_the_server_and_the_fix(
    tmp_path: Path, command: list[str]
) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/bridge"
    config = tmp_path / "bridge.toml"
    config.write_text('[store]\nurl_env = "LOST_STORE_URL"\n' + BASE, encoding="utf-8")
    config.chmod(0o600)
    running = _bridge(config, url, *command)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 1, stderr
    line = _one_error(stderr)
    assert "is unreachable:" in line and "Connection refused" in line
    assert f"Check that the database server at 127.0.0.1:{port} is running" in line


def test_each_kind_of_lost_store_names_its_own_fix_and_never_the_password() -> None:
    from bridge.store.engine import lost_store_message

    url = f"postgresql+psycopg://bridge:{PASSWORD}@db.example:6432/bridge"
    missing = lost_store_message(url, 'database "bridge" does not exist')
    refused = lost_store_message(url, f'password authentication failed for user "bridge" ({PASSWORD})')
    unreachable = lost_store_message(url, "Connection refused")
    for message in (missing, refused, unreachable):
        assert message.startswith("the store at postgresql+psycopg://bridge:***@db.example:6432/bridge ")
        assert PASSWORD not in message
    assert "is missing" in missing and "`createdb bridge`" in missing and "`bridge db upgrade`" in missing
    assert "refuses the credentials" in refused and "user and password" in refused
    assert "is unreachable" in unreachable and "database server at db.example:6432 is running" in unreachable
