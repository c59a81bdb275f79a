"""Asana connector (package `asana`, v5): projects' tasks, stories and goals, read incrementally."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability, Connector
from bridge.domain import RemotePage
from bridge.http import RetryPolicy
from bridge_asana.config import AsanaTrackerConfig

__all__ = ["AsanaConnector", "AsanaTrackerConfig"]


class AsanaConnector(BuiltinConnector):
    """Reads an Asana workspace: one stream per project (events-driven), goals as OKRs, a census."""

    kind = "asana"
    capabilities = (
        Capability.PULL | Capability.PULL_HISTORY | Capability.PULL_DEPENDENCIES | Capability.PULL_OKRS
    )
    config_model: ClassVar[type[TrackerConfig]] = AsanaTrackerConfig

    def __init__(self, name: str, config: TrackerConfig, secrets: Mapping[str, str], session: Any) -> None:
        from bridge_asana.pull import AsanaPuller

        super().__init__(name, config, secrets)
        assert isinstance(config, AsanaTrackerConfig)
        self.asana_config = config
        self.session = session
        try:
            self.puller = AsanaPuller(name, config, session)
        except BaseException:
            session.close()
            raise

    @classmethod
    def open(
        cls,
        name: str,
        config: TrackerConfig,
        secrets: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> Connector:
        """Connect, then read each project's sections and custom fields (counted as setup requests)."""
        from bridge_asana.session import AsanaSession

        assert isinstance(config, AsanaTrackerConfig)
        policy = RetryPolicy(stop_event=stop) if stop is not None else RetryPolicy()
        return cls(name, config, secrets, AsanaSession(name, config, secrets, policy=policy))

    def streams(self) -> Sequence[str]:
        """`goals` (when goals are read), then `project:<gid>` for each configured project."""
        return self.puller.streams()

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        from bridge_asana.pull import GOALS_STREAM, project_stream

        if stream == GOALS_STREAM and self.puller.reads_goals:
            return self.puller.pull_goals(cursor)
        for project in self.asana_config.projects:
            if stream == project_stream(project):
                return self.puller.pull_project(project, cursor, signpost, self.asana_config.lag)
        raise ValueError(f"the asana connector has no stream {stream!r}")

    def census(self) -> Sequence[str]:
        """Every task gid of every configured project (milestones included)."""
        return self.puller.census()

    def stats(self) -> Mapping[str, int]:
        """HTTP requests (a Batch request counts once) and the Batch actions inside them."""
        return {
            "requests": self.session.requests,
            "setup_requests": self.session.setup_requests,
            "batch_actions": self.session.batch_actions,
        }

    def close(self) -> None:
        self.session.close()
