"""Jira Cloud and Data Center connector (package `jira`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery
from bridge.kit import SessionConnector
from bridge_jira.config import JiraTrackerConfig

if TYPE_CHECKING:
    from bridge.http import RetryPolicy
    from bridge_jira.client import JiraSession
    from bridge_jira.pull import JiraPuller
    from bridge_jira.push import JiraWriter

__all__ = ["JiraConnector", "JiraTrackerConfig"]


# The session, puller and writer are named, not imported, here: loading the connector to read its
# config model (`bridge check`) leaves the `jira` package unloaded until a connection is made.
class JiraConnector(SessionConnector[JiraTrackerConfig, "JiraSession", "JiraPuller", "JiraWriter"]):
    """A Jira site: issues (and fix versions) pulled by JQL search, written back by edit, link and rank."""

    kind = "jira"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_DEPENDENCIES
        | Capability.PULL_OKRS
        | Capability.WRITE_BACK
    )
    config_model: ClassVar[type[TrackerConfig]] = JiraTrackerConfig

    @classmethod
    def connect(
        cls, name: str, config: JiraTrackerConfig, secrets: Mapping[str, str], policy: RetryPolicy
    ) -> JiraSession:
        """Connect: server info and the API user's time zone (counted as setup requests)."""
        from bridge_jira.client import JiraSession

        return JiraSession(name, config, secrets, policy=policy)

    def make_puller(self) -> JiraPuller:
        """The streams, reading the site's fields once (a setup request) to resolve the mapping's."""
        from bridge_jira.pull import JiraPuller

        return JiraPuller(self.name, self.config, self.session)

    def make_writer(self) -> JiraWriter:
        """The write side, made on first use: it resolves the `write` fields from the puller's list."""
        from bridge_jira.push import JiraWriter

        return JiraWriter(self.name, self.config, self.session, self.puller.field_list)

    def discover(self) -> Discovery:
        """Projects, statuses, issue types, labels and custom fields, for writing the mapping."""
        from bridge_jira.discover import discover

        return discover(self.session)
