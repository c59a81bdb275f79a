"""Trello connector (package `py-trello`)."""

from __future__ import annotations

from typing import ClassVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability
from bridge_trello.config import TrelloTrackerConfig

__all__ = ["TrelloConnector", "TrelloTrackerConfig"]


class TrelloConnector(BuiltinConnector):
    kind = "trello"
    capabilities = Capability.NONE
    config_model: ClassVar[type[TrackerConfig]] = TrelloTrackerConfig
