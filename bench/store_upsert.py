"""Upsert 100,000 tasks and 1,000,000 status changes into a fresh store; print JSON with rows/s.

    python bench/store_upsert.py                      # SQLite (WAL) in a temporary folder
    python bench/store_upsert.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/store_upsert.py --tasks 10000 --changes 100000   # a quicker run

Three passes are timed: the first load (all inserts), a re-sync of identical rows (all unchanged,
nothing written) and a re-sync where 10% of the tasks changed. Rows are built before the clock starts,
so the figures are the store's, not the generator's. Target: 30,000 rows/s or more on SQLite.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from bridge.store import Store, upsert
from bridge.store.models import StatusChangeRow, TaskRow

CATEGORIES = ("todo", "in_progress", "waiting", "done")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_tasks(count: int, rng: random.Random, synced: datetime) -> list[dict[str, Any]]:
    return [
        {
            "source": "bench-jira",
            "remote_id": str(100000 + n),
            "key": f"BEN-{n}",
            "title": f"Task {n}: make the checkout remember the card",
            "milestone_id": str(n // 50),
            "team": f"team-{n % 7}",
            "work_type": ("backend", "frontend", "qa", "design")[n % 4],
            "raw_status": str(rng.choice((10000, 3, 10002, 10001))),
            "category": rng.choice(CATEGORIES),
            "created": T0 + timedelta(minutes=n),
            "updated": T0 + timedelta(minutes=n, hours=5),
            "started": T0 + timedelta(minutes=n, hours=1),
            "done": None,
            "url": f"https://bench.example.com/browse/BEN-{n}",
            "labels": ["backend", "mb-bottleneck"] if n % 3 == 0 else [],
            "deleted": False,
            "synced_at": synced,
        }
        for n in range(count)
    ]


def make_changes(count: int, tasks: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        task = n % tasks
        step = n // tasks
        rows.append(
            {
                "source": "bench-jira",
                "remote_id": f"{n + 500000}:0",
                "item_id": str(100000 + task),
                "at": T0 + timedelta(minutes=task, hours=step),
                "from_status": "10000" if step == 0 else "3",
                "to_status": "3",
                "from_category": "todo" if step == 0 else rng.choice(CATEGORIES),
                "to_category": rng.choice(CATEGORIES),
            }
        )
    return rows


def timed(store: Store, table: Table, rows: list[dict[str, Any]]) -> tuple[float, int]:
    started = time.perf_counter()
    with store.write() as conn:
        written = upsert(conn, table, rows)
    return time.perf_counter() - started, written


def run(url: str, tasks: int, changes: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    task_rows = make_tasks(tasks, rng, T0)
    change_rows = make_changes(changes, tasks, rng)
    store = Store(url)
    store.upgrade()
    task_table: Table = TaskRow.__table__  # type: ignore[attr-defined]
    change_table: Table = StatusChangeRow.__table__  # type: ignore[attr-defined]
    try:
        t_tasks, w_tasks = timed(store, task_table, task_rows)
        t_changes, w_changes = timed(store, change_table, change_rows)
        later = T0 + timedelta(days=1)
        same = [{**row, "synced_at": later} for row in task_rows]
        t_same, w_same = timed(store, task_table, same)
        edited = [
            {**row, "synced_at": later, "title": row["title"] + " (edited)"} if i % 10 == 0 else row
            for i, row in enumerate(same)
        ]
        t_edit, w_edit = timed(store, task_table, edited)
    finally:
        store.close()
    total_rows = tasks + changes
    return {
        "benchmark": "store_upsert",
        "dialect": url.split(":", 1)[0],
        "python": platform.python_version(),
        "tasks": tasks,
        "status_changes": changes,
        "first_load": {
            "seconds": round(t_tasks + t_changes, 3),
            "rows_per_s": round(total_rows / (t_tasks + t_changes)),
            "tasks_rows_per_s": round(tasks / t_tasks),
            "status_changes_rows_per_s": round(changes / t_changes),
            "rows_written": w_tasks + w_changes,
        },
        "resync_unchanged": {
            "seconds": round(t_same, 3),
            "rows_per_s": round(tasks / t_same),
            "rows_written": w_same,
        },
        "resync_10pct_changed": {
            "seconds": round(t_edit, 3),
            "rows_per_s": round(tasks / t_edit),
            "rows_written": w_edit,
        },
        "target_rows_per_s": 30000,
        "meets_target": total_rows / (t_tasks + t_changes) >= 30000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: SQLite in a temporary folder)")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        result = run(url, args.tasks, args.changes, args.seed)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
