"""The pull contract for Jira Cloud and Data Center, plus what only Jira has: long histories, JQL in the
user's time zone across a DST change, and a real export pulled whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

import bridge_jira.pull
from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.kit import PaginationLoop
from bridge.store import Store
from bridge.store.snapshot import load_snapshot
from bridge.sync.pull import pull_all
from bridge_jira import JiraConnector
from bridge_sandbox.generate import STATUSES, build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import Emulator, SandboxServer
from tests.contract.contract import PullContract, Rig, Truth
from tests.sandbox.conftest import Control, shared_file
from tests.store.flow_facts_check import assert_facts_match_history

EMAIL, TOKEN = "sandbox@example.com", "sandbox-jira-token"
CATEGORY = {name: category for name, (_, category) in STATUSES.items()}
STATUS_MAP = "\n".join(f'"{status_id}" = "{category}"' for status_id, category in STATUSES.values())


def jira_table(base_url: str, projects: str = '"PAY", "MOB"', status_map: str = STATUS_MAP) -> str:
    return f"""
[trackers.t]
kind = "jira"
url = "{base_url}"
email_env = "T_EMAIL"
token_env = "T_TOKEN"
projects = [{projects}]
max_requests_per_second = 1000
lag = "1m"

[trackers.t.status_map]
{status_map}

[trackers.t.fields]
value = "Value"
effort = "Story Points"

[[trackers.t.teams]]
name = "payments"
project = "PAY"

[[trackers.t.work_types]]
name = "security-review"
label = "security-review"
"""


def _tasks(emulator: JiraEmulator) -> list[Any]:
    return [i for i in emulator.issues.values() if i.fields["issuetype"]["name"] != "Epic"]


def jira_truth(emulator: Emulator) -> Truth:
    assert isinstance(emulator, JiraEmulator)
    milestones, tasks, changes = {}, {}, set()
    for issue in emulator.issues.values():
        category = CATEGORY[issue.fields["status"]["name"]]
        if issue.fields["issuetype"]["name"] == "Epic":
            milestones[issue.id] = category
            continue
        tasks[issue.id] = category
        for history in issue.histories:
            if any(item.get("field") == "status" for item in history["items"]):
                changes.add(f"{history['id']}:status")
    return Truth(milestones, tasks, changes)


class JiraContract(PullContract):
    flavour: ClassVar[str] = "cloud"
    kill_at_request: ClassVar[int] = 7  # after serverInfo, myself, field and status: the third search page

    def make_emulator(self) -> Emulator:
        seed = render_jira(build(seed=21, per_tracker=self.seed_items, now=datetime(2026, 6, 1, tzinfo=UTC)))
        return JiraEmulator.from_search(seed, flavour=self.flavour)

    def tracker_table(self, base_url: str) -> str:
        return jira_table(base_url)

    def credentials(self, emulator: Emulator) -> dict[str, str]:
        return {"T_EMAIL": EMAIL, "T_TOKEN": TOKEN}

    def truth(self, emulator: Emulator) -> Truth:
        return jira_truth(emulator)

    def create_item(self, control: Control) -> str:
        return str(
            control.edit(op="create_issue", project="PAY", type="Story", summary="Nouvelle tâche")["id"]
        )

    def move_item(self, control: Control, remote_id: str, status: str) -> None:
        control.edit(op="transition", key=remote_id, status=status)

    def delete_item(self, control: Control, remote_id: str) -> None:
        control.edit(op="delete", key=remote_id)

    def any_task(self, emulator: Emulator) -> str:
        assert isinstance(emulator, JiraEmulator)
        return next(i.id for i in _tasks(emulator) if i.fields["status"]["name"] == "To Do")

    def test_an_upgraded_store_names_every_status_after_one_quiet_pull(self, rig: Rig) -> None:
        """A store from before names held none; a pull with no issue changed names every status (a renamed
        one by its new name, one nobody is in too) from the site's list, read as setup."""
        emulator = rig.emulator
        assert isinstance(emulator, JiraEmulator)
        assert rig.pull().ok
        rig.store.downgrade("okrdrafts01")  # the schema before names, the pulled rows kept
        rig.store.upgrade()
        assert load_snapshot(rig.store).statuses == []
        renamed = next(iter(emulator.statuses))
        emulator.statuses[renamed]["name"] = "Waiting for QA"  # an admin renames it; no issue changes
        emulator.statuses["19999"] = {**emulator.statuses[renamed], "id": "19999", "name": "Parked"}
        route = "GET /rest/api/{version}/status"
        before = rig.control.get("requests")["by_route"].get(route, 0)
        result = rig.pull()
        assert result.ok and result.items == 0, result.error
        named = {s.remote_id: s.name for s in load_snapshot(rig.store).statuses}
        assert named == {sid: status["name"] for sid, status in emulator.statuses.items()}
        assert named[renamed] == "Waiting for QA" and named["19999"] == "Parked", "a status nobody is in"
        assert result.requests <= self.streams, "the statuses are a setup read"
        assert result.setup_requests == 4, "serverInfo, myself, field and status"
        assert rig.control.get("requests")["by_route"].get(route, 0) == before + 1, "once a cycle"


class TestJiraCloudPull(JiraContract):
    flavour = "cloud"
    postgres_cases = JiraContract.postgres_cases | {"test_a_title_holding_nul_is_stored_replaced_and_named"}

    def test_a_title_holding_nul_is_stored_replaced_and_named(
        self, rig: Rig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """PostgreSQL refuses NUL in text: one user's title must not fail the tracker's every pull."""
        from sqlalchemy import select

        from bridge.store.models import TaskRow

        emulator = rig.emulator
        assert isinstance(emulator, JiraEmulator)
        assert rig.pull().ok
        task = _tasks(emulator)[0]
        rig.control.edit(op="update", key=task.key, fields={"summary": "Fix\x00the checkout"})
        with caplog.at_level("WARNING"):
            result = rig.pull()
        assert result.ok, result.error
        assert result.cleaned == 1
        with rig.store.read() as conn:
            table = TaskRow.__table__  # type: ignore[attr-defined]
            title = conn.execute(select(table.c.title).where(table.c.remote_id == task.id)).scalar_one()
        assert title == "Fix\ufffdthe checkout"
        named = [r.getMessage() for r in caplog.records if "NUL" in r.getMessage()]
        assert len(named) == 1 and f"t: {task.key} holds NUL" in named[0], named
        assert rig.pull().ok, "later pulls go on"

    def test_changelogs_beyond_the_embedded_hundred_are_complete(self, rig: Rig) -> None:
        emulator = rig.emulator
        assert isinstance(emulator, JiraEmulator)
        long_ones = [i for i in emulator.issues.values() if len(i.histories) > 100]
        assert long_ones, "the generated seed has issues with long histories"
        assert rig.pull().ok
        stored = rig.stored().status_changes
        for issue in long_ones:
            assert {f"{h['id']}:status" for h in issue.histories} <= stored
        log = rig.control.get("requests")["by_route"]
        assert log.get("POST /rest/api/{version}/changelog/bulkfetch", 0) >= 1


class TestJiraDataCenterPull(JiraContract):
    flavour = "dc"


def test_cursor_across_a_dst_change_misses_nothing(tmp_path: Path) -> None:
    """New York springs forward on 2026-03-08: the cursor minute is converted with the right offset."""
    emulator = JiraEmulator.from_search(
        render_jira(build(seed=5, per_tracker=60, now=datetime(2026, 3, 8, tzinfo=UTC)))
    )
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        path = tmp_path / "bridge.toml"
        path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + jira_table(server.base_url))
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        env = {"T_EMAIL": EMAIL, "T_TOKEN": TOKEN}
        touched: list[str] = []

        def pull_at(moment: datetime) -> None:
            import os

            os.environ.update(env)
            (result,) = pull_all(store, config, now=moment)
            assert result.ok, result.error

        control.send("POST", "clock", {"now": "2026-03-08T06:40:00+00:00"})  # 01:40 EST
        pull_at(datetime(2026, 3, 8, 6, 41, tzinfo=UTC))
        for minutes in (2, 30, 60, 75):  # 01:42 EST ... 03:55 EDT: across the missing hour
            moment = datetime(2026, 3, 8, 6, 40, tzinfo=UTC) + timedelta(minutes=minutes)
            control.send("POST", "clock", {"now": moment.isoformat()})
            task = next(i for i in _tasks(emulator) if i.id not in touched)
            control.edit(op="update", key=task.key, fields={"summary": f"edited at +{minutes}"})
            touched.append(task.id)
            pull_at(datetime(2026, 3, 8, 6, 40, tzinfo=UTC) + timedelta(minutes=minutes, seconds=30))
        from sqlalchemy import select

        from bridge.store.models import TaskRow

        with store.read() as conn:
            titles = dict(
                conn.execute(select(TaskRow.__table__.c.remote_id, TaskRow.__table__.c.title)).all()
            )  # type: ignore[attr-defined]
        assert all(titles[t].startswith("edited at") for t in touched)
        store.close()


def test_real_export_pulls_whole(tmp_path: Path) -> None:
    source = shared_file("data/aea-jira/issues.json")
    expected = json.loads(source.read_text())["issues"]
    statuses: dict[str, str] = {}
    for issue in expected:
        status = issue["fields"]["status"]
        statuses[status["id"]] = status["name"]
        for history in issue["changelog"]["histories"]:
            for item in history["items"]:
                if item.get("field") == "status":
                    statuses[str(item["to"])] = str(item["toString"])
    status_map = "\n".join(
        f'"{sid}" = "{"done" if name == "Done" else "in_progress"}"' for sid, name in statuses.items()
    )
    with SandboxServer(JiraEmulator.from_search(source, flavour="dc")) as server:
        path = tmp_path / "bridge.toml"
        table = jira_table(server.base_url, projects='"AEAREP"', status_map=status_map)
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + table.split("[trackers.t.fields]")[0]
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        import os

        os.environ.update({"T_EMAIL": EMAIL, "T_TOKEN": TOKEN})
        (result,) = pull_all(store, config, now=datetime.now(UTC))
        assert result.ok and result.skipped == 0, result.error
        from sqlalchemy import func, select

        from bridge.store.models import StatusChangeRow, TaskRow

        with store.read() as conn:
            tasks = conn.execute(select(func.count()).select_from(TaskRow.__table__)).scalar()  # type: ignore[attr-defined]
            changes = conn.execute(select(func.count()).select_from(StatusChangeRow.__table__)).scalar()  # type: ignore[attr-defined]
        # the flow facts written at pull time equal those of the stored history, for every issue
        with_history = sum(
            any(i.get("field") == "status" for h in issue["changelog"]["histories"] for i in h["items"])
            for issue in expected
        )
        assert assert_facts_match_history(store) == with_history > 1200
        store.close()
    status_items = sum(
        1 for issue in expected for history in issue["changelog"]["histories"] for item in history["items"]
        if item.get("field") == "status"
    )  # fmt: skip
    assert tasks == len(expected) == 1301
    assert changes == status_items


def test_a_failing_tracker_does_not_stop_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    from bridge.store.models import RunRow

    seed = render_jira(build(seed=3, per_tracker=40, now=datetime(2026, 6, 1, tzinfo=UTC)))
    with (
        SandboxServer(JiraEmulator.from_search(seed)) as down,
        SandboxServer(JiraEmulator.from_search(seed)) as up,
    ):
        down_table = (
            jira_table(down.base_url).replace("[trackers.t", "[trackers.down").replace('"T_TOKEN"', '"BAD"')
        )
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + down_table + jira_table(up.base_url)
        )
        monkeypatch.setenv("T_EMAIL", EMAIL)
        monkeypatch.setenv("T_TOKEN", TOKEN)
        monkeypatch.setenv("BAD", "not-the-token")
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        results = {r.tracker: r for r in pull_all(store, config, now=datetime.now(UTC))}
        with store.read() as conn:
            runs = {r.source: r for r in conn.execute(select(RunRow.__table__))}  # type: ignore[attr-defined]
        store.close()
    assert not results["down"].ok and "down" in str(results["down"].error)
    assert results["t"].ok and results["t"].items > 40
    assert runs["down"].status == "failed" and "credentials" in runs["down"].error
    assert runs["t"].status == "ok" and runs["t"].error is None


class _StuckTokens(JiraEmulator):
    """A Cloud site whose page tokens never get past the second page of a query."""

    def _encode_token(self, offset: int, query: str) -> str:
        return super()._encode_token(min(offset, 5), query)


def _stuck_site(tmp_path: Path, server: SandboxServer) -> JiraConnector:
    path = tmp_path / "bridge.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + jira_table(server.base_url))
    return JiraConnector.open(
        "t",
        load_config(path, ConnectorRegistry.default()).tracker("t"),
        {"email_env": EMAIL, "token_env": TOKEN},
    )


def test_a_page_token_given_twice_stops_the_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that hands out a page token again would keep a listing reading forever: the census and
    the issues stream (paging within one busy minute) stop with PaginationLoop instead."""
    monkeypatch.setattr(bridge_jira.pull, "CENSUS_PAGE_SIZE", 5)
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 5)
    seed = render_jira(build(seed=3, per_tracker=40, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = _StuckTokens.from_search(seed, flavour="cloud")
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        control.send("POST", "clock", {"now": "2026-06-02T10:00:30+00:00"})
        busy = _tasks(emulator)[:12]
        for issue in busy:  # twelve issues updated in one minute: more than a page of five
            control.edit(op="update", key=issue.key, fields={"summary": "edited in the busy minute"})
        connector = _stuck_site(tmp_path, server)
        try:
            with pytest.raises(PaginationLoop, match=r"census.*again"):
                connector.census()
            cursor = json.dumps({"minute": "2026-06-02T10:00:00+00:00"})
            pages = connector.pull("issues", cursor, datetime(2026, 6, 2, 10, 5, tzinfo=UTC))
            with pytest.raises(PaginationLoop, match=r"changed issues.*again"):
                list(pages)
        finally:
            connector.close()
