"""`bridge run` and `bridge status`: the daemon, and what its cycles did."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from bridge.cli.shared import ConfigOption, read_config, store_session
from bridge.cli_errors import reports_errors


@reports_errors
def run(config: ConfigOption = None) -> None:
    """Run the daemon: each tracker's cycle on its schedule, with health, metrics and a status page."""
    from bridge.daemon.logs import configure_logging
    from bridge.daemon.service import serve

    cfg = read_config(config)
    configure_logging(cfg.daemon, debug=logging.getLogger().level == logging.DEBUG)
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
    import json
    from dataclasses import asdict
    from datetime import UTC, datetime

    from bridge.report.status_page import render_status_text, status_rows

    cfg = read_config(config)
    with store_session(cfg, upgrade=False) as session:
        rows = status_rows(session.store, datetime.now(UTC), trackers=list(cfg.trackers))
    if json_output:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2, default=str))
    else:
        from bridge.text import terminal_safe

        # Errors in the run table quote the trackers; the status text is several lines.
        typer.echo(terminal_safe(render_status_text(rows), single_line=False), nl=False)
