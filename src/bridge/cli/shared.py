"""What the command groups share: the `--config` and `--json` options, reading the config, printing one
JSON document, and `store_session`, which opens the store (and the progress display) for one command and
closes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bridge.config import CONFIG_ENV, BridgeConfig, default_config_path, load_config
from bridge.connector import ConnectorRegistry

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bridge.progress import Progress
    from bridge.store import Store

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"The TOML config (default: ${CONFIG_ENV}, then ./bridge.toml).",
        show_default=False,
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def print_json(document: Any) -> None:
    """`document` as indented JSON on stdout; text quoted from trackers cannot reach the terminal as
    escape sequences, and dates, paths and the like are written as strings."""
    import json

    from bridge.text import json_terminal_safe

    typer.echo(json_terminal_safe(json.dumps(document, indent=2, ensure_ascii=False, default=str)))


def read_config(config: Path | None) -> BridgeConfig:
    """The config at `--config`, else at $BRIDGE_CONFIG, else ./bridge.toml."""
    return load_config(default_config_path(config), ConnectorRegistry.default())


@dataclass(frozen=True)
class StoreSession:
    """The store one command works on, and the progress display it reports to (None when stderr is not
    a terminal, or the command shows none)."""

    store: Store
    progress: Progress | None


@contextmanager
def store_session(
    cfg: BridgeConfig, *, upgrade: bool = True, create: bool = True, progress: bool = False
) -> Iterator[StoreSession]:
    """Open the configured store (migrating it first unless `upgrade` is false) and, with `progress`, the
    terminal's progress display; close both when the command is done, whether or not it failed.

    Only the commands that set a store up (`pull`, `sync`, `run`) create one; without `create` the store
    must exist, and without `upgrade` it must also be at the newest schema (see `Store.open`).

    It takes the config already read, so a command can refuse a bad argument (an unknown tracker) before
    it touches the store."""
    from bridge.progress import for_terminal
    from bridge.store import Store

    store = Store.open(cfg, upgrade=upgrade, create=create)
    try:
        shown = for_terminal() if progress else None
        try:
            yield StoreSession(store, shown)
        finally:
            if shown is not None:
                shown.close()
    finally:
        store.close()


@contextmanager
def one_run(
    store: Store, cfg: BridgeConfig, tracker: str | None, command: str
) -> Iterator[Callable[[Connection], None]]:
    """While the block runs, this command is the only bridge process syncing its trackers (`tracker`, or
    every enabled one): refused, naming the holder, when a daemon or another command is (see
    `bridge.daemon.leases.exclusive_run`). Yields the guard its transactions run."""
    from bridge.daemon.leases import exclusive_run
    from bridge.sync.pull import pull_targets

    settings = cfg.daemon
    trackers = pull_targets(cfg, tracker)
    with exclusive_run(store, settings.lease_ttl, settings.heartbeat, trackers, command) as guard:
        yield guard
