"""`bridge health`, the container's health check: it asks `/healthz` where the config (or its environment
overrides) says the daemon listens, and exits 0 only on a 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.unit.test_config_errors import BASE


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b"ok" if self.path == "/healthz" and self.status == 200 else b"scheduler stopped"
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    _Probe.status = 200


def _config(tmp_path: Path, daemon: str = "") -> str:
    path = tmp_path / "bridge.toml"
    path.write_text(BASE + f"\n[daemon]\n{daemon}")
    return str(path)


def _health(run_cli: object, *args: str) -> CliResult:
    result: CliResult = run_cli("health", *args)  # type: ignore[operator]
    return result


def test_healthy_on_the_port_an_override_sets_listening_on_every_interface(
    run_cli: object, tmp_path: Path, server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, 'http_host = "0.0.0.0"\nhttp_port = 1\n')
    monkeypatch.setenv("BRIDGE_DAEMON__HTTP_PORT", str(server.server_address[1]))
    result = _health(run_cli, "--config", config)
    assert result.exit_code == 0, result.stderr
    assert f"http://127.0.0.1:{server.server_address[1]}/healthz: healthy (200 ok)" in result.stdout
    document = json.loads(_health(run_cli, "--config", config, "--json").stdout)
    assert document["healthy"] is True and document["status"] == 200


def test_unhealthy_and_unreachable_exit_1_saying_why(
    run_cli: object, tmp_path: Path, server: ThreadingHTTPServer
) -> None:
    port = server.server_address[1]
    _Probe.status = 503
    result = _health(run_cli, "--config", _config(tmp_path, f"http_port = {port}\n"))
    assert result.exit_code == 1 and "unhealthy, 503 scheduler stopped" in result.stderr
    server.shutdown()
    server.server_close()
    gone = _health(run_cli, "--config", _config(tmp_path, f"http_port = {port}\n"), "--timeout", "2")
    assert gone.exit_code == 1 and "no answer" in gone.stderr


def test_a_port_chosen_at_start_cannot_be_probed(run_cli: object, tmp_path: Path) -> None:
    result = _health(run_cli, "--config", _config(tmp_path, "http_port = 0\n"))
    assert result.exit_code == 2 and "daemon.http_port is 0" in result.stderr
