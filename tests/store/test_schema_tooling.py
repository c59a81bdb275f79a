"""What a DBA needs around migrations: one head at all times, the history, the SQL an upgrade or
downgrade would run (for PostgreSQL and SQLite, checked by running it), downgrades, and
`store.auto_upgrade = false`, under which no command migrates a store behind the code.

Other revisions are added over time: nothing here names the head or counts the revisions."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from bridge.store import TABLES, Store, metadata
from bridge.store.migrate import head_revision, heads, history, offline_sql
from tests.conftest import CliResult
from tests.unit.test_config_errors import BASE


def _previous() -> str:
    """The revision just before the newest."""
    revisions = history()
    assert len(revisions) >= 2
    return revisions[-2].id


def _store_behind(folder: Path) -> str:
    """The URL of an SQLite store at the revision before the newest."""
    url = f"sqlite:///{folder / 'bridge.db'}"
    store = Store(url)
    store.upgrade(_previous())
    store.close()
    return url


def _revision(url: str) -> str | None:
    store = Store(url, create=False)
    try:
        return store.current_revision()
    finally:
        store.close()


def _config(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "bridge.toml"
    path.write_text(BASE + f'\n[store]\nurl = "{url}"\n{extra}')
    return path


def _cli(run_cli: object, *args: str) -> CliResult:
    result: CliResult = run_cli(*args)  # type: ignore[operator]
    return result


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
            )
    finally:
        engine.dispose()


def test_the_revisions_have_one_head_and_form_one_line() -> None:
    """Two branches that each add a revision on the same parent leave two heads: merging them must
    re-chain one (`down_revision`), or every store's upgrade stops with "multiple heads"."""
    assert heads() == [head_revision()]
    revisions = history()
    assert revisions[0].follows is None
    for before, after in itertools.pairwise(revisions):
        assert after.follows == before.id, f"{after.id} follows {after.follows}, not {before.id}"
    assert [info.id for info in revisions if info.head] == [head_revision()]
    assert all(info.summary for info in revisions), "every revision says what it changes"


def test_the_offline_sql_for_sqlite_builds_the_schema_the_models_describe(tmp_path: Path) -> None:
    script = offline_sql("sqlite", None)
    database = tmp_path / "reviewed.db"
    with sqlite3.connect(database) as conn:
        conn.executescript(script)
    assert _differences(f"sqlite:///{database}") == []
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]


@pytest.mark.postgres
def test_the_offline_sql_for_postgresql_builds_the_schema_the_models_describe(pg_database_url: str) -> None:
    script = offline_sql("postgresql", None)
    assert "TIMESTAMP WITH TIME ZONE" in script
    engine = create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(script)
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    finally:
        engine.dispose()
    assert _differences(pg_database_url) == []


def test_upgrade_sql_starts_at_the_stores_revision_and_changes_nothing(
    run_cli: object, tmp_path: Path
) -> None:
    url = _store_behind(tmp_path)
    config = _config(tmp_path, url)
    result = _cli(run_cli, "db", "upgrade", "--sql", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert f"from {_previous()} to {head_revision()} (the newest), for sqlite" in result.stdout
    assert f"Running upgrade {_previous()} -> {head_revision()}" in result.stdout
    assert "CREATE TABLE task" not in result.stdout, "only what the store lacks"
    store = Store(url, create=False)
    try:
        assert store.current_revision() == _previous(), "--sql runs nothing"
    finally:
        store.close()

    other = _cli(
        run_cli,
        "db",
        "upgrade",
        "--sql",
        "--dialect",
        "postgresql",
        "--from",
        "base",
        "--config",
        str(config),
    )
    assert other.exit_code == 0, other.stderr
    assert "for postgresql" in other.stdout and "CREATE TABLE task" in other.stdout
    bad = _cli(run_cli, "db", "upgrade", "--sql", "--dialect", "oracle", "--config", str(config))
    assert bad.exit_code == 2 and "postgresql, sqlite" in bad.stderr


def test_downgrade_then_upgrade_round_trips_and_history_marks_the_store(
    run_cli: object, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    config = str(_config(tmp_path, url))
    assert _cli(run_cli, "db", "upgrade", "--config", config).exit_code == 0

    sql = _cli(run_cli, "db", "downgrade", _previous(), "--sql", "--config", config)
    assert sql.exit_code == 0 and f"Running downgrade {head_revision()} -> {_previous()}" in sql.stdout

    down = _cli(run_cli, "db", "downgrade", _previous(), "--json", "--config", config)
    assert down.exit_code == 0, down.stderr
    assert json.loads(down.stdout)["after"] == _previous()
    listed = _cli(run_cli, "db", "history", "--json", "--config", config)
    document = json.loads(listed.stdout)
    assert document["store_revision"] == _previous()
    assert [info["id"] for info in document["revisions"]] == [info.id for info in history()]
    text_history = _cli(run_cli, "db", "history", "--config", config).stdout
    assert f"{_previous()}  " in text_history and "<- the store" in text_history
    assert "<- newest" in text_history

    current = _cli(run_cli, "db", "current", "--json", "--config", config)
    assert current.exit_code == 1 and json.loads(current.stdout)["up_to_date"] is False
    assert _cli(run_cli, "db", "upgrade", "--config", config).exit_code == 0
    assert _differences(url) == []

    unknown = _cli(run_cli, "db", "downgrade", "no-such-rev", "--config", config)
    assert (
        unknown.exit_code == 2 and "known revisions" in unknown.stderr and "Traceback" not in unknown.stderr
    )


def test_with_auto_upgrade_off_a_store_behind_the_code_is_refused_and_left_alone(
    run_cli: object, tmp_path: Path
) -> None:
    url = _store_behind(tmp_path)
    config = str(_config(tmp_path, url, "auto_upgrade = false\n"))
    result = _cli(run_cli, "pull", "--config", config)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "store.auto_upgrade is false" in result.stderr and "bridge db upgrade" in result.stderr
    assert "bridge db upgrade --sql" in result.stderr
    assert _revision(url) == _previous()

    assert _cli(run_cli, "db", "upgrade", "--config", config).exit_code == 0  # the DBA's step


def test_with_auto_upgrade_off_no_store_is_created(run_cli: object, tmp_path: Path) -> None:
    database = tmp_path / "bridge.db"
    config = str(_config(tmp_path, f"sqlite:///{database}", "auto_upgrade = false\n"))
    result = _cli(run_cli, "pull", "--config", config)
    assert result.exit_code == 2 and "only `bridge db upgrade` does" in result.stderr, result.stderr
    assert not database.exists()


def test_auto_upgrade_defaults_to_migrating_on_start(tmp_path: Path) -> None:
    from bridge.config import parse_config
    from bridge.connector import ConnectorRegistry

    url = _store_behind(tmp_path)
    cfg = parse_config(
        BASE + f'\n[store]\nurl = "{url}"\n', ConnectorRegistry.default(), path=tmp_path / "b.toml"
    )
    assert cfg.store.auto_upgrade is True
    opened = Store.open(cfg)
    try:
        assert opened.current_revision() == head_revision()
        assert set(TABLES) <= set(metadata.tables)
    finally:
        opened.close()


def test_a_store_from_a_newer_version_is_named_as_such(tmp_path: Path) -> None:
    from bridge.store import StoreMissing

    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    store = Store(url)
    store.upgrade()
    with store.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    try:
        with pytest.raises(StoreMissing, match=r"does not know .*a newer version migrated it"):
            store.require_current()
    finally:
        store.close()


def test_autogenerate_against_a_scratch_database_writes_a_revision_after_the_head(tmp_path: Path) -> None:
    """The documented way to start a migration; with the models and migrations in step (the test
    above), the revision it writes has nothing to do."""
    from bridge.store.revision import autogenerate

    written = autogenerate("Nothing changes", directory=tmp_path)
    assert written.parent == tmp_path and written.name.endswith("_nothing_changes.py")
    source = written.read_text(encoding="utf-8")
    assert f"down_revision = {head_revision()!r}" in source
    assert "op." not in source, source
