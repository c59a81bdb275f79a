"""A Jira key-result issue gets its status: the bridge's label (or, with `write.kr_status_field`, that
field), changed when the status changes, left alone when it does not, taken back by `bridge purge`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.daemon.http import StatusServer
from bridge.domain import WriteKind
from bridge.report.status_page import LiveStatus, key_results_json
from bridge.store import analyses
from bridge.store.analyses import AnalysisKey
from bridge.sync.cycle import CycleResult, run_cycle
from tests.system import test_sync_jira
from tests.system.test_sync_jira import Sync

sync = test_sync_jira.sync  # the Jira sandbox fixture, shared

ENDED = (datetime.now(UTC) - timedelta(days=3)).date()


def with_key_result(sync: Sync, period_end: str, write: str = "") -> tuple[Any, BridgeConfig]:
    """A `Key Result` issue in PAY (target 100, current 40) linked by a rule to every PAY epic."""
    target = sync.emulator.add_custom_field("KR target", "number")
    current = sync.emulator.add_custom_field("KR current", "number")
    with sync.emulator.lock:
        issue = sync.emulator.create_issue(
            {
                "project": {"key": "PAY"},
                "issuetype": {"name": "Key Result"},
                "summary": "Card payments in ten new countries",
                target: 100.0,
                current: 40.0,
            }
        )
    text = sync.config_path.read_text().replace("[trackers.t.write]\n", "[trackers.t.write]\n" + write)
    text = text.replace(
        'key_result = "KR1"\nproject = "PAY"', f'key_result = "t:{issue.id}"\nproject = "PAY"'
    )
    text += (
        f'\n[trackers.t.okrs]\nkey_result_type = "Key Result"\ntarget_field = "KR target"\n'
        f'current_field = "KR current"\n\n[okrs]\nperiod_end = "{period_end}"\n'
    )
    sync.config_path.write_text(text)
    return issue, load_config(sync.config_path, ConnectorRegistry.default())


def cycle(sync: Sync, config: BridgeConfig) -> CycleResult:
    result = run_cycle(sync.store, config, now=datetime.now(UTC))
    assert result.ok, [t.error for t in result.trackers]
    return result


def kr_labels(issue: Any) -> list[str]:
    return sorted(label for label in issue.fields.get("labels") or [] if label.startswith("mb-kr-"))


def test_a_key_result_issue_gets_its_status_label_once_then_the_new_one_then_none_after_purge(
    sync: Sync, run_cli: Any
) -> None:
    issue, config = with_key_result(sync, ENDED.isoformat())
    first = cycle(sync, config)
    assert kr_labels(issue) == ["mb-kr-off-track"]
    report = first.report
    assert report is not None
    (status,) = [k for o in report.okrs for k in o.key_results if k.key_result.remote_id == issue.id]
    assert status.status_reason.startswith(f"the period ended {ENDED.isoformat()}, 3 days ago")
    assert status.progress == 0.4 and status.basis == "metric"

    second = cycle(sync, config)
    assert second.trackers[0].plan is not None
    assert [w for w in second.trackers[0].plan.writes if w.item.remote_id == issue.id] == []

    # The metric reaches its target: met, which the issue shows with the on-track label.
    sync.api("PUT", f"issue/{issue.key}", {"fields": {_field(sync, "KR current"): 100.0}})
    cycle(sync, config)
    assert kr_labels(issue) == ["mb-kr-on-track"]

    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert kr_labels(issue) == []


def test_an_opted_out_key_result_issue_and_a_dry_run_get_no_status(sync: Sync) -> None:
    issue, config = with_key_result(sync, ENDED.isoformat())
    dry = run_cycle(sync.store, config, now=datetime.now(UTC), dry_run=True)
    assert dry.trackers[0].plan is not None
    (write,) = [w for w in dry.trackers[0].plan.writes if w.item.remote_id == issue.id]
    assert write.kind is WriteKind.LABEL_ADD and write.field == "mb-kr-off-track"
    assert write.reason.startswith(f"off track: the period ended {ENDED.isoformat()}")
    assert kr_labels(issue) == [], "a dry run writes nothing"
    sync.api("PUT", f"issue/{issue.key}", {"update": {"labels": [{"add": "bridge-ignore"}]}})
    cycle(sync, config)
    assert kr_labels(issue) == []


def test_with_a_status_field_the_status_goes_there_and_no_label(sync: Sync, run_cli: Any) -> None:
    status_field = sync.emulator.add_custom_field("KR status", "string")
    issue, config = with_key_result(sync, ENDED.isoformat(), 'kr_status_field = "KR status"\n')
    cycle(sync, config)
    assert issue.fields.get(status_field) == "off track"
    assert kr_labels(issue) == []
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert issue.fields.get(status_field) is None


def _field(sync: Sync, name: str) -> str:
    return next(f for f, found in sync.emulator.custom_fields.items() if found["name"] == name)


def test_status_json_lists_each_key_results_status_and_a_stored_analysis_keeps_it(sync: Sync) -> None:
    import requests
    from prometheus_client import CollectorRegistry

    issue, config = with_key_result(sync, ENDED.isoformat())
    report = cycle(sync, config).report
    assert report is not None
    key = AnalysisKey(1, "kr-status", "2099-01-01", False)
    with sync.store.write() as conn:
        analyses.save(conn, key, report, now=datetime.now(UTC), seconds=0.1)
    with sync.store.read() as conn:
        assert analyses.find(conn, key) == report, "a period end (a date) reads back from the store"

    status = LiveStatus(scheduler_running=True, key_results=key_results_json(report))
    server = StatusServer(config, sync.store, CollectorRegistry(), lambda: status)
    server.start()
    try:
        document = requests.get(f"{server.url}/status.json", timeout=10).json()
    finally:
        server.stop()
    (found,) = [k for k in document["key_results"] if k["id"] == f"t:{issue.id}"]
    assert found["title"] == "Card payments in ten new countries"
    assert found["status"] == "off_track" and found["period_end"] == ENDED.isoformat()
    assert found["status_reason"].startswith(f"the period ended {ENDED.isoformat()}")
    assert found["progress"] == 0.4 and found["progress_basis"] == "metric"


def test_a_status_label_a_user_removed_is_put_back_by_the_next_cycle_though_the_status_held(
    sync: Sync,
) -> None:
    issue, config = with_key_result(sync, ENDED.isoformat())
    cycle(sync, config)
    assert kr_labels(issue) == ["mb-kr-off-track"]
    sync.api("PUT", f"issue/{issue.key}", {"update": {"labels": [{"remove": "mb-kr-off-track"}]}})
    assert kr_labels(issue) == []

    again = cycle(sync, config)
    assert kr_labels(issue) == ["mb-kr-off-track"], "restored although the status did not change"
    assert again.trackers[0].plan is not None
    (write,) = [w for w in again.trackers[0].plan.writes if w.item.remote_id == issue.id]
    assert write.kind is WriteKind.LABEL_ADD and write.reason.startswith("off track: the period ended")

    assert again.trackers[0].push is not None and again.trackers[0].push.read == 0, "planned from the store"
    quiet = cycle(sync, config).trackers[0].plan
    assert quiet is None or [w for w in quiet.writes if w.item.remote_id == issue.id] == []
    assert kr_labels(issue) == ["mb-kr-off-track"]
