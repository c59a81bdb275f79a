"""`bridge report` and `bridge okr ...`: read from the store only, no tracker is contacted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.group import BridgeGroup
from bridge.cli.shared import ConfigOption, JsonOption, read_config
from bridge.cli_errors import reports_errors

okr_app = typer.Typer(
    cls=BridgeGroup, help="Suggest and confirm which key result each milestone moves.", no_args_is_help=True
)


@reports_errors
def report(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    team: Annotated[str | None, typer.Option(help="Only this team's milestones, work and warnings.")] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the report as one self-contained HTML page with charts to FILE and print its path.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Show value ranks, the OKR tree, work types and bottlenecks, time in status, forecasts, warnings."""
    from datetime import UTC, datetime

    from bridge.report.commands import report_command

    report_command(read_config(config), now=datetime.now(UTC), as_json=as_json, team=team, html=html)


@okr_app.command("suggest")
@reports_errors
def okr_suggest(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Suggest key results for open milestones without one, by text similarity; store them as suggested."""
    from datetime import UTC, datetime

    from bridge.report.commands import suggest_command

    suggest_command(read_config(config), now=datetime.now(UTC), as_json=as_json)


@okr_app.command("confirm")
@reports_errors
def okr_confirm(
    milestone: Annotated[str, typer.Argument(help="The milestone's key (PAY-12) or source:remote_id.")],
    key_result: Annotated[str, typer.Argument(help="The key result's config id (KR1) or source:remote_id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Link MILESTONE to KEY_RESULT with origin `confirmed`: later pulls keep the link."""
    from datetime import UTC, datetime

    from bridge.report.commands import confirm_command

    confirm_command(read_config(config), milestone, key_result, now=datetime.now(UTC), as_json=as_json)
