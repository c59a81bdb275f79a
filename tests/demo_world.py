"""The demo's three sandbox trackers for tests that run `bridge` against them: started with their
credentials in the environment, a config with its store taken from a variable, and the emulators."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bridge.demo import ENV, JIRA_EMAIL, Sandbox, render_config, start_sandbox
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.trello import TrelloEmulator


@contextmanager
def running_sandbox(monkeypatch: pytest.MonkeyPatch, seed: int, per_tracker: int) -> Iterator[Sandbox]:
    """The demo's sandboxes, served until the block ends, their credentials set in the environment."""
    monkeypatch.setenv(ENV["jira_email"], JIRA_EMAIL)
    sandbox = start_sandbox(seed=seed, per_tracker=per_tracker)
    try:
        for name, value in sandbox.secrets.items():
            monkeypatch.setenv(name, value)
        yield sandbox
    finally:
        sandbox.stop()


def demo_config(sandbox: Sandbox, folder: Path, store_env: str) -> Path:
    """The demo's config (owner-only), its store's URL read from the variable `store_env`."""
    text = render_config(sandbox, folder / "unused.db")
    text, replaced = re.subn(r'^url = "sqlite:.*$', f'url_env = "{store_env}"', text, count=1, flags=re.M)
    assert replaced == 1, "the demo's config names its store in one line"
    path = folder / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def emulators(sandbox: Sandbox) -> tuple[JiraEmulator, TrelloEmulator, AsanaEmulator]:
    jira, trello, asana = (sandbox.servers[name].emulator for name in ("jira", "trello", "asana"))
    assert isinstance(jira, JiraEmulator) and isinstance(trello, TrelloEmulator)
    assert isinstance(asana, AsanaEmulator)
    return jira, trello, asana
