"""A large organisation in PostgreSQL: the full report and a quiet cycle at a million tasks.

    python bench/scale.py                       # 1,000,000 tasks, 20,000 milestones, 10,000,000 changes
    python bench/scale.py --tasks 20000 --changes 200000     # the quick size (`run_all.py --quick`)
    python bench/scale.py --keep                # build once, measure again later (`--keep` again;
                                                # the stored analyses are dropped: a full report)

Needs the PostgreSQL server of `--admin-url` (default: the test server at 127.0.0.1:5432, user postgres).
1. A database `--database` (default `bridge_bench_scale`) is created afresh, migrated, and filled with
   the organisation of bench/analytics.py (fifty tasks a milestone, histories that wander through
   review and blocked before most tasks finish) by `COPY`, table by table in chunks: no pull, no
   upsert, so building a ten-million-row history takes minutes, not hours. Each task's flow facts are
   written with its history, as a pull writes them, so the report reads them instead of the history.
2. `bridge report --json` runs in its own process: seconds and peak RSS.
3. Quiet cycles run in their own process: `run_cycle` for the tracker the data belongs to, served by a
   Jira sandbox with nothing changed since the stored cursor (push off, so the cycle is the pull, the
   analysis and the plan). The first after the build also keeps every milestone's first forecast (a
   store that a daemon has been syncing has them already): it is shown as `first_cycle`; the figures
   measured are the next cycle's, ten minutes later, as a daemon's next quiet cycle would be: seconds,
   CPU seconds and the tracker's requests.
Prints JSON. Targets (issue "cost grows with change"): the report under 30 s and 3 GB; a quiet cycle
under 1 s. The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from analytics import NOW, PAGE_TASKS, SOURCE, STATUSES, Organisation
from bridge.domain import Dependency, Milestone, Task
from pull import SERVE

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "bridge_bench_scale"
TARGET = {"report_seconds": 30.0, "report_peak_rss_mb": 3072, "quiet_cycle_seconds": 1.0}
CYCLE_AT = NOW + timedelta(minutes=5)
"""The quiet cycle's clock: just after the generated history ends, as a daemon's next cycle would be."""
STATUS_IDS = {name: str(10_000 + i) for i, name in enumerate(STATUSES)}


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def fresh_database(admin_url: str, database: str) -> None:
    with _connect(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def drop_database(admin_url: str, database: str) -> None:
    with _connect(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def database_url(admin_url: str, database: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{database}"


def copy_rows(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """`COPY` rows into `table`; returns how many."""
    count = 0
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _item_rows(kind: type, items: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """A domain value's fields in order, then `synced_at` (the store's item tables: see `_ItemRows`)."""
    names = [f.name for f in fields(kind)]
    for item in items:
        values = [getattr(item, name) for name in names]
        yield (*(_copyable(v) for v in values), NOW)


def _copyable(value: Any) -> Any:
    """Labels as the store's JSON text, status categories as their text."""
    if isinstance(value, tuple | list):
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
    return value.value if isinstance(value, Enum) else value


def _columns(kind: type) -> list[str]:
    return [*(f.name for f in fields(kind)), "synced_at"]


def build(url: str, tasks: int, changes: int, seed: int) -> dict[str, Any]:
    """The organisation written by COPY, a chunk of tasks (with their histories) per transaction."""
    from bridge.flow_facts import FACTS_VERSION, facts_of, steps_of
    from bridge.store import Store
    from bridge.store.pages import CHANGE_COLUMNS, _status_change

    store = Store(url.replace("postgresql://", "postgresql+psycopg://", 1))
    store.upgrade()
    store.close()
    org = Organisation(tasks, changes, seed)
    started = time.perf_counter()
    written = {"milestones": 0, "tasks": 0, "status_changes": 0, "flow_facts": 0, "dependencies": 0}
    with _connect(url) as conn:
        conn.autocommit = False
        with conn.cursor() as cursor:
            milestones = (org.milestone(n) for n in range(org.milestones))
            written["milestones"] = copy_rows(
                cursor, "milestone", _columns(Milestone), _item_rows(Milestone, milestones)
            )
        conn.commit()
        for first in range(0, tasks, PAGE_TASKS * 8):
            built = [org.task(n) for n in range(first, min(tasks, first + PAGE_TASKS * 8))]
            with conn.cursor() as cursor:
                written["tasks"] += copy_rows(
                    cursor, "task", _columns(Task), _item_rows(Task, (t for t, _ in built))
                )
                history = (tuple(map(_copyable, _status_change(c))) for _, cs in built for c in cs)
                written["status_changes"] += copy_rows(cursor, "status_change", CHANGE_COLUMNS, history)
                # A pull writes each task's flow facts with its history (bridge.store.facts): so here.
                facts = ((t.remote_id, facts_of(steps_of(cs))) for t, cs in built)
                written["flow_facts"] += copy_rows(
                    cursor,
                    "flow_fact",
                    ["source", "item_id", "version", "facts", "computed_at"],
                    ((SOURCE, item, FACTS_VERSION, f.to_json(), NOW) for item, f in facts if f is not None),
                )
                blockers = (
                    (SOURCE, f"t{n}", f"t{n + 1}", NOW) for n in range(first, first + len(built) - 1, 20)
                )
                written["dependencies"] += copy_rows(
                    cursor, "dependency", [*(f.name for f in fields(Dependency)), "synced_at"], blockers
                )
            conn.commit()
        with conn.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"seconds": round(time.perf_counter() - started, 1), **written}


def quiet_tracker(folder: Path, url: str) -> tuple[subprocess.Popen[str], dict[str, Any], Path]:
    """A Jira sandbox holding nothing newer than the stored cursor, and a config naming it `SOURCE`."""
    from bridge.store import Store
    from bridge.store.pages import set_cursor
    from bridge.sync.pull import CENSUS_STREAM

    seed = folder / "empty.json"
    seed.write_text('{"issues": []}', encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    info: dict[str, Any] = json.loads(server.stdout.readline())
    store = Store(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with store.write() as conn:  # the last pull and census were just now: this cycle finds nothing
            minute = json.dumps({"minute": NOW.isoformat()})
            set_cursor(conn, SOURCE, "issues", minute, signpost=NOW, now=NOW)
            set_cursor(conn, SOURCE, CENSUS_STREAM, None, signpost=NOW, now=CYCLE_AT)
    finally:
        store.close()
    statuses = "\n".join(f'"{i}" = "{STATUSES[name].value}"' for name, i in STATUS_IDS.items())
    config = folder / "bridge.toml"
    config.write_text(
        f'[store]\nurl = "{url.replace("postgresql://", "postgresql+psycopg://", 1)}"\n\n'
        "[push]\nenabled = false\n\n"
        f'[trackers.{SOURCE}]\nkind = "jira"\nurl = "{info["url"]}"\n'
        'email_env = "BENCH_JIRA_EMAIL"\ntoken_env = "BENCH_JIRA_TOKEN"\nprojects = ["BEN"]\n'
        f"max_requests_per_second = 10000\n\n[trackers.{SOURCE}.status_map]\n{statuses}\n",
        encoding="utf-8",
    )
    return server, info, config


REPORT = """
import atexit, re, sys
def peak():
    status = open("/proc/self/status").read()
    print("PEAK_RSS_KB", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
atexit.register(peak)
from datetime import datetime
from bridge.cli.shared import read_config
from bridge.report.commands import report_command
report_command(read_config(sys.argv[1]), now=datetime.fromisoformat(sys.argv[2]), as_json=True, team=None)
"""
CYCLE = """
import json, resource, sys, time
from datetime import datetime, timedelta
from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.sync.cycle import run_cycle
config = load_config(sys.argv[1], ConnectorRegistry.default())
store = Store.open(config)
now = datetime.fromisoformat(sys.argv[2])
def timed(at):
    used = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = run_cycle(store, config, now=at)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    summary = [entry.summary() for entry in result.trackers]
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "trackers": summary}
first = timed(now)
found = timed(now + timedelta(minutes=10))
found["first_cycle"] = {k: v for k, v in first.items() if k != "trackers"}
print(json.dumps(found, default=str))
"""


def timed_report(config: Path, env: dict[str, str]) -> dict[str, Any]:
    """The JSON report in its own process: wall and CPU seconds (on a shared machine the CPU time is
    the steadier figure), peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", REPORT, str(config), NOW.isoformat()],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bridge report failed: {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak_kb / 1024),
        "json_bytes": len(done.stdout),
    }


def quiet_cycle(config: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CYCLE, str(config), CYCLE_AT.isoformat()],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the quiet cycle failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", ADMIN_URL))
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--keep", action="store_true", help="keep the database; reuse it if it exists")
    args = parser.parse_args(argv)
    args.admin_url = args.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)  # the driver's form
    url = database_url(args.admin_url, args.database)
    built: dict[str, Any] | str = "reused"
    if not (args.keep and _has_data(url)):
        fresh_database(args.admin_url, args.database)
        built = build(url, args.tasks, args.changes, args.seed)
    else:
        _forget_analyses(url)
    try:
        with tempfile.TemporaryDirectory() as folder:
            server, info, config = quiet_tracker(Path(folder), url)
            try:
                env = {**os.environ, "BENCH_JIRA_EMAIL": info["email"], "BENCH_JIRA_TOKEN": info["token"]}
                report = timed_report(config, env)
                cycle = quiet_cycle(config, env)
            finally:
                server.terminate()
                server.wait(60)
    finally:
        if not args.keep:
            drop_database(args.admin_url, args.database)
    result = {
        "benchmark": "scale",
        "python": platform.python_version(),
        "store": built,
        "report": report,
        "quiet_cycle": cycle,
        "target": TARGET,
        "meets_target": report["seconds"] < TARGET["report_seconds"]
        and report["peak_rss_mb"] < TARGET["report_peak_rss_mb"]
        and cycle["seconds"] < TARGET["quiet_cycle_seconds"],
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _forget_analyses(url: str) -> None:
    """A kept store's stored analyses are dropped, so that the report measured is a full one again
    (an unchanged store would answer from the analysis the last run stored)."""
    with _connect(url) as conn:
        conn.execute("DELETE FROM analysis")


def _has_data(url: str) -> bool:
    try:
        with _connect(url) as conn:
            found = conn.execute("SELECT count(*) FROM task").fetchone()
    except Exception:  # no such database or table yet
        return False
    return bool(found and found[0])


if __name__ == "__main__":
    raise SystemExit(main())
