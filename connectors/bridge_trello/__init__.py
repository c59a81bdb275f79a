"""Trello connector (package `py-trello`): boards' cards and actions, read incrementally; custom fields,
labels, link attachments and card order written back."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.config import TrackerConfig
from bridge.connector import Capability, Discovery, SessionConnector
from bridge.domain import FieldWrite, ItemState, Ref, RemotePage, WriteOutcome
from bridge.http import RetryPolicy
from bridge_trello.config import TrelloTrackerConfig

if TYPE_CHECKING:
    from bridge_trello.pull import TrelloPuller
    from bridge_trello.push import TrelloWriter

__all__ = ["TrelloConnector", "TrelloTrackerConfig"]


class TrelloConnector(SessionConnector):
    """Reads Trello boards: one stream per board (driven by its actions), and a census of cards.

    Key results (and their objectives) come from the cards of `[okrs] list` on each board's stream.
    Writes go back as custom field values, labels, link attachments and card positions (see `push`)."""

    kind = "trello"
    capabilities = (
        Capability.DISCOVER
        | Capability.PULL
        | Capability.PULL_HISTORY
        | Capability.PULL_OKRS
        | Capability.WRITE_FIELDS
        | Capability.WRITE_LABELS
        | Capability.WRITE_LINKS
        | Capability.NATIVE_ORDER
    )
    config_model: ClassVar[type[TrackerConfig]] = TrelloTrackerConfig
    puller: TrelloPuller
    writer: TrelloWriter

    @classmethod
    def make_session(cls, name: str, config: Any, secrets: Mapping[str, str], policy: RetryPolicy) -> Any:
        """Connect, then read each board's lists, labels and custom fields (counted as setup requests)."""
        from bridge_trello.session import TrelloSession

        return TrelloSession(name, config, secrets, policy=policy)

    def make_puller(self, name: str, config: Any, session: Any) -> Any:
        from bridge_trello.pull import TrelloPuller
        from bridge_trello.push import TrelloWriter

        self.trello_config: TrelloTrackerConfig = config
        puller = TrelloPuller(name, config, session)
        # Built at open, so a managed field missing from every board is named before any cycle runs.
        self.writer = TrelloWriter(name, config, session, puller)
        return puller

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

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        """Each card's managed fields, labels, the bridge's attachments and its place in its list."""
        return self.writer.read_state(items, links=links)

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        """Apply `writes` in order, one outcome each; see `bridge_trello.push`."""
        return self.writer.push(writes)
