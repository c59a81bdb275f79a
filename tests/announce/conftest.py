"""Fixtures for the announcement tests: chat webhook receivers (the sandbox's), a config naming them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.announcement import Announcement, AnnouncementKind
from bridge.config import BridgeConfig, parse_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Ref
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.webhook import Flavour, WebhookEmulator
from tests.sandbox.conftest import Control

TRACKER = """
[trackers.t]
kind = "trello"
url = "https://api.trello.com"
api_key_env = "T_KEY"
token_env = "T_TOKEN"
boards = ["b1"]

[trackers.t.status_map]
"Done" = "done"
"""


@dataclass
class Receiver:
    """A running webhook receiver and its secret-looking URL."""

    server: SandboxServer
    emulator: WebhookEmulator
    control: Control

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/services/T0SECRET/B0SECRET/xoxsecretpath"

    def messages(self) -> list[dict[str, Any]]:
        return list(self.control.get("messages")["messages"])

    def requests(self) -> int:
        return int(self.control.get("requests")["total"])


@pytest.fixture
def receivers() -> Iterator[dict[Flavour, Receiver]]:
    """One receiver of each flavour: slack, teams, generic."""
    started: dict[Flavour, Receiver] = {}
    flavours: tuple[Flavour, ...] = ("slack", "teams", "generic")
    try:
        for flavour in flavours:
            emulator = WebhookEmulator(flavour)
            server = SandboxServer(emulator).start()
            started[flavour] = Receiver(server, emulator, Control(server.base_url))
        yield started
    finally:
        for receiver in started.values():
            receiver.server.stop()


def channel(name: str, kind: str, url_env: str, events: str | None = None) -> str:
    table = f'\n[[announce.channels]]\nname = "{name}"\nkind = "{kind}"\nurl_env = "{url_env}"\n'
    return table + (f"events = {events}\n" if events else "")


def config_with(*channels: str, extra: str = "") -> BridgeConfig:
    return parse_config(TRACKER + extra + "".join(channels), ConnectorRegistry.default(), environ={})


def closed_port_url() -> str:
    """A URL on a port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T0SECRET/down"


def kr_met(n: int = 1, title: str = "Activation above 40%") -> Announcement:
    return Announcement(
        kind=AnnouncementKind.KEY_RESULT_MET,
        key=f"kr-met:config:KR1:{n}",
        subject=Ref("config", "KR1"),
        headline=f"Key result met: {title}",
        facts=(("Objective", "Grow"), ("Reached", "42% against a target of 40% (from 10%)")),
        occurrence=n,
    )


def reached() -> Announcement:
    return Announcement(
        kind=AnnouncementKind.MILESTONE_REACHED,
        key="reached:t:m1:1",
        subject=Ref("t", "m1"),
        headline="Milestone reached: PAY-3 Card payments",
        facts=(("Delivered", "3 tasks"),),
    )
