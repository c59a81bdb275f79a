"""The session connector: one typed shape for a tracker reached over HTTP.

A connector built from the kit is four parts, each typed:
- its config (`ConfigT`, the pydantic model of its tracker table);
- a session (`SessionT`): the HTTP client with the retry policy, rate limit and request counts, made by
  `connect` when the connector opens (setup reads such as server info or a board's lists happen there);
- a puller (`PullerT`): the streams, their pages and the census, made by `make_puller`;
- a writer (`WriterT`, a `bridge.kit.Writer`): `read_state` and `push`, made by `make_writer` on first use
  (or at open, when a connector's `prepare` asks for it, so a bad `write` setting is named up front).

Its life is one cycle's: `open` once, `pull` each stream, `push`, `close`. The cycle owns it: it opens
the connector, hands it to the pull and then to the push, and closes it, so setup requests are made once
a cycle and the request counts come from one place (`stats`).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, Self, TypeVar

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector
from bridge.http import RateLimiter, RetryPolicy

if TYPE_CHECKING:
    from bridge.domain import FieldWrite, ItemState, Ref, RemotePage, WriteCost, WriteOutcome


class Session(Protocol):
    """What the kit needs of a connector's HTTP session (`bridge.http.RequestCounter` gives the counts)."""

    requests: int
    setup_requests: int
    limiter: RateLimiter

    def close(self) -> None: ...


class Puller(Protocol):
    """The read side of a tracker: its streams, their pages since a cursor, and the census."""

    def streams(self) -> Sequence[str]: ...

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]: ...

    def census(self) -> Sequence[str]: ...


class WriteSide(Protocol):
    """The write side of a tracker (a `bridge.kit.Writer` gives it): state read back, and the push."""

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]: ...

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]: ...

    def cost(self, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost: ...


ConfigT = TypeVar("ConfigT", bound=TrackerConfig)
SessionT = TypeVar("SessionT", bound=Session)
PullerT = TypeVar("PullerT", bound=Puller)
WriterT = TypeVar("WriterT", bound=WriteSide)


class SessionConnector(BuiltinConnector, Generic[ConfigT, SessionT, PullerT, WriterT]):
    """A connector made of a session, a puller and a writer; the vendor fills in how to make each."""

    config: ConfigT
    session: SessionT
    puller: PullerT
    writer_at_open: ClassVar[bool] = False
    """Make the writer when the connector opens, so that a `write` setting the tracker cannot serve (a
    field it lacks, or of the wrong type) is named before any cycle, not at the first push."""

    def __init__(self, name: str, config: ConfigT, secrets: Mapping[str, str], session: SessionT) -> None:
        super().__init__(name, config, secrets)
        self.config = config
        self.session = session
        self._writer: WriterT | None = None
        try:
            self.puller = self.make_puller()
            self.prepare()
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
    ) -> Self:
        """Connect to tracker `name`: the session (with its setup reads), the puller, and `prepare`."""
        typed = cls.typed_config(config)
        policy = RetryPolicy(attempts=config.retries, max_delay=config.retry_for.total_seconds())
        if stop is not None:
            policy.stop_event = stop
        return cls(name, typed, secrets, cls.connect(name, typed, secrets, policy))

    @classmethod
    def typed_config(cls, config: TrackerConfig) -> ConfigT:
        """`config` as this kind's model (a connector is only ever given its own kind's table)."""
        if not isinstance(config, cls.config_model):
            raise TypeError(f"{cls.kind} connector given a {type(config).__name__}")
        return config  # type: ignore[return-value]  # checked just above against config_model

    @classmethod
    @abstractmethod
    def connect(cls, name: str, config: ConfigT, secrets: Mapping[str, str], policy: RetryPolicy) -> SessionT:
        """The session to the tracker, with the setup reads every cycle needs counted as setup."""

    @abstractmethod
    def make_puller(self) -> PullerT:
        """The read side, over `self.session`."""

    def make_writer(self) -> WriterT:
        """The write side, over `self.session` (and what the puller read at setup)."""
        self._unavailable("writing back")

    def prepare(self) -> None:
        """Anything else to do once connected; by default, the writer is made now when `writer_at_open`."""
        if self.writer_at_open:
            self._writer = self.make_writer()

    @property
    def writer(self) -> WriterT:
        """The write side, made on first use."""
        if self._writer is None:
            self._writer = self.make_writer()
        return self._writer

    def streams(self) -> Sequence[str]:
        return self.puller.streams()

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        return self.puller.pull(stream, cursor, signpost)

    def census(self) -> Sequence[str]:
        return list(self.puller.census())

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        return self.writer.read_state(items, links=links)

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        return self.writer.push(writes)

    def cost(self, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost:
        """What `writes` would cost the tracker (requests) and its users (emails); nothing is sent."""
        return self.writer.cost(writes, watchers)

    def stats(self) -> Mapping[str, int]:
        return {"requests": self.session.requests, "setup_requests": self.session.setup_requests}

    @property
    def forks(self) -> bool:
        """Whether a first pull may read this tracker in a worker process (`bridge.sync.pull_worker`): the
        session can let go of the HTTP connections the worker inherits (`forget_connections()`, optional:
        drop the client's pooled connections without shutting them down, which the parent still uses)."""
        return callable(getattr(self.session, "forget_connections", None))

    def forget_connections(self) -> None:
        """In a pull's worker process: the inherited connections let go (see `forks`)."""
        forget = getattr(self.session, "forget_connections", None)
        if not callable(forget):
            raise TypeError(f"{type(self.session).__name__} cannot let go of its connections")
        forget()

    def worker_finished(self) -> None:
        """After a pull's worker process made this tracker's requests: the rate limit's bucket starts
        empty, so this process's next requests keep within the tracker's limit with the worker's."""
        self.session.limiter.spend()

    def close(self) -> None:
        self.session.close()
