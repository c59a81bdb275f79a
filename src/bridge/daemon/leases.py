"""Leases: which replica runs which tracker's cycle, coordinated through the store alone.

Each tracker has one row in the `lease` table. A replica claims it in a short transaction
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so a row another replica is busy with is skipped,
never waited for) when it is free, expired, or already its own, and the claim bumps the row's fencing
token. While the cycle runs, a heartbeat pushes `expires_at` forward; when the holder dies, its lease
expires after `ttl` and another replica takes over.

Every transaction that stores a cycle's results calls `fenced(conn, lease)` first: it locks the row
`FOR KEY SHARE` and raises `LeaseLost` when the token moved on or the lease expired. The lock keeps any
claimer out until that transaction ends (a claim takes `FOR UPDATE`, which conflicts with it) while the
holder's own heartbeat (`FOR NO KEY UPDATE`, which does not) can still renew. So a replica that was
paused or cut off past its lease cannot commit over the one that took over.

Times come from the replica's clock (or the `now` passed in); replicas' clocks must agree to well
within `ttl`, as NTP keeps them.

SQLite serves one daemon at a time: `LeaseManager.start_daemon` claims the `__daemon__` row and keeps
it alive with a heartbeat; a second daemon is refused with a message naming the first. After a crash
(`kill -9`) the dead daemon's claim expires `ttl` after its last heartbeat: a new daemon waits up to
that long when the old holder looks dead (its process is gone from this host, or its heartbeat stops),
and is refused at once when the old holder's process still runs on this host.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from bridge.durations import format_duration
from bridge.errors import BridgeError, StoreError, StoreLost, UserError
from bridge.store.engine import Store
from bridge.store.models import LeaseRow

log = logging.getLogger(__name__)

LEASES: Table = LeaseRow.__table__  # type: ignore[attr-defined]
DAEMON_LEASE = "__daemon__"
"""The row a daemon on SQLite holds while it runs (tracker names start with a letter or digit)."""
DUE_TOLERANCE = 0.1
"""A cycle counts as due once 90% of `due_every` has passed since the previous one started, so timer
drift and jitter between replicas do not skip a whole interval."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_holder_id() -> str:
    """A replica's identity in the lease table: `host:pid:random`, unique even across restarts."""
    host = (socket.gethostname() or "localhost")[:200]
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on one tracker: valid while the row still holds this holder and token, until `expires_at`."""

    tracker: str
    holder: str
    token: int
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One row of the lease table as stored, for status pages and messages."""

    name: str
    holder: str | None
    token: int
    acquired_at: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    finished_at: datetime | None
    succeeded: bool | None

    def held(self, now: datetime) -> bool:
        """Someone holds it at `now`."""
        return self.holder is not None and self.expires_at is not None and self.expires_at > now

    @property
    def running(self) -> bool:
        """A cycle was started under the last claim and not finished (it runs, or its replica died)."""
        return self.acquired_at is not None and (
            self.finished_at is None or self.finished_at < self.acquired_at
        )


class LeaseLost(BridgeError):
    """This replica no longer holds the lease: another took over, it expired, or it was released."""

    def __init__(self, lease: Lease, reason: str) -> None:
        self.lease = lease
        self.reason = reason
        super().__init__(f"lease on {lease.tracker} (token {lease.token}) lost: {reason}")


class DaemonAlreadyRunning(UserError):
    """A second daemon on a SQLite store."""

    def __init__(self, state: LeaseState, now: datetime, detail: str = "") -> None:
        self.state = state
        heartbeat = _age(now, state.heartbeat_at)
        message = (
            f"the store is SQLite: one daemon at a time; another (holder {state.holder}, heartbeat "
            f"{heartbeat} ago) is running; use PostgreSQL for several replicas"
        )
        if detail:
            message += f" ({detail})"
        super().__init__(message)


def _age(now: datetime, then: datetime | None) -> str:
    """How long before `now` `then` was, as `3.2s` or `2m5s`."""
    if then is None:
        return "never"
    return _span(now - then)


def _span(delta: timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    return f"{seconds:.1f}s" if seconds < 10 else format_duration(timedelta(seconds=round(seconds)))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: leases keep aware UTC only")
    return value.astimezone(UTC)


def _state(row: Any) -> LeaseState:
    return LeaseState(
        name=row.name,
        holder=row.holder,
        token=row.token,
        acquired_at=row.acquired_at,
        heartbeat_at=row.heartbeat_at,
        expires_at=row.expires_at,
        finished_at=row.finished_at,
        succeeded=row.succeeded,
    )


def _row(conn: Connection, name: str, lock: str | None) -> LeaseState | None:
    """The row, locked as asked: "claim" (FOR UPDATE SKIP LOCKED), "renew" (FOR NO KEY UPDATE),
    "fence" (FOR KEY SHARE), or None. SQLite ignores the locks: its write transaction holds the database."""
    stmt = select(LEASES).where(LEASES.c.name == name)
    if lock == "claim":
        stmt = stmt.with_for_update(skip_locked=True)
    elif lock == "renew":
        stmt = stmt.with_for_update(key_share=True)
    elif lock == "fence":
        stmt = stmt.with_for_update(read=True, key_share=True)
    row = conn.execute(stmt).one_or_none()
    return None if row is None else _state(row)


def _lost_reason(state: LeaseState | None, lease: Lease, now: datetime) -> str | None:
    if state is None:
        return "its row is gone"
    if state.token != lease.token:
        if state.holder is None:
            return f"it was claimed again (token {state.token}) and released"
        who = "this replica again" if state.holder == lease.holder else state.holder
        return f"{who} claimed it since (token {state.token})"
    if state.holder is None:
        return "it was released"
    if state.holder != lease.holder:
        return f"it is held by {state.holder}"
    if state.expires_at is None or state.expires_at <= now:
        return f"it expired {_age(now, state.expires_at)} ago"
    return None


def fenced(conn: Connection, lease: Lease, now: datetime | None = None) -> None:
    """Raise `LeaseLost` unless `lease` still holds; call inside the transaction that commits results.

    On PostgreSQL the row stays locked `FOR KEY SHARE` until that transaction ends, so nobody can take
    the lease over between this check and the commit (the holder's heartbeat still renews it). On SQLite
    call it inside `Store.write()`, whose `BEGIN IMMEDIATE` holds the database for the same effect.
    """
    at = _aware(now) if now is not None else utc_now()
    reason = _lost_reason(_row(conn, lease.tracker, "fence"), lease, at)
    if reason is not None:
        raise LeaseLost(lease, reason)


def lease_states(conn: Connection) -> list[LeaseState]:
    """Every lease row, by name (`__daemon__` included)."""
    return [_state(row) for row in conn.execute(select(LEASES).order_by(LEASES.c.name))]


class LeaseManager:
    """One replica's side of the lease table.

    `holder` names the replica (`new_holder_id()` when omitted); `ttl` is how long a claim or a renewal
    lasts; `heartbeat` how often `Heartbeat`s renew (a quarter of `ttl` when omitted). `clock` stands in
    for the replica's clock wherever no `now` is passed. `on_held(tracker, held)` hears each time this
    replica starts or stops holding a tracker's lease (claimed; finished, released, or found lost), for
    the `bridge_lease_held` gauge; the SQLite daemon row is not a tracker and is not reported.
    """

    def __init__(
        self,
        store: Store,
        holder: str | None = None,
        ttl: timedelta = timedelta(seconds=60),
        *,
        heartbeat: timedelta | None = None,
        clock: Clock | None = None,
        on_held: Callable[[str, bool], None] | None = None,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease's ttl must be positive, not {ttl}")
        heartbeat = heartbeat if heartbeat is not None else ttl / 4
        if not timedelta(0) < heartbeat < ttl:
            raise ValueError(f"the heartbeat ({heartbeat}) must be positive and shorter than the ttl ({ttl})")
        self.store = store
        self.holder = holder or new_holder_id()
        if len(self.holder) > 255:
            raise ValueError("a lease holder's name is at most 255 characters")
        self.ttl = ttl
        self.heartbeat_every = heartbeat
        self.clock: Clock = clock or utc_now
        self.on_held = on_held
        self._held: dict[str, int] = {}
        """The token of each tracker's lease this replica holds."""
        self._held_lock = threading.Lock()
        self._daemon: Heartbeat | None = None

    def __repr__(self) -> str:
        return f"LeaseManager({self.holder!r}, ttl={self.ttl})"

    def now(self, now: datetime | None = None) -> datetime:
        return _aware(now) if now is not None else _aware(self.clock())

    def held(self) -> set[str]:
        """The trackers whose lease this replica holds, as far as it knows (a lease that lapsed
        unnoticed stays until a heartbeat or a release finds out)."""
        with self._held_lock:
            return set(self._held)

    def _holding(self, lease: Lease) -> None:
        """This replica now holds `lease`: note it and tell `on_held`."""
        if lease.tracker == DAEMON_LEASE:
            return
        with self._held_lock:
            self._held[lease.tracker] = lease.token
        self._tell(lease.tracker, True)

    def _let_go_of(self, lease: Lease) -> None:
        """This replica no longer holds `lease` (released, finished, found lost): forget it and tell
        `on_held`, unless a newer claim of the same tracker replaced it meanwhile."""
        with self._held_lock:
            if self._held.get(lease.tracker) != lease.token:
                return
            del self._held[lease.tracker]
        self._tell(lease.tracker, False)

    def _tell(self, tracker: str, held: bool) -> None:
        if self.on_held is None:
            return
        try:
            self.on_held(tracker, held)
        except Exception:
            log.exception("%s: a lease listener failed", tracker)

    # ---- claiming ---------------------------------------------------------------------------------------

    def claim(
        self, tracker: str, now: datetime | None = None, *, due_every: timedelta | None = None
    ) -> Lease | None:
        """Claim `tracker`'s lease, or None when another replica holds it or is busy with its row at
        this instant (SKIP LOCKED never waits: the next tick tries again).

        The lease is taken when free, expired, or already this replica's; each claim bumps the fencing
        token, so an earlier `Lease` of the same tracker is superseded. With `due_every`, a tracker
        whose previous cycle (by any replica) started less than `due_every` ago and has finished is not
        due: None. A cycle that never finished (its replica died) leaves the tracker due at once.
        """
        at = self.now(now)
        with self.store.write() as conn:
            lease = self._claim(conn, tracker, at, due_every)
        if lease is not None:
            self._holding(lease)
        return lease

    def claim_any(
        self, trackers: Iterable[str], now: datetime | None = None, *, due_every: timedelta | None = None
    ) -> Lease | None:
        """The first of `trackers` this replica can claim (in their order), for work stealing; or None."""
        for tracker in trackers:
            lease = self.claim(tracker, now, due_every=due_every)
            if lease is not None:
                return lease
        return None

    def _claim(
        self, conn: Connection, tracker: str, at: datetime, due_every: timedelta | None
    ) -> Lease | None:
        state = _row(conn, tracker, "claim")
        expires = at + self.ttl
        values = {"holder": self.holder, "acquired_at": at, "heartbeat_at": at, "expires_at": expires}
        if state is None:
            # Missing, or locked by another replica's claim or commit (SKIP LOCKED hides it): insert, and
            # leave it if the row exists after all. Only one concurrent insert can win.
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(LEASES)
            stmt = (
                insert.values(name=tracker, token=1, **values)
                .on_conflict_do_nothing(index_elements=[LEASES.c.name])
                .returning(LEASES.c.token)
            )
            token = conn.execute(stmt).scalar_one_or_none()
            if token is None:
                return None
        else:
            if state.holder not in (None, self.holder) and state.held(at):
                return None
            if due_every is not None and not _due(state, at, due_every):
                return None
            token = state.token + 1
            conn.execute(update(LEASES).where(LEASES.c.name == tracker).values(token=token, **values))
            if state.holder not in (None, self.holder):
                log.info(
                    "%s: took over the lease from %s, whose lease expired %s ago",
                    tracker,
                    state.holder,
                    _age(at, state.expires_at),
                )
        log.debug("%s: lease claimed by %s, token %d", tracker, self.holder, token)
        return Lease(tracker, self.holder, token, at, expires)

    def claim_from_gone(self, tracker: str, now: datetime | None = None) -> Lease | None:
        """Take `tracker`'s lease at once from a holder whose process is gone from this host (killed):
        it can no longer write, so there is nothing to wait for. None when the holder still runs, runs
        on another host (its claim must lapse first), or the row is busy."""
        at = self.now(now)
        with self.store.write() as conn:
            state = _row(conn, tracker, "claim")
            if state is None or not state.held(at) or _process_alive(state.holder) is not False:
                return None
            token, expires = state.token + 1, at + self.ttl
            conn.execute(
                update(LEASES)
                .where(LEASES.c.name == tracker, LEASES.c.token == state.token)
                .values(holder=self.holder, token=token, acquired_at=at, heartbeat_at=at, expires_at=expires)
            )
        log.info("%s: took over the lease from %s, whose process is gone", tracker, state.holder)
        lease = Lease(tracker, self.holder, token, at, expires)
        self._holding(lease)
        return lease

    # ---- holding ----------------------------------------------------------------------------------------

    def renew(self, lease: Lease, now: datetime | None = None) -> Lease:
        """Extend `lease` to `now + ttl`; `LeaseLost` when its holder or token moved on or it expired."""
        at = self.now(now)
        with self.store.write() as conn:
            state = _row(conn, lease.tracker, "renew")
            reason = _lost_reason(state, lease, at)
            if reason is not None:
                raise LeaseLost(lease, reason)
            assert state is not None and state.expires_at is not None
            expires = max(state.expires_at, at + self.ttl)
            conn.execute(
                update(LEASES)
                .where(LEASES.c.name == lease.tracker)
                .values(heartbeat_at=at, expires_at=expires)
            )
        return replace(lease, expires_at=expires)

    def fenced(self, conn: Connection, lease: Lease, now: datetime | None = None) -> None:
        """`fenced(conn, lease)` with this replica's clock."""
        fenced(conn, lease, self.now(now))

    def release(self, lease: Lease, now: datetime | None = None) -> bool:
        """Give the lease up so another replica can claim it at once. False when it was no longer ours."""
        return self._let_go(lease, self.now(now), {})

    def finish(self, lease: Lease, now: datetime | None = None, *, ok: bool) -> bool:
        """Release the lease after a cycle, recording when it ended and whether it succeeded (for
        `due_every`). False (and nothing recorded) when the lease was no longer ours."""
        at = self.now(now)
        return self._let_go(lease, at, {"finished_at": at, "succeeded": ok})

    def _let_go(self, lease: Lease, at: datetime, extra: dict[str, Any]) -> bool:
        self._let_go_of(lease)  # done with, even when the store cannot record it (it lapses then)
        with self.store.write() as conn:
            result = conn.execute(
                update(LEASES)
                .where(
                    LEASES.c.name == lease.tracker,
                    LEASES.c.holder == lease.holder,
                    LEASES.c.token == lease.token,
                )
                .values(holder=None, expires_at=at, **extra)
            )
        if result.rowcount != 1:
            log.info("%s: lease (token %d) was no longer ours to release", lease.tracker, lease.token)
            return False
        return True

    def release_all(self, now: datetime | None = None) -> int:
        """Release every lease this replica holds (at shutdown); returns how many."""
        at = self.now(now)
        with self._held_lock:
            held, self._held = self._held, {}
        for tracker in held:
            self._tell(tracker, False)
        with self.store.write() as conn:
            result = conn.execute(
                update(LEASES).where(LEASES.c.holder == self.holder).values(holder=None, expires_at=at)
            )
        return max(result.rowcount, 0)

    @contextmanager
    def heartbeat(self, lease: Lease, *, every: timedelta | None = None) -> Iterator[HeldLease]:
        """Renew `lease` in a thread while the block runs; the handle's `check(conn)` fences a transaction.

        Leaving the block stops the thread (it does not release the lease: see `finish`).
        """
        beat = Heartbeat(self, every or self.heartbeat_every, name=f"lease-heartbeat-{lease.tracker}")
        beat.add(lease)
        beat.start()
        try:
            yield HeldLease(beat, lease.tracker)
        finally:
            beat.stop()

    def state(self, tracker: str) -> LeaseState | None:
        with self.store.read() as conn:
            return _row(conn, tracker, None)

    def states(self) -> list[LeaseState]:
        with self.store.read() as conn:
            return lease_states(conn)

    # ---- one daemon on SQLite ---------------------------------------------------------------------------

    def start_daemon(
        self,
        now: datetime | None = None,
        *,
        wait: bool = True,
        stop: threading.Event | None = None,
        on_lost: Callable[[LeaseLost], None] | None = None,
    ) -> Lease | None:
        """On SQLite, make this the only daemon on the store, or raise `DaemonAlreadyRunning`.

        Claims the `__daemon__` row and renews it every `heartbeat` until `stop_daemon`. When another
        daemon holds it: refused at once if its process runs on this host, or if `wait` is False;
        otherwise (its process is gone, or it runs elsewhere) this waits for its claim to expire, at
        most `ttl` after its last heartbeat, and is refused if the heartbeat moves meanwhile. `stop`
        ends the wait (refused). `on_lost` hears if the heartbeat ever finds the claim lost (a write
        transaction that held the database past `ttl` let another daemon in): stop this one then.
        On PostgreSQL several replicas are welcome: None.
        """
        if self.store.dialect != "sqlite":
            return None
        if self._daemon is not None:
            raise RuntimeError("start_daemon was already called")
        lease = self._claim_daemon(self.now(now), wait=wait, stop=stop or threading.Event())
        beat = Heartbeat(
            self, self.heartbeat_every, name="lease-heartbeat-daemon", on_lost=on_lost or _daemon_lost
        )
        beat.add(lease)
        beat.start()
        self._daemon = beat
        return lease

    def stop_daemon(self, now: datetime | None = None) -> None:
        """Stop the daemon's heartbeat and release every lease this replica holds, so a successor (on
        SQLite) or the other replicas (on PostgreSQL) need not wait for them to expire."""
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        try:
            self.release_all(now)
        except StoreError as exc:
            log.warning("could not release this replica's leases (they expire within %s): %s", self.ttl, exc)

    def _claim_daemon(self, at: datetime, *, wait: bool, stop: threading.Event) -> Lease:
        seen: datetime | None = None
        while True:
            lease = self.claim(DAEMON_LEASE, at)
            if lease is not None:
                return lease
            state = self.state(DAEMON_LEASE)
            if state is None or not state.held(at) or state.expires_at is None:
                at = self.now()
                continue
            remaining = (state.expires_at - at).total_seconds()
            alive = _process_alive(state.holder)
            lapse = f"if it was killed, its claim lapses in {_span(state.expires_at - at)}"
            if alive:
                raise DaemonAlreadyRunning(state, at, "its process still runs on this host")
            if not wait:
                raise DaemonAlreadyRunning(state, at, lapse)
            if seen is not None and state.heartbeat_at != seen:
                raise DaemonAlreadyRunning(state, at, "its heartbeat moved while this one waited")
            if seen is None:
                why = "its process is gone" if alive is False else "it runs on another host"
                log.warning(
                    "another daemon (holder %s, heartbeat %s ago) holds the store and %s; waiting up to %s "
                    "for its claim to lapse",
                    state.holder,
                    _age(at, state.heartbeat_at),
                    why,
                    _span(state.expires_at - at),
                )
                seen = state.heartbeat_at
            step = min(remaining, self.heartbeat_every.total_seconds()) + 0.01
            if stop.wait(step):
                raise DaemonAlreadyRunning(state, self.now(), "stopped while waiting for its claim to lapse")
            at = self.now()


def _daemon_lost(exc: LeaseLost) -> None:
    log.error("%s: another daemon may now use this SQLite store; stop this one", exc)


def _process_alive(holder: str | None) -> bool | None:
    """Whether the holder's process runs on this host: True, False, or None when it is on another host
    (or the holder is not in `host:pid:...` form)."""
    if holder is None:
        return None
    parts = holder.split(":")
    if len(parts) < 3 or parts[0] != (socket.gethostname() or "localhost")[:200]:
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def _due(state: LeaseState, at: datetime, due_every: timedelta) -> bool:
    if state.acquired_at is None or state.running:
        return True
    return at - state.acquired_at >= due_every * (1 - DUE_TOLERANCE)


class Heartbeat:
    """A thread renewing a set of leases every `interval` until stopped.

    A lease that cannot be renewed because it was lost is dropped and flagged (`lost`, `check`,
    `on_lost`); one that cannot be renewed because the store is unreachable is tried again at the next
    beat (and lost if it expires meanwhile). `stop()` returns promptly: the wait between beats is an
    `Event`, and a beat in progress skips its remaining leases.
    """

    def __init__(
        self,
        manager: LeaseManager,
        interval: timedelta | None = None,
        *,
        on_lost: Callable[[LeaseLost], None] | None = None,
        name: str = "lease-heartbeat",
    ) -> None:
        self.manager = manager
        self.interval = interval or manager.heartbeat_every
        if self.interval <= timedelta(0):
            raise ValueError("a heartbeat's interval must be positive")
        self.on_lost = on_lost
        self.name = name
        self._leases: dict[str, Lease] = {}
        self._lost: dict[str, LeaseLost] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def add(self, lease: Lease) -> None:
        """Keep `lease` alive (replacing an earlier lease of the same tracker)."""
        with self._lock:
            self._leases[lease.tracker] = lease
            self._lost.pop(lease.tracker, None)

    def discard(self, tracker: str) -> Lease | None:
        """Stop renewing `tracker`'s lease; returns its latest renewal, if it was still kept."""
        with self._lock:
            self._lost.pop(tracker, None)
            return self._leases.pop(tracker, None)

    def current(self, tracker: str) -> Lease | None:
        """The latest renewal of `tracker`'s lease, or None when not kept (or lost)."""
        with self._lock:
            return self._leases.get(tracker)

    def lost(self, tracker: str) -> LeaseLost | None:
        with self._lock:
            return self._lost.get(tracker)

    def check(self, tracker: str) -> Lease:
        """The current lease; raises its `LeaseLost` when a beat found it lost."""
        with self._lock:
            if tracker in self._lost:
                raise self._lost[tracker]
            lease = self._leases.get(tracker)
        if lease is None:
            raise KeyError(f"no lease on {tracker} is kept by this heartbeat")
        return lease

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a heartbeat starts once")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop beating; True when the thread ended within `timeout` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        wait = self.interval.total_seconds()
        while not self._stop.wait(wait):
            self.beat()

    def beat(self, now: datetime | None = None) -> None:
        """Renew every kept lease once (the thread calls this every `interval`)."""
        with self._lock:
            leases = list(self._leases.values())
        for lease in leases:
            if self._stop.is_set():
                return
            try:
                renewed = self.manager.renew(lease, now)
            except LeaseLost as exc:
                with self._lock:
                    if self._leases.get(lease.tracker) != lease:
                        continue  # replaced or discarded meanwhile
                    del self._leases[lease.tracker]
                    self._lost[lease.tracker] = exc
                self.manager._let_go_of(lease)
                log.warning("%s", exc, extra={"tracker": lease.tracker})
                if self.on_lost is not None:
                    self.on_lost(exc)
            except (StoreError, SQLAlchemyError) as exc:
                log.warning(
                    "%s: could not renew the lease, trying again in %s: %s", lease.tracker, self.interval, exc
                )
            except Exception:
                log.exception("%s: renewing the lease failed", lease.tracker)
            else:
                with self._lock:
                    if self._leases.get(lease.tracker) == lease:
                        self._leases[lease.tracker] = renewed


@dataclass(frozen=True, slots=True)
class HeldLease:
    """One lease kept alive by a heartbeat, as a cycle sees it."""

    heartbeat: Heartbeat
    tracker: str

    @property
    def lease(self) -> Lease:
        """The latest renewal; raises `LeaseLost` once the heartbeat found it lost."""
        return self.heartbeat.check(self.tracker)

    def check(self, conn: Connection) -> None:
        """Fence the transaction on `conn` (see `fenced`); the `guard` a cycle runs in every commit."""
        self.heartbeat.manager.fenced(conn, self.lease)


# ---- one run at a time, daemon or command ----------------------------------------------------------------


class StoreBusy(UserError):
    """A command that writes to trackers found another bridge process doing so on the same store."""


def command_holder(command: str) -> str:
    """The lease holder of a `bridge COMMAND` run: `host:pid:random:bridge-COMMAND`, so a daemon refused
    by it, or `bridge status`, names what holds the store."""
    return f"{new_holder_id()}:bridge-{command}"


@contextmanager
def exclusive_run(
    store: Store, ttl: timedelta, heartbeat: timedelta, trackers: Iterable[str], command: str
) -> Iterator[Callable[[Connection], None]]:
    """Hold what a daemon would hold while a command (`sync`, `pull`, `purge`) works on `trackers`.

    On SQLite that is the store's daemon row: the command is refused while a daemon or another such
    command runs, and they are refused while it does. On PostgreSQL it is each tracker's lease, claimed
    whether or not a cycle is due: refused when a replica (or another command) is in a cycle of one of
    them. A claim left by a process that was killed on this host is taken over at once. Yields the guard
    to run in every transaction that stores results (fencing, as a daemon's cycle does); releases
    everything when the block ends.
    """
    manager = LeaseManager(store, command_holder(command), ttl=ttl, heartbeat=heartbeat)
    sqlite = store.dialect == "sqlite"
    names = [DAEMON_LEASE] if sqlite else list(dict.fromkeys(trackers))
    beat = Heartbeat(manager, heartbeat, name=f"lease-heartbeat-{command}")
    lost: StoreLost | None = None
    try:
        for name in names:
            lease = manager.claim(name) or manager.claim_from_gone(name)
            if lease is None:
                what = "the store (SQLite: one bridge process at a time)" if sqlite else f"tracker {name}"
                state = manager.state(name)
                raise StoreBusy(_busy_message(state, manager.now(), what) if state else f"{what} is busy")
            beat.add(lease)
        beat.start()

        def guard(conn: Connection) -> None:
            for name in names:
                manager.fenced(conn, beat.check(name))

        yield guard
    except StoreLost as exc:
        lost = exc
        raise
    finally:
        beat.stop()
        try:
            manager.release_all()
        except StoreError as exc:
            if lost is None:  # else the store's error, said once, is all there is to say
                log.warning("could not release this run's claims (they lapse within %s): %s", ttl, exc)


def _busy_message(state: LeaseState, now: datetime, what: str) -> str:
    command = (state.holder or "").partition(":bridge-")[2]
    role = f"`bridge {command}`" if command else "a daemon"
    message = (
        f"{what} is held by {role} (holder {state.holder}, heartbeat {_age(now, state.heartbeat_at)} ago)"
    )
    if _process_alive(state.holder) is False and state.expires_at is not None:
        return f"{message}; its process is gone, and its claim lapses in {_span(state.expires_at - now)}"
    return f"{message}; try again when it has finished"
