"""An SQLite store's connections put its file in WAL mode; a process that opens the store while another
switches it (the daemon starting while `bridge status` or a health check reads it) waits for that switch
instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from bridge.store import Store

HOLD_S = 0.5


def test_a_store_opened_while_another_process_writes_its_rollback_journal_file_waits(tmp_path: Path) -> None:
    # A file in rollback-journal mode (as a new store is, until its first connection switches it), and
    # another connection holding its write lock: switching to WAL rewrites the header, and SQLite fails
    # that at once, without the busy timeout. The store's connection waits until the lock is let go.
    path = tmp_path / "store.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    threading.Timer(HOLD_S, other.execute, ["COMMIT"]).start()
    store = Store(f"sqlite:///{path}", create=False)
    started = time.monotonic()
    try:
        store.ping()
        waited = time.monotonic() - started
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    finally:
        store.close()
        other.close()
    assert waited >= HOLD_S * 0.8, f"the store's connection did not wait for the lock ({waited:.3f} s)"
