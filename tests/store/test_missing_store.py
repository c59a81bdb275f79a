"""A store is created only by the commands that set one up; read commands never create or migrate one,
and a store file deleted under a running process is an error, never a new empty store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.domain import RemotePage, StatusCategory, Task
from bridge.errors import StoreError
from bridge.store import Store, StoreMissing
from bridge.store.migrate import head_revision
from bridge.store.pages import save_page
from tests.conftest import CliResult
from tests.unit.test_config_errors import BASE

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
READ_COMMANDS = [
    ["report"],
    ["report", "--json"],
    ["explain", "PAY-1"],
    ["status"],
    ["status", "--json"],
    ["okr", "suggest"],
    ["db", "current"],
    ["purge", "--tracker", "acme-jira", "--dry-run"],  # writes to a tracker, but takes back from a store
]


def _config(folder: Path, url: str) -> Path:
    path = folder / "bridge.toml"
    path.write_text(BASE + f'\n[store]\nurl = "{url}"\n')
    return path


def _run(run_cli: object, config: Path, command: list[str]) -> CliResult:
    result: CliResult = run_cli(*command, "--config", str(config))  # type: ignore[operator]
    return result


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_mistyped_store_path_is_an_error_naming_it_and_creates_nothing(
    run_cli: object, tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "stat" / "bridge.db"
    config = _config(tmp_path, f"sqlite:///{typo}")
    result = _run(run_cli, config, command)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert str(typo) in result.stderr and "bridge pull" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not typo.exists() and not typo.parent.exists(), "nothing is created at the mistyped path"


@pytest.mark.parametrize("command", READ_COMMANDS[:5], ids=" ".join)
def test_an_outdated_schema_is_an_error_naming_db_upgrade_and_is_not_migrated(
    run_cli: object, tmp_path: Path, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    store = Store(url)
    store.upgrade("0001")
    store.close()
    result = _run(run_cli, _config(tmp_path, url), command)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "bridge db upgrade" in result.stderr and "0001" in result.stderr, result.stderr
    store = Store(url, create=False)
    try:
        assert store.current_revision() == "0001", "a read command never migrates"
    finally:
        store.close()


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_an_error_not_a_new_schema(
    run_cli: object, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_STORE_URL", pg_url)
    config = tmp_path / "bridge.toml"
    config.write_text(BASE + '\n[store]\nurl_env = "BRIDGE_STORE_URL"\n')
    for command in (["report"], ["status"], ["explain", "PAY-1"]):
        result = _run(run_cli, config, command)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "no schema" in result.stderr and "bridge db upgrade" in result.stderr
    store = Store(pg_url)
    try:
        assert store.current_revision() is None
    finally:
        store.close()


def test_read_commands_work_on_a_current_store(run_cli: object, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    Store(url).upgrade()
    config = _config(tmp_path, url)
    assert _run(run_cli, config, ["status"]).exit_code == 0
    report = _run(run_cli, config, ["report"])
    assert report.exit_code == 0 and "bridge pull" in report.stdout
    assert Store(url, create=False).current_revision() == head_revision()


def _page(title: str) -> RemotePage:
    task = Task("t", "1", "PAY-1", title, category=StatusCategory.TODO, created=T0, updated=T0)
    return RemotePage(source="t", stream="issues", tasks=[task], cursor="c")


def _remove(file: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)


def test_a_store_file_deleted_under_a_running_process_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    file = tmp_path / "bridge.db"
    store = Store(f"sqlite:///{file}")  # a daemon's store: open for the process's whole life
    try:
        store.upgrade()
        with store.write() as conn:
            save_page(conn, _page("first"), now=T0)
        _remove(file)
        with pytest.raises(StoreError, match="was deleted") as caught, store.write() as conn:
            save_page(conn, _page("second"), now=T0)
        assert str(file) in str(caught.value)
        with pytest.raises(StoreError, match="was deleted"), store.read():
            pass
        assert not file.exists(), "no new empty store is made at the path"
    finally:
        store.close()
    with pytest.raises(StoreMissing, match="bridge pull"):
        Store(f"sqlite:///{file}", create=False)


def test_a_store_file_replaced_under_a_running_process_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "bridge.db"
    store = Store(f"sqlite:///{file}")
    try:
        store.upgrade()
        _remove(file)
        other = Store(f"sqlite:///{file}")  # e.g. another command making a fresh store at the path
        other.upgrade()
        other.close()
        with pytest.raises(StoreError, match="replaced"), store.write():
            pass
    finally:
        store.close()
