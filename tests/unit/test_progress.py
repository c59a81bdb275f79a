"""Progress of pulls and pushes: the observer hears every page and every chunk of writes, in order and
with the right counts; the terminal display shows them; nothing is shown when stderr is not a terminal."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import bridge_jira.pull
from bridge import progress as progress_module
from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import FieldWrite, Ref, WriteKind, WriteOutcome
from bridge.progress import Progress, TerminalProgress, for_terminal
from bridge.store import Store
from bridge.sync import push as push_module
from bridge.sync.cycle import run_cycle
from bridge.sync.pull import pull_all
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.system.test_sync_jira import OKRS


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.closed = False

    def pull_started(self, tracker: str) -> None:
        self.events.append(("pull_started", tracker))

    def stream_started(self, tracker: str, stream: str) -> None:
        self.events.append(("stream", tracker, stream))

    def pulled(self, tracker: str, stream: str, pages: int, items: int) -> None:
        self.events.append(("page", tracker, stream, pages, items))

    def pull_finished(self, tracker: str, pages: int, items: int, error: str | None) -> None:
        self.events.append(("pull_finished", tracker, pages, items, error))

    def push_started(self, tracker: str, planned: int) -> None:
        self.events.append(("push_started", tracker, planned))

    def pushed(self, tracker: str, done: int, planned: int) -> None:
        self.events.append(("pushed", tracker, done, planned))

    def sent(self, tracker: str, outcomes: Sequence[WriteOutcome]) -> None:
        self.events.append(("sent", tracker, sum(o.ok for o in outcomes), sum(not o.ok for o in outcomes)))

    def push_finished(self, tracker: str, done: int, failed: int) -> None:
        self.events.append(("push_finished", tracker, done, failed))

    def close(self) -> None:
        self.closed = True

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]


@dataclass
class Jira:
    config: BridgeConfig
    path: Path
    store: Store


@pytest.fixture
def jira(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Jira]:
    seed = render_jira(build(seed=5, per_tracker=60, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = JiraEmulator.from_search(seed, flavour="cloud")
    emulator.add_custom_field("Value Rank", "number")
    emulator.add_custom_field("Key Result", "string")
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n' + jira_table(server.base_url) + OKRS
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Jira(config, path, store)
        finally:
            store.close()


def test_a_pull_reports_each_page_with_running_counts(jira: Jira, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 10)
    recorder = Recorder()
    (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC), progress=recorder)
    assert result.ok and result.pages > 1
    assert recorder.events[0] == ("pull_started", "t")
    assert recorder.events[-1] == ("pull_finished", "t", result.pages, result.items, None)
    pages = recorder.of("page")
    assert [event[3] for event in pages] == list(range(1, result.pages + 1))
    items = [event[4] for event in pages]
    assert items == sorted(items) and items[-1] == result.items
    # Each stream is announced before its pages.
    seen: list[str] = []
    for event in recorder.events:
        if event[0] == "stream":
            seen.append(event[2])
        elif event[0] == "page":
            assert seen and event[2] == seen[-1]
    # a first pull into an empty store has nothing to look for deletions among: no census
    assert seen == ["issues"]
    again = Recorder()
    pull_all(jira.store, jira.config, now=datetime.now(UTC), progress=again, full=True)
    assert [event[2] for event in again.events if event[0] == "stream"] == ["issues", "census"]


def test_a_cycle_reports_the_writes_in_chunks_and_applies_them_all(
    jira: Jira, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push_module, "PUSH_CHUNK", 7)
    recorder = Recorder()
    result = run_cycle(jira.store, jira.config, now=datetime.now(UTC), progress=recorder)
    assert result.ok, [t.error for t in result.trackers]
    (entry,) = result.trackers
    assert entry.push is not None and entry.plan is not None
    planned = len(entry.plan.writes)
    assert planned > 14, "enough writes for several chunks"
    kinds = [event[0] for event in recorder.events]
    assert kinds.index("pull_finished") < kinds.index("push_started")
    assert recorder.of("push_started") == [("push_started", "t", planned)]
    done = [event[2] for event in recorder.of("pushed")]
    assert len(done) > 1 and done == sorted(done) and done[-1] == planned
    assert all(event[3] == planned for event in recorder.of("pushed"))
    sent = recorder.of("sent")
    assert [event[2] + event[3] for event in sent] == [b - a for a, b in zip([0, *done], done, strict=False)]
    assert sum(event[2] for event in sent) == planned and not any(event[3] for event in sent)
    assert recorder.events[-1] == ("push_finished", "t", entry.push.done, entry.push.failed)
    assert entry.push.done == planned and entry.push.failed == 0
    again = run_cycle(jira.store, jira.config, now=datetime.now(UTC))
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == [], "all were applied"


def test_the_terminal_display_shows_pages_items_and_writes(jira: Jira) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150, color_system=None)
    with TerminalProgress(console) as display:
        result = run_cycle(jira.store, jira.config, now=datetime.now(UTC), progress=display)
    assert result.ok
    text = out.getvalue()
    pulled = result.trackers[0].pull
    planned = result.trackers[0].plan
    assert pulled is not None and planned is not None
    assert "t: pulled" in text
    pages = f"{pulled.pages} page" + ("s" if pulled.pages != 1 else "")
    assert f"{pulled.items:,} items in {pages}" in text
    assert "items/s" in text
    assert "t: pushed" in text
    assert f"{len(planned.writes)}/{len(planned.writes)} writes" in text


def test_the_cli_shows_no_progress_when_stderr_is_not_a_terminal(jira: Jira, run_cli: Any) -> None:
    result = run_cli("sync", "--config", str(jira.path))
    assert result.exit_code == 0, result.stderr
    assert "writes planned" in result.stdout
    for text in ("items/s", "pulling", "pulled", "/s", "━"):
        assert text not in result.stderr
    pulled = run_cli("pull", "--config", str(jira.path))
    assert pulled.exit_code == 0, pulled.stderr
    assert "items/s" not in pulled.stderr and "pulling" not in pulled.stderr


def test_only_a_terminal_gets_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    assert for_terminal(io.StringIO()) is None

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(for_terminal(Terminal()), TerminalProgress)
    monkeypatch.setenv("TERM", "dumb")
    assert for_terminal(Terminal()) is None
    assert progress_module.for_terminal is for_terminal


def ref(item: str) -> Ref:
    return Ref("t", item)


def test_chunks_keep_an_items_writes_together_and_the_order() -> None:
    writes = [
        FieldWrite(ref(str(item)), field, value)
        for item in range(10)
        for field, value in (("rank", item), ("okr", "KR1"), ("labels", None))
    ]
    chunks = push_module._chunks(writes, 4)
    assert [w for chunk in chunks for w in chunk] == writes
    assert [len(chunk) for chunk in chunks] == [6, 6, 6, 6, 6]
    for chunk in chunks:
        assert len({w.item for w in chunk}) * 3 == len(chunk)


def test_chunks_keep_moves_in_one_container_together_up_to_the_size() -> None:
    edits = [FieldWrite(ref("1"), "rank", 1), FieldWrite(ref("2"), "rank", 2)]
    moves = [
        FieldWrite(ref(str(10 + i)), "list", (ref(str(9 + i)), None), kind=WriteKind.ORDER) for i in range(9)
    ]
    chunks = push_module._chunks(edits + moves, 2)
    assert [w for chunk in chunks for w in chunk] == edits + moves
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 2, 2, 1]
    assert push_module._chunks(edits + moves, 50) == [edits + moves]
    assert push_module._chunks([], 50) == []


def test_without_an_observer_the_connector_gets_every_write_at_once() -> None:
    calls: list[int] = []

    class Connector:
        def push(self, writes: list[FieldWrite]) -> list[Any]:
            calls.append(len(writes))
            return []

    writes = [FieldWrite(ref(str(i)), "rank", i) for i in range(120)]
    push_module._send(Connector(), "t", writes, None)  # type: ignore[arg-type]
    assert calls == [120]
    calls.clear()
    recorder = Recorder()
    push_module._send(Connector(), "t", writes, recorder)  # type: ignore[arg-type]
    assert calls == [50, 50, 20]
    assert recorder.of("push_started") == [("push_started", "t", 120)]
