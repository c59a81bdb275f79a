"""Quiet write-back in Jira, against the sandbox: edits say `notifyUsers=false` only where the account may
(asked once per project), Cloud gives a change many issues share one bulk edit, and the emails the
sandbox would send show what a team's inboxes would get."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.connectors.test_jira_push import EDIT_ROUTE, PERMISSIONS_ROUTE, Rig, _open, field, label
from tests.sandbox.conftest import Control

BULK_ROUTE = "POST /rest/api/{version}/bulk/issues/fields"
QUEUE_ROUTE = "GET /rest/api/{version}/bulk/queue/{task_id}"
WATCHERS = 3


def _rig(flavour: str, tmp_path: Path, per_tracker: int = 40) -> Iterator[Rig]:
    seed = render_jira(build(seed=21, per_tracker=per_tracker, now=datetime(2026, 6, 1, tzinfo=UTC)))
    for issue in seed["issues"]:
        issue["fields"]["watches"] = {"watchCount": WATCHERS, "isWatching": False}
    emulator = JiraEmulator.from_search(seed, flavour=flavour)
    emulator.add_custom_field("Value rank", "number")
    emulator.add_custom_field("OKR", "string")
    with SandboxServer(emulator) as server:
        connector = _open(server, tmp_path)
        connector.writer.sleep = lambda seconds: None
        try:
            yield Rig(emulator, Control(server.base_url), connector)
        finally:
            connector.close()


@pytest.fixture(params=["cloud", "dc"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from _rig(str(request.param), tmp_path)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Rig]:
    yield from _rig("cloud", tmp_path)


def emails(rig: Rig) -> int:
    return int(rig.control.get("state")["emails"])


def edit_queries(rig: Rig) -> list[dict[str, Any]]:
    log = rig.control.get("requests")["log"]
    edits = [entry for entry in log if f"{entry['method']} {entry['route']}" == EDIT_ROUTE]
    assert edits
    return [dict(entry.get("query") or {}) for entry in edits]


def grant(rig: Rig, permissions: list[str], project: str | None = None) -> None:
    rig.control.edit(op="set_permissions", project=project, permissions=permissions)


def test_with_the_permission_edits_are_quiet_and_it_is_asked_once_per_project(rig: Rig) -> None:
    rig.forget_requests()
    keys = rig.keys()[:3]
    outcomes = rig.push(*(field(rig, key, "rank", n) for n, key in enumerate(keys, 1)))
    assert all(o.ok for o in outcomes)
    outcomes = rig.push(*(label(rig, key, "mb-at-risk") for key in keys))
    assert all(o.ok for o in outcomes)
    assert emails(rig) == 0
    assert all(query.get("notifyUsers") == "false" for query in edit_queries(rig))
    routes = rig.routes(setup=True)
    assert routes[PERMISSIONS_ROUTE] == 2  # PAY and MOB, once for both pushes of this connection
    assert routes[EDIT_ROUTE] == 6 and BULK_ROUTE not in routes  # three issues: single edits are cheaper
    setup = rig.connector.stats()["setup_requests"]
    assert setup >= 2 and rig.connector.stats()["requests"] == 6


def test_without_the_permission_no_flag_is_sent_and_the_emails_are_counted(rig: Rig) -> None:
    """Cloud would ignore the flag and Data Center refuse the edit: the bridge sends none, the edits land
    and each emails the issue's watchers (no bulk edit either: no Bulk Change)."""
    grant(rig, ["BROWSE_PROJECTS", "EDIT_ISSUES"])
    rig.forget_requests()
    keys = rig.keys()[:5]
    outcomes = rig.push(*(field(rig, key, "rank", 7) for key in keys))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert all("notifyUsers" not in query for query in edit_queries(rig))
    assert emails(rig) == WATCHERS * len(keys)
    assert BULK_ROUTE not in rig.routes()


def test_a_project_without_the_permission_is_edited_loudly_and_the_others_quietly(rig: Rig) -> None:
    """Administer Projects in PAY only: PAY's edits are quiet; MOB's are sent with the flag (Cloud ignores
    it; Data Center refuses it, and the edit is sent again without it) and email their watchers."""
    grant(rig, ["BROWSE_PROJECTS", "EDIT_ISSUES"])
    grant(rig, ["ADMINISTER_PROJECTS"], project="PAY")
    pay, mob = rig.keys("PAY")[0], rig.keys("MOB")[0]
    outcomes = rig.push(field(rig, pay, "rank", 1), field(rig, mob, "rank", 2), field(rig, mob, "okr", "KR1"))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert rig.issue(mob).fields[rig.connector.writer.managed["okr"]] == "KR1"
    assert emails(rig) == WATCHERS  # MOB's one edit (its rank and OKR together)


def test_data_center_never_bulk_edits(rig: Rig) -> None:
    keys = rig.keys()[:12]
    outcomes = rig.push(*(label(rig, key, "mb-bottleneck") for key in keys))
    assert all(o.ok for o in outcomes)
    routes = rig.routes()
    assert (BULK_ROUTE in routes) is (rig.emulator.flavour == "cloud")
    assert emails(rig) == 0


@pytest.fixture
def big_cloud(tmp_path: Path) -> Iterator[Rig]:
    yield from _rig("cloud", tmp_path, per_tracker=300)


def test_a_label_on_300_issues_is_one_bulk_request(big_cloud: Rig) -> None:
    rig = big_cloud
    keys = (rig.keys("PAY") + rig.keys("MOB"))[:300]
    assert len(keys) == 300
    rig.forget_requests()
    outcomes = rig.push(*(label(rig, key, "mb-at-risk") for key in keys))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    routes = rig.routes()
    assert routes.pop(BULK_ROUTE) == 1
    assert routes.pop(QUEUE_ROUTE) == 2  # RUNNING, then COMPLETE
    assert routes == {}
    assert all("mb-at-risk" in rig.issue(key).fields["labels"] for key in keys)
    assert emails(rig) == 0
    # the same change again changes nothing in Jira: no email either
    assert all(o.ok for o in rig.push(*(label(rig, key, "mb-at-risk") for key in keys)))
    assert emails(rig) == 0


def test_a_rank_shared_by_a_milestones_tasks_is_one_bulk_edit(cloud: Rig) -> None:
    rig = cloud
    keys = rig.keys()[:10]
    writes = [field(rig, key, "rank", 4) for key in keys] + [field(rig, keys[0], "okr", "KR2")]
    rig.forget_requests()
    outcomes = rig.push(*writes)
    assert all(o.ok for o in outcomes)
    routes = rig.routes()
    assert routes[BULK_ROUTE] == 1 and routes[EDIT_ROUTE] == 1  # the OKR of one issue: a single edit
    rank = rig.connector.writer.managed["rank"]
    assert all(rig.issue(key).fields[rank] == 4 for key in keys)


def test_a_bulk_edit_with_one_failed_issue_fails_only_that_write(cloud: Rig) -> None:
    rig = cloud
    keys = rig.keys()[:8]
    rig.control.edit(op="refuse_in_bulk", key=keys[3])
    outcomes = rig.push(*(label(rig, key, "mb-bottleneck") for key in keys))
    assert [o.ok for o in outcomes] == [True, True, True, False, True, True, True, True]
    assert "bulk edit failed for this issue" in str(outcomes[3].error)
    assert "workflow does not allow" in str(outcomes[3].error)
    assert "mb-bottleneck" not in (rig.issue(keys[3]).fields.get("labels") or [])
    assert all("mb-bottleneck" in rig.issue(key).fields["labels"] for key in keys if key != keys[3])


def test_without_administer_cloud_bulk_edits_even_a_few_issues_to_keep_them_quiet(cloud: Rig) -> None:
    """Bulk Change but no Administer: a single edit would email, a bulk edit with bulk notifications off
    does not, so every change a bulk edit can carry goes in one."""
    rig = cloud
    grant(rig, ["BULK_CHANGE", "BROWSE_PROJECTS", "EDIT_ISSUES"])
    key = rig.keys()[0]
    outcomes = rig.push(label(rig, key, "mb-at-risk"), field(rig, key, "rank", 2))
    assert all(o.ok for o in outcomes)
    assert rig.routes()[BULK_ROUTE] == 2 and EDIT_ROUTE not in rig.routes()
    assert emails(rig) == 0


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_a_bulk_edit_whose_answer_was_lost_is_read_back(cloud: Rig, fault: str, applied: bool) -> None:
    rig = cloud
    keys = rig.keys()[:6]
    rig.control.faults({"kind": fault, "method": "POST", "path": "/bulk/issues/fields$"})
    outcomes = rig.push(*(label(rig, key, "mb-bottleneck") for key in keys))
    assert [(o.ok, o.read_back) for o in outcomes] == [(applied, True)] * 6, [o.error for o in outcomes]
    assert all(("mb-bottleneck" in (rig.issue(k).fields.get("labels") or [])) is applied for k in keys)


def test_a_bulk_edit_refused_whole_falls_back_to_single_edits(cloud: Rig) -> None:
    rig = cloud
    keys = rig.keys()[:5]
    rig.control.faults({"kind": "5xx", "status": 400, "method": "POST", "path": "/bulk/issues/fields$"})
    rig.forget_requests()
    outcomes = rig.push(*(field(rig, key, "rank", 9) for key in keys))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    routes = rig.routes()
    assert routes[BULK_ROUTE] == 1 and routes[EDIT_ROUTE] == 5
    assert emails(rig) == 0  # the single edits say notifyUsers=false
    rank = rig.connector.writer.managed["rank"]
    assert all(rig.issue(key).fields[rank] == 9 for key in keys)


def test_a_bulk_task_that_does_not_finish_in_time_is_read_back(cloud: Rig) -> None:
    rig = cloud
    keys = rig.keys()[:5]
    rig.connector.writer.poll_timeout = 0  # the first poll says RUNNING: the bridge stops waiting
    outcomes = rig.push(*(label(rig, key, "mb-at-risk") for key in keys))
    assert [(o.ok, o.read_back) for o in outcomes] == [(True, True)] * 5, [o.error for o in outcomes]


def test_bulk_edits_sharing_no_issue_run_side_by_side(cloud: Rig) -> None:
    """Three milestones' tasks get three ranks, and the first five a label: the three rank edits share no
    issue and run at once (one wait for all three); the label's edit touches issues of the first, so it
    waits for the next wave."""
    rig = cloud
    keys = rig.keys()[:15]
    slept: list[float] = []
    rig.connector.writer.sleep = slept.append
    writes = [field(rig, key, "rank", 1 + n // 5) for n, key in enumerate(keys)]
    writes += [label(rig, key, "mb-at-risk") for key in keys[:5]]
    rig.forget_requests()
    outcomes = rig.push(*writes)
    assert all(o.ok for o in outcomes)
    routes = rig.routes()
    assert routes[BULK_ROUTE] == 4 and routes[QUEUE_ROUTE] == 8
    assert len(slept) == 2  # one wait a wave, not one a task
    log = [f"{e['method']} {e['route']}" for e in rig.control.get("requests")["log"]]
    bulk_at = [n for n, route in enumerate(log) if route == BULK_ROUTE]
    first = bulk_at[0]
    assert bulk_at[:3] == [first, first + 1, first + 2]  # the first wave's three submitted before any poll
