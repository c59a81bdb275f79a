"""The demo, its daemon and the commands after it, run with sentinel credentials: none may show up in a
log line, an error, a report, a status page, a database row or a request body sent to a tracker.

Trello's key and token travel in the query string (py-trello puts them there), which is how Trello
authenticates; the sandbox's recording blanks exactly those two parameters, and the scan looks at every
other parameter, every path and every body. Once the demo has stopped, `bridge sync` and `bridge check
--online` meet trackers that are gone: the errors they print carry the URLs they tried, and those URLs
carry Trello's credentials unless they are scrubbed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bridge.demo import ENV, JIRA_EMAIL
from tests.cli.test_demo import status_page_url
from tests.secrets import SecretScan

BRIDGE = [sys.executable, "-c", "from bridge.cli import main; main()"]
LIMIT = 120


def sentinels() -> dict[str, str]:
    return {
        ENV["jira_token"]: f"sentinel-jira-{uuid.uuid4().hex}",
        ENV["trello_key"]: f"sentinel-tkey-{uuid.uuid4().hex}",
        ENV["trello_token"]: f"sentinel-ttok-{uuid.uuid4().hex}",
        ENV["asana_token"]: f"sentinel-asana-{uuid.uuid4().hex}",
    }


def test_no_sentinel_leaves_the_demo_the_daemon_or_the_commands_after_them(tmp_path: Path) -> None:
    secrets = sentinels()
    env = {k: v for k, v in os.environ.items() if k not in ENV.values()} | secrets
    env[ENV["jira_email"]] = JIRA_EMAIL  # an address, not a secret
    folder, record = tmp_path / "demo", tmp_path / "requests.jsonl"
    scan = SecretScan(set(secrets.values()))

    process = subprocess.Popen(
        [*BRIDGE, "--debug", "demo", "--serve", "--dir", str(folder), "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        url, printed = status_page_url(process, LIMIT)
        for page in ("/", "/status.json", "/metrics", "/healthz", "/readyz", "/report.html"):
            scan.text(f"GET {page}", _page(url + page, may_be_unready=page == "/readyz"))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    scan.text("demo stdout", "".join(printed) + out)
    scan.text("demo stderr", err)
    assert "DEBUG" in err, "the demo ran with debug logging, the most it ever says"

    config = folder / "bridge.toml"
    # The trackers are gone now; one attempt per request keeps the failures below quick.
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\[trackers\.\w+\])$", r"\1\nretries = 1", text)
    assert text.count("retries = 1") == 3
    config.write_text(text, encoding="utf-8")
    after = [
        ["report", "--json"],
        ["report", "--html", str(tmp_path / "report.html")],
        ["status", "--json"],
        ["explain", "PAY-1"],
        ["okr", "suggest"],
        ["check"],
        ["check", "--online"],  # errors name the URLs tried
        ["sync", "--json"],
        ["pull", "--tracker", "trello"],
    ]
    for command in after:
        started = time.monotonic()
        result = subprocess.run(
            [*BRIDGE, "--debug", command[0], "--config", str(config), *command[1:]],
            capture_output=True, text=True, env=env, timeout=LIMIT,
        )  # fmt: skip
        print(f"bridge {' '.join(command)}: exit {result.returncode}, {time.monotonic() - started:.1f} s")
        scan.text(f"bridge {' '.join(command)} stdout", result.stdout)
        scan.text(f"bridge {' '.join(command)} stderr", result.stderr)
        if command[0] in ("sync", "pull"):
            assert result.returncode == 1 and "127.0.0.1" in result.stdout + result.stderr, (
                "the trackers are gone, so the failure (and its URL) must be reported"
            )
    scan.path(tmp_path / "report.html")
    scan.path(folder)  # the config, and the store's files byte by byte
    rows = scan.sqlite(folder / "bridge.db")
    assert rows["written"] > 0 and rows["run"] > 0 and rows["task"] > 0
    scan.path(record)
    recorded = record.read_text(encoding="utf-8")
    assert '"body": "{' in recorded or '"body": "' in recorded
    # the demo's cycle makes about 110 requests, the daemon's and the commands' after it more
    assert recorded.count("\n") > 100, "every request the sandboxes served was recorded"
    assert scan.scanned > 1000
    assert not scan.found, scan.report()


def _page(url: str, *, may_be_unready: bool) -> bytes:
    """The page's body; `/readyz` answers 503 (with a body naming why) until the daemon's first cycle
    has ended, which on a loaded machine may be after the status page is up."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        if not (may_be_unready and exc.code == 503):
            raise
        return bytes(exc.read())
