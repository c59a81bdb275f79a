"""One sync at a time: `bridge sync`, `pull` and `purge` hold what a daemon holds, so a daemon and commands
(or two commands) never sync one tracker at once on one store; a claim left by a killed process is taken
over at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.daemon.leases import DAEMON_LEASE, LeaseManager, exclusive_run
from bridge.store import Store
from tests.unit.test_config_errors import BASE

TTL, BEAT = timedelta(seconds=30), timedelta(seconds=5)
SECRETS = {"JIRA_EMAIL": "e@example.com", "JIRA_TOKEN": "t", "TRELLO_KEY": "k", "TRELLO_TOKEN": "t"}


def _store(tmp_path: Path, url: str | None = None) -> tuple[Path, Store]:
    """A config whose trackers point at hosts that do not answer (a run that is let in fails to connect,
    exit 1; a refused one never tries: exit 2), and its store, migrated."""
    path = tmp_path / "bridge.toml"
    table = (
        '[store]\nurl_env = "ONE_RUN_STORE"\n' if url else f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
    )
    trackers = BASE.replace("https://acme.atlassian.net", "http://127.0.0.1:9")
    for kind in ("jira", "trello"):  # one attempt: a run that is let in fails at once
        trackers = trackers.replace(f'kind = "{kind}"\n', f'kind = "{kind}"\nretries = 1\ntimeout = "2s"\n')
    trackers = trackers.replace('kind = "trello"\n', 'kind = "trello"\nurl = "http://127.0.0.1:9"\n')
    path.write_text(table + trackers, encoding="utf-8")
    if url is None:
        store = Store.open(load_config(path, ConnectorRegistry.default()))
    else:
        store = Store(url)
        store.upgrade()
    return path, store


def _run(path: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRETS, **({"ONE_RUN_STORE": url} if url else {})}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args, "--config", str(path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _dead_holder(command: str = "sync") -> str:
    """A holder on this host whose process is gone."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)  # fmt: skip
    return f"{socket.gethostname()}:{int(finished.stdout)}:dead:bridge-{command}"


def test_on_sqlite_a_command_is_refused_while_a_daemon_runs_and_named(tmp_path: Path) -> None:
    path, store = _store(tmp_path)
    daemon = LeaseManager(store, ttl=TTL, heartbeat=BEAT)
    assert daemon.start_daemon() is not None
    try:
        for command in ("sync", "pull"):
            refused = _run(path, command)
            assert refused.returncode == 2, refused.stderr
            assert "the store (SQLite: one bridge process at a time) is held by a daemon" in refused.stderr
            assert daemon.holder in refused.stderr and "Traceback" not in refused.stderr
        refused = _run(path, "purge", "--tracker", "cards")
        assert refused.returncode == 2 and "held by a daemon" in refused.stderr
    finally:
        daemon.stop_daemon()
    let_in = _run(path, "pull")
    assert let_in.returncode == 1 and "held by" not in let_in.stderr, "once the daemon stops, it runs"
    store.close()


def test_on_sqlite_two_commands_exclude_each_other_and_a_daemon_waits_for_neither(tmp_path: Path) -> None:
    path, store = _store(tmp_path)
    with exclusive_run(store, TTL, BEAT, ["acme-jira"], "sync"):
        refused = _run(path, "pull", "--tracker", "cards")
        assert refused.returncode == 2
        assert "is held by `bridge sync`" in refused.stderr
        daemon = LeaseManager(store, ttl=TTL)
        with pytest.raises(Exception, match="one daemon at a time"):
            daemon.start_daemon(wait=False)
    daemon = LeaseManager(store, ttl=TTL, heartbeat=BEAT)
    assert daemon.start_daemon(wait=False) is not None, "the command released the store when it ended"
    daemon.stop_daemon()
    store.close()


def test_a_claim_left_by_a_killed_command_is_taken_over_at_once(tmp_path: Path) -> None:
    path, store = _store(tmp_path)
    killed = LeaseManager(store, _dead_holder(), ttl=TTL)
    assert killed.claim(DAEMON_LEASE) is not None  # then SIGKILL: it never releases
    again = _run(path, "pull")
    assert again.returncode == 1 and "held by" not in again.stderr, again.stderr
    with store.read() as conn:
        from bridge.daemon.leases import lease_states

        (state,) = [s for s in lease_states(conn) if s.name == DAEMON_LEASE]
    assert state.holder is None and state.token == 2, "taken over, then released"
    store.close()


@pytest.mark.postgres
def test_on_postgresql_a_command_claims_each_trackers_lease(tmp_path: Path, pg_database_url: str) -> None:
    path, store = _store(tmp_path, pg_database_url)
    replica = LeaseManager(store, "another-host:1:abcd", ttl=TTL)
    lease = replica.claim("cards")
    assert lease is not None
    refused = _run(path, "sync", url=pg_database_url)
    assert refused.returncode == 2, refused.stderr
    assert "tracker cards is held by a daemon (holder another-host:1:abcd" in refused.stderr
    mine = _run(path, "pull", "--tracker", "acme-jira", url=pg_database_url)
    assert mine.returncode == 1 and "held by" not in mine.stderr, "another tracker is free"
    replica.finish(lease, ok=True)
    assert "held by" not in _run(path, "sync", url=pg_database_url).stderr
    with exclusive_run(store, TTL, BEAT, ["cards"], "sync") as guard:
        with store.write() as conn:
            guard(conn)  # the fencing check a stored page runs
        assert replica.claim("cards") is None, "a replica skips the tracker while the command holds it"
    assert replica.claim("cards") is not None
    store.close()


@pytest.mark.postgres
def test_on_postgresql_a_command_claims_a_lease_whose_cycle_is_not_due(pg_database_url: str) -> None:
    store = Store(pg_database_url)
    store.upgrade()
    hourly = timedelta(hours=1)
    replica = LeaseManager(store, "replica-a:1:abcd", ttl=TTL)
    cycle = replica.claim("cards", due_every=hourly)
    assert cycle is not None and replica.finish(cycle, ok=True)
    other = LeaseManager(store, "replica-b:2:ef01", ttl=TTL)
    assert other.claim("cards", due_every=hourly) is None, "a cycle just finished: the next is not due"
    with exclusive_run(store, TTL, BEAT, ["cards"], "sync") as guard:
        state = other.state("cards")
        assert state is not None and state.holder is not None and state.holder.endswith(":bridge-sync")
        assert state.token == cycle.token + 1, "the command claimed it, due or not, with a new fencing token"
        with store.write() as conn:
            guard(conn)
        assert other.claim("cards") is None and replica.claim("cards") is None, "no replica while it runs"
    state = other.state("cards")
    assert state is not None and state.holder is None, "released when the command ends"
    store.close()
