"""Leases between replicas: real concurrency on PostgreSQL, one daemon at a time on SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bridge.daemon.leases import (
    DAEMON_LEASE,
    DaemonAlreadyRunning,
    Heartbeat,
    Lease,
    LeaseLost,
    LeaseManager,
    fenced,
    lease_states,
)
from bridge.store import Store
from bridge.store.models import TeamRow

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
TRACKERS = [f"t{i}" for i in range(8)]
TEAM = TeamRow.__table__  # type: ignore[attr-defined]


@pytest.fixture
def pg(pg_database_url: str) -> Iterator[str]:
    store = Store(pg_database_url)
    store.upgrade()
    store.close()
    yield pg_database_url


@pytest.fixture
def stores(pg: str) -> Iterator[list[Store]]:
    """Three stores on one database: three replicas' connection pools."""
    opened = [Store(pg) for _ in range(3)]
    yield opened
    for store in opened:
        store.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    store = Store(sqlite_url)
    store.upgrade()
    yield store
    store.close()


def _team_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(TEAM)).scalar_one())


def _write_team(conn: object, remote_id: str) -> None:
    conn.execute(insert(TEAM).values(source="t0", remote_id=remote_id, name=remote_id, synced_at=T0))  # type: ignore[attr-defined]


# ---- PostgreSQL: racing replicas ----------------------------------------------------------------------


def _race(managers: list[LeaseManager], now: datetime) -> dict[str, list[tuple[str, int]]]:
    """Every manager claims every tracker at once (one thread each); who got what."""
    barrier = threading.Barrier(len(managers))
    won: dict[str, list[tuple[str, int]]] = {name: [] for name in TRACKERS}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def replica(manager: LeaseManager) -> None:
        try:
            barrier.wait(timeout=10)
            for name in TRACKERS:
                lease = manager.claim(name, now)
                if lease is not None:
                    with lock:
                        won[name].append((manager.holder, lease.token))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors, errors
    return won


@pytest.mark.postgres
def test_racing_replicas_each_tracker_claimed_exactly_once(stores: list[Store]) -> None:
    managers = [LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores)]
    # Rows missing: the inserts race (ON CONFLICT DO NOTHING).
    first = _race(managers, T0)
    assert all(len(winners) == 1 for winners in first.values()), first
    assert {token for winners in first.values() for _, token in winners} == {1}
    # Held rows go to nobody else. (Its holder may claim one again, starting a new tenure, unless
    # another replica is looking at the row at that instant: SKIP LOCKED then says "not now".)
    again = _race(managers, T0 + timedelta(seconds=1))
    for name, winners in again.items():
        assert winners in ([], [(first[name][0][0], 2)]), again
    tokens = {name: (winners or first[name])[0][1] for name, winners in again.items()}
    # Released rows race through FOR UPDATE SKIP LOCKED; each token moves on.
    for manager in managers:
        manager.release_all(T0 + timedelta(seconds=2))
    second = _race(managers, T0 + timedelta(seconds=3))
    assert all(len(winners) == 1 for winners in second.values()), second
    assert all(second[name][0][1] == tokens[name] + 1 for name in TRACKERS), second
    # Expired rows race too.
    third = _race(managers, T0 + timedelta(seconds=3) + TTL)
    assert all(len(winners) == 1 for winners in third.values()), third
    assert all(third[name][0][1] == tokens[name] + 2 for name in TRACKERS), third


CLAIMER = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timedelta, UTC
    from bridge.daemon.leases import LeaseManager
    from bridge.store import Store

    url, holder, trackers = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    store = Store(url)
    manager = LeaseManager(store, holder, timedelta(seconds=30))
    store.ping()
    print("ready", flush=True)
    sys.stdin.readline()
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    won = {}
    for name in trackers:
        lease = manager.claim(name, now)
        if lease is not None:
            won[name] = lease.token
    print(json.dumps(won))
    store.close()
    """
)


@pytest.mark.postgres
def test_racing_processes_each_tracker_claimed_exactly_once(pg: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, pg, f"proc-{i}", ",".join(TRACKERS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()  # type: ignore[union-attr]
    for proc in procs:  # all connected: go
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    counts = Counter(name for won in results for name in won)
    assert counts == Counter(TRACKERS), results
    store = Store(pg)
    try:
        with store.read() as conn:
            states = {state.name: state for state in lease_states(conn)}
    finally:
        store.close()
    for i, won in enumerate(results):
        for name in won:
            assert states[name].holder == f"proc-{i}"
            assert states[name].token == 1


@pytest.mark.postgres
def test_expiry_takeover_and_growing_tokens(stores: list[Store]) -> None:
    a, b, c = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    lease_a = a.claim("t0", T0)
    assert lease_a is not None and lease_a.token == 1 and lease_a.expires_at == T0 + TTL
    assert b.claim("t0", T0 + TTL - timedelta(seconds=1)) is None
    lease_b = b.claim("t0", T0 + TTL)
    assert lease_b is not None and lease_b.token == 2 and lease_b.holder == "replica-1"
    # The old holder finds out on renewal, and cannot release what is no longer its own.
    with pytest.raises(LeaseLost, match="replica-1 claimed it since"):
        a.renew(lease_a, T0 + TTL + timedelta(seconds=1))
    assert a.release(lease_a) is False
    assert b.state("t0").holder == "replica-1"  # type: ignore[union-attr]
    # Renewal keeps it, release frees it at once, and a later claim never reuses a token.
    lease_b = b.renew(lease_b, T0 + TTL + timedelta(seconds=10))
    assert lease_b.expires_at == T0 + 2 * TTL + timedelta(seconds=10)
    assert c.claim("t0", T0 + 2 * TTL) is None
    assert b.release(lease_b, T0 + 2 * TTL)
    lease_c = c.claim("t0", T0 + 2 * TTL)
    assert lease_c is not None and lease_c.token == 3
    # Claiming one's own lease again starts a new tenure: the earlier Lease is superseded.
    again = c.claim("t0", T0 + 2 * TTL + timedelta(seconds=1))
    assert again is not None and again.token == 4
    with pytest.raises(LeaseLost, match="this replica again"):
        c.renew(lease_c, T0 + 2 * TTL + timedelta(seconds=2))
    # An expired lease nobody took is lost too: renew refuses it.
    with pytest.raises(LeaseLost, match="expired"):
        c.renew(again, T0 + 4 * TTL)


@pytest.mark.postgres
def test_stale_holder_cannot_commit(stores: list[Store]) -> None:
    a, b, _ = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    lease_a = a.claim("t0", T0)
    assert lease_a is not None
    with a.store.write() as conn:
        a.fenced(conn, lease_a, T0 + timedelta(seconds=5))
        _write_team(conn, "committed")
    assert b.claim("t0", T0 + TTL + timedelta(seconds=1)) is not None
    # A paused replica wakes up and tries to commit its cycle's results: refused, nothing lands.
    with pytest.raises(LeaseLost, match="replica-1 claimed it since"), a.store.write() as conn:
        _write_team(conn, "stale")
        a.fenced(conn, lease_a, T0 + timedelta(seconds=10))
    assert _team_count(a.store) == 1


@pytest.mark.postgres
def test_expired_lease_cannot_commit_even_untaken(stores: list[Store]) -> None:
    a = LeaseManager(stores[0], "replica-0", TTL)
    lease = a.claim("t0", T0)
    assert lease is not None
    with pytest.raises(LeaseLost, match="expired"), a.store.write() as conn:
        _write_team(conn, "late")
        fenced(conn, lease, T0 + TTL)
    assert _team_count(a.store) == 0


def _in_thread(fn: object, timeout: float = 5.0) -> object:
    """Run `fn()` in a thread; fail when it does not return within `timeout` (it blocked on a lock)."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(fn())  # type: ignore[operator]
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked"
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


@pytest.mark.postgres
def test_a_fenced_commit_keeps_claimers_out_but_not_its_heartbeat(stores: list[Store]) -> None:
    a, b, _ = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    lease = a.claim("t0", T0)
    assert lease is not None
    late = T0 + TTL + timedelta(seconds=5)
    with a.store.write() as conn:
        a.fenced(conn, lease, T0 + TTL - timedelta(seconds=1))
        # While the commit is in flight, a claimer skips the row (does not wait, does not take it) ...
        assert _in_thread(lambda: b.claim("t0", late)) is None
        # ... and the holder's heartbeat still renews it from its own connection.
        renewed = _in_thread(lambda: a.renew(lease, T0 + TTL - timedelta(seconds=1)))
        assert isinstance(renewed, Lease) and renewed.expires_at == T0 + 2 * TTL - timedelta(seconds=1)
        _write_team(conn, "in-flight")
    assert _team_count(a.store) == 1
    assert b.claim("t0", late) is None  # renewed: still a's
    assert b.claim("t0", T0 + 2 * TTL) is not None


@pytest.mark.postgres
def test_claim_any_steals_the_first_free_tracker(stores: list[Store]) -> None:
    a, b, _ = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    assert a.claim("t0", T0) is not None
    assert a.claim("t1", T0) is not None
    lease = b.claim_any(["t0", "t1", "t2", "t3"], T0)
    assert lease is not None and lease.tracker == "t2"
    assert b.claim_any(["t0", "t1", "t2"], T0) is not None  # its own t2 again
    assert LeaseManager(stores[2], "replica-2", TTL).claim_any(["t0", "t1", "t2"], T0) is None


@pytest.mark.postgres
def test_due_every_counts_from_the_start_of_the_last_finished_cycle(stores: list[Store]) -> None:
    a, b, _ = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    every = timedelta(minutes=10)
    lease = a.claim("t0", T0, due_every=every)
    assert lease is not None  # never ran: due
    assert a.finish(lease, T0 + timedelta(minutes=2), ok=True)
    state = a.state("t0")
    assert state is not None and state.succeeded is True and state.finished_at == T0 + timedelta(minutes=2)
    assert not state.running and state.holder is None
    assert b.claim("t0", T0 + timedelta(minutes=5), due_every=every) is None  # not due yet
    assert (
        b.claim("t0", T0 + timedelta(minutes=9, seconds=30), due_every=every) is not None
    )  # within tolerance
    # That cycle's replica dies: once its lease expires the tracker is due again at once.
    assert a.claim("t0", T0 + timedelta(minutes=9, seconds=31) + TTL, due_every=every) is not None


@pytest.mark.postgres
def test_heartbeat_keeps_the_lease_past_its_ttl_and_stops_promptly(stores: list[Store]) -> None:
    ttl = timedelta(seconds=0.4)
    a = LeaseManager(stores[0], "replica-0", ttl, heartbeat=timedelta(seconds=0.1))
    b = LeaseManager(stores[1], "replica-1", ttl, heartbeat=timedelta(seconds=0.1))
    lease = a.claim("t0")
    assert lease is not None
    with a.heartbeat(lease) as held:
        time.sleep(0.8)
        assert b.claim("t0") is None
        assert held.lease.expires_at > lease.expires_at + timedelta(seconds=0.3)
        with a.store.write() as conn:
            held.check(conn)
        started = time.monotonic()
    assert time.monotonic() - started < 0.5
    assert not held.heartbeat.running
    time.sleep(0.5)
    assert b.claim("t0") is not None


@pytest.mark.postgres
def _claim_soon(manager: LeaseManager, tracker: str, at: datetime) -> object | None:
    """`manager.claim(tracker, at)`, tried for up to two seconds."""
    deadline = time.monotonic() + 2
    while True:
        claimed = manager.claim(tracker, at)
        if claimed is not None or time.monotonic() > deadline:
            return claimed
        time.sleep(0.02)


def test_heartbeat_flags_a_lease_lost_to_a_takeover(stores: list[Store]) -> None:
    a = LeaseManager(stores[0], "replica-0", TTL, heartbeat=timedelta(seconds=0.05))
    b = LeaseManager(stores[1], "replica-1", TTL)
    lease = a.claim("t0")
    other = a.claim("t1")
    assert lease is not None and other is not None
    lost: list[LeaseLost] = []
    flagged = threading.Event()

    def on_lost(exc: LeaseLost) -> None:
        lost.append(exc)
        flagged.set()

    beat = Heartbeat(a, on_lost=on_lost)
    beat.add(lease)
    beat.add(other)
    with beat:
        # a was cut off for two ttls; the claim skips the row while a's heartbeat holds it locked
        # (SKIP LOCKED), so it is tried again until a beat is not in the way
        assert _claim_soon(b, "t0", datetime.now(UTC) + 2 * TTL) is not None
        assert flagged.wait(3)
        assert beat.lost("t0") is lost[0] and beat.current("t0") is None
        with pytest.raises(LeaseLost):
            beat.check("t0")
        assert beat.lost("t1") is None and beat.current("t1") is not None
        started = time.monotonic()
    assert time.monotonic() - started < 0.5 and not beat.running


@pytest.mark.postgres
def test_start_daemon_on_postgresql_allows_replicas(stores: list[Store]) -> None:
    a, b, _ = (LeaseManager(store, f"replica-{i}", TTL) for i, store in enumerate(stores))
    assert a.start_daemon() is None and b.start_daemon() is None
    a.stop_daemon()
    b.stop_daemon()


# ---- SQLite: one daemon at a time ---------------------------------------------------------------------


def test_sqlite_refuses_a_second_daemon(sqlite_store: Store) -> None:
    first = LeaseManager(sqlite_store, ttl=timedelta(seconds=5), heartbeat=timedelta(seconds=1))
    second = LeaseManager(sqlite_store, ttl=timedelta(seconds=5))
    assert first.start_daemon() is not None
    try:
        with pytest.raises(DaemonAlreadyRunning) as refused:
            second.start_daemon()
        message = str(refused.value)
        assert message.startswith(
            f"the store is SQLite: one daemon at a time; another (holder {first.holder}, heartbeat "
        )
        assert "is running; use PostgreSQL for several replicas" in message
        assert "its process still runs on this host" in message
    finally:
        first.stop_daemon()
    # A clean stop releases the store at once.
    assert second.start_daemon() is not None
    second.stop_daemon()


def test_sqlite_accepts_a_daemon_once_the_dead_ones_claim_expires(sqlite_store: Store) -> None:
    ttl = timedelta(seconds=60)
    dead = LeaseManager(sqlite_store, "elsewhere:4242:cafe", ttl)
    killed_at = datetime.now(UTC) - timedelta(seconds=40)
    assert dead.claim(DAEMON_LEASE, killed_at) is not None  # then kill -9: no more heartbeats
    successor = LeaseManager(sqlite_store, ttl=ttl)
    with pytest.raises(DaemonAlreadyRunning, match=r"heartbeat 40s ago.*its claim lapses in 20s"):
        successor.start_daemon(killed_at + timedelta(seconds=40), wait=False)  # not the clock: a busy
        # machine can take a second between the claim above and this start
    lease = successor.start_daemon(killed_at + ttl, wait=False)
    assert lease is not None and lease.token == 2
    successor.stop_daemon()


def test_sqlite_waits_for_a_silent_daemon_but_not_a_beating_one(sqlite_store: Store) -> None:
    other_host = LeaseManager(
        sqlite_store, "elsewhere:4242:beef", timedelta(seconds=1), heartbeat=timedelta(seconds=0.1)
    )
    other_host.start_daemon()
    waiting = LeaseManager(sqlite_store, ttl=timedelta(seconds=1))
    started = time.monotonic()
    try:
        with pytest.raises(DaemonAlreadyRunning, match="its heartbeat moved"):
            waiting.start_daemon()
        assert time.monotonic() - started < 1.0
    finally:
        other_host._daemon.stop()  # type: ignore[union-attr]  # dies without releasing
    started = time.monotonic()
    assert waiting.start_daemon() is not None
    assert time.monotonic() - started < 1.5
    waiting.stop_daemon()


DAEMON = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    from bridge.daemon.leases import LeaseManager
    from bridge.store import Store

    manager = LeaseManager(Store(sys.argv[1]), ttl=timedelta(seconds=1), heartbeat=timedelta(seconds=0.2))
    manager.start_daemon()
    print(manager.holder, flush=True)
    time.sleep(60)
    """
)


def test_sqlite_restart_after_kill_9(sqlite_store: Store, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", DAEMON, sqlite_store.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        holder = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert holder.split(":")[1] == str(proc.pid), holder
        restarted = LeaseManager(sqlite_store, ttl=timedelta(seconds=1))
        with pytest.raises(DaemonAlreadyRunning, match="its process still runs on this host"):
            restarted.start_daemon()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    started = time.monotonic()
    lease = restarted.start_daemon()
    waited = time.monotonic() - started
    assert lease is not None and lease.token == 2
    assert waited < 1.5
    restarted.stop_daemon()


# ---- what the bridge_lease_held gauge hears ---------------------------------------------------------------


def test_on_held_hears_claims_finishes_losses_and_shutdown_but_not_the_daemon_row(
    sqlite_store: Store,
) -> None:
    heard: list[tuple[str, bool]] = []
    a = LeaseManager(
        sqlite_store, "replica-0", TTL, on_held=lambda tracker, held: heard.append((tracker, held))
    )
    b = LeaseManager(sqlite_store, "replica-1", TTL)
    first = a.claim("t0", T0)
    again = a.claim("t0", T0 + timedelta(seconds=1))
    assert first is not None and again is not None and a.held() == {"t0"}
    assert heard == [("t0", True), ("t0", True)]
    assert a.release(first) is False and heard[-1] == ("t0", True), "a superseded lease lets go of nothing"
    assert a.finish(again, T0 + timedelta(seconds=2), ok=True)
    assert heard[-1] == ("t0", False) and a.held() == set()
    # A heartbeat that finds the lease taken over reports it lost.
    lease = a.claim("t1", T0)
    assert lease is not None and b.claim("t1", T0 + 2 * TTL) is not None
    beat = Heartbeat(a)
    beat.add(lease)
    beat.beat(T0 + 2 * TTL + timedelta(seconds=1))
    assert beat.lost("t1") is not None and heard[-2:] == [("t1", True), ("t1", False)]
    # Shutdown releases everything; the SQLite daemon row is no tracker and is never reported.
    assert a.claim("t2", T0 + 3 * TTL) is not None and a.claim(DAEMON_LEASE, T0 + 3 * TTL) is not None
    assert a.release_all(T0 + 3 * TTL) == 2
    assert heard[-2:] == [("t2", True), ("t2", False)] and all(t != DAEMON_LEASE for t, _ in heard)
