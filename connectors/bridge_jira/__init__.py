"""Jira Cloud and Data Center connector (package `jira`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery, SessionConnector
from bridge.domain import FieldWrite, ItemState, Ref, RemotePage, WriteOutcome
from bridge.http import RetryPolicy
from bridge_jira.config import JiraTrackerConfig

if TYPE_CHECKING:
    from bridge_jira.pull import JiraPuller
    from bridge_jira.push import JiraWriter

__all__ = ["JiraConnector", "JiraTrackerConfig"]


class JiraConnector(SessionConnector):
    kind = "jira"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_DEPENDENCIES
        | Capability.PULL_OKRS
        | Capability.WRITE_FIELDS
        | Capability.WRITE_LABELS
        | Capability.WRITE_LINKS
        | Capability.NATIVE_ORDER
    )
    config_model: ClassVar[type[TrackerConfig]] = JiraTrackerConfig
    puller: JiraPuller
    _writer: JiraWriter | None = None

    @classmethod
    def make_session(cls, name: str, config: Any, secrets: Mapping[str, str], policy: RetryPolicy) -> Any:
        """Connect: server info and the API user's time zone (counted as setup requests)."""
        from bridge_jira.client import JiraSession

        return JiraSession(name, config, secrets, policy=policy)

    def make_puller(self, name: str, config: Any, session: Any) -> Any:
        from bridge_jira.pull import JiraPuller

        self.jira_config: JiraTrackerConfig = config
        return JiraPuller(name, config, session)

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

    @property
    def writer(self) -> JiraWriter:
        """The write side, made on first use (it resolves the `write` fields from the puller's list)."""
        if self._writer is None:
            from bridge_jira.push import JiraWriter

            self._writer = JiraWriter(self.name, self.jira_config, self.session, self.puller.field_list)
        return self._writer

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        """Managed fields, labels, the bridge's remote links, project and Rank of each issue (see push.py)."""
        return self.writer.read_state(items, links=links)

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        return self.writer.push(writes)
