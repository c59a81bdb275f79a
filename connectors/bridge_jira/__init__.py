"""Jira Cloud and Data Center connector (package `jira`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability, Connector, Discovery
from bridge.domain import RemotePage
from bridge.http import RetryPolicy
from bridge_jira.config import JiraTrackerConfig

__all__ = ["JiraConnector", "JiraTrackerConfig"]


class JiraConnector(BuiltinConnector):
    kind = "jira"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_DEPENDENCIES
        | Capability.PULL_OKRS
    )
    config_model: ClassVar[type[TrackerConfig]] = JiraTrackerConfig

    def __init__(self, name: str, config: TrackerConfig, secrets: Mapping[str, str], session: Any) -> None:
        from bridge_jira.pull import JiraPuller

        super().__init__(name, config, secrets)
        assert isinstance(config, JiraTrackerConfig)
        self.jira_config = config
        self.session = session
        self.puller = JiraPuller(name, config, session)

    @classmethod
    def open(
        cls,
        name: str,
        config: TrackerConfig,
        secrets: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> Connector:
        from bridge_jira.client import JiraSession

        assert isinstance(config, JiraTrackerConfig)
        policy = RetryPolicy(stop_event=stop) if stop is not None else RetryPolicy()
        return cls(name, config, secrets, JiraSession(name, config, secrets, policy=policy))

    def discover(self) -> Discovery:
        """Projects, statuses, issue types, labels and custom fields, for writing the mapping."""
        from bridge_jira.discover import discover

        return discover(self.session)

    def streams(self) -> Sequence[str]:
        return ("versions", "issues") if self.jira_config.milestones.source == "fix_version" else ("issues",)

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        if stream == "issues":
            return self.puller.pull_issues(cursor, signpost, self.jira_config.lag)
        if stream == "versions":
            return self.puller.pull_versions()
        raise ValueError(f"the jira connector has no stream {stream!r}")

    def census(self) -> Sequence[str]:
        ids = self.puller.census()
        if self.jira_config.milestones.source == "fix_version":
            ids.extend(m.remote_id for page in self.puller.pull_versions() for m in page.milestones)
        return ids

    def stats(self) -> Mapping[str, int]:
        return {"requests": self.session.requests, "setup_requests": self.session.setup_requests}

    def close(self) -> None:
        self.session.close()
