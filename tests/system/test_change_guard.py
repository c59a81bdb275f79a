"""The change guard trips on the same relative change on Jira, Trello and Asana.

The demo's organisation (one generated portfolio, rendered for each vendor) is synced once; then most
statuses are mapped to done, so every ranked item would lose its rank at once. Each tracker also lists
items that hold nothing of the bridge's (Trello's cards that no milestone claims outnumber its ranked
ones): weighed against every item, Jira and Asana were stopped while Trello's 73 writes went out.
Weighed against the items holding the bridge's values, every tracker is stopped, with the same message,
and nothing is written; `--force` then applies the plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.demo import CONFIG_NAME, STORE_NAME, Sandbox, render_config, start_sandbox
from bridge.store import Store
from bridge.store.written import load_written
from bridge.sync.cycle import run_cycle

TRACKERS = ("jira", "trello", "asana")
GUARD = re.compile(
    r"^(?P<tracker>\w+): the plan would change (?P<changed>\d+) of (?P<total>\d+) items \(\d+%\) and the "
    r"values of (?P<held_changed>\d+) of the (?P<held>\d+) items holding the bridge's values "
    r"\((?P<share>\d+)%\), more than push\.max_change_share \(50%\) allows; "
    r"look at it with --dry-run, then run again with --force$"
)


@dataclass
class Demo:
    sandbox: Sandbox
    config_path: Path
    config: BridgeConfig
    store: Store

    def reload(self, text: str) -> None:
        self.config_path.write_text(text)
        self.config = load_config(self.config_path, ConnectorRegistry.default())


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    sandbox = start_sandbox(7)
    try:
        for name, value in sandbox.secrets.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / CONFIG_NAME
        path.write_text(render_config(sandbox, tmp_path / STORE_NAME))
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Demo(sandbox, path, config, store)
        finally:
            store.close()
    finally:
        sandbox.stop()


def test_most_statuses_moved_to_done_is_stopped_alike_on_every_tracker(demo: Demo) -> None:
    # Tasks hold their milestone's rank here, so the change reaches far more than ten items per tracker
    # (the demo has too few milestones for the guard to weigh their ranks alone).
    demo.reload(
        demo.config_path.read_text().replace(
            'rank_value = "score"\n', 'rank_value = "score"\ntasks_inherit = true\n'
        )
    )
    first = run_cycle(demo.store, demo.config, now=datetime.now(UTC))
    assert first.ok, [t.error for t in first.trackers]
    with demo.store.read() as conn:
        before = {name: load_written(conn, name).rows for name in TRACKERS}

    text = demo.config_path.read_text().replace("max_change_share = 1.0", "max_change_share = 0.5")
    for category in ('"in_progress"', '"waiting"'):
        text = text.replace(f"= {category}", '= "done"')
    demo.reload(text)
    stopped = run_cycle(demo.store, demo.config, now=datetime.now(UTC))

    went_out = {t.tracker: t.push.done for t in stopped.trackers if t.push is not None}
    assert went_out == {}, f"writes went out on {went_out}"
    shares = {}
    for entry in stopped.trackers:
        found = GUARD.match(entry.error or "")
        assert found is not None, entry.error
        assert found["tracker"] == entry.tracker
        assert int(found["held_changed"]) >= 10
        shares[entry.tracker] = int(found["share"])
    assert sorted(shares) == sorted(TRACKERS)
    assert all(share > 90 for share in shares.values()), shares
    with demo.store.read() as conn:
        assert {name: load_written(conn, name).rows for name in TRACKERS} == before, "nothing written"

    forced = run_cycle(demo.store, demo.config, now=datetime.now(UTC), force=True)
    assert forced.ok, [t.error for t in forced.trackers]
    assert all(t.push is not None and t.push.done > 0 for t in forced.trackers)
