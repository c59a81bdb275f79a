"""Requests of a no-change cycle on the demo's organisation: what each tracker's setup costs per cycle.

    python bench/cycle_requests.py            # the demo's organisation (150 items per tracker)
    python bench/cycle_requests.py --cycles 3

Starts the demo's three sandbox trackers in this process, writes the demo's config into a temporary
folder and runs `run_cycle` (pull, analyse, plan, push) `--cycles` times in a row. The first cycle pulls
everything and writes the bridge's fields, labels, links and order; the later ones find nothing changed.
For each cycle and tracker it prints the requests the sandbox served (its own request log, the truth),
the requests the bridge counted, how many of those were setup (server info, fields, boards, projects),
and the writes done. The target for a no-change cycle: setup once per tracker, 0 writes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from bridge.config import load_config
    from bridge.connector import ConnectorRegistry
    from bridge.demo import CONFIG_NAME, STORE_NAME, render_config, start_sandbox
    from bridge.store import Store
    from bridge.sync.cycle import run_cycle

    folder = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    sandbox = start_sandbox(args.seed)
    cycles: list[dict[str, Any]] = []
    try:
        os.environ.update(sandbox.secrets)
        config_path = folder / CONFIG_NAME
        config_path.write_text(render_config(sandbox, folder / STORE_NAME), encoding="utf-8")
        config = load_config(config_path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            for number in range(args.cycles):
                served_before = {name: s.emulator.requests.count for name, s in sandbox.servers.items()}
                routes_before = {name: s.emulator.requests.by_route() for name, s in sandbox.servers.items()}
                started = time.perf_counter()
                result = run_cycle(store, config, now=datetime.now(UTC))
                seconds = time.perf_counter() - started
                row: dict[str, Any] = {"cycle": number + 1, "seconds": round(seconds, 3), "trackers": {}}
                for entry in result.trackers:
                    server = sandbox.servers[config.tracker(entry.tracker).kind]
                    summary = entry.summary()
                    pull = entry.pull
                    row["trackers"][entry.tracker] = {
                        "served": server.emulator.requests.count - served_before[server_kind(server)],
                        "served_by_route": routes_since(server, routes_before[server_kind(server)]),
                        "counted": summary["requests"],
                        "setup": pull.setup_requests if pull else 0,
                        "writes_done": summary["writes_done"],
                        "error": summary["error"],
                    }
                cycles.append(row)
        finally:
            store.close()
    finally:
        sandbox.stop()
    json.dump({"bench": "cycle_requests", "cycles": cycles}, sys.stdout, indent=2)
    print()
    return 0


def routes_since(server: Any, before: dict[str, int]) -> dict[str, int]:
    now = server.emulator.requests.by_route()
    return {route: n - before.get(route, 0) for route, n in sorted(now.items()) if n > before.get(route, 0)}


def server_kind(server: Any) -> str:
    name = type(server.emulator).__name__.removesuffix("Emulator").lower()
    return name


if __name__ == "__main__":
    sys.exit(main())
