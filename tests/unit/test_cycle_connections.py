"""A cycle opens each tracker's connector once, pulls and pushes through it, and always closes it."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select

from bridge.config import BridgeConfig, TrackerConfig, parse_config
from bridge.connector import Capability, ConnectorRegistry, Discovery
from bridge.domain import FieldWrite, ItemState, Milestone, Ref, RemotePage, WriteOutcome
from bridge.errors import FatalAPIError, RetriableAPIError
from bridge.store import Store
from bridge.store.models import RunRow
from bridge.store.pages import get_cursor
from bridge.sync.cycle import run_cycle
from bridge.sync.pull import pull_all

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVENTS: list[tuple[str, str]] = []
"""(what, tracker) for every open, pull and close of a `CountingConnector`."""


class CountingConnector:
    """A tracker of one milestone: one setup request when opened, one request per page and per push.

    Trackers named `down-*` cannot be opened; `broken-*` fail their pull."""

    kind: ClassVar[str] = "counting"
    capabilities: ClassVar[Capability] = Capability.PULL | Capability.WRITE_LABELS
    config_model: ClassVar[type[TrackerConfig]] = TrackerConfig

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.setup_requests = 1

    @classmethod
    def open(
        cls,
        name: str,
        config: TrackerConfig,
        secrets: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> CountingConnector:
        if name.startswith("down"):
            raise FatalAPIError(f"{name}: connection refused")
        EVENTS.append(("open", name))
        return cls(name)

    def discover(self) -> Discovery:
        return Discovery()

    def streams(self) -> Sequence[str]:
        return ["items"]

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        EVENTS.append(("pull", self.name))
        self.requests += 1
        if self.name.startswith("broken"):
            raise RetriableAPIError(f"{self.name}: HTTP 503")
        yield RemotePage(
            self.name, stream, milestones=[Milestone(self.name, "1", "M-1", "Launch", value=1.0)], cursor="1"
        )

    def census(self) -> Sequence[str]:
        self.requests += 1
        return ["1"]

    def stats(self) -> Mapping[str, int]:
        return {"requests": self.requests, "setup_requests": self.setup_requests}

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        EVENTS.append(("read_state", self.name))
        self.requests += 1
        return {ref: ItemState(ref, ref.remote_id) for ref in items}

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        EVENTS.append(("push", self.name))
        self.requests += 1
        return [WriteOutcome(write, ok=True) for write in writes]

    def close(self) -> None:
        EVENTS.append(("close", self.name))


def _tracker(name: str) -> str:
    return (
        f'[trackers.{name}]\nkind = "counting"\nurl = "https://{name}.example.com"\n'
        'status_map = { Open = "todo", Done = "done" }\n'
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, BridgeConfig, ConnectorRegistry]]:
    EVENTS.clear()
    registry = ConnectorRegistry(
        [EntryPoint(name="counting", value=f"{__name__}:CountingConnector", group="bridge.connectors")]
    )
    text = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n' + "".join(
        _tracker(name) for name in ("good", "down-one", "broken-one")
    )
    config = parse_config(text, registry)
    store = Store.open(config)
    try:
        yield store, config, registry
    finally:
        store.close()


def _runs(store: Store) -> list[tuple[str, str, str, int]]:
    table = RunRow.__table__  # type: ignore[attr-defined]
    with store.read() as conn:
        rows = conn.execute(select(table).where(table.c.source != "*").order_by(table.c.id)).all()
    return [(row.source, row.kind, row.status, row.requests) for row in rows]


def test_a_cycle_opens_each_connector_once_and_closes_it(
    world: tuple[Store, BridgeConfig, ConnectorRegistry],
) -> None:
    store, config, registry = world
    result = run_cycle(store, config, now=NOW, registry=registry)
    entries = {entry.tracker: entry for entry in result.trackers}
    assert [what for what, name in EVENTS if name == "good"] == ["open", "pull", "close"]
    assert [what for what, name in EVENTS if name == "broken-one"] == ["open", "pull", "close"]
    assert not [what for what, name in EVENTS if name == "down-one"], "it never opened: nothing to close"
    assert entries["good"].error is None and entries["good"].push is not None
    assert entries["down-one"].error is not None and "connection refused" in entries["down-one"].error
    assert entries["broken-one"].error is not None and entries["broken-one"].push is None, "not pushed"
    # one setup request a cycle; the pull's page (no census: the store held nothing of the tracker's
    # before this first pull), and nothing asked by the push
    assert entries["good"].requests == 2
    assert _runs(store) == [
        ("good", "pull", "ok", 2),
        ("down-one", "pull", "failed", 0),
        ("broken-one", "pull", "failed", 2),
        ("good", "push", "ok", 0),
    ]


def test_a_connector_is_closed_when_the_cycle_fails(
    world: tuple[Store, BridgeConfig, ConnectorRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config, registry = world

    def analysis_fails(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("analysis failed")

    monkeypatch.setattr("bridge.shared_analysis.analyse", analysis_fails)
    with pytest.raises(RuntimeError, match="analysis failed"):
        run_cycle(store, config, now=NOW, registry=registry)
    assert sorted(name for what, name in EVENTS if what == "open") == ["broken-one", "good"]
    assert sorted(name for what, name in EVENTS if what == "close") == ["broken-one", "good"]


def test_a_pull_alone_opens_and_closes_its_own_connector(
    world: tuple[Store, BridgeConfig, ConnectorRegistry],
) -> None:
    store, config, registry = world
    (result,) = pull_all(store, config, now=NOW, tracker="good", registry=registry)
    assert result.ok and (result.requests, result.setup_requests) == (1, 1)
    assert EVENTS == [("open", "good"), ("pull", "good"), ("close", "good")]
    # a pull into a store that holds the tracker's items takes its census when it is due
    (again,) = pull_all(store, config, now=NOW, tracker="good", registry=registry, full=True)
    assert again.ok and again.census and (again.requests, again.setup_requests) == (2, 1)


def test_a_first_pull_records_a_census_it_had_no_need_to_take(
    world: tuple[Store, BridgeConfig, ConnectorRegistry],
) -> None:
    """A store that held none of the tracker's items has none to mark deleted: the first pull records
    its census as taken (so the next cycle does not take one either), and the next one comes when the
    interval has passed."""
    store, config, registry = world
    (first,) = pull_all(store, config, now=NOW, tracker="good", registry=registry)
    assert first.ok and not first.census and first.requests == 1
    with store.read() as conn:
        cursor = get_cursor(conn, "good", "census")
    assert cursor is not None and cursor.value == "1" and cursor.updated_at == NOW, "the one item stored"
    (soon,) = pull_all(store, config, now=NOW + timedelta(hours=1), tracker="good", registry=registry)
    assert soon.ok and not soon.census and soon.requests == 1
    (later,) = pull_all(store, config, now=NOW + timedelta(hours=25), tracker="good", registry=registry)
    assert later.ok and later.census and later.requests == 2
