"""`bridge db copy`: a demo's SQLite store moved to PostgreSQL (and to another SQLite file) row for row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from bridge import demo as demo_module
from bridge.store import Store
from bridge.store.models import RunRow, metadata


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store one whole demo cycle filled: every table holds rows (runs, written values, links...)."""
    folder = tmp_path_factory.mktemp("demo")
    with demo_module.demo(folder, seed=4, per_tracker=40) as run:
        assert run.result.ok
    yield folder


def table_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.read() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: tuple(map(repr, r))
            )
            for table in metadata.sorted_tables
        }


def copy_cli(run_cli: Any, folder: Path, *args: str) -> Any:
    return run_cli("db", "copy", "--config", str(folder / "bridge.toml"), *args)


@pytest.mark.postgres
def test_copy_to_postgresql_keeps_every_row_and_the_next_ids(
    demo_store: Path, pg_database_url: str, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TARGET_URL", pg_database_url)
    result = copy_cli(run_cli, demo_store, "--to-env", "BRIDGE_TARGET_URL")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "copied" in result.stdout and "written:" in result.stdout

    source = Store(f"sqlite:///{demo_store / 'bridge.db'}")
    target = Store(pg_database_url)
    try:
        before, after = table_rows(source), table_rows(target)
        for name in ("milestone", "task", "status_change", "run", "written", "cursor", "key_result"):
            assert before[name], f"the demo left {name} empty: the test would prove nothing"
        assert after == before
        assert target.current_revision() == source.current_revision()
        with target.write() as conn:  # the id sequence moved past the copied rows
            new_id = conn.execute(
                insert(RunRow.__table__).returning(RunRow.__table__.c.id),  # type: ignore[attr-defined]
                {k: v for k, v in zip(_run_columns(), before["run"][0], strict=True) if k != "id"},
            ).scalar_one()
        assert new_id > max(row[0] for row in before["run"])
    finally:
        source.close()
        target.close()

    again = copy_cli(run_cli, demo_store, "--to-env", "BRIDGE_TARGET_URL")
    assert again.exit_code == 2
    assert "not empty" in again.stderr


def _run_columns() -> list[str]:
    return [c.name for c in RunRow.__table__.columns]  # type: ignore[attr-defined]


def test_copy_to_another_sqlite_file_and_refusals(demo_store: Path, tmp_path: Path, run_cli: Any) -> None:
    target_url = f"sqlite:///{tmp_path / 'copy.db'}"
    result = copy_cli(run_cli, demo_store, "--to", target_url)
    assert result.exit_code == 0, result.stdout + result.stderr
    source, target = Store(f"sqlite:///{demo_store / 'bridge.db'}"), Store(target_url)
    try:
        assert table_rows(target) == table_rows(source)
    finally:
        source.close()
        target.close()

    same = copy_cli(run_cli, demo_store, "--to", f"sqlite:///{demo_store / 'bridge.db'}")
    assert same.exit_code == 2 and "same store" in same.stderr
    neither = copy_cli(run_cli, demo_store)
    assert neither.exit_code == 2 and "exactly one of --to" in neither.stderr
    secret = copy_cli(run_cli, demo_store, "--to", "postgresql+psycopg://u:hunter2@127.0.0.1/x")
    assert secret.exit_code == 2 and "--to-env" in secret.stderr
    assert "hunter2" not in secret.stderr
    unset = copy_cli(run_cli, demo_store, "--to-env", "BRIDGE_NO_SUCH_VARIABLE")
    assert unset.exit_code == 2 and "BRIDGE_NO_SUCH_VARIABLE is not set" in unset.stderr
