"""The kit's proof: a fourth connector (tests/kit/toy.py, under 300 lines) installed as a plugin, through
the same pull contract as Jira, Trello and Asana, and through a write-back."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bridge.connector import ConnectorRegistry
from bridge.domain import FieldWrite, LinkTarget, Ref, WriteKind
from bridge.errors import AuthError, RetriableAPIError
from bridge_sandbox.server import Emulator, SandboxServer
from tests.contract.contract import PullContract, Truth
from tests.kit.toy import ToyConfig, ToyConnector
from tests.kit.toy_tracker import ToyTracker
from tests.sandbox.conftest import Control

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "toy-token-0123456789"
CATEGORY = {"To Do": "todo", "In Progress": "in_progress", "Done": "done"}


@pytest.fixture(autouse=True)
def toy_installed(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Install the toy connector as a third party would: an entry point in `bridge.connectors`, seen by
    this process and by the `bridge` subprocesses the contract starts."""
    site = tmp_path_factory.mktemp("site")
    info = site / "toy_tracker-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-tracker\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bridge.connectors]\ntoy = tests.kit.toy:ToyConnector\n")
    monkeypatch.syspath_prepend(str(site))
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path.rstrip(os.pathsep))
    importlib.invalidate_caches()
    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    yield
    ConnectorRegistry._default = None


def toy(emulator: Emulator) -> ToyTracker:
    assert isinstance(emulator, ToyTracker)
    return emulator


class TestToyPull(PullContract):
    tracker: ClassVar[str] = "toy"
    page_path: ClassVar[str] = "^/api/items$"
    kill_at_request: ClassVar[int] = 3  # the third page: the census comes after the stream

    def make_emulator(self) -> Emulator:
        return ToyTracker(TOKEN, self.seed_items)

    def tracker_table(self, base_url: str) -> str:
        return (
            f'[trackers.toy]\nkind = "toy"\nurl = "{base_url}"\ntoken_env = "TOY_TOKEN"\nteam = "toys"\n'
            '[trackers.toy.status_map]\n"To Do" = "todo"\n"In Progress" = "in_progress"\nDone = "done"\n'
        )

    def credentials(self, emulator: Emulator) -> dict[str, str]:
        return {"TOY_TOKEN": toy(emulator).token}

    def truth(self, emulator: Emulator) -> Truth:
        items = toy(emulator).items.values()
        milestones = {i["id"]: CATEGORY[i["status"]] for i in items if i["kind"] == "milestone"}
        tasks = {i["id"]: CATEGORY[i["status"]] for i in items if i["kind"] == "task"}
        changes = {h["id"] for i in items if i["kind"] == "task" for h in i["history"]}
        return Truth(milestones, tasks, changes)

    def create_item(self, control: Control) -> str:
        return str(control.edit(op="create", title="A new task", milestone="M-0001"))

    def move_item(self, control: Control, remote_id: str, status: str) -> None:
        control.edit(op="move", id=remote_id, status=status)

    def delete_item(self, control: Control, remote_id: str) -> None:
        control.edit(op="delete", id=remote_id)

    def any_task(self, emulator: Emulator) -> str:
        return next(i["id"] for i in toy(emulator).items.values() if i["kind"] == "task")


# ---- writing back --------------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[SandboxServer, ToyConnector]]:
    server = SandboxServer(ToyTracker(TOKEN, 30)).start()
    table: dict[str, Any] = {"kind": "toy", "url": server.base_url, "token_env": "TOY_TOKEN",
                             "status_map": CATEGORY, "write": {"rank_field": "Rank"}}  # fmt: skip
    connector = ToyConnector.open("toy", ToyConfig.model_validate(table), {"token_env": TOKEN})
    yield server, connector
    connector.close()
    server.stop()


def test_the_registry_finds_the_plugin_and_checks_it() -> None:
    registry = ConnectorRegistry.default()
    assert "toy" in registry.kinds()
    assert registry.load("toy") is ToyConnector


def test_a_push_writes_rank_and_labels_in_one_request_per_item(
    served: tuple[SandboxServer, ToyConnector],
) -> None:
    server, connector = served
    task = Ref("toy", "T-0011")
    writes = [
        FieldWrite(task, "rank", 3, kind=WriteKind.FIELD),
        FieldWrite(task, "mb-bottleneck", "red", kind=WriteKind.LABEL_ADD),
        FieldWrite(task, "rank", "third", kind=WriteKind.FIELD),  # the vendor's refusal
        FieldWrite(
            task,
            "milestone-bridge:kr:1",
            LinkTarget("milestone-bridge:kr:1", "https://x", "KR"),
            kind=WriteKind.LINK,
        ),
        FieldWrite(Ref("toy", "T-0099"), "rank", 1, kind=WriteKind.FIELD),  # no such item
        FieldWrite(Ref("jira", "10001"), "rank", 1, kind=WriteKind.FIELD),  # another tracker's
    ]
    before = server.emulator.requests.count
    outcomes = connector.push(writes)
    assert [o.ok for o in outcomes] == [True, True, False, False, False, False]
    assert "not a number" in str(outcomes[2].error) and "no link writes" in str(outcomes[3].error)
    assert "HTTP 404" in str(outcomes[4].error) and "belongs to tracker 'jira'" in str(outcomes[5].error)
    assert all(o.error is None or o.error.startswith("toy: ") for o in outcomes)
    assert server.emulator.requests.count - before == 2, "one PATCH per item written"
    item = toy(server.emulator).items["T-0011"]
    assert item["rank"] == 3 and item["labels"] == ["mb-bottleneck"]
    state = connector.read_state([task, Ref("toy", "T-0099")])
    assert list(state) == [task] and state[task].fields == {"rank": 3}
    assert connector.push(writes[:2])[0].ok, "writing the same again is a success"


def test_a_tracker_that_stays_down_stops_the_push_after_three_failed_edits(
    served: tuple[SandboxServer, ToyConnector],
) -> None:
    server, connector = served
    connector.session.policy.attempts = 1
    Control(server.base_url).faults({"kind": "5xx", "status": 503, "count": 10, "path": "^/api/items/"})
    writes = [FieldWrite(Ref("toy", f"T-00{n}"), "rank", n, kind=WriteKind.FIELD) for n in range(11, 16)]
    before = server.emulator.requests.count
    with pytest.raises(RetriableAPIError, match="HTTP 503"):
        connector.push(writes)
    assert server.emulator.requests.count - before == 3, "the fourth and fifth edits were not sent"


def test_refused_credentials_are_named() -> None:
    server = SandboxServer(ToyTracker(TOKEN, 10)).start()
    try:
        table = {"kind": "toy", "url": server.base_url, "token_env": "TOY_TOKEN", "status_map": CATEGORY}
        with pytest.raises(AuthError, match="credentials were refused"):
            ToyConnector.open("toy", ToyConfig.model_validate(table), {"token_env": "wrong"})
    finally:
        server.stop()


def test_the_readme_shows_the_toy_connector_as_it_is() -> None:
    from tests.cli.test_readme import blocks, section

    source = {line.strip() for line in (ROOT / "tests" / "kit" / "toy.py").read_text().splitlines()}
    shown = [
        line.strip()
        for block in blocks(section("Writing a connector"), "python")
        for line in block.splitlines()
    ]
    assert len(shown) > 10
    assert [line for line in shown if line and line not in source] == []
