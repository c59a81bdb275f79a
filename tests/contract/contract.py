"""The pull contract every connector meets against its sandbox; each connector's test subclasses it.

A subclass says how to seed its emulator, how its tracker table looks, how a user edits items through
the sandbox's control API, and what the sandbox holds (the truth the store must equal).

Every case runs on a SQLite store. The cases named in `postgres_cases` run again on a PostgreSQL store
of their own (a fresh database whose sessions are not in UTC, reached through `url_env` as in
production), skipped with the reason when the server is unreachable: a first open migrating under the
advisory lock, upserts taking their conflict paths, aware datetimes coming back equal, and a killed
pull's committed pages surviving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.models import TABLES, MilestoneRow, StatusChangeRow, TaskRow
from bridge.sync.pull import PullResult, pull_all
from bridge_sandbox.server import Emulator, SandboxServer
from tests.sandbox.conftest import Control
from tests.store.flow_facts_check import assert_facts_match_history

STORE_URL_ENV = "BRIDGE_CONTRACT_STORE_URL"
"""Holds the PostgreSQL store's URL: a config may not carry a literal one with a password."""
ITEM_TABLES = tuple(name for name in TABLES if name not in ("cursor", "run", "written"))
"""What a pull stores about the tracker's items (cursors and runs move on every cycle)."""
POSTGRES_CASES = frozenset(
    {
        "test_full_pull_equals_the_sandbox",
        "test_incremental_pull_sees_creates_moves_and_deletions",
        "test_a_cycle_with_no_change_makes_one_request_per_stream",
        "test_killed_after_a_page_and_restarted_ends_exact",
    }
)


@dataclass
class Truth:
    """What the tracker holds, in the store's terms."""

    milestones: dict[str, str]
    """remote id -> category"""
    tasks: dict[str, str]
    status_changes: set[str]
    """status change remote ids"""


@dataclass
class Rig:
    server: SandboxServer
    control: Control
    config_path: Path
    config: BridgeConfig
    store: Store
    env: dict[str, str]

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def pull(
        self, *, full: bool = False, now: datetime | None = None, store: Store | None = None
    ) -> PullResult:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            (result,) = pull_all(store or self.store, self.config, now=now or datetime.now(UTC), full=full)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return result

    def stored(self) -> Truth:
        with self.store.read() as conn:
            milestone_table = MilestoneRow.__table__  # type: ignore[attr-defined]
            task_table = TaskRow.__table__  # type: ignore[attr-defined]
            milestones = {
                r.remote_id: r.category for r in conn.execute(select(milestone_table)) if not r.deleted
            }
            tasks = {r.remote_id: r.category for r in conn.execute(select(task_table)) if not r.deleted}
            table = StatusChangeRow.__table__  # type: ignore[attr-defined]
            # A deleted item keeps its history in the store; the tracker no longer shows it.
            changes = {
                r.remote_id
                for r in conn.execute(select(table.c.remote_id, table.c.item_id))
                if r.item_id in tasks
            }
        return Truth(milestones, tasks, changes)

    def rows(self, store: Store | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """Every stored row about the tracker's items, every column, in primary-key order.

        Sorted here, not by the database: PostgreSQL's collation may order text unlike SQLite's.
        """
        found = {}
        with (store or self.store).read() as conn:
            for name in ITEM_TABLES:
                table = TABLES[name].__table__  # type: ignore[attr-defined]
                keys = [table.c.keys().index(column.name) for column in table.primary_key.columns]
                rows = [tuple(row) for row in conn.execute(select(table))]
                found[name] = sorted(rows, key=lambda row: [row[i] for i in keys])
        return found


class PullContract:
    """Subclass and implement the hooks; every test here then runs for that connector."""

    tracker: ClassVar[str] = "t"
    seed_items: ClassVar[int] = 250
    """Enough work items for at least three pages."""
    streams: ClassVar[int] = 1
    postgres_cases: ClassVar[frozenset[str]] = POSTGRES_CASES
    """The cases that run on PostgreSQL too."""

    # ---- hooks ---------------------------------------------------------------------------------------

    def make_emulator(self) -> Emulator:
        raise NotImplementedError

    def tracker_table(self, base_url: str) -> str:
        """The `[trackers.t]` table (and sub-tables) pointing at the sandbox."""
        raise NotImplementedError

    def credentials(self, emulator: Emulator) -> dict[str, str]:
        raise NotImplementedError

    def truth(self, emulator: Emulator) -> Truth:
        raise NotImplementedError

    def create_item(self, control: Control) -> str:
        """Create a task as a user would; return its remote id."""
        raise NotImplementedError

    def move_item(self, control: Control, remote_id: str, status: str) -> None:
        """Move a task to a raw status (one of `done_status`, `doing_status`)."""
        raise NotImplementedError

    def delete_item(self, control: Control, remote_id: str) -> None:
        raise NotImplementedError

    def any_task(self, emulator: Emulator) -> str:
        raise NotImplementedError

    doing_status: ClassVar[str] = "In Progress"
    done_status: ClassVar[str] = "Done"

    # ---- the rig -------------------------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "store_kind" in metafunc.fixturenames and metafunc.function.__name__ in self.postgres_cases:
            kinds = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
            metafunc.parametrize("store_kind", kinds, indirect=True)

    @pytest.fixture
    def store_kind(self, request: pytest.FixtureRequest) -> str:
        """`sqlite`, or `postgresql` for the cases in `postgres_cases`."""
        return str(getattr(request, "param", "sqlite"))

    @pytest.fixture
    def rig(
        self,
        tmp_path: Path,
        store_kind: str,
        request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[Rig]:
        if store_kind == "postgresql":
            monkeypatch.setenv(STORE_URL_ENV, str(request.getfixturevalue("pg_database_url")))
            store_table = f'[store]\nurl_env = "{STORE_URL_ENV}"\n\n'
        else:
            store_table = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n'
        server = SandboxServer(self.make_emulator()).start()
        path = tmp_path / "bridge.toml"
        path.write_text(store_table + self.tracker_table(server.base_url))
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        assert store.dialect == store_kind
        yield Rig(server, Control(server.base_url), path, config, store, self.credentials(server.emulator))
        store.close()
        server.stop()

    def assert_matches(self, rig: Rig) -> None:
        expected, stored = self.truth(rig.emulator), rig.stored()
        assert stored.milestones == expected.milestones
        assert stored.tasks == expected.tasks
        assert stored.status_changes == expected.status_changes

    # ---- the contract --------------------------------------------------------------------------------

    def test_full_pull_equals_the_sandbox(self, rig: Rig, tmp_path: Path) -> None:
        now = datetime.now(UTC)
        result = rig.pull(now=now)
        assert result.ok, result.error
        assert result.pages >= 3
        assert result.skipped == 0
        self.assert_matches(rig)
        # flow facts, written at pull time, equal those of the stored history for every task
        assert assert_facts_match_history(rig.store) > 0
        if rig.store.dialect != "sqlite":
            # Column for column (datetimes to the microsecond) what SQLite holds after the same pull.
            reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
            try:
                reference.upgrade()
                assert rig.pull(now=now, store=reference).ok
                expected = rig.rows(reference)
            finally:
                reference.close()
            stored = rig.rows()
            for name in ITEM_TABLES:
                assert stored[name] == expected[name], name

    def test_incremental_pull_sees_creates_moves_and_deletions(self, rig: Rig) -> None:
        assert rig.pull().ok
        created = self.create_item(rig.control)
        moved = self.any_task(rig.emulator)
        self.move_item(rig.control, moved, self.doing_status)
        self.move_item(rig.control, moved, self.done_status)
        doomed = next(t for t in self.truth(rig.emulator).tasks if t not in (moved, created))
        self.delete_item(rig.control, doomed)
        result = rig.pull()
        assert result.ok, result.error
        stored = rig.stored()
        assert created in stored.tasks and stored.tasks[moved] == "done"
        assert assert_facts_match_history(rig.store) > 0, "the moved task's facts follow its history"
        assert rig.pull(full=True).ok, "a full pull with its census marks the deleted item"
        self.assert_matches(rig)

    def test_a_cycle_with_no_change_makes_one_request_per_stream(self, rig: Rig) -> None:
        assert rig.pull().ok
        before = rig.rows()
        result = rig.pull()
        assert result.ok and result.items == 0 and result.changed == 0
        assert result.requests <= self.streams
        assert rig.rows() == before, "a quiet cycle writes no item row"

    def test_429_with_retry_after_then_success(self, rig: Rig) -> None:
        rig.control.faults({"kind": "429", "after": 3, "count": 1, "retry_after": 1})
        started = time.monotonic()
        result = rig.pull()
        assert result.ok, result.error
        assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
        assert rig.control.get("faults")["injected"] == {"429": 1}
        self.assert_matches(rig)

    def test_5xx_burst_is_ridden_out(self, rig: Rig) -> None:
        rig.control.faults({"kind": "5xx", "after": 2, "count": 3, "status": 502})
        result = rig.pull()
        assert result.ok, result.error
        self.assert_matches(rig)

    def test_wrong_credentials_name_the_tracker(self, rig: Rig) -> None:
        rig.env = {k: "wrong-" + v for k, v in rig.env.items()}
        result = rig.pull()
        assert not result.ok and result.error is not None
        assert self.tracker in result.error and "credentials" in result.error
        assert all(not v or v not in result.error for v in rig.env.values())

    def test_malformed_item_is_skipped_and_counted_the_page_lands(self, rig: Rig) -> None:
        rig.control.faults({"kind": "malformed", "after": 1, "count": 1, "path": self.page_path})
        result = rig.pull()
        assert result.ok, result.error
        assert result.skipped == 1 and len(result.skipped_keys) == 1
        truth = self.truth(rig.emulator)
        assert (
            len(rig.stored().tasks) + len(rig.stored().milestones)
            >= len(truth.tasks) + len(truth.milestones) - 1
        )
        assert rig.pull(full=True).ok
        self.assert_matches(rig)

    page_path: ClassVar[str] = "search"
    kill_at_request: ClassVar[int] = 6
    """The request held (and in flight) when the pull is killed: a few pages must have landed before."""

    def test_killed_after_a_page_and_restarted_ends_exact(self, rig: Rig) -> None:
        """`bridge pull` is killed with SIGKILL while the third page is in flight, then run again."""
        env = {**os.environ, **rig.env}
        held = rig.control.request_count() + self.kill_at_request
        rig.control.send("POST", "hold", {"request": held})
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "pull", "--config", str(rig.config_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while rig.control.get("held")["waiting"] != [held]:
            assert time.monotonic() < deadline and process.poll() is None, (
                "the pull never reached the held request"
            )
            time.sleep(0.05)
        while not (rig.stored().tasks or rig.stored().milestones):  # the pages before the held one land
            assert time.monotonic() < deadline, "no page landed before the held request"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        rig.control.send("POST", "release", {})
        partial = rig.stored()
        assert len(partial.tasks) < len(self.truth(rig.emulator).tasks), "the kill came before the end"
        again = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "pull", "--config", str(rig.config_path)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        self.assert_matches(rig)
