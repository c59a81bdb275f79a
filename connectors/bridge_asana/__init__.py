"""Asana connector (package `asana`, v5): projects' tasks, stories and goals, read incrementally; value
ranks, OKR fields and goal links, the bridge's tags and the order of sections written back."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery, SessionConnector
from bridge.domain import FieldWrite, ItemState, Ref, RemotePage, WriteOutcome
from bridge.http import RetryPolicy
from bridge_asana.config import AsanaTrackerConfig

if TYPE_CHECKING:
    from bridge_asana.pull import AsanaPuller
    from bridge_asana.push import AsanaWriter

__all__ = ["AsanaConnector", "AsanaTrackerConfig"]


class AsanaConnector(SessionConnector):
    """Reads an Asana workspace (one stream per project, events-driven; goals as OKRs; a census) and
    writes back to its tasks (see `bridge_asana.push`)."""

    kind = "asana"
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
    config_model: ClassVar[type[TrackerConfig]] = AsanaTrackerConfig
    puller: AsanaPuller

    def __init__(self, name: str, config: TrackerConfig, secrets: Mapping[str, str], session: Any) -> None:
        super().__init__(name, config, secrets, session)
        from bridge_asana.push import AsanaWriter

        try:
            self.writer: AsanaWriter = AsanaWriter(
                name, self.asana_config, session, self.puller.custom_fields
            )
        except BaseException:
            session.close()
            raise

    @classmethod
    def make_session(cls, name: str, config: Any, secrets: Mapping[str, str], policy: RetryPolicy) -> Any:
        """Connect, then read each project's sections and custom fields (counted as setup requests)."""
        from bridge_asana.session import AsanaSession

        return AsanaSession(name, config, secrets, policy=policy)

    def make_puller(self, name: str, config: Any, session: Any) -> Any:
        from bridge_asana.pull import AsanaPuller

        self.asana_config: AsanaTrackerConfig = config
        return AsanaPuller(name, config, session)

    def discover(self) -> Discovery:
        """Workspaces and projects, sections, task subtypes, tags, custom fields, goals and time periods."""
        from bridge_asana.discover import discover

        return discover(self.session, self.asana_config)

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

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        """The managed fields, tags, goal links and place in its section of each task still there."""
        return self.writer.read_state(items, links=links)

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        """Apply `writes` ten to a Batch request; one outcome per write, in order."""
        return self.writer.push(writes)

    def stats(self) -> Mapping[str, int]:
        """HTTP requests (a Batch request counts once) and the Batch actions inside them."""
        return {**super().stats(), "batch_actions": self.session.batch_actions}
