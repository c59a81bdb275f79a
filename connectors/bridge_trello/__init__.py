"""Trello connector (package `py-trello`): boards' cards and actions, read incrementally; custom fields,
labels, link attachments and card order written back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery
from bridge.http import RetryPolicy
from bridge.kit import SessionConnector
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.pull import TrelloPuller
from bridge_trello.push import TrelloWriter
from bridge_trello.session import TrelloSession

__all__ = ["TrelloConnector", "TrelloTrackerConfig"]


class TrelloConnector(SessionConnector[TrelloTrackerConfig, TrelloSession, TrelloPuller, TrelloWriter]):
    """Reads Trello boards: one stream per board (driven by its actions), and a census of cards.

    Key results (and their objectives) come from the cards of `[okrs] list` on each board's stream.
    Writes go back as custom field values, labels, link attachments and card positions (see
    `bridge_trello.push`)."""

    kind = "trello"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_OKRS
        | Capability.WRITE_BACK
    )
    writer_at_open = True  # a `write` field the tracker lacks is named at open, before any cycle
    config_model: ClassVar[type[TrackerConfig]] = TrelloTrackerConfig

    @classmethod
    def connect(
        cls, name: str, config: TrelloTrackerConfig, secrets: Mapping[str, str], policy: RetryPolicy
    ) -> TrelloSession:
        """The py-trello client over the bridge's HTTP session (no request yet: the puller reads the
        boards' lists, labels and custom fields, counted as setup)."""
        return TrelloSession(name, config, secrets, policy=policy)

    def make_puller(self) -> TrelloPuller:
        return TrelloPuller(self.name, self.config, self.session)

    def make_writer(self) -> TrelloWriter:
        writer = TrelloWriter(self.name, self.config, self.session, self.puller)
        self.puller.held = writer.state
        return writer

    def discover(self) -> Discovery:
        """Boards, lists, labels and custom fields, for writing the mapping."""
        from bridge_trello.discover import discover

        return discover(self.session, self.config, self.puller.records)
