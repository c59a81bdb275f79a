"""How fast the Jira sandbox serves a full paged search, against a static server replaying the same pages.

    python bench/sandbox_serve.py                 # 100,000 generated issues, 100 a page, with changelogs
    python bench/sandbox_serve.py --issues 10000  # a quicker run

The real `jira` client pages through every issue (`search_issues(..., maxResults=False,
expand="changelog")`) twice, each server in its own process: first from `bridge sandbox serve`, then
from a static server (same HTTP stack, Python's ThreadingHTTPServer on HTTP/1.1) that answers each
request with the bytes the sandbox gave for it. Both passes include the client's own parsing, so the
ratio shows what the emulator's work costs. Prints JSON; target: sandbox rate at least 0.6 of static.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from jira import JIRA

from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira

JQL = "project in (PAY, MOB) ORDER BY updated ASC, key ASC"


def page_key(url: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return f"{parts.path}?{query.get('nextPageToken', [''])[0]}"


def timed_pass(base_url: str, email: str, token: str, record: dict[str, str] | None) -> dict[str, Any]:
    client = JIRA(server=base_url, basic_auth=(email, token), max_retries=0)
    if record is not None:

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            record[page_key(response.url)] = response.text

        client._session.hooks["response"].append(keep)
        client.server_info()  # the constructor's call came before the hook: record it for the replay
    started = time.perf_counter()
    issues = client.search_issues(JQL, maxResults=False, expand="changelog")
    seconds = time.perf_counter() - started
    histories = sum(len(issue.changelog.histories) for issue in issues)
    return {"issues": len(issues), "embedded_histories": histories, "seconds": round(seconds, 3),
            "issues_per_s": round(len(issues) / seconds)}  # fmt: skip


def serve_static(pages_file: str) -> None:
    """The replaying server (runs in its own process): prints its URL, then serves until killed."""
    with open(pages_file, encoding="utf-8") as handle:
        pages = {key: body.encode("utf-8") for key, body in json.load(handle).items()}

    class Replay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = pages.get(page_key(self.path))
            if body is None:
                body = pages.get(urlsplit(self.path).path + "?", b"{}")
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


def start(command: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"{' '.join(command)} did not start")
    return process, json.loads(line)


def run(issues: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        seed_file = Path(folder) / "jira.json"
        started = time.perf_counter()
        document = render_jira(build(seed, issues, datetime(2026, 6, 1, tzinfo=UTC)))
        seed_file.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
        generated = time.perf_counter() - started
        count = len(document["issues"])
        del document
        sandbox, info = start(
            [sys.executable, "-m", "bridge.cli", "sandbox", "serve", "--jira", str(seed_file)]
        )
        try:
            jira = info["jira"]
            pages: dict[str, str] = {}
            sandbox_pass = timed_pass(jira["url"], jira["email"], jira["token"], pages)
        finally:
            sandbox.terminate()
            sandbox.wait(30)
        pages_file = Path(folder) / "pages.json"
        pages_file.write_text(json.dumps(pages), encoding="utf-8")
        static, static_info = start([sys.executable, __file__, "--serve-static", str(pages_file)])
        try:
            static_pass = timed_pass(static_info["url"], jira["email"], jira["token"], {})
        finally:
            static.terminate()
            static.wait(30)
    ratio = sandbox_pass["issues_per_s"] / static_pass["issues_per_s"]
    return {
        "benchmark": "sandbox_serve",
        "issues_in_seed": count,
        "generate_seconds": round(generated, 1),
        "page_size": 100,
        "sandbox": sandbox_pass,
        "static": static_pass,
        "ratio_sandbox_to_static": round(ratio, 3),
        "target_ratio": 0.6,
        "meets_target": ratio >= 0.6,
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--issues", type=int, default=100_000, help="Jira issues to generate (about this many)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-static", metavar="PAGES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        serve_static(args.serve_static)
        return 0
    json.dump(run(args.issues, args.seed), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
