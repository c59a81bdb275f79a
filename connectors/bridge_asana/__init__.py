"""Asana connector (package `asana`, v5)."""

from __future__ import annotations

from typing import ClassVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability
from bridge_asana.config import AsanaTrackerConfig

__all__ = ["AsanaConnector", "AsanaTrackerConfig"]


class AsanaConnector(BuiltinConnector):
    kind = "asana"
    capabilities = Capability.NONE
    config_model: ClassVar[type[TrackerConfig]] = AsanaTrackerConfig
