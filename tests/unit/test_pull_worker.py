"""A stream read from its start in a worker process: the same store as a pull in one process, its requests,
retries and log lines told here, its failures raised here after the pages it sent are stored, and a stop
that does not wait for it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import bridge_jira.pull
from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import RemotePage, StatusCategory, StatusChange, Task
from bridge.errors import ConfigError, Problem, RetriableAPIError
from bridge.flow_facts import facts_of, steps_of
from bridge.http import RETRY_EVENTS, RateLimiter, ShutdownRequested
from bridge.store import Store
from bridge.store.packed import PackedChanges, pack_page, unpack_page
from bridge.store.pages import clean_page, get_cursor
from bridge.sync import pull_worker
from bridge.sync.pull import pull_all
from tests.sandbox.conftest import Control
from tests.unit.test_progress import Jira, jira  # noqa: F401 - the fixture

BOOKKEEPING = {"synced_at", "computed_at", "updated_at", "signpost", "changed_at", "at_run"}
"""Columns that say when the bridge wrote a row, not what it holds."""


def _contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, without the bridge's own bookkeeping (its runs, leases, write times)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with store.read() as conn:
        tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
        for table in sorted(set(tables) - {"run", "lease"}):
            columns = [
                r[1]
                for r in conn.execute(text(f"PRAGMA table_info({table})"))
                if r[1] not in BOOKKEEPING and (table, r[1]) != ("held", "at")
            ]
            rows = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))
            found[table] = sorted((tuple(row) for row in rows), key=repr)
    return found


def _other_store(rig: Jira, tmp_path: Path, name: str) -> tuple[Any, Store]:
    path = tmp_path / f"{name}.toml"
    path.write_text(rig.path.read_text().replace("store.db", f"{name}.db"))
    config = load_config(path, ConnectorRegistry.default())
    return config, Store.open(config)


def _pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the worker processes forked from here."""
    forked: list[int] = []
    fork = os.fork

    def recording() -> int:
        pid = fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(pull_worker.os, "fork", recording)
    return forked


def _at_page(monkeypatch: pytest.MonkeyPatch, number: int, then: Any) -> Any:
    """Map pages of five issues, calling `then()` in place of mapping page `number` (counted from 1) in
    the worker; returns the mapping as it was."""
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 5)
    original = bridge_jira.pull.JiraPuller._page
    made: list[int] = []

    def mapping(self: Any, *args: Any) -> RemotePage:
        if len(made) == number - 1:
            then()
        made.append(1)
        return original(self, *args)

    monkeypatch.setattr(bridge_jira.pull.JiraPuller, "_page", mapping)
    return original


def _resumes_whole(rig: Jira, monkeypatch: pytest.MonkeyPatch, original: Any) -> None:
    """The next pull goes on from the last page stored, in this process, and ends as a whole pull does."""
    monkeypatch.setattr(bridge_jira.pull.JiraPuller, "_page", original)
    (rest,) = pull_all(rig.store, rig.config, now=datetime.now(UTC))
    assert rest.ok, rest.error
    (again,) = pull_all(rig.store, rig.config, now=datetime.now(UTC), full=True)
    assert again.ok and again.changed == 0, "nothing was left out"


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_a_first_pull_in_a_worker_stores_what_one_in_this_process_stores(
    jira: Jira,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 7)
    forked = _pids(monkeypatch)
    retries: list[RetriableAPIError] = []
    RETRY_EVENTS.add(retries.append)
    try:
        # one 429 on the search: the worker retries it, and this process hears of it
        Control(jira.config.trackers["t"].url).faults({"kind": "429", "count": 1, "path": "/search"})
        (in_worker,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    finally:
        RETRY_EVENTS.remove(retries.append)
    assert in_worker.ok, in_worker.error
    assert len(forked) == 1 and _reaped(forked[0])
    assert [error.status for error in retries] == [429]

    monkeypatch.setenv(pull_worker.WORKER_ENV, "off")
    config, store = _other_store(jira, tmp_path, "here")
    try:
        (here,) = pull_all(store, config, now=datetime.now(UTC))
        assert here.ok, here.error
        assert len(forked) == 1, "no worker with BRIDGE_PULL_WORKER=off"
        assert (in_worker.pages, in_worker.items, in_worker.changed) == (here.pages, here.items, here.changed)
        # the worker's requests are the pull's (the 429 made one more)
        assert in_worker.requests == here.requests + 1 and in_worker.setup_requests == here.setup_requests
        assert _contents(jira.store) == _contents(store)
    finally:
        store.close()


def test_an_incremental_pull_stays_in_this_process(jira: Jira, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    forked = _pids(monkeypatch)
    (first,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    (second,) = pull_all(jira.store, jira.config, now=datetime.now(UTC) + timedelta(minutes=10))
    assert first.ok and second.ok, (first.error, second.error)
    assert len(forked) == 1, "only the first pull reads from the stream's start"


def test_the_workers_log_lines_are_handled_here(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = bridge_jira.pull.JiraPuller._page
    here = os.getpid()

    def telling(self: Any, *args: Any) -> RemotePage:
        bridge_jira.pull.log.warning("a page mapped in process %d", os.getpid())
        return original(self, *args)

    monkeypatch.setattr(bridge_jira.pull.JiraPuller, "_page", telling)
    with caplog.at_level(logging.INFO):
        (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    assert result.ok, result.error
    told = [r for r in caplog.records if r.getMessage().startswith("a page mapped in process")]
    assert len(told) == result.pages
    assert all(r.name == "bridge_jira.pull" and r.levelno == logging.WARNING for r in told)
    assert all(r.getMessage() != f"a page mapped in process {here}" for r in told), "made in the worker"


def test_an_error_in_the_worker_is_this_pulls_error_after_its_pages_are_stored(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail() -> None:
        raise RetriableAPIError("t: the fifth page failed", status=503, tracker="t")

    original = _at_page(monkeypatch, 5, fail)
    (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    assert not result.ok and result.error == "t: the fifth page failed"
    assert result.pages == 4 and result.items > 0
    with jira.store.read() as conn:
        cursor = get_cursor(conn, "t", "issues")
    assert cursor is not None and cursor.value is not None
    _resumes_whole(jira, monkeypatch, original)


def test_a_worker_killed_mid_stream_ends_the_pull_with_an_error_and_nothing_lost(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = os.getpid()

    def die() -> None:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)

    original = _at_page(monkeypatch, 4, die)
    (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    assert not result.ok and result.error is not None
    assert "worker process ended before its stream did (killed by signal 9)" in result.error
    # pages 1 to 3 were mapped; the worker may have died before it sent the last of them
    assert 0 < result.pages <= 3
    _resumes_whole(jira, monkeypatch, original)


def test_a_stop_while_the_worker_is_slow_does_not_wait_for_it(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forked = _pids(monkeypatch)
    _at_page(monkeypatch, 3, lambda: time.sleep(60))  # in the worker, which the stop does not reach
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        pull_all(jira.store, jira.config, now=datetime.now(UTC), stop=stop)
    assert time.monotonic() - started < 10
    assert len(forked) == 1 and _reaped(forked[0])
    with jira.store.read() as conn:
        cursor = get_cursor(conn, "t", "issues")
    assert cursor is not None, "the pages before the stop are stored"


def test_no_worker_where_it_is_switched_off_or_cannot_be(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain:
        """A connector that cannot let go of its connections."""

    assert not pull_worker.worker_wanted(Plain(), None)  # type: ignore[arg-type]

    class Forking:
        forks = True

    assert pull_worker.worker_wanted(Forking(), None)  # type: ignore[arg-type]
    assert not pull_worker.worker_wanted(Forking(), '{"minute": "2026-06-01T00:00:00+00:00"}')  # type: ignore[arg-type]
    for value in ("off", "0", "no", "false", "OFF"):
        monkeypatch.setenv(pull_worker.WORKER_ENV, value)
        assert not pull_worker.worker_wanted(Forking(), None)  # type: ignore[arg-type]
    monkeypatch.setattr(pull_worker.sys, "platform", "darwin")
    monkeypatch.delenv(pull_worker.WORKER_ENV)
    assert not pull_worker.worker_wanted(Forking(), None)  # type: ignore[arg-type]


# ---- packing ----------------------------------------------------------------------------------------

TODO, STARTED, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE


def _page(to_status: str = "3") -> RemotePage:
    at = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    changes = [
        StatusChange("t", "1:status", "10", at, None, "1", None, StatusCategory.TODO),
        StatusChange("t", "2:status", "10", at + timedelta(hours=5), "1", to_status, TODO, STARTED),
        StatusChange("t", "3:status", "10", at + timedelta(days=2), to_status, "4", STARTED, DONE),
    ]
    task = Task("t", "10", "T-1", "A task", None, None, None, "4", StatusCategory.DONE)
    return RemotePage("t", "issues", tasks=[task], status_changes=changes, cursor="c")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_packed_page_comes_back_whole(dialect: str) -> None:
    page = _page()
    back = unpack_page(pack_page(page, dialect))
    assert isinstance(back.status_changes, PackedChanges) and not back.status_changes.holds_unstorable
    assert list(back.status_changes) == list(page.status_changes)
    assert back.status_changes[1] == page.status_changes[1] and len(back.status_changes) == 3
    facts = facts_of(steps_of(page.status_changes))
    assert facts is not None and back.flow_facts == {"10": facts.to_json()}
    assert (back.tasks, back.cursor, back.source, back.stream) == (page.tasks, "c", "t", "issues")
    stamp = "2026-03-01 09:30:15.123456"
    assert back.status_changes.rows[0][3] == (stamp if dialect == "sqlite" else f"{stamp}+00:00")


def test_a_packed_history_holding_nul_is_cleaned_and_counted_as_any_other() -> None:
    back = unpack_page(pack_page(_page(to_status="In\x00Progress"), "sqlite"))
    assert isinstance(back.status_changes, PackedChanges) and back.status_changes.holds_unstorable
    cleaned, count = clean_page(back)
    assert count == 1
    assert [c.to_status for c in cleaned.status_changes][1] == "In\ufffdProgress"
    assert cleaned.flow_facts is None, "facts are made again from the cleaned history"
    clean, none = clean_page(unpack_page(pack_page(_page(), "sqlite")))
    assert none == 0 and isinstance(clean.status_changes, PackedChanges)


def test_an_error_comes_back_from_the_worker_as_the_same_error() -> None:
    problems = [Problem("trackers.t.url", "not a URL")]
    back = pull_worker._rebuilt_error(pull_worker._portable_error(ConfigError("bridge.toml", problems)))
    # ConfigError's `__init__` takes other arguments than its `args`: rebuilt from its class and state
    assert isinstance(back, ConfigError) and back.problems == problems
    assert str(back) == "bridge.toml: 1 problem\n  trackers.t.url: not a URL"
    limited = pull_worker._rebuilt_error(
        pull_worker._portable_error(RetriableAPIError("t: 429", status=429, tracker="t", retry_after=3.0))
    )
    assert isinstance(limited, RetriableAPIError) and (limited.status, limited.tracker) == (429, "t")
    odd = RuntimeError("a lock inside")
    odd.lock = threading.Lock()  # type: ignore[attr-defined]
    back_odd = pull_worker._rebuilt_error(pull_worker._portable_error(odd))
    assert isinstance(back_odd, RuntimeError) and str(back_odd) == "a lock inside"


def test_a_worker_ends_when_the_process_that_forked_it_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from bridge.sync.pull_worker import die_with_parent\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    die_with_parent(parent)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(0.5)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the worker outlived the process that forked it"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_after_a_worker_the_rate_limit_starts_from_an_empty_bucket() -> None:
    limiter = RateLimiter(20.0, burst=20)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started < 0.04, "a full bucket lends at once"
    limiter.spend()  # what `SessionConnector.worker_finished` does: the worker spent this tracker's rate
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.04, "an empty bucket makes the next request wait its turn"
