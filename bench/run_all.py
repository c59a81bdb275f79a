"""Run every benchmark under bench/ and write one JSON summary.

    python bench/run_all.py                          # full sizes (the figures in the README; long)
    python bench/run_all.py --quick                  # small sizes: a smoke run of every benchmark
    python bench/run_all.py --quick --out bench.json --only pull --only push

Each benchmark runs on its own, one after the other, as a subprocess of this Python (`python bench/X.py`,
with the small sizes below under `--quick`, its defaults otherwise). Every `*.py` under bench/ is a
benchmark, so a new one is picked up without a change here (with its defaults under `--quick` until it
gets an entry in QUICK). The summary holds, per benchmark, the command, seconds, exit status and the
JSON it printed (or the end of its stderr when it failed); it goes to stdout and, with `--out`, to a
file, rewritten after each benchmark so an interrupted run keeps what finished. Exits 1 when any
benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SELF = Path(__file__).resolve().name

QUICK: dict[str, list[str]] = {
    "store_upsert": ["--tasks", "2000", "--changes", "20000"],
    "sandbox_serve": ["--issues", "1000"],
    "pull": ["--issues", "1000"],
    "analytics": ["--tasks", "2000", "--changes", "20000"],
    "push": ["--items", "300", "--changes", "10"],
    "cycle_requests": ["--cycles", "2"],
    "scale": ["--tasks", "2000", "--changes", "20000"],
}
"""Each benchmark's size flags for `--quick` (from its argparse); the rest run with their defaults."""

ORDER = ("store_upsert", "sandbox_serve", "pull", "analytics", "push", "cycle_requests", "scale")
STDERR_TAIL = 2000


def benchmarks() -> list[str]:
    """Every benchmark under bench/, by name: the known ones in ORDER, then any others by name."""
    found = {path.stem for path in BENCH.glob("*.py") if path.name != SELF and not path.name.startswith("_")}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def command_for(name: str, quick: bool) -> list[str]:
    return [sys.executable, str(BENCH / f"{name}.py"), *(QUICK.get(name, []) if quick else [])]


def shown(command: list[str]) -> str:
    """The command as a reader would type it, from the repository's root."""
    script = Path(command[1]).relative_to(ROOT)
    return shlex.join(["python", str(script), *command[2:]])


def run_one(name: str, quick: bool, timeout: float | None) -> dict[str, Any]:
    command = command_for(name, quick)
    entry: dict[str, Any] = {
        "name": name,
        "command": shown(command),
        "quick_sizes": quick and name in QUICK,
    }
    started = time.perf_counter()
    try:
        child = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        entry["seconds"] = round(time.perf_counter() - started, 3)
        entry["exit_status"] = None
        entry["ok"] = False
        entry["error"] = f"timed out after {timeout:g} s"
        entry["output"] = None
        entry["stderr_tail"] = _text(exc.stderr)[-STDERR_TAIL:]
        return entry
    entry["seconds"] = round(time.perf_counter() - started, 3)
    entry["exit_status"] = child.returncode
    output, problem = parse_output(child.stdout)
    entry["output"] = output
    entry["ok"] = child.returncode == 0 and problem is None
    if problem is not None:
        entry["error"] = problem
    if not entry["ok"]:
        entry["stderr_tail"] = child.stderr[-STDERR_TAIL:]
    return entry


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_output(stdout: str) -> tuple[Any, str | None]:
    """The JSON document a benchmark printed: the whole of stdout, else its last JSON value."""
    text = stdout.strip()
    if not text:
        return None, "printed nothing on stdout"
    try:
        return json.loads(text), None
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    last: Any = None
    found = False
    index = 0
    while index < len(text):
        start = min((i for i in (text.find("{", index), text.find("[", index)) if i >= 0), default=-1)
        if start < 0:
            break
        try:
            last, end = decoder.raw_decode(text, start)
            found = True
            index = end
        except ValueError:
            index = start + 1
    if found:
        return last, None
    return None, "stdout holds no JSON document"


def summary(entries: list[dict[str, Any]], quick: bool, started: datetime, seconds: float) -> dict[str, Any]:
    return {
        "benchmark": "run_all",
        "quick": quick,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "ok": all(entry["ok"] for entry in entries),
        "benchmarks": entries,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of each benchmark")
    parser.add_argument("--out", type=Path, help="also write the summary to this file")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--timeout", type=float, help="give up on a benchmark after this many seconds (default: no limit)"
    )
    args = parser.parse_args(argv)
    names = benchmarks()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"--only: no benchmark named {', '.join(unknown)}; there are {', '.join(names)}")
        names = [name for name in names if name in args.only]
    started, clock = datetime.now(UTC), time.perf_counter()
    entries: list[dict[str, Any]] = []
    for name in names:
        print(f"run_all: {name} ...", file=sys.stderr, flush=True)
        entry = run_one(name, args.quick, args.timeout)
        entries.append(entry)
        state = (
            "ok" if entry["ok"] else f"FAILED ({entry.get('error') or 'exit ' + str(entry['exit_status'])})"
        )
        print(f"run_all: {name}: {entry['seconds']:.1f} s, {state}", file=sys.stderr, flush=True)
        if args.out is not None:
            _write(args.out, summary(entries, args.quick, started, time.perf_counter() - clock))
    result = summary(entries, args.quick, started, time.perf_counter() - clock)
    if args.out is not None:
        _write(args.out, result)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if result["ok"] else 1


def _write(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
