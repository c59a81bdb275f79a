"""Shared fixtures: a CLI runner, store URLs for SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config.example.toml"
PG_ADMIN_URL = os.environ.get("BRIDGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_TEST_TIMEZONE = "Asia/Kathmandu"
"""The session zone of each fresh test database: +05:45, so a timestamp read or written as local shows."""

LONGEST_FIRST = (
    "tests/chaos/test_chaos.py",  # ~150 s: twenty sync cycles under faults and SIGKILLs
    "tests/cli/test_readme.py",  # ~120 s
    "tests/daemon/test_daemon.py",  # ~110 s
    "tests/system/test_reached_kill.py",  # ~100 s
    "tests/cli/test_debug_secrets.py",  # ~90 s
    "tests/contract/test_jira_pull.py",  # ~85 s
    "tests/chaos/test_concurrent_syncs.py",  # ~75 s
    "tests/contract/test_trello_pull.py",  # ~55 s
    "tests/contract/test_asana_pull.py",  # ~55 s
    "tests/cli/test_names.py",  # ~45 s
    "tests/cli/test_demo_secrets.py",  # ~42 s
    "tests/cli/test_hostile_text.py",  # ~42 s
    "tests/daemon/test_one_run.py",  # ~40 s
    "tests/chaos/test_hostile_text.py",  # ~31 s
    "tests/unit/test_import_graph.py",  # ~20 s
    "tests/kit/test_toy_connector.py",  # ~20 s
    "tests/sandbox/test_fidelity.py",  # ~20 s
    "tests/announce/test_key_results_met.py",  # ~15 s
    "tests/cli/test_demo.py",  # ~15 s
)
"""The files that take longest (seconds of one worker in a full run on two cores, under load), longest
first. The workers take whole files (`--dist loadfile`) in collection order (`--no-loadscope-reorder`):
started first, these run beside the many short files instead of after them, when one worker would be
left alone with the chaos run for minutes at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (see `LONGEST_FIRST`); every other file, and the tests within each file,
    keep their order."""
    rank = {path: number for number, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[object]:
    """Run `bridge ARGS...` in this process; returns exit code, stdout and stderr."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield invoke


def _pg_unreachable_reason() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({first})"
    return None


@pytest.fixture(scope="session")
def pg_available() -> None:
    reason = _pg_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_ADMIN_URL else "?"
    yield f"{PG_ADMIN_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@contextmanager
def fresh_pg_database(timezone: str = PG_TEST_TIMEZONE) -> Iterator[str]:
    """A uniquely named empty database (`bridge_test_<hex>`) whose sessions run in `timezone`; its URL.

    Dropped afterwards, even with connections still open (a killed process's, say).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bridge_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO '{timezone}'"))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_database_url(pg_available: None) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database of its own, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An upgraded store, on SQLite and on PostgreSQL."""
    s = Store(store_url)
    s.upgrade()
    yield s
    s.close()
