"""How the CLI reports the bridge's errors: one paragraph and an exit code, a traceback only with --debug."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from bridge.errors import BridgeError, ConfigError

P = ParamSpec("P")
R = TypeVar("R")
_state = {"debug": False}


def set_debug(debug: bool) -> None:
    _state["debug"] = debug


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the bridge's errors into one message on stderr and the error's exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            _fail(exc.render(), exc)
            raise typer.Exit(exc.exit_code) from None
        except BridgeError as exc:
            _fail(f"error: {exc}", exc)
            raise typer.Exit(exc.exit_code) from None

    return run


def _fail(message: str, exc: BaseException) -> None:
    if _state["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    from bridge.text import terminal_safe

    # An error often quotes a tracker (its response, an item's title): no escape sequence gets through.
    typer.echo(terminal_safe(message, single_line=False), err=True)
