"""Forecast dates in the trackers' date fields, over real HTTP against each sandbox (Jira Cloud and Data
Center date pickers, Trello and Asana date custom fields): the first sync writes both dates, an
unchanged one nothing, a move under `write.forecast_min_move` nothing, a later day's larger move once,
and purge clears them (see `tests.system.forecast_dates.story`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import TrelloEmulator
from tests.contract.test_jira_pull import EMAIL, jira_table
from tests.contract.test_jira_pull import TOKEN as JIRA_TOKEN
from tests.sandbox.conftest import Control
from tests.system import test_sync_asana as asana
from tests.system import test_sync_jira as jira
from tests.system import test_sync_trello as trello
from tests.system.forecast_dates import Days, Rig, story

DATES = 'forecast_fields = { p50 = "P50 finish", p85 = "P85 finish" }\n'


def _day(value: Any) -> str | None:
    return str(value)[:10] if value else None


def _config(path: Path, text: str) -> Any:
    path.write_text(text.replace("[trackers.t.write]\n", "[trackers.t.write]\n" + DATES, 1))
    return load_config(path, ConnectorRegistry.default())


def _runner(store: Store, config: Any) -> Any:
    def run(now: datetime, dry_run: bool = False) -> CycleResult:
        result = run_cycle(store, config, now=now, dry_run=dry_run)
        assert result.ok, [t.error for t in result.trackers]
        return result

    return run


def _purge(run_cli: Any, path: Path) -> None:
    result = run_cli("purge", "--tracker", "t", "--config", str(path))
    assert result.exit_code == 0, result.stderr + result.stdout


@pytest.mark.parametrize("flavour", ["cloud", "dc"])
def test_jira_date_pickers_hold_the_forecast(
    flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    start = datetime.now(UTC)
    seed = render_jira(build(seed=5, per_tracker=120, now=start))
    emulator = JiraEmulator.from_search(seed, flavour=flavour)
    emulator.add_custom_field("Value Rank", "number")
    emulator.add_custom_field("Key Result", "string")
    p50 = emulator.add_custom_field("P50 finish", "date")
    p85 = emulator.add_custom_field("P85 finish", "date")
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", JIRA_TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        text = (
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n' + jira_table(server.base_url) + jira.OKRS
        )
        config = _config(path, text)
        control = Control(server.base_url)
        store = Store.open(config)

        def held() -> dict[str, Days]:
            epics = [i for i in emulator.issues.values() if i.fields["issuetype"]["name"] == "Epic"]
            return {i.id: (_day(i.fields.get(p50)), _day(i.fields.get(p85))) for i in epics}

        def writes() -> int:
            routes = control.get("requests")["by_route"]
            return sum(count for route, count in routes.items() if route.startswith(jira.WRITE_ROUTES))

        try:
            rig = Rig(
                _runner(store, config),
                held,
                writes,
                lambda: control.send("DELETE", "requests"),
                lambda: _purge(run_cli, path),
            )
            story(rig, "t", start)
        finally:
            store.close()


@pytest.fixture
def trello_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> Iterator[tuple[Rig, Path]]:
    emulator = TrelloEmulator(key=trello.KEY, token=trello.TOKEN)
    board = emulator.create_board("Design", ("To Do", "In Progress", "Done"))
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        cards = trello.seed_board(control, board.id)
        for name in ("P50 finish", "P85 finish"):
            control.edit(op="create_custom_field", board=board.id, name=name, type="date")
        monkeypatch.setenv("T_KEY", trello.KEY)
        monkeypatch.setenv("T_TOKEN", trello.TOKEN)
        path = tmp_path / "bridge.toml"
        store_url = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        config = _config(path, store_url + trello.OKRS + trello.trello_table(server.base_url, board.id))
        store = Store.open(config)
        by_label = {f"label:{i}": x["name"].removeprefix("M:") for i, x in board.labels.items()}

        def date_of(card: str, field: str) -> str | None:
            wanted = next(i for i, f in board.custom_fields.items() if f["name"] == field)
            items = board.cards[cards[card]]["customFieldItems"]
            return next((_day(i["value"]["date"]) for i in items if i["idCustomField"] == wanted), None)

        def held() -> dict[str, Days]:
            milestones = {ref: name for ref, name in by_label.items() if name in cards}
            return {
                ref: (date_of(n, "P50 finish"), date_of(n, "P85 finish")) for ref, n in milestones.items()
            }

        def writes() -> int:
            log = control.get("requests")["log"]
            return sum(1 for e in log if e["method"] in trello.WRITE_METHODS)

        try:
            rig = Rig(
                _runner(store, config),
                held,
                writes,
                lambda: control.send("DELETE", "requests"),
                lambda: _purge(run_cli, path),
            )
            yield rig, path
        finally:
            store.close()


def test_trello_date_fields_hold_the_forecast(trello_rig: tuple[Rig, Path]) -> None:
    story(trello_rig[0], "t", datetime.now(UTC))


def test_the_dry_run_shows_each_date_with_its_reason_and_writes_none(
    trello_rig: tuple[Rig, Path], run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no table cell folds the text
    rig, path = trello_rig
    result = run_cli("sync", "--dry-run", "--config", str(path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "P50 forecast date" in result.stdout and "P85 forecast date" in result.stdout
    assert "P85 forecast 20" in result.stdout and "tasks" in result.stdout, result.stdout
    assert rig.writes() == 0
    assert all(days == (None, None) for days in rig.held().values())


def test_asana_date_fields_hold_the_forecast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    seed = asana.asana_seed(datetime.now(UTC))
    seed["custom_fields"] += [
        {"gid": "504", "name": "P50 finish", "type": "date"},
        {"gid": "505", "name": "P85 finish", "type": "date"},
    ]
    seed["projects"][0]["custom_field_settings"] += [{"custom_field": "504"}, {"custom_field": "505"}]
    emulator = AsanaEmulator.from_seed(seed, token=asana.TOKEN)
    spy = asana.WriteSpy()
    spy.attach(emulator, monkeypatch)
    monkeypatch.setenv("T_TOKEN", asana.TOKEN)
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        path = tmp_path / "bridge.toml"
        text = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n[push]\nmax_change_share = 1.0\n'
        config = _config(path, text + asana.asana_table(server.base_url))
        store = Store.open(config)
        milestones = [gid for name, gid in asana.GIDS.items() if not name.endswith(" task")]

        def held() -> dict[str, Days]:
            tasks = emulator.state.tasks
            found = {}
            for gid in milestones:
                values = tasks[gid].custom_values
                found[gid] = tuple(_day((values.get(f) or {}).get("date")) for f in ("504", "505"))
            return found  # type: ignore[return-value]

        def writes() -> int:
            log = control.get("requests")["log"]
            direct = [
                e
                for e in log
                if e["method"] in ("POST", "PUT", "DELETE") and not e["route"].endswith("/batch")
            ]
            return len(direct) + len(spy.actions)

        def forget() -> None:
            control.send("DELETE", "requests")
            spy.actions.clear()

        try:
            rig = Rig(_runner(store, config), held, writes, forget, lambda: _purge(run_cli, path))
            story(rig, "t", datetime.now(UTC))
        finally:
            store.close()
