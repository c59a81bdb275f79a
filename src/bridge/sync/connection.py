"""One tracker's connector for one cycle: opened once, on first use, closed once, its requests counted in
one place.

A cycle opens each tracker's connector for its pull and keeps it for the push, so the setup requests
(server info, fields, boards) are made once a cycle. `counts()` reads the connector's counters and says
what was asked since the last reading: read after the pull and after the push, it splits the cycle's
requests into each step's share.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

from bridge.config import BridgeConfig
from bridge.connector import Connector, ConnectorRegistry


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Requests a connector made: `setup_requests` learnt the tracker's shape, `requests` did the work."""

    requests: int = 0
    setup_requests: int = 0

    @property
    def total(self) -> int:
        return self.requests + self.setup_requests


class TrackerConnection:
    """Tracker `name`'s connector, opened on the first `connector()` call and closed by `close()`."""

    def __init__(
        self,
        config: BridgeConfig,
        name: str,
        *,
        registry: ConnectorRegistry | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.registry = registry
        self.stop = stop
        self._connector: Connector | None = None
        self._counted = RequestCounts()
        self._elsewhere = RequestCounts()
        """Requests the connector made in another process, told by `heard`."""
        self._closed = False

    @property
    def opened(self) -> bool:
        return self._connector is not None

    def connector(self) -> Connector:
        """The open connector; the first call opens it (raising `ConfigError` for missing secrets, or
        the connector's `BridgeError` when the tracker cannot be reached)."""
        if self._closed:
            raise RuntimeError(f"{self.name}: the connection is closed")
        if self._connector is None:
            tracker = self.config.tracker(self.name)
            secrets = self.config.require_secrets(self.name)
            registry = self.registry or ConnectorRegistry.default()
            self._connector = registry.load(tracker.kind).open(self.name, tracker, secrets, stop=self.stop)
        return self._connector

    def counts(self) -> RequestCounts:
        """The requests made since the previous call (since opening, the first time); none unopened."""
        if self._connector is None:
            return RequestCounts()
        stats = self._connector.stats()
        now = RequestCounts(
            int(stats.get("requests", 0)) + self._elsewhere.requests,
            int(stats.get("setup_requests", 0)) + self._elsewhere.setup_requests,
        )
        since = RequestCounts(
            now.requests - self._counted.requests, now.setup_requests - self._counted.setup_requests
        )
        self._counted = now
        return since

    def heard(self, requests: int, setup_requests: int) -> None:
        """Count requests the connector made in another process (a pull's worker) as its own."""
        self._elsewhere = RequestCounts(
            self._elsewhere.requests + requests, self._elsewhere.setup_requests + setup_requests
        )

    def close(self) -> None:
        """Close the connector when it was opened; later calls do nothing."""
        self._closed = True
        connector, self._connector = self._connector, None
        if connector is not None:
            connector.close()

    def __enter__(self) -> TrackerConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
