"""Trello connector (package `py-trello`): boards' cards and actions, read incrementally."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability, Connector
from bridge.domain import RemotePage
from bridge.http import RetryPolicy
from bridge_trello.config import TrelloTrackerConfig

__all__ = ["TrelloConnector", "TrelloTrackerConfig"]


class TrelloConnector(BuiltinConnector):
    """Reads Trello boards: one stream per board (driven by its actions), and a census of cards."""

    kind = "trello"
    capabilities = Capability.PULL | Capability.PULL_HISTORY
    config_model: ClassVar[type[TrackerConfig]] = TrelloTrackerConfig

    def __init__(self, name: str, config: TrackerConfig, secrets: Mapping[str, str], session: Any) -> None:
        from bridge_trello.pull import TrelloPuller

        super().__init__(name, config, secrets)
        assert isinstance(config, TrelloTrackerConfig)
        self.trello_config = config
        self.session = session
        try:
            self.puller = TrelloPuller(name, config, session)
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
        """Connect, then read each board's lists, labels and custom fields (counted as setup requests)."""
        from bridge_trello.session import TrelloSession

        assert isinstance(config, TrelloTrackerConfig)
        policy = RetryPolicy(stop_event=stop) if stop is not None else RetryPolicy()
        return cls(name, config, secrets, TrelloSession(name, config, secrets, policy=policy))

    def streams(self) -> Sequence[str]:
        """`board:<id>` for each configured board, in the config's order."""
        return self.puller.streams()

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        from bridge_trello.pull import board_stream

        for board in self.trello_config.boards:
            if stream == board_stream(board):
                return self.puller.pull_board(board, cursor, signpost)
        raise ValueError(f"the trello connector has no stream {stream!r}")

    def census(self) -> Sequence[str]:
        """Every card id of every configured board, and the ids of label milestones."""
        return self.puller.census()

    def stats(self) -> Mapping[str, int]:
        """HTTP requests (a batch request counts once), setup reads apart."""
        return {"requests": self.session.requests, "setup_requests": self.session.setup_requests}

    def close(self) -> None:
        self.session.close()
