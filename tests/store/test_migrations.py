"""Migrations create the schema from an empty database, on SQLite and PostgreSQL, without races."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bridge.store import TABLES, Store, metadata
from bridge.store.migrate import head_revision


def test_upgrade_creates_every_table_and_is_idempotent(store_url: str) -> None:
    store = Store(store_url)
    try:
        assert store.current_revision() is None
        assert store.upgrade().after == head_revision()
        tables = set(inspect(store.engine).get_table_names())
        assert set(TABLES) <= tables
        assert "alembic_version" in tables
        assert store.upgrade().after == head_revision()
    finally:
        store.close()


def test_migrations_match_the_models(store_url: str) -> None:
    """A model change without a migration fails here, not in a user's database."""
    store = Store(store_url)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
        assert differences == []
    finally:
        store.close()


def _write_config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[store]\nurl_env = "TEST_STORE_URL"\n'
        '[trackers.t]\nkind = "asana"\ntoken_env = "ASANA_TOKEN"\nworkspace = "1"\nprojects = ["2"]\n'
        'status_map = { "completed" = "done" }\n'
    )
    return config


@pytest.mark.slow
def test_concurrent_upgrades_do_not_race(store_url: str, tmp_path: Path) -> None:
    """Several processes starting at once: all succeed, the schema is made once."""
    config = _write_config(tmp_path, store_url)
    env = {"TEST_STORE_URL": store_url, "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "db", "upgrade", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    for code, out, err in outcomes:
        assert code == 0, err
        assert f"at revision {head_revision()}" in out
    migrated = [out for _, out, _ in outcomes if "migrated from an empty database" in out]
    assert len(migrated) == 1, outcomes
    store = Store(store_url)
    try:
        assert store.current_revision() == head_revision()
    finally:
        store.close()


def test_open_from_config_migrates_on_start(tmp_path: Path) -> None:
    from bridge.config import parse_config
    from bridge.connector import ConnectorRegistry
    from tests.unit.test_config_errors import BASE

    config = parse_config(
        BASE + '\n[store]\nurl = "sqlite:///state/bridge.db"\n',
        ConnectorRegistry.default(),
        path=tmp_path / "bridge.toml",
    )
    store = Store.open(config)
    try:
        assert store.current_revision() == head_revision()
        assert (tmp_path / "state" / "bridge.db").exists()
    finally:
        store.close()


def test_schema_head_is_the_migrations_head(store_url: str) -> None:
    """`SCHEMA_HEAD` (how a command tells a current store without loading Alembic) is the one head; a
    store at it is current, one before it or without a schema is not."""
    from bridge.store.engine import SCHEMA_HEAD
    from bridge.store.migrate import run_downgrade

    assert head_revision() == SCHEMA_HEAD
    store = Store(store_url)
    try:
        assert not store.at_head()
        store.upgrade()
        assert store.at_head()
        run_downgrade(store, "-1")
        assert not store.at_head()
    finally:
        store.close()


def test_a_command_on_a_current_store_does_not_load_alembic(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    store.upgrade()
    store.close()
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "bridge.db"}"\n\n[trackers.t]\nkind = "jira"\n'
        'url = "http://127.0.0.1:9"\nemail_env = "T_EMAIL"\ntoken_env = "T_TOKEN"\nprojects = ["P"]\n\n'
        '[trackers.t.status_map]\n"1" = "todo"\n"2" = "done"\n',
        encoding="utf-8",
    )
    probe = (
        "import sys\nfrom bridge.config import load_config\nfrom bridge.connector import ConnectorRegistry\n"
        "from bridge.store import Store\n"
        f"config = load_config({str(config)!r}, ConnectorRegistry.default())\n"
        "Store.open(config).close()\nStore.open(config, upgrade=False).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
