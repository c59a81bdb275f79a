"""A simulated month against the Jira sandbox, on the sandbox's clock: the payments team finishes fewer
tasks each week (three, then one, then none), a cycle runs each week, and

- every re-evaluation is kept: each milestone's forecast history has its first forecast and then moves
  later, with "throughput fell" among the reasons;
- a milestone whose P85 moved later by more than `analytics.slip_share` of the time it had left within
  `analytics.slip_window` carries the slipping label, added exactly once over the month (no cycle writes
  it again), with the history's moves as its reason;
- a milestone whose tasks are all done is not slipping: its forecast is today, moving with the days, and
  its history says it waits to be marked done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Ref, WriteKind
from bridge.store import Store, forecast_history
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.sandbox.conftest import Control

START = datetime(2026, 6, 1, 12, tzinfo=UTC)
"""The sandbox's clock at the first cycle: just after the generated history ends."""
LABEL = "mb-slipping"
FINISHED_PER_WEEK = (3, 1, 0, 0)
"""Tasks the payments team finishes in each week of the month: its throughput falls."""
ADDED = 12
"""Tasks added to one open epic before the month starts, so it stays open all month."""


@dataclass
class Month:
    emulator: JiraEmulator
    control: Control
    store: Store
    config_path: Path

    def cycle(self, now: datetime) -> CycleResult:
        config = load_config(self.config_path, ConnectorRegistry.default())
        result = run_cycle(self.store, config, now=now)
        assert result.ok, [t.error for t in result.trackers]
        return result

    def open_tasks(self, project: str) -> list[str]:
        return sorted(
            (
                issue.key
                for issue in self.emulator.issues.values()
                if issue.key.startswith(f"{project}-")
                and issue.fields["issuetype"]["name"] != "Epic"
                and issue.fields["status"]["statusCategory"]["key"] != "done"
            ),
            key=lambda key: int(key.split("-")[1]),
        )

    def open_epics(self, project: str) -> list[str]:
        return sorted(
            issue.key
            for issue in self.emulator.issues.values()
            if issue.key.startswith(f"{project}-")
            and issue.fields["issuetype"]["name"] == "Epic"
            and issue.fields["status"]["statusCategory"]["key"] != "done"
        )

    def issue(self, ref: Ref) -> Any:
        (found,) = [issue for issue in self.emulator.issues.values() if issue.id == ref.remote_id]
        return found

    def labels(self, ref: Ref) -> list[str]:
        return list(self.issue(ref).fields.get("labels") or [])

    def done(self, ref: Ref) -> bool:
        return bool(self.issue(ref).fields["status"]["statusCategory"]["key"] == "done")


@pytest.fixture
def month(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Month]:
    seed = render_jira(build(seed=5, per_tracker=120, now=START - timedelta(hours=12)))
    emulator = JiraEmulator.from_search(seed, flavour="cloud")
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        control.send("POST", "clock", {"now": START.isoformat()})
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
            + jira_table(server.base_url, projects='"PAY"')
            + "\n[push]\nmax_change_share = 1.0\n\n[trackers.t.write]\nlabels = true\n"
        )
        store = Store.open(load_config(path, ConnectorRegistry.default()))
        try:
            yield Month(emulator, control, store, path)
        finally:
            store.close()


def test_a_month_of_falling_throughput_keeps_each_move_and_labels_the_slip_once(month: Month) -> None:
    epic = month.open_epics("PAY")[0]
    for n in range(ADDED):  # the epic's planned work: enough to last past the month
        month.emulator.edit(
            {"op": "create_issue", "project": "PAY", "summary": f"Refund step {n + 1}",
             "fields": {"parent": {"key": epic}}}
        )  # fmt: skip
    results = [month.cycle(START)]
    now = START
    for finished in FINISHED_PER_WEEK:
        for day in range(7):  # the week's work, spread over its days as people would finish it
            month.control.send("POST", "clock", {"now": (now + timedelta(days=day, hours=2)).isoformat()})
            if day < finished:
                month.emulator.edit({"op": "transition", "key": month.open_tasks("PAY")[0], "status": "Done"})
        now += timedelta(days=7)
        month.control.send("POST", "clock", {"now": now.isoformat()})
        results.append(month.cycle(now))

    first = results[0].report
    assert first is not None
    forecast = [f.milestone for f in first.forecasts if f.high is not None and f.milestone.source == "t"]
    assert forecast, "the payments team's open epics are forecast at the start"
    with month.store.read() as conn:
        histories = {ref: forecast_history.history(conn, ref) for ref in forecast}
        slips = forecast_history.slipping(conn, now, timedelta(days=14), 0.2)
    open_ones = {ref: points for ref, points in histories.items() if not month.done(ref)}
    assert open_ones, "some epics are still open at the month's end"
    for ref, points in open_ones.items():
        assert points[0].at == START and points[0].reason == "first forecast", ref
        assert len(points) >= 3, f"{ref}: re-evaluated as the weeks went by: {[p.reason for p in points]}"
        p85s = [p.p85 for p in points if p.p85 is not None]
        assert p85s[-1] > p85s[0], f"{ref}: the weeks moved it later: {[p.reason for p in points]}"
    (planned,) = [ref for ref in open_ones if month.issue(ref).key == epic]
    reasons = [p.reason for p in open_ones[planned]]
    assert sum("throughput fell from" in r for r in reasons) >= 2, reasons

    assert list(slips) == [planned], "the epic with work left slips; one whose tasks are all done does not"
    assert slips[planned].startswith("its P85 date moved "), slips[planned]
    assert "throughput fell from" in slips[planned]
    assert LABEL in month.labels(planned), "the slipping epic carries the label at the month's end"
    for ref, points in open_ones.items():
        if ref != planned and points[-1].remaining == 0:
            assert points[-1].reason == forecast_history.WAITING
            assert LABEL not in month.labels(ref)
    added: Counter[Ref] = Counter(
        write.item
        for result in results
        for entry in result.trackers
        if entry.plan is not None
        for write in entry.plan.writes
        if write.field == LABEL and write.kind is WriteKind.LABEL_ADD
    )
    assert added[planned] == 1, "the slipping epic was labelled once over the month, never written again"
    assert set(added.values()) == {1}, "no epic was labelled twice"
    assert not any(LABEL in month.labels(ref) for ref in forecast if month.done(ref))
