"""`bridge report` and `bridge okr ...`: read from the store only, no tracker is contacted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.group import BridgeGroup
from bridge.cli.shared import ConfigOption, JsonOption, read_config
from bridge.cli_errors import reports_errors

okr_app = typer.Typer(
    cls=BridgeGroup,
    help="Suggest and confirm which key result each milestone moves; draft key results from planned ones.",
    no_args_is_help=True,
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


@okr_app.command("draft")
@reports_errors
def okr_draft(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    team: Annotated[str | None, typer.Option(help="Only this team's milestones.")] = None,
    milestones: Annotated[
        str,
        typer.Option(
            help="Which milestones: unlinked (open, moving no key result), open, or all (done ones too).",
        ),
    ] = "unlinked",
) -> None:
    """Draft key results and objectives from planned milestones that aim at the same outcome; store them."""
    from datetime import UTC, datetime

    from bridge.report.drafts import draft_command

    draft_command(read_config(config), now=datetime.now(UTC), as_json=as_json, team=team, which=milestones)


@okr_app.command("adopt")
@reports_errors
def okr_adopt(
    draft: Annotated[
        str, typer.Argument(help="The drafted key result's id (KRD-...), from `bridge okr draft`.")
    ],
    config: ConfigOption = None,
    objective: Annotated[
        str | None,
        typer.Option(
            help="Add it under this objective id (with --asana-goal: the gid of a goal it supports)."
        ),
    ] = None,
    new_objective: Annotated[
        str | None, typer.Option(help="Add it under a new objective of this title.")
    ] = None,
    kr_id: Annotated[str | None, typer.Option("--id", help="Its id (default: the next free KRn.m).")] = None,
    title: Annotated[str | None, typer.Option(help="Its title (default: the draft's).")] = None,
    target: Annotated[float | None, typer.Option(help="Its target, in the draft's unit.")] = None,
    drop: Annotated[
        list[str] | None, typer.Option(help="Leave this member milestone out (key or source:id); repeatable.")
    ] = None,
    asana_goal: Annotated[
        bool, typer.Option("--asana-goal", help="Create an Asana goal instead, its milestones supporting it.")
    ] = False,
    tracker: Annotated[str | None, typer.Option(help="The Asana tracker for --asana-goal.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be added and linked; write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Turn drafted key result DRAFT into a real one (the config's [okrs], or an Asana goal) and link its
    milestones to it (confirmed)."""
    from datetime import UTC, datetime

    from bridge.report.adopt import AdoptOptions, adopt_command

    options = AdoptOptions(
        objective=objective,
        new_objective=new_objective,
        kr_id=kr_id,
        title=title,
        target=target,
        drop=tuple(drop or ()),
        asana_goal=asana_goal,
        tracker=tracker,
        dry_run=dry_run,
    )
    code = adopt_command(read_config(config), draft, options, now=datetime.now(UTC), as_json=as_json)
    if code:
        raise typer.Exit(code)
