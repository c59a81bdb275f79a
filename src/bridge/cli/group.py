"""The command groups' conventions: `--debug` is accepted anywhere on the line (`bridge pull --debug` as
well as `bridge --debug pull`), and `--help` lists each command with its whole summary instead of one
cut off at the terminal's width."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

DEBUG_FLAG = "--debug"


def debug_first(args: list[str]) -> list[str]:
    """`args` with every `--debug` before a `--` moved to the front, where the root command reads it."""
    end = args.index("--") if "--" in args else len(args)
    head = args[:end]
    if DEBUG_FLAG not in head[1:]:
        return args
    return [DEBUG_FLAG, *(arg for arg in head if arg != DEBUG_FLAG), *args[end:]]


def summary(help_text: str | None) -> str:
    """A command's first paragraph, on one line."""
    first = (help_text or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())


class BridgeGroup(TyperGroup):
    """A command group that keeps the conventions above; every `typer.Typer` of the CLI uses it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:  # the root: its options, --debug among them, come before the command
            args = debug_first(args)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command.help)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
