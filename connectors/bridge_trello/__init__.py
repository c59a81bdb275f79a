"""Trello connector (package `py-trello`): boards' cards and actions, read incrementally."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery, SessionConnector
from bridge.domain import RemotePage
from bridge.http import RetryPolicy
from bridge_trello.config import TrelloTrackerConfig

if TYPE_CHECKING:
    from bridge_trello.pull import TrelloPuller

__all__ = ["TrelloConnector", "TrelloTrackerConfig"]


class TrelloConnector(SessionConnector):
    """Reads Trello boards: one stream per board (driven by its actions), and a census of cards.

    Key results (and their objectives) come from the cards of `[okrs] list` on each board's stream."""

    kind = "trello"
    capabilities = Capability.DISCOVER | Capability.PULL | Capability.PULL_HISTORY | Capability.PULL_OKRS
    config_model: ClassVar[type[TrackerConfig]] = TrelloTrackerConfig
    puller: TrelloPuller

    @classmethod
    def make_session(cls, name: str, config: Any, secrets: Mapping[str, str], policy: RetryPolicy) -> Any:
        """Connect, then read each board's lists, labels and custom fields (counted as setup requests)."""
        from bridge_trello.session import TrelloSession

        return TrelloSession(name, config, secrets, policy=policy)

    def make_puller(self, name: str, config: Any, session: Any) -> Any:
        from bridge_trello.pull import TrelloPuller

        self.trello_config: TrelloTrackerConfig = config
        return TrelloPuller(name, config, session)

    def discover(self) -> Discovery:
        """Boards, lists, labels and custom fields, for writing the mapping."""
        from bridge_trello.discover import discover

        return discover(self.session, self.trello_config, self.puller.records)

    def streams(self) -> Sequence[str]:
        """`board:<id>` for each configured board, in the config's order."""
        return self.puller.streams()

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        from bridge_trello.pull import board_stream

        for board in self.trello_config.boards:
            if stream == board_stream(board):
                return self.puller.pull_board(board, cursor, signpost)
        raise ValueError(f"the trello connector has no stream {stream!r}")
