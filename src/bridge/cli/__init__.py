"""The `bridge` command. Every user-facing error leaves here as a message and an exit code.

Exit codes: 0 ok; 1 a tracker or the store failed; 2 a user error (bad config, bad flag, unset
variable). Errors are one paragraph without a traceback; `--debug` adds the traceback.

The commands live by group in `config_cmds`, `sync_cmds`, `daemon_cmds`, `report_cmds`, `demo_cmds` and
`store_cmds`; this module registers them on `app` in the order `bridge --help` lists them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from bridge import __version__
from bridge.cli import config_cmds, daemon_cmds, demo_cmds, report_cmds, store_cmds, sync_cmds
from bridge.cli.group import BridgeGroup
from bridge.cli_errors import set_debug

app = typer.Typer(
    cls=BridgeGroup,
    name="bridge",
    help="Milestone Bridge: value ranks, OKR links and bottlenecks, synced with Jira, Trello and Asana.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bridge (milestone-bridge) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Log debug detail and show tracebacks.")] = False,
) -> None:
    set_debug(debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from bridge.http import install_redaction
    from bridge.text import install_terminal_safety

    # Every command's log lines are scrubbed, the libraries' too: with --debug urllib3 logs whole URLs,
    # and py-trello puts Trello's key and token in the query string.
    install_redaction()
    # Log lines quote trackers (a skipped item's title, an error's text): escape sequences are removed.
    install_terminal_safety()
    for name in ("bridge", "bridge_sandbox"):  # the sandbox's by name: importing it would load the emulators
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)


app.command()(config_cmds.check)
app.command()(config_cmds.connectors)
app.command()(sync_cmds.pull)
app.command()(sync_cmds.sync)
app.command()(sync_cmds.purge)
app.command()(sync_cmds.explain)
app.command()(daemon_cmds.run)
app.command()(daemon_cmds.status)
app.command()(daemon_cmds.health)
app.command()(config_cmds.discover)
app.command()(report_cmds.report)
app.command()(demo_cmds.demo)
app.command("init")(config_cmds.init_config)
app.add_typer(store_cmds.db_app, name="db")
app.add_typer(demo_cmds.sandbox_app, name="sandbox")
app.add_typer(report_cmds.okr_app, name="okr")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="bridge")
