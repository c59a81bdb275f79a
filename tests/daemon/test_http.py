"""The daemon's HTTP endpoints over real HTTP: health, readiness, metrics, status page and JSON."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from sqlalchemy import insert

from bridge.config import BridgeConfig, DaemonConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.daemon.http import StatusServer
from bridge.daemon.metrics import DaemonMetrics
from bridge.errors import UserError
from bridge.http import SECRETS
from bridge.report.status_page import (
    LiveStatus,
    PendingWrites,
    pending_from_cycle,
    render_status_text,
    status_rows,
)
from bridge.store import Store
from bridge.store.models import RunRow
from bridge.sync.cycle import TrackerCycle
from bridge.sync.plan import Plan
from bridge.sync.pull import PullResult
from bridge.sync.push import PushResult
from tests.conftest import EXAMPLE_CONFIG
from tests.daemon.test_metrics import parse_exposition, sample

RUN = RunRow.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NEXT = NOW + timedelta(minutes=10)


def _config(port: int = 0) -> BridgeConfig:
    config = load_config(EXAMPLE_CONFIG, ConnectorRegistry.default())
    return config.model_copy(update={"daemon": DaemonConfig(http_host="127.0.0.1", http_port=port)})


def _run(source: str, minutes_ago: float, **values: Any) -> dict[str, Any]:
    started = NOW - timedelta(minutes=minutes_ago)
    row: dict[str, Any] = {
        "source": source,
        "kind": "pull",
        "started_at": started,
        "finished_at": started + timedelta(seconds=3),
        "status": "ok",
        "items_pulled": 10,
        "requests": 4,
    }
    return row | values


def _add_runs(store: Store, *rows: dict[str, Any]) -> None:
    with store.write() as conn:
        for row in rows:
            conn.execute(insert(RUN).values(**row))


class Live:
    """A status provider whose answers a test changes."""

    def __init__(self) -> None:
        self.status = LiveStatus(scheduler_running=True, next_runs={"acme-jira": NEXT}, replica="r1")

    def __call__(self) -> LiveStatus:
        return self.status


@pytest.fixture
def live() -> Live:
    return Live()


@pytest.fixture
def serve(live: Live) -> Iterator[Callable[..., StatusServer]]:
    started: list[StatusServer] = []

    def start(store: Store, *, registry: CollectorRegistry | None = None, **options: Any) -> StatusServer:
        server = StatusServer(
            _config(), store, registry or CollectorRegistry(), live, clock=lambda: NOW, **options
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- health and readiness --------------------------------------------------------------------------


def test_health_and_readiness_while_store_and_scheduler_work(
    store: Store, serve: Callable[..., StatusServer], live: Live
) -> None:
    server = serve(store)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    health = requests.get(f"{server.url}/healthz", timeout=5)
    assert (health.status_code, health.text) == (200, "ok\n")
    ready = requests.get(f"{server.url}/readyz", timeout=5)
    assert (ready.status_code, ready.text) == (200, "ready\n")
    live.status = LiveStatus(scheduler_running=False)
    stopped = requests.get(f"{server.url}/readyz", timeout=5)
    assert stopped.status_code == 503 and "scheduler is not running" in stopped.text
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/nowhere", timeout=5).status_code == 404


def test_readyz_fails_when_the_sqlite_store_is_gone(
    tmp_path: Path, serve: Callable[..., StatusServer]
) -> None:
    folder = tmp_path / "gone"
    store = Store(f"sqlite:///{folder / 'store.db'}")
    store.upgrade()
    server = serve(store)
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
    store.close()
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    ready = requests.get(f"{server.url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert "unreachable" in ready.text
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    page = requests.get(f"{server.url}/", timeout=5)
    assert page.status_code == 503 and "unable to open database file" in page.text


def test_readyz_fails_when_postgresql_is_unreachable_and_hides_the_password(
    serve: Callable[..., StatusServer],
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    store = Store(f"postgresql+psycopg://bridge:{password}@127.0.0.1:{_closed_port()}/bridge")
    try:
        server = serve(store)
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "unreachable" in ready.text
        as_json = requests.get(f"{server.url}/status.json", timeout=10)
        assert as_json.status_code == 503 and as_json.json()["problem"]
        for body in (ready.text, as_json.text, requests.get(f"{server.url}/", timeout=10).text):
            assert password not in body
    finally:
        store.close()


def test_readyz_reports_a_status_provider_that_fails(store: Store, live: Live) -> None:
    def broken() -> LiveStatus:
        raise RuntimeError("scheduler state unavailable")

    server = StatusServer(_config(), store, CollectorRegistry(), broken)
    with server:
        ready = requests.get(f"{server.url}/readyz", timeout=5)
        assert ready.status_code == 503 and "scheduler state unavailable" in ready.text


def test_readyz_fails_when_every_trackers_last_cycle_failed_on_the_store(
    store: Store, serve: Callable[..., StatusServer], live: Live
) -> None:
    server = serve(store)
    failure = "the store at sqlite:///s.db failed: database disk image is malformed"
    live.status = LiveStatus(
        scheduler_running=True, store_failures={"acme-jira": failure, "design-trello": failure}
    )
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200  # growth-asana's was fine
    live.status = LiveStatus(
        scheduler_running=True,
        store_failures={name: failure for name in ("acme-jira", "design-trello", "growth-asana")},
    )
    ready = requests.get(f"{server.url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert "every tracker's last cycle failed on the store" in ready.text and "malformed" in ready.text
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_healthz_fails_when_the_scheduler_has_died(
    store: Store, serve: Callable[..., StatusServer], live: Live
) -> None:
    server = serve(store)
    live.status = LiveStatus(scheduler_running=False, scheduler_failure="the scheduler's thread has died")
    health = requests.get(f"{server.url}/healthz", timeout=5)
    assert health.status_code == 503 and "the scheduler's thread has died" in health.text


# --- metrics ---------------------------------------------------------------------------------------


def test_metrics_endpoint_serves_the_registry_in_the_text_format_or_openmetrics_when_asked(
    store: Store, serve: Callable[..., StatusServer]
) -> None:
    metrics = DaemonMetrics(["acme-jira", "design-trello"])
    server = serve(store, registry=metrics.registry)
    metrics.record_cycle(TrackerCycle("acme-jira", pull=PullResult("acme-jira", items=7), requests=3), 1.5)
    response = requests.get(f"{server.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(response.text)
    assert sample(samples, "bridge_cycles_total", tracker="acme-jira", outcome="ok") == 1
    assert sample(samples, "bridge_cycles_total", tracker="design-trello", outcome="ok") == 0
    metrics.record_cycle(TrackerCycle("acme-jira", error="acme-jira: HTTP 500"), 0.5)
    again = parse_exposition(requests.get(f"{server.url}/metrics", timeout=5).text)
    assert sample(again, "bridge_cycles_total", tracker="acme-jira", outcome="failed") == 1
    assert sample(again, "bridge_cycle_duration_seconds_count", tracker="acme-jira") == 2
    asked = requests.get(
        f"{server.url}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"},
        timeout=5,
    )
    assert asked.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert asked.text.endswith("# EOF\n")
    families = {
        family.name: family for family in openmetrics_families(asked.text)
    }  # strict: fails if malformed
    failed = [s for s in families["bridge_cycles"].samples if s.labels.get("outcome") == "failed"]
    assert [s.value for s in failed if s.name == "bridge_cycles_total"] == [1, 0]  # acme-jira, design-trello
    assert families["bridge_build"].type == "info"


# --- status: store rows, page, JSON, text ------------------------------------------------------------


def test_status_rows_keep_the_newest_runs_of_each_tracker(store: Store) -> None:
    _add_runs(
        store,
        *(_run("acme-jira", minutes_ago=m) for m in (50, 40, 30, 20, 10, 5)),
        _run("acme-jira", 6, kind="push", items_pulled=0, writes_planned=9, writes_done=5, writes_failed=1),
        _run("design-trello", 15, status="failed", error="design-trello: HTTP 500"),
        _run("*", 1, kind="analyse"),
    )
    rows = status_rows(store, NOW, trackers=["growth-asana", "acme-jira"], limit=3)
    assert [row.tracker for row in rows] == ["acme-jira", "design-trello", "growth-asana"]
    jira, trello, asana = rows
    assert [run.started_at for run in jira.runs] == [NOW - timedelta(minutes=m) for m in (5, 6, 10)]
    assert jira.runs[1].kind == "push"
    assert jira.last_success_at == NOW - timedelta(minutes=5) + timedelta(seconds=3)
    assert jira.since_success == timedelta(minutes=5) - timedelta(seconds=3)
    assert jira.pending == PendingWrites(deferred=3, failed=1)
    assert trello.last_success_at is None and trello.last_failure_at is not None
    assert trello.runs[0].error == "design-trello: HTTP 500"
    assert asana.runs == () and asana.pending is None
    text = render_status_text(rows)
    assert "pending writes 3 deferred, 1 failed" in text
    assert "design-trello: HTTP 500" in text and "no runs yet" in text


def test_status_page_and_json_show_runs_next_runs_and_pending_writes(
    store: Store, serve: Callable[..., StatusServer], live: Live
) -> None:
    _add_runs(
        store,
        _run("acme-jira", 30, items_pulled=120, requests=14),
        _run("acme-jira", 29, kind="push", writes_planned=4, writes_done=4),
    )
    live.status = LiveStatus(
        scheduler_running=True,
        next_runs={"acme-jira": NEXT, "design-trello": None},
        pending={"design-trello": PendingWrites(deferred=7, failed=2)},
    )
    server = serve(store)
    page = requests.get(f"{server.url}/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "acme-jira" in page.text and "2026-05-01 12:10:00Z" in page.text
    assert "7 deferred, 2 failed" in page.text
    assert 'href="/report"' not in page.text
    document = requests.get(f"{server.url}/status.json", timeout=5).json()
    assert document["scheduler_running"] is True
    trackers = {entry["tracker"]: entry for entry in document["trackers"]}
    assert set(trackers) == {"acme-jira", "design-trello", "growth-asana"}
    jira = trackers["acme-jira"]
    assert jira["next_run"] == "2026-05-01T12:10:00Z"
    assert jira["pending_writes"] == {"deferred": 0, "failed": 0}
    assert [run["kind"] for run in jira["runs"]] == ["push", "pull"]
    assert jira["runs"][1]["items_pulled"] == 120 and jira["runs"][1]["requests"] == 14
    assert jira["runs"][1]["duration_seconds"] == 3.0
    assert trackers["design-trello"]["pending_writes"] == {"deferred": 7, "failed": 2}
    assert trackers["growth-asana"]["runs"] == []


def test_the_page_links_to_the_report_when_there_is_one(
    store: Store, serve: Callable[..., StatusServer]
) -> None:
    server = serve(store, report=lambda: "<html><body>the report</body></html>")
    assert 'href="/report"' in requests.get(f"{server.url}/", timeout=5).text
    report = requests.get(f"{server.url}/report", timeout=5)
    assert report.status_code == 200 and "the report" in report.text


def test_error_texts_are_escaped_and_secrets_never_leave(
    store: Store, serve: Callable[..., StatusServer]
) -> None:
    token = f"sentinel-{uuid.uuid4().hex}"
    query_token = f"qt{uuid.uuid4().hex}"
    SECRETS.add(token)
    error = (
        f'<script>alert("x")</script> & failed with Authorization: Bearer {token} '
        f"GET https://api.trello.com/1/boards?key=abc&token={query_token}"
    )
    _add_runs(store, _run("design-trello", 5, status="failed", error=error))
    metrics = DaemonMetrics(["design-trello"])
    metrics.record_cycle(TrackerCycle("design-trello", error=error), 1.0)
    server = serve(store, registry=metrics.registry)
    page = requests.get(f"{server.url}/", timeout=5).text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; failed" in page
    bodies = [page] + [
        requests.get(f"{server.url}{path}", timeout=5).text
        for path in ("/status.json", "/metrics", "/readyz", "/healthz")
    ]
    bodies.append(render_status_text(status_rows(store, NOW)))
    for body in bodies:
        assert token not in body and query_token not in body
    assert "***" in bodies[1]


def test_pending_writes_from_a_cycle() -> None:
    plan = Plan("acme-jira")
    push = PushResult("acme-jira", plan, done=3, failed=2)
    assert pending_from_cycle(TrackerCycle("acme-jira", push=push)) == PendingWrites(deferred=0, failed=2)
    assert pending_from_cycle(TrackerCycle("acme-jira", error="pull failed")) is None


# --- bearer-token authentication ---------------------------------------------------------------------

PROTECTED = ("/", "/status.json", "/report.html", "/metrics", "/report")


def _with_token(monkeypatch: pytest.MonkeyPatch, token: str | None, **daemon: Any) -> BridgeConfig:
    if token is not None:
        monkeypatch.setenv("BRIDGE_STATUS_TOKEN", token)
    else:
        monkeypatch.delenv("BRIDGE_STATUS_TOKEN", raising=False)
    settings = DaemonConfig(
        http_host="127.0.0.1", http_port=0, auth_token_env="BRIDGE_STATUS_TOKEN", **daemon
    )
    return _config().model_copy(update={"daemon": settings})


def test_a_configured_token_guards_every_page_but_the_probes(
    store: Store, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"status-{uuid.uuid4().hex}"
    config = _with_token(monkeypatch, token)
    with StatusServer(config, store, CollectorRegistry(), live, report=lambda: "<p>the report</p>") as server:
        for path in PROTECTED:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {token}"}):
                refused = requests.get(f"{server.url}{path}", headers=headers, timeout=10)
                assert refused.status_code == 401, (path, headers)
                assert refused.headers["WWW-Authenticate"].startswith("Bearer")
                assert token not in refused.text
            allowed = requests.get(
                f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert allowed.status_code == 200, (path, allowed.text)
            assert token not in allowed.text
        for path in ("/healthz", "/readyz"):
            assert requests.get(f"{server.url}{path}", timeout=5).status_code == 200
    assert token in SECRETS.values()


def test_without_a_token_the_pages_stay_open_on_loopback(
    store: Store, serve: Callable[..., StatusServer]
) -> None:
    server = serve(store)
    for path in ("/", "/status.json", "/metrics"):
        assert requests.get(f"{server.url}{path}", timeout=5).status_code == 200


def test_a_token_variable_that_is_not_set_stops_the_server_from_starting(
    store: Store, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = StatusServer(_with_token(monkeypatch, None), store, CollectorRegistry(), live)
    with pytest.raises(
        UserError, match=r"daemon.auth_token_env: environment variable BRIDGE_STATUS_TOKEN is not set"
    ):
        server.start()
    monkeypatch.setenv("BRIDGE_STATUS_TOKEN", "short")
    with pytest.raises(UserError, match="at least 16 characters"):
        server.start()


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [
        ("0.0.0.0", None, True),
        ("192.0.2.10", None, True),
        ("::", None, True),
        ("status.example.com", None, True),
        ("0.0.0.0", "BRIDGE_STATUS_TOKEN", False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_a_status_page_open_to_the_network_without_a_token_is_warned_about(
    host: str, token: str | None, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.config import config_warnings, log_config_warnings

    config = _config().model_copy(
        update={"daemon": DaemonConfig(http_host=host, http_port=0, auth_token_env=token)}
    )
    found = [warning for warning in config_warnings(config) if "auth_token_env" in warning]
    assert bool(found) == warned, found
    if warned:
        assert f"daemon.http_host is {host}" in found[0]
        with caplog.at_level("WARNING"):
            log_config_warnings(config)  # what the daemon does at every start
        assert found[0] in caplog.text


def test_bridge_check_warns_of_a_status_page_open_to_the_network(run_cli: Any, tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text().replace('http_host = "127.0.0.1"', 'http_host = "0.0.0.0"', 1)
    assert 'http_host = "0.0.0.0"' in text
    config = tmp_path / "bridge.toml"
    config.write_text(text)
    config.chmod(0o600)
    result = run_cli("check", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert "warning: daemon.http_host is 0.0.0.0" in result.stderr and "auth_token_env" in result.stderr


@pytest.mark.parametrize(
    ("token", "noted"),
    [(None, "is not set or is empty"), ("", "is not set or is empty"), ("short", "at least 16 characters"),
     ("x" * 16, None)],
)  # fmt: skip
def test_bridge_check_notes_a_status_token_that_is_unset_empty_or_short(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str | None, noted: str | None
) -> None:
    text = EXAMPLE_CONFIG.read_text().replace(
        '# auth_token_env = "BRIDGE_STATUS_TOKEN"', 'auth_token_env = "BRIDGE_STATUS_TOKEN"', 1
    )
    assert '\nauth_token_env = "BRIDGE_STATUS_TOKEN"' in text
    config = tmp_path / "bridge.toml"
    config.write_text(text)
    config.chmod(0o600)
    _with_token(monkeypatch, token)
    result = run_cli("check", "--config", str(config))
    assert result.exit_code == 0, result.stderr  # a note: the daemon may run where the token is set
    daemon_lines = [line for line in result.stdout.splitlines() if "auth_token_env" in line]
    if noted is None:
        assert not daemon_lines, result.stdout
    else:
        [line] = daemon_lines
        assert line.startswith("  daemon: note: daemon.auth_token_env: ") and "BRIDGE_STATUS_TOKEN" in line
        assert noted in line and "the daemon (`bridge run`) refuses to start" in line
    as_json = run_cli("check", "--config", str(config), "--json")
    note = json.loads(as_json.stdout)["daemon"]["note"]
    assert (note is None) if noted is None else (noted in note)


# --- slow clients ----------------------------------------------------------------------------------


def _request_threads() -> int:
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def test_slow_clients_neither_hold_a_thread_each_nor_keep_the_probes_out(store: Store, live: Live) -> None:
    settings = DaemonConfig(
        http_host="127.0.0.1", http_port=0, max_connections=3, header_timeout=timedelta(seconds=2)
    )
    config = _config().model_copy(update={"daemon": settings})
    before = _request_threads()
    with StatusServer(config, store, CollectorRegistry(), live) as server:
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(6)]
        stop = threading.Event()

        def dribble() -> None:  # one byte a second on each connection; the headers never end
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                for connection in slow:
                    with contextlib.suppress(OSError):
                        connection.send(bytes([byte]))
                if stop.wait(1):
                    return

        sender = threading.Thread(target=dribble, daemon=True)
        sender.start()
        try:
            time.sleep(0.5)
            assert _request_threads() - before <= 3
            began = time.monotonic()
            health = requests.get(f"{server.url}/healthz", timeout=5)
            assert (health.status_code, health.text) == (200, "ok\n")
            assert time.monotonic() - began < 1.0
            # The oldest made room for newer ones; the rest are closed once the header timeout passes.
            for connection in slow:
                connection.settimeout(max(0.1, began + 3.5 - time.monotonic()))
                with contextlib.suppress(ConnectionResetError):
                    assert connection.recv(1024) == b""
            assert time.monotonic() - began < 3.5
            assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        finally:
            stop.set()
            sender.join(5)
            for connection in slow:
                connection.close()


def test_connections_beyond_the_bound_are_answered_503_at_once(store: Store, live: Live) -> None:
    release = threading.Event()

    def slow_report() -> str:
        release.wait(10)
        return "late"

    settings = DaemonConfig(http_host="127.0.0.1", http_port=0, max_connections=2)
    config = _config().model_copy(update={"daemon": settings})
    with StatusServer(config, store, CollectorRegistry(), live, report=slow_report) as server:
        busy = [threading.Thread(target=_get_quietly, args=(f"{server.url}/report",)) for _ in range(2)]
        for thread in busy:
            thread.start()
        time.sleep(0.5)  # both are being served: neither can make room
        began = time.monotonic()
        refused = requests.get(f"{server.url}/healthz", timeout=5)
        assert refused.status_code == 503 and "too many connections" in refused.text
        assert time.monotonic() - began < 1.0
        release.set()
        for thread in busy:
            thread.join(10)
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


# --- the server's life cycle -------------------------------------------------------------------------


def test_the_server_stops_within_a_second_even_with_a_request_in_flight(store: Store, live: Live) -> None:
    release = threading.Event()

    def slow_report() -> str:
        release.wait(10)
        return "late"

    server = StatusServer(_config(), store, CollectorRegistry(), live, report=slow_report)
    server.start()
    url = server.url
    in_flight = threading.Thread(target=lambda: _get_quietly(f"{url}/report"), daemon=True)
    in_flight.start()
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    time.sleep(0.2)
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 1.0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)
    release.set()
    in_flight.join(5)


def _get_quietly(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, timeout=10)


def test_a_taken_port_is_a_clear_error(store: Store, live: Live) -> None:
    with StatusServer(_config(), store, CollectorRegistry(), live) as first:
        second = StatusServer(_config(first.port), store, CollectorRegistry(), live)
        with pytest.raises(UserError, match=f"cannot serve the status page on 127.0.0.1:{first.port}"):
            second.start()


def test_the_server_runs_on_a_configured_port(store: Store, live: Live) -> None:
    port = _closed_port()
    with StatusServer(_config(port), store, CollectorRegistry(), live) as server:
        assert server.port == port
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"


def test_status_json_lists_the_item_warnings_next_to_the_key_results(
    store: Store, live: Live, serve: Callable[..., StatusServer]
) -> None:
    from bridge.analytics import Snapshot, analyse
    from bridge.report.status_page import item_warnings_json, key_results_json
    from tests.analytics.build import milestone

    config = _config()
    snapshot = Snapshot(milestones=[milestone("PAY-7", title="Card <payments>", team="payments")])
    report = analyse(snapshot, config, NOW)
    live.status = LiveStatus(
        scheduler_running=True,
        key_results=key_results_json(report),
        item_warnings=item_warnings_json(report),
    )
    server = serve(store)
    document = requests.get(f"{server.url}/status.json", timeout=5).json()
    assert "key_results" in document
    (warning,) = document["item_warnings"]
    prefix = config.push.label_prefix
    assert warning == {
        "kind": "needs_estimate",
        "item": "jira:PAY-7",
        "name": "PAY-7 Card <payments>",
        "team": "payments",
        "reason": "no value and no effort set: the wsjf rank strategy divides value by effort, so it is "
        "ranked after every scored milestone",
        "label": prefix + config.push.needs_estimate_label,
    }
    assert warning["label"] == "mb-needs-estimate"

    live.status = LiveStatus(scheduler_running=True)
    assert requests.get(f"{server.url}/status.json", timeout=5).json()["item_warnings"] == []


def test_the_daemons_live_status_carries_its_last_cycles_item_warnings() -> None:
    from types import SimpleNamespace
    from typing import cast

    from bridge.daemon.service import Daemon, DaemonStatus, live_status

    warning = {"kind": "ageing", "item": "t:1", "name": "PAY-1 Review", "team": "payments", "reason": "r"}
    status = DaemonStatus(replica="r1", started=NOW, item_warnings=[warning])
    daemon = SimpleNamespace(
        status=status, scheduler_failure=lambda: None, next_runs=lambda: {}, replica="r1"
    )
    assert live_status(cast(Daemon, daemon)).item_warnings == [warning]
