"""`bridge run`, `bridge status` and `bridge health`: the daemon, what its cycles did, and whether it is
alive."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from bridge.cli.shared import ConfigOption, JsonOption, print_json, read_config, store_session
from bridge.cli_errors import reports_errors

if TYPE_CHECKING:
    from bridge.config import DaemonConfig


@reports_errors
def run(config: ConfigOption = None) -> None:
    """Run the daemon: each tracker's cycle on its schedule, with health, metrics and a status page."""
    from bridge.daemon.logs import configure_logging
    from bridge.daemon.service import serve

    cfg = read_config(config)
    configure_logging(cfg.daemon, debug=logging.getLogger().level == logging.DEBUG)
    for override in cfg.overrides:
        logging.getLogger("bridge.config").info(
            "%s = %s, from %s (over the file)", override.path, override.value, override.variable
        )
    for name, tracker in cfg.trackers.items():
        if tracker.enabled:
            cfg.require_secrets(name)
    with store_session(cfg) as session:
        serve(
            cfg,
            session.store,
            lambda daemon, url: typer.echo(f"bridge daemon {daemon.replica}: status at {url}", err=True),
        )


@reports_errors
def status(
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each tracker's last cycles, last success, errors and pending writes, from the store."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from bridge.report.status_page import render_status_text, status_rows

    cfg = read_config(config)
    with store_session(cfg, upgrade=False) as session:
        rows = status_rows(session.store, datetime.now(UTC), trackers=list(cfg.trackers))
    if json_output:
        print_json([asdict(row) for row in rows])
    else:
        from bridge.text import terminal_safe

        # Errors in the run table quote the trackers; the status text is several lines.
        typer.echo(terminal_safe(render_status_text(rows), single_line=False), nl=False)


@reports_errors
def health(
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the answer.")] = 4.0,
    as_json: JsonOption = False,
) -> None:
    """Ask the running daemon's /healthz at the configured address: exit 0 when healthy (a health check)."""
    from bridge.text import terminal_safe

    url = f"{probe_address(read_config(config).daemon)}/healthz"
    status, answer = _probe(url, timeout)
    if as_json:
        print_json({"url": url, "healthy": status == 200, "status": status, "answer": answer})
    elif status == 200:
        typer.echo(terminal_safe(f"{url}: healthy ({status} {answer})"))
    else:
        what = f"unhealthy, {status} {answer}" if status else f"no answer ({answer})"
        typer.echo(terminal_safe(f"{url}: {what}"), err=True)
    if status != 200:
        raise typer.Exit(1)


def _probe(url: str, timeout: float) -> tuple[int | None, str]:
    """The HTTP status and the start of the body at `url`, or None and why nothing answered."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(200).decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200).decode(errors="replace").strip()
    except OSError as exc:
        return None, str(getattr(exc, "reason", exc))


def probe_address(daemon: DaemonConfig) -> str:
    """The base URL at which this machine reaches the daemon's server: `daemon.http_host` (the loopback
    address when it listens on every interface) and `daemon.http_port`."""
    from bridge.errors import UserError

    if daemon.http_port == 0:
        raise UserError("daemon.http_port is 0 (a free port chosen at start), so there is no port to probe")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(daemon.http_host, daemon.http_host)
    if ":" in host:
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{daemon.http_port}"
