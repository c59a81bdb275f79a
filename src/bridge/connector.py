"""The contract every tracker connector meets, and the registry that finds them.

Connectors are found through the entry-point group `bridge.connectors`, built-in ones included, so a
third party adds a tracker the same way: register a class meeting `Connector`. Entry points are loaded
lazily (listing the kinds imports nothing) and checked when loaded, so a broken plugin is named plainly
instead of failing somewhere deep in a cycle.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol, runtime_checkable

from bridge.config import TrackerConfig
from bridge.errors import UserError

if TYPE_CHECKING:
    from bridge.domain import FieldWrite, ItemState, Ref, RemotePage, WriteOutcome

ENTRY_POINT_GROUP = "bridge.connectors"

log = logging.getLogger(__name__)


class Capability(enum.Flag):
    """What a connector can do; the bridge only asks for what a connector declares."""

    NONE = 0
    DISCOVER = enum.auto()
    PULL = enum.auto()
    PULL_HISTORY = enum.auto()
    PULL_DEPENDENCIES = enum.auto()
    PULL_OKRS = enum.auto()
    WRITE_FIELDS = enum.auto()
    WRITE_LABELS = enum.auto()
    WRITE_LINKS = enum.auto()
    NATIVE_ORDER = enum.auto()
    WRITE_BACK = WRITE_FIELDS | WRITE_LABELS | WRITE_LINKS | NATIVE_ORDER
    """Every kind of write: a connector declaring it writes fields, labels, links and order."""

    def names(self) -> list[str]:
        return [
            member.name.lower() for member in Capability if member.value and member in self and member.name
        ]


@dataclass(frozen=True, slots=True)
class DiscoveredField:
    id: str
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Discovery:
    """What `bridge discover` shows an admin writing a mapping."""

    containers: Sequence[tuple[str, str]] = ()
    """Projects, boards or workspaces as (id, name)."""
    statuses: Sequence[tuple[str, str]] = ()
    item_types: Sequence[str] = ()
    labels: Sequence[str] = ()
    fields: Sequence[DiscoveredField] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """A tracker client that speaks the vendor's API and translates to `bridge.domain`, nothing more."""

    kind: ClassVar[str]
    """The value of `kind` in a tracker table; also the entry point's name."""
    capabilities: ClassVar[Capability]
    config_model: ClassVar[type[TrackerConfig]]
    """The pydantic model of this kind's tracker table (a `TrackerConfig` subclass)."""

    @classmethod
    def open(
        cls,
        name: str,
        config: TrackerConfig,
        secrets: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> Connector:
        """A connected client for tracker `name`; `secrets` come from the variables the config names.

        `stop`, when set, cuts short any wait (Retry-After, backoff, rate limit) so shutdown is prompt.
        """
        ...

    def discover(self) -> Discovery: ...

    def streams(self) -> Sequence[str]:
        """The streams `pull` reads, in order; each has its own cursor."""
        ...

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        """Pages of `stream` changed since `cursor`, never past `signpost` (the cycle's start)."""
        ...

    def census(self) -> Sequence[str]:
        """The remote ids of every item the tracker still has (to find deletions)."""
        ...

    def stats(self) -> Mapping[str, int]:
        """Counters for reports: at least `requests` and `setup_requests`."""
        ...

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        """What `items` hold now of what the bridge manages (fields, labels, its links, order).

        Read in as few requests as the vendor allows (search by ids, batch); an item the tracker no
        longer has is left out of the answer. `links` names the items whose links matter (those the
        bridge wants linked or linked before); None means all. A connector may read links for more.
        """
        ...

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        """Apply `writes`, batched where the vendor allows; one outcome per write, in order.

        A write that fails is reported in its outcome (`ok=False`, the error redacted) and the others go
        on; only a failure that stops every write (credentials refused, tracker down) raises.
        """
        ...

    def close(self) -> None: ...


class ConnectorError(UserError):
    """An installed connector is broken or missing."""


class ConnectorRegistry:
    """Kinds of tracker known through entry points; each loaded and checked on first use."""

    _default: ClassVar[ConnectorRegistry | None] = None

    def __init__(self, points: Iterable[EntryPoint]) -> None:
        self._points: dict[str, EntryPoint] = {}
        for point in points:
            if point.name in self._points:
                log.warning(
                    "connector kind %s is registered twice (%s and %s); using the first",
                    point.name,
                    self._points[point.name].value,
                    point.value,
                )
                continue
            self._points[point.name] = point
        self._loaded: dict[str, type[Connector]] = {}

    @classmethod
    def default(cls) -> ConnectorRegistry:
        """The registry of installed connectors (read once per process)."""
        if cls._default is None:
            cls._default = cls(entry_points(group=ENTRY_POINT_GROUP))
        return cls._default

    def kinds(self) -> list[str]:
        return sorted(self._points)

    def entry_point(self, kind: str) -> EntryPoint:
        try:
            return self._points[kind]
        except KeyError:
            known = ", ".join(self.kinds()) or "none"
            raise ConnectorError(
                f"no connector for kind {kind!r} is installed (installed: {known})"
            ) from None

    def load(self, kind: str) -> type[Connector]:
        if kind not in self._loaded:
            point = self.entry_point(kind)
            try:
                target = point.load()
            except Exception as exc:  # a plugin may fail in any way on import
                raise ConnectorError(f"connector {kind!r} ({point.value}) failed to load: {exc}") from exc
            self._loaded[kind] = check_connector(kind, point.value, target)
        return self._loaded[kind]

    def config_model(self, kind: str) -> type[TrackerConfig]:
        return self.load(kind).config_model


_CHECKED_ATTRIBUTES = ("kind", "capabilities", "config_model")
"""`Connector` attributes `check_connector` checks for their value, not only for being there."""


def protocol_members(protocol: type) -> tuple[list[str], list[str]]:
    """The public members a protocol declares in its own body, as (attributes, methods), in order."""
    attributes = [name for name in vars(protocol).get("__annotations__", {}) if not name.startswith("_")]
    methods = [
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, classmethod | staticmethod))
    ]
    return attributes, methods


def check_connector(kind: str, origin: str, target: object) -> type[Connector]:
    """Raise `ConnectorError` naming what a connector class lacks of the `Connector` protocol."""
    if not isinstance(target, type):
        raise ConnectorError(f"connector {kind!r} ({origin}) is not a class")
    problems = []
    if getattr(target, "kind", None) != kind:
        problems.append(f"its kind is {getattr(target, 'kind', None)!r}, but it is registered as {kind!r}")
    if not isinstance(getattr(target, "capabilities", None), Capability):
        problems.append("capabilities is not a bridge.connector.Capability")
    model = getattr(target, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, TrackerConfig)):
        problems.append("config_model is not a subclass of bridge.config.TrackerConfig")
    attributes, methods = protocol_members(Connector)
    for attribute in attributes:
        if attribute not in _CHECKED_ATTRIBUTES and not hasattr(target, attribute):
            problems.append(f"it has no {attribute}")
    for method in methods:
        if not callable(getattr(target, method, None)):
            problems.append(f"it has no {method}()")
    if problems:
        raise ConnectorError(f"connector {kind!r} ({origin}) is broken: {'; '.join(problems)}")
    return target


class BuiltinConnector:
    """Shared base of the bundled connectors: an operation a connector does not offer says so plainly."""

    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capability] = Capability.NONE
    config_model: ClassVar[type[TrackerConfig]]

    def __init__(self, name: str, config: TrackerConfig, secrets: Mapping[str, str]) -> None:
        self.name = name
        self.config = config
        self._secrets = dict(secrets)

    @classmethod
    def open(
        cls,
        name: str,
        config: TrackerConfig,
        secrets: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> Connector:
        cls._unavailable("connecting")

    def discover(self) -> Discovery:
        self._unavailable("discover")

    def streams(self) -> Sequence[str]:
        return ()

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        self._unavailable("pull")

    def census(self) -> Sequence[str]:
        self._unavailable("census")

    def stats(self) -> Mapping[str, int]:
        return {"requests": 0, "setup_requests": 0}

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        self._unavailable("reading items' state for write-back")

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        self._unavailable("push")

    def close(self) -> None:
        return None

    @classmethod
    def _unavailable(cls, what: str) -> NoReturn:
        from bridge.errors import FatalAPIError

        raise FatalAPIError(f"the {cls.kind} connector does not support {what} in this version")
