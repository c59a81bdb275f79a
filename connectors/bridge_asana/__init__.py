"""Asana connector (package `asana`, v5): projects' tasks, stories and goals, read incrementally; value
ranks, OKR fields and goal links, the bridge's tags and the order of sections written back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery
from bridge.goals import AdoptedGoal, GoalRequest
from bridge.http import RetryPolicy
from bridge.kit import SessionConnector
from bridge_asana.config import AsanaTrackerConfig

if TYPE_CHECKING:
    from bridge_asana.pull import AsanaPuller
    from bridge_asana.push import AsanaWriter
    from bridge_asana.session import AsanaSession

__all__ = ["AsanaConnector", "AsanaTrackerConfig"]


# The SDK-backed parts are named as strings so that loading the connector for its config model (as the
# registry does for every command) does not import the `asana` SDK.
class AsanaConnector(SessionConnector["AsanaTrackerConfig", "AsanaSession", "AsanaPuller", "AsanaWriter"]):
    """Reads an Asana workspace (one stream per project, events-driven; goals as OKRs; a census) and
    writes back to its tasks (see `bridge_asana.push`)."""

    kind = "asana"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_DEPENDENCIES
        | Capability.PULL_OKRS
        | Capability.WRITE_BACK
    )
    writer_at_open = True  # a `write` field the tracker lacks is named at open, before any cycle
    config_model: ClassVar[type[TrackerConfig]] = AsanaTrackerConfig

    @classmethod
    def connect(
        cls, name: str, config: AsanaTrackerConfig, secrets: Mapping[str, str], policy: RetryPolicy
    ) -> AsanaSession:
        """The SDK's client with the bridge's retry policy and Asana's rate limit (no request yet)."""
        from bridge_asana.session import AsanaSession

        return AsanaSession(name, config, secrets, policy=policy)

    def make_puller(self) -> AsanaPuller:
        """Reads each project's sections and custom fields (counted as setup requests)."""
        from bridge_asana.pull import AsanaPuller

        return AsanaPuller(self.name, self.config, self.session)

    def make_writer(self) -> AsanaWriter:
        from bridge_asana.push import AsanaWriter

        sections = {gid: name for found in self.puller.sections.values() for gid, name in found}
        writer = AsanaWriter(self.name, self.config, self.session, self.puller.custom_fields, sections)
        self.puller.held = writer.held  # pull pages carry what tasks hold, so the push reads none back
        return writer

    def discover(self) -> Discovery:
        """Workspaces and projects, sections, task subtypes, tags, custom fields, goals and time periods."""
        from bridge_asana.discover import discover

        return discover(self.session, self.config)

    def adopt_goal(self, request: GoalRequest) -> AdoptedGoal:
        """A goal for an adopted OKR draft, made once, its member tasks linked as supporting work."""
        from bridge_asana.goals import adopt_goal

        return adopt_goal(self.session, self.config, request)

    def stats(self) -> Mapping[str, int]:
        """HTTP requests (a Batch request counts once) and the Batch actions inside them."""
        return {**super().stats(), "batch_actions": self.session.batch_actions}
