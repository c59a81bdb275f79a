"""`bridge run` as real processes against the Jira sandbox: cycles on schedule with `/metrics` matching the
sandbox's request log, SIGTERM in the middle of a cycle, three replicas on PostgreSQL sharing eight
trackers, and a replica killed with SIGKILL whose trackers move on once its lease expires."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.daemon.test_metrics import Samples, parse_exposition, sample
from tests.sandbox.conftest import Control

INTERVAL = 10


@pytest.fixture
def jira() -> Iterator[SandboxServer]:
    seed = render_jira(build(seed=9, per_tracker=40, now=datetime(2026, 6, 1, tzinfo=UTC)))
    with SandboxServer(JiraEmulator.from_search(seed, flavour="cloud")) as server:
        yield server


def write_config(
    folder: Path, base_url: str, trackers: list[str], *, store: str, ttl: str = "60s", log: str = "text"
) -> Path:
    tables = "".join(jira_table(base_url).replace("[trackers.t", f"[trackers.{name}") for name in trackers)
    path = folder / "bridge.toml"
    path.write_text(
        f"[store]\n{store}\n\n"
        f'[schedule]\ninterval = "{INTERVAL}s"\njitter = "0s"\n\n'
        f'[daemon]\nhttp_port = 0\nlease_ttl = "{ttl}"\nheartbeat = "1s"\nshutdown_timeout = "20s"\n'
        f'log_format = "{log}"\n' + tables
    )
    return path


@dataclass
class Replica:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def metrics(self) -> Samples:
        return parse_exposition(requests.get(f"{self.url}/metrics", timeout=5).text)

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM; returns how long the process took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started


def start_replica(config: Path, env: dict[str, str]) -> Replica:
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    replica = Replica(process)
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError("the daemon exited: " + "".join(replica.lines))
        replica.lines.append(line)
        found = re.search(r"status at (http://\S+)", line)
        if found:
            replica.url = found.group(1)
            break
    assert replica.url, "".join(replica.lines)
    threading.Thread(target=_drain, args=(process, replica.lines), daemon=True).start()
    return replica


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "T_EMAIL": EMAIL, "T_TOKEN": TOKEN, **extra}


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cycles(replica: Replica, tracker: str = "t") -> float:
    return sample(replica.metrics(), "bridge_cycles_total", tracker=tracker, outcome="ok")


def test_cycles_run_on_schedule_and_metrics_match_the_sandbox(jira: SandboxServer, tmp_path: Path) -> None:
    store = f'url = "sqlite:///{tmp_path / "s.db"}"'
    config = write_config(tmp_path, jira.base_url, ["t"], store=store, log="json")
    replica = start_replica(config, environment())
    control = Control(jira.base_url)
    try:
        assert requests.get(f"{replica.url}/healthz", timeout=5).status_code == 200
        wait_for(lambda: cycles(replica) >= 2, INTERVAL + 15, "two cycles")
        metrics = replica.metrics()
        assert sample(metrics, "bridge_requests_total", tracker="t") == control.get("requests")["total"]
        assert sample(metrics, "bridge_items_pulled_total", tracker="t") > 0
        assert sample(metrics, "bridge_lease_held", tracker="t") == 0, "released between cycles"
        assert requests.get(f"{replica.url}/readyz", timeout=5).status_code == 200
        page = requests.get(f"{replica.url}/", timeout=5).text
        assert "t" in page and TOKEN not in page
    finally:
        took = replica.stop()
    assert replica.process.returncode == 0, "".join(replica.lines)
    assert took < 30
    assert TOKEN not in "".join(replica.lines)
    logged = [json.loads(line) for line in replica.lines if not line.startswith("bridge daemon ")]
    summaries = [entry for entry in logged if " cycle ok " in entry["message"]]
    assert len(summaries) >= 2 and all(entry["time"].endswith("+00:00") for entry in logged)
    first = summaries[0]
    assert first["level"] == "info" and first["tracker"] == "t" and first["outcome"] == "ok"
    assert first["cycle"] == 1 and summaries[1]["cycle"] == 2
    assert first["items"] > 0 and first["requests"] > 0 and first["error"] is None
    assert isinstance(first["duration_s"], float) and first["writes_failed"] == 0
    assert {"writes_planned", "writes_done", "writes_deferred"} <= set(first)
    pulls = [entry for entry in logged if ": pulled " in entry["message"]]
    assert pulls and pulls[0]["tracker"] == "t" and pulls[0]["items"] > 0


def test_sigterm_during_a_cycle_loses_nothing_and_exits_in_time(jira: SandboxServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, jira.base_url, ["t"], store=f'url = "sqlite:///{tmp_path / "s.db"}"')
    control = Control(jira.base_url)
    replica = start_replica(config, environment())
    wait_for(lambda: cycles(replica) >= 1, 20, "the first cycle")
    # Everyone edits an issue; the next cycle's first search request waits in the sandbox.
    issue = next(iter(jira.emulator.issues))  # type: ignore[attr-defined]
    control.edit(op="transition", key=issue, status="In Progress")
    held = control.request_count() + 5  # serverInfo, myself, field, status, then the search
    control.send("POST", "hold", {"request": held})
    wait_for(lambda: control.get("held")["waiting"] == [held], INTERVAL + 10, "the held request")
    replica.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    control.send("POST", "release", {})
    replica.process.wait(30)
    assert replica.process.returncode == 0, "".join(replica.lines)
    # Whatever the interrupted cycle stored is consistent: a fresh pull ends equal to the sandbox.
    from bridge.config import load_config
    from bridge.connector import ConnectorRegistry
    from bridge.store import Store
    from bridge.sync.pull import pull_all

    os.environ.update(T_EMAIL=EMAIL, T_TOKEN=TOKEN)
    cfg = load_config(config, ConnectorRegistry.default())
    store = Store.open(cfg)
    try:
        (result,) = pull_all(store, cfg, now=datetime.now(UTC))
        assert result.ok
        with store.read() as conn:
            stored = {r[0]: r[1] for r in conn.execute(text("SELECT remote_id, raw_status FROM task"))}
    finally:
        store.close()
    emulator = jira.emulator
    assert isinstance(emulator, JiraEmulator)
    wanted = {
        i.id: i.fields["status"]["id"]
        for i in emulator.issues.values()
        if i.fields["issuetype"]["name"] != "Epic"
    }
    assert stored == wanted


@pytest.mark.postgres
def test_three_replicas_run_every_due_cycle_once(
    jira: SandboxServer, tmp_path: Path, pg_database_url: str
) -> None:
    trackers = [f"j{n}" for n in range(8)]
    config = write_config(tmp_path, jira.base_url, trackers, store='url_env = "T_STORE"')
    env = environment(T_STORE=pg_database_url)
    # The window opens before the first replica starts: on a loaded machine starting the three takes
    # seconds, and the first runs its cycles meanwhile.
    started = datetime.now(UTC)
    replicas = [start_replica(config, env) for _ in range(3)]
    time.sleep(2 * INTERVAL + 3)
    for replica in replicas:
        assert replica.stop() < 30
        assert replica.process.returncode == 0, "".join(replica.lines)
    runs = pull_runs(pg_database_url)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    for name in trackers:
        spans = runs[name]
        assert 2 <= len(spans) <= int(elapsed // INTERVAL) + 1, (name, spans)
        for (start_a, end_a), (start_b, _) in itertools.pairwise(spans):
            assert end_a <= start_b, f"{name}: two cycles overlapped"
            assert (start_b - start_a).total_seconds() >= INTERVAL * 0.85, f"{name}: a due cycle ran twice"
    assert len({r for replica in replicas for r in replica.lines if "cycle ok" in r}) >= len(trackers)


@pytest.mark.postgres
def test_a_killed_replicas_trackers_move_on(
    jira: SandboxServer, tmp_path: Path, pg_database_url: str
) -> None:
    config = write_config(tmp_path, jira.base_url, ["a"], store='url_env = "T_STORE"', ttl="3s")
    env = environment(T_STORE=pg_database_url)
    control = Control(jira.base_url)
    control.send("POST", "hold", {"request": 5})  # the first replica's first search waits
    first = start_replica(config, env)
    wait_for(lambda: control.get("held")["waiting"] == [5], 20, "the held request")
    second = start_replica(config, env)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    killed_at = datetime.now(UTC)
    control.send("POST", "release", {})
    try:
        wait_for(
            lambda: any(start > killed_at and ok for start, _, ok in pull_rows(pg_database_url, "a")),
            INTERVAL + 15,
            "another replica's cycle after the kill",
        )
    finally:
        second.stop()
    assert second.process.returncode == 0, "".join(second.lines)


def pull_rows(url: str, tracker: str) -> list[tuple[datetime, datetime | None, bool]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT started_at, finished_at, status FROM run WHERE kind = 'pull' AND source = :s"),
                {"s": tracker},
            )
            return [(r[0], r[1], r[2] == "ok") for r in rows]
    finally:
        engine.dispose()


def pull_runs(url: str) -> dict[str, list[tuple[datetime, datetime]]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    found: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    try:
        with engine.connect() as conn:
            for source, start, end in conn.execute(
                text(
                    "SELECT source, started_at, finished_at FROM run WHERE kind = 'pull' ORDER BY started_at"
                )
            ):
                found[source].append((start, end or start + timedelta(days=1)))
    finally:
        engine.dispose()
    return found


def test_a_long_retry_after_does_not_hold_shutdown(jira: SandboxServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, jira.base_url, ["t"], store=f'url = "sqlite:///{tmp_path / "s.db"}"')
    control = Control(jira.base_url)
    control.faults({"kind": "429", "path": "/search", "retry_after": 600})
    replica = start_replica(config, environment())
    wait_for(lambda: control.get("faults")["injected"], 20, "the 429")
    took = replica.stop()
    assert replica.process.returncode == 0, "".join(replica.lines)
    assert took < 30


def test_a_second_daemon_on_one_sqlite_store_is_refused(jira: SandboxServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, jira.base_url, ["t"], store=f'url = "sqlite:///{tmp_path / "s.db"}"')
    first = start_replica(config, environment())
    try:
        second = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert "one daemon at a time" in second.stderr and "Traceback" not in second.stderr
        status = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "status", "--config", str(config)],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0 and "t" in status.stdout, status.stderr
    finally:
        first.stop()


# --- readiness and liveness follow the store and the scheduler ---------------------------------------


def test_a_store_corrupted_mid_run_makes_the_daemon_not_ready(jira: SandboxServer, tmp_path: Path) -> None:
    database = tmp_path / "s.db"
    config = write_config(tmp_path, jira.base_url, ["t"], store=f'url = "sqlite:///{database}"')
    replica = start_replica(config, environment())
    try:
        wait_for(lambda: cycles(replica) >= 1, 20, "the first cycle")
        assert requests.get(f"{replica.url}/readyz", timeout=5).status_code == 200
        for part in (database, database.with_name("s.db-wal"), database.with_name("s.db-shm")):
            size = part.stat().st_size
            with part.open("r+b") as damaged:  # every page, the log and its index become garbage
                damaged.write((b"this is no database " * (size // 20 + 1))[:size])
        wait_for(
            lambda: requests.get(f"{replica.url}/readyz", timeout=5).status_code == 503,
            INTERVAL + 15,
            "/readyz to fail",
        )
        ready = requests.get(f"{replica.url}/readyz", timeout=5)
        assert "not ready" in ready.text and "file is not a database" in ready.text
        assert requests.get(f"{replica.url}/healthz", timeout=5).status_code == 200
    finally:
        replica.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("how", ["stopped", "thread died"])
def test_healthz_fails_once_the_scheduler_is_stopped_or_its_thread_dies(
    how: str, jira: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import CollectorRegistry

    from bridge.config import load_config
    from bridge.connector import ConnectorRegistry
    from bridge.daemon.http import StatusServer
    from bridge.daemon.service import Daemon, live_status
    from bridge.store import Store

    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    config = write_config(tmp_path, jira.base_url, ["t"], store=f'url = "sqlite:///{tmp_path / "s.db"}"')
    cfg = load_config(config, ConnectorRegistry.default())
    store = Store.open(cfg)
    daemon = Daemon(cfg, store)
    server = StatusServer(cfg, store, CollectorRegistry(), lambda: live_status(daemon))
    try:
        server.start()
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200  # not started yet
        daemon.start()
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        if how == "stopped":
            daemon.scheduler.shutdown(wait=False)
        else:

            def crash() -> float:
                raise RuntimeError("the scheduler's loop crashed")

            daemon.scheduler._process_jobs = crash
            daemon.scheduler.wakeup()
        wait_for(
            lambda: requests.get(f"{server.url}/healthz", timeout=5).status_code == 503,
            5,
            f"/healthz to fail ({how})",
        )
        health = requests.get(f"{server.url}/healthz", timeout=5)
        assert "not alive" in health.text and "scheduler" in health.text, health.text
        assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 503
    finally:
        server.stop()
        daemon.shutdown()
        store.close()
