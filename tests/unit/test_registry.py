"""Connectors are found through entry points, loaded lazily and checked."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from bridge.config import TrackerConfig
from bridge.connector import BuiltinConnector, Capability, ConnectorError, ConnectorRegistry


class GoodConnector(BuiltinConnector):
    kind = "good"
    capabilities = Capability.PULL | Capability.WRITE_LABELS
    config_model = TrackerConfig


class MislabelledConnector(BuiltinConnector):
    kind = "other"
    capabilities = Capability.NONE
    config_model = TrackerConfig


class NoModel:
    kind = "nomodel"
    capabilities = Capability.NONE


class NoReadState:
    """Everything of the `Connector` protocol but `read_state`."""

    kind = "noreadstate"
    capabilities = Capability.PULL
    config_model = TrackerConfig

    @classmethod
    def open(cls, name: str, config: TrackerConfig, secrets: object, *, stop: object = None) -> NoReadState:
        return cls()

    def discover(self) -> None: ...
    def streams(self) -> list[str]:
        return []

    def pull(self, stream: str, cursor: str | None, signpost: object) -> list[object]:
        return []

    def census(self) -> list[str]:
        return []

    def stats(self) -> dict[str, int]:
        return {}

    def push(self, writes: object) -> list[object]:
        return []

    def close(self) -> None: ...


def point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{target}", group="bridge.connectors")


def test_builtin_connectors_are_registered() -> None:
    registry = ConnectorRegistry.default()
    assert {"jira", "trello", "asana"} <= set(registry.kinds())
    for kind in ("jira", "trello", "asana"):
        connector = registry.load(kind)
        assert connector.kind == kind
        assert issubclass(connector.config_model, TrackerConfig)


def test_third_party_connector_loads_like_builtins() -> None:
    registry = ConnectorRegistry([point("good", "GoodConnector")])
    assert registry.load("good") is GoodConnector
    assert registry.load("good").capabilities.names() == ["pull", "write_labels"]


@pytest.mark.parametrize(
    ("name", "target", "words"),
    [
        ("other", "GoodConnector", "registered as 'other'"),
        ("nomodel", "NoModel", "config_model"),
        ("missing", "DoesNotExist", "failed to load"),
        ("mislabelled", "MislabelledConnector", "its kind is 'other'"),
        ("noreadstate", "NoReadState", r"it has no read_state\(\)"),
    ],
)
def test_broken_connectors_are_named(name: str, target: str, words: str) -> None:
    registry = ConnectorRegistry([point(name, target)])
    assert registry.kinds() == [name], "listing kinds loads nothing"
    with pytest.raises(ConnectorError, match=words):
        registry.load(name)


def test_unknown_kind() -> None:
    with pytest.raises(ConnectorError, match="no connector for kind 'gitlab'"):
        ConnectorRegistry([]).load("gitlab")


def test_builtin_operations_not_offered_say_so() -> None:
    from bridge.errors import FatalAPIError

    with pytest.raises(FatalAPIError, match="does not support"):
        GoodConnector.open("t", None, {})  # type: ignore[arg-type]


def test_every_member_of_the_protocol_is_checked() -> None:
    from bridge.connector import Connector, protocol_members

    attributes, methods = protocol_members(Connector)
    assert {"kind", "capabilities", "config_model"} <= set(attributes)
    assert {"open", "pull", "read_state", "push", "close"} <= set(methods)
    with pytest.raises(ConnectorError) as caught:
        ConnectorRegistry([point("noreadstate", "NoReadState")]).load("noreadstate")
    assert str(caught.value).endswith("is broken: it has no read_state()"), "only what it lacks is named"
