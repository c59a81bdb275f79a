"""Jira Cloud and Data Center connector (package `jira`)."""

from __future__ import annotations

from bridge.connector import BuiltinConnector, Capability
from bridge_jira.config import JiraTrackerConfig

__all__ = ["JiraConnector", "JiraTrackerConfig"]


class JiraConnector(BuiltinConnector):
    kind = "jira"
    capabilities = Capability.NONE
    config_model = JiraTrackerConfig
