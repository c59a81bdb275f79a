"""The Jira emulator, Cloud and Data Center, driven through the real `jira` package over HTTP."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA, JIRAError

from bridge_sandbox.jira import JiraEmulator, format_time
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control, shared_file

EMAIL, TOKEN = "sandbox@example.com", "sandbox-jira-token"
T0 = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def _history(n: int, at: datetime, to: tuple[str, str], before: tuple[str, str]) -> dict[str, Any]:
    item = {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": before[0],
            "fromString": before[1], "to": to[0], "toString": to[1]}  # fmt: skip
    return {"id": str(n), "author": {"accountId": "u1"}, "created": format_time(at, NY), "items": [item]}


def _seed(count: int = 250, long_history: int = 130) -> dict[str, Any]:
    """`count` issues in project PAY; PAY-1 has `long_history` status changes, stored newest first."""
    issues = []
    todo, doing = ("10000", "To Do"), ("3", "In Progress")
    for n in range(1, count + 1):
        created = T0 + timedelta(minutes=n)
        histories = []
        if n == 1:
            for h in range(long_history):
                at = created + timedelta(hours=h)
                to, before = (doing, todo) if h % 2 == 0 else (todo, doing)
                histories.append(_history(5000 + h, at, to, before))
            histories.reverse()  # the real Cloud payloads list the newest first
        issues.append(
            {
                "id": str(20000 + n),
                "key": f"PAY-{n}",
                "fields": {
                    "summary": f"Task {n}",
                    "project": {"id": "10100", "key": "PAY", "name": "Payments"},
                    "issuetype": {"id": "10002", "name": "Story"},
                    "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
                    "labels": ["ui"] if n % 2 else [],
                    "customfield_10100": float(n),
                    "created": format_time(created, NY),
                    "updated": format_time(created + timedelta(hours=long_history if n == 1 else 0), NY),
                },
                "changelog": {"startAt": 0, "maxResults": len(histories), "total": len(histories),
                              "histories": histories},
            }
        )  # fmt: skip
    return {"startAt": 0, "maxResults": count, "total": count, "issues": issues}


@pytest.fixture(params=["cloud", "dc"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(flavour: str) -> Iterator[SandboxServer]:
    with SandboxServer(JiraEmulator.from_search(_seed(), flavour=flavour)) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> JIRA:
    return JIRA(server=server.base_url, basic_auth=(EMAIL, TOKEN), max_retries=0)


def _raw() -> requests.Session:
    """A plain authenticated session: error statuses come back as they are, not as exceptions."""
    session = requests.Session()
    session.auth = (EMAIL, TOKEN)
    session.headers["Content-Type"] = "application/json"
    return session


def _cloud_only(flavour: str) -> None:
    if flavour != "cloud":
        pytest.skip("a Cloud endpoint")


def test_server_info_and_user_time_zone(client: JIRA, flavour: str) -> None:
    assert client.deploymentType == ("Cloud" if flavour == "cloud" else "Server")
    assert client.myself()["timeZone"] == "America/New_York"


def test_full_search_pages_through_every_issue(client: JIRA, server: SandboxServer, flavour: str) -> None:
    issues = client.search_issues("project = PAY ORDER BY updated ASC, key ASC", maxResults=False)
    assert len(issues) == 250
    keys = [issue.key for issue in issues]
    assert len(set(keys)) == 250
    searches = [e for e in Control(server.base_url).get("requests")["log"] if "search" in e["route"]]
    assert len(searches) >= 3, "250 issues take several pages"


def test_cloud_search_uses_tokens_without_total(server: SandboxServer, flavour: str) -> None:
    _cloud_only(flavour)
    session = requests.Session()
    session.auth = (EMAIL, TOKEN)
    url = f"{server.base_url}/rest/api/3/search/jql"
    seen, token, pages = [], None, 0
    while True:
        params = {"jql": "project = PAY ORDER BY key ASC", "maxResults": 100, "fields": "summary"}
        if token:
            params["nextPageToken"] = token
        page = session.get(url, params=params, timeout=10).json()
        assert "total" not in page
        seen += [issue["key"] for issue in page["issues"]]
        pages += 1
        token = page.get("nextPageToken")
        if page["isLast"]:
            assert token is None
            break
    assert pages == 3 and len(seen) == 250
    too_many = session.get(
        url, params={"jql": "project = PAY", "maxResults": 500, "fields": "summary"}, timeout=10
    )
    assert len(too_many.json()["issues"]) == 100, "at most 100 issues a page when fields are asked for"
    bad = session.get(url, params={"jql": "project = PAY", "nextPageToken": "garbage"}, timeout=10)
    assert bad.status_code == 400


def test_dc_search_has_start_at_and_total(server: SandboxServer, flavour: str) -> None:
    if flavour != "dc":
        pytest.skip("a Data Center endpoint")
    session = requests.Session()
    session.auth = (EMAIL, TOKEN)
    page = session.get(
        f"{server.base_url}/rest/api/2/search",
        params={"jql": "project = PAY ORDER BY key ASC", "startAt": 200, "maxResults": 100},
        timeout=10,
    ).json()
    assert page["total"] == 250 and page["startAt"] == 200 and len(page["issues"]) == 50
    assert session.get(f"{server.base_url}/rest/api/2/issue/PAY-1/changelog", timeout=10).status_code == 404


def test_cloud_has_removed_the_old_search(server: SandboxServer, flavour: str) -> None:
    _cloud_only(flavour)
    response = requests.get(f"{server.base_url}/rest/api/2/search", params={"jql": "project = PAY"},
                            auth=(EMAIL, TOKEN), timeout=10)  # fmt: skip
    assert response.status_code == 410


def test_embedded_changelog(client: JIRA, flavour: str) -> None:
    issue = client.search_issues("key = PAY-1", expand="changelog")[0]
    histories = issue.changelog.histories
    stamps = [h.created for h in histories]
    if flavour == "cloud":
        assert issue.changelog.total == 130 and len(histories) == 100
        assert stamps == sorted(stamps, reverse=True), "Cloud embeds the newest histories, newest first"
        assert histories[-1].id == str(5000 + 30)
    else:
        assert len(histories) == 130, "Data Center embeds whole histories"
        assert stamps == sorted(stamps)


def test_cloud_changelog_beyond_the_embedded_hundred(
    client: JIRA, server: SandboxServer, flavour: str
) -> None:
    _cloud_only(flavour)
    session = client._session
    paged: list[str] = []
    start = 0
    while True:
        page = session.get(f"{server.base_url}/rest/api/3/issue/PAY-1/changelog",
                           params={"startAt": start, "maxResults": 100}).json()  # fmt: skip
        paged += [h["id"] for h in page["values"]]
        if page["isLast"]:
            break
        start += len(page["values"])
    assert paged == [str(5000 + h) for h in range(130)], "complete and oldest first"

    bulk: list[str] = []
    body: dict[str, Any] = {"issueIdsOrKeys": ["PAY-1", "PAY-2"], "maxResults": 50}
    while True:
        page = session.post(f"{server.base_url}/rest/api/3/changelog/bulkfetch", data=json.dumps(body)).json()
        bulk += [h["id"] for log in page["issueChangeLogs"] for h in log["changeHistories"]]
        if not page.get("nextPageToken"):
            break
        body["nextPageToken"] = page["nextPageToken"]
    assert bulk == paged


def test_jql_dates_are_read_in_the_users_zone_with_minute_precision(client: JIRA) -> None:
    # PAY-10 was updated at T0 + 10 min = 09:10 in New York (14:10 UTC).
    assert [i.key for i in client.search_issues('key = PAY-10 AND updated >= "2026/03/01 09:10"')] == [
        "PAY-10"
    ]
    assert client.search_issues('key = PAY-10 AND updated > "2026/03/01 09:10"') == []
    assert [i.key for i in client.search_issues('key = PAY-10 AND updated <= "2026-03-01 09:10"')] == [
        "PAY-10"
    ]
    assert client.search_issues('key = PAY-10 AND updated >= "2026/03/01 14:10"') == [], "not read as UTC"


def test_jql_across_a_dst_change() -> None:
    """New York springs forward on 2026-03-08 at 02:00: a local time after it is UTC-4, before it UTC-5."""
    seed = _seed(count=3, long_history=0)
    moments = ["2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T12:00:00Z"]
    for issue, when in zip(seed["issues"], moments, strict=True):
        issue["fields"]["updated"] = format_time(datetime.fromisoformat(when), NY)
    with SandboxServer(JiraEmulator.from_search(seed)) as running:
        client = JIRA(server=running.base_url, basic_auth=(EMAIL, TOKEN), max_retries=0)
        # 01:30 EST = 06:30 UTC; 03:30 EDT = 07:30 UTC.
        keys = [i.key for i in client.search_issues('updated >= "2026/03/08 03:30" ORDER BY key ASC')]
        assert keys == ["PAY-2", "PAY-3"]
        keys = [i.key for i in client.search_issues('updated >= "2026/03/08 01:30" ORDER BY key ASC')]
        assert keys == ["PAY-1", "PAY-2", "PAY-3"]


def test_unsupported_jql_is_a_clear_400(client: JIRA) -> None:
    with pytest.raises(JIRAError) as caught:
        client.search_issues("assignee = currentUser()")
    assert caught.value.status_code == 400 and "not supported" in caught.value.text


def test_updates_bump_updated_and_add_history(client: JIRA, server: SandboxServer, flavour: str) -> None:
    before = client.issue("PAY-2", expand="changelog")
    client.issue("PAY-2").update(
        update={"labels": [{"add": "mb-bottleneck"}]}, fields={"customfield_10100": 42.0}
    )
    after = client.issue("PAY-2", expand="changelog")
    assert after.fields.labels == ["mb-bottleneck"]
    assert after.fields.customfield_10100 == 42.0
    assert after.fields.updated > before.fields.updated
    assert after.changelog.total == before.changelog.total + 1
    client.issue("PAY-2").update(update={"labels": [{"remove": "mb-bottleneck"}]})
    assert client.issue("PAY-2").fields.labels == []


def test_invalid_updates_are_400(client: JIRA) -> None:
    issue = client.issue("PAY-3")
    with pytest.raises(JIRAError) as spaces:
        issue.update(fields={"labels": ["two words"]})
    assert spaces.value.status_code == 400
    with pytest.raises(JIRAError) as unknown:
        issue.update(fields={"customfield_99999": 1})
    assert unknown.value.status_code == 400 and "customfield_99999" in unknown.value.text


def test_remote_links_are_created_or_updated_by_global_id(client: JIRA, server: SandboxServer) -> None:
    first = client.add_remote_link(
        "PAY-4", {"url": "https://okr.example.com/kr/1", "title": "KR1"}, globalId="mb:okr"
    )
    again = client.add_remote_link(
        "PAY-4", {"url": "https://okr.example.com/kr/2", "title": "KR2"}, globalId="mb:okr"
    )
    client.add_remote_link("PAY-4", {"url": "https://wiki.example.com", "title": "User's own link"})
    assert first.id == again.id
    links = client.remote_links("PAY-4")
    assert sorted(link.object.title for link in links) == ["KR2", "User's own link"]
    session = _raw()
    url = f"{server.base_url}/rest/api/2/issue/PAY-4/remotelink"
    assert session.delete(url, params={"globalId": "mb:okr"}).status_code == 204
    assert [link.object.title for link in client.remote_links("PAY-4")] == ["User's own link"]


def test_blocks_links_show_on_both_issues(client: JIRA) -> None:
    client.create_issue_link("Blocks", "PAY-5", "PAY-6")
    blocker = client.issue("PAY-5").fields.issuelinks[0]
    blocked = client.issue("PAY-6").fields.issuelinks[0]
    assert blocker.type.outward == "blocks" and blocker.outwardIssue.key == "PAY-6"
    assert blocked.type.inward == "is blocked by" and blocked.inwardIssue.key == "PAY-5"


def test_rank_moves_up_to_fifty_and_reports_partial_failure(client: JIRA, server: SandboxServer) -> None:
    session = _raw()
    url = f"{server.base_url}/rest/agile/1.0/issue/rank"
    moved = session.put(url, data=json.dumps({"issues": ["PAY-9", "PAY-8"], "rankBeforeIssue": "PAY-1"}))
    assert moved.status_code == 204
    order = [i.key for i in client.search_issues("project = PAY ORDER BY rank ASC", maxResults=3)]
    assert order == ["PAY-9", "PAY-8", "PAY-1"]
    partial = session.put(url, data=json.dumps({"issues": ["PAY-7", "NOPE-1"], "rankAfterIssue": "PAY-1"}))
    assert partial.status_code == 207
    assert {e["issueKey"]: e["status"] for e in partial.json()["entries"]} == {"PAY-7": 200, "NOPE-1": 404}
    fifty_one = [f"PAY-{n}" for n in range(10, 61)]
    too_many = session.put(url, data=json.dumps({"issues": fifty_one, "rankAfterIssue": "PAY-1"}))
    assert too_many.status_code == 400


def test_wrong_credentials_and_bearer_tokens(server: SandboxServer) -> None:
    with pytest.raises(JIRAError) as caught:
        JIRA(server=server.base_url, basic_auth=(EMAIL, "wrong"), max_retries=0).myself()
    assert caught.value.status_code == 401
    bearer = JIRA(server=server.base_url, token_auth=TOKEN, max_retries=0)
    assert bearer.myself()["emailAddress"] == EMAIL


def test_user_edits_through_the_control_api(client: JIRA, server: SandboxServer) -> None:
    control = Control(server.base_url)
    created = control.edit(op="create_issue", project="PAY", summary="Café ☕ naïve", type="Story")
    control.edit(op="transition", key=created["key"], status="In Progress")
    control.edit(op="transition", key=created["key"], status="Done")
    issue = client.issue(created["key"], expand="changelog")
    assert issue.fields.summary == "Café ☕ naïve" and issue.fields.status.name == "Done"
    moves = sorted(  # by time, then by id: two moves in one millisecond keep the order they were made
        (h.created, int(h.id), h.items[0].toString)
        for h in issue.changelog.histories
        if h.items[0].field == "status"
    )
    assert [to for _, _, to in moves] == ["In Progress", "Done"]
    control.edit(op="delete", key=created["key"])
    with pytest.raises(JIRAError):
        client.issue(created["key"])
    state = control.get("state")
    assert len(state["issues"]) == 250


def test_faults_429_with_retry_after_then_success(client: JIRA, server: SandboxServer) -> None:
    control = Control(server.base_url)
    control.faults({"kind": "429", "count": 1, "retry_after": 3, "path": "/myself"})
    with pytest.raises(JIRAError) as caught:
        client.myself()
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"
    assert client.myself()["emailAddress"] == EMAIL
    assert control.get("faults")["injected"] == {"429": 1}


def test_retry_after_as_http_date_and_5xx_burst(server: SandboxServer) -> None:
    control = Control(server.base_url)
    control.faults(
        {"kind": "429", "count": 1, "retry_after": "http-date"}, {"kind": "5xx", "count": 2, "status": 502}
    )
    url = f"{server.base_url}/rest/api/2/myself"
    statuses = [requests.get(url, auth=(EMAIL, TOKEN), timeout=10) for _ in range(4)]
    assert [r.status_code for r in statuses] == [429, 502, 502, 200]
    assert statuses[0].headers["Retry-After"].endswith("GMT")


def test_malformed_item_inside_a_good_page(server: SandboxServer, flavour: str) -> None:
    Control(server.base_url).faults({"kind": "malformed", "count": 1, "path": "search", "index": 2})
    path = "search/jql" if flavour == "cloud" else "search"
    params = {"jql": "project = PAY ORDER BY key ASC", "fields": "*all", "maxResults": 10}
    page = _raw().get(f"{server.base_url}/rest/api/2/{path}", params=params, timeout=10).json()
    broken = [issue for issue in page["issues"] if not isinstance(issue.get("fields"), dict)]
    assert len(broken) == 1 and len(page["issues"]) == 10


def test_hold_blocks_a_request_until_released(server: SandboxServer) -> None:
    control = Control(server.base_url)
    number = control.request_count() + 1
    control.send("POST", "hold", {"request": number})
    results: list[int] = []
    worker = threading.Thread(
        target=lambda: results.append(
            requests.get(f"{server.base_url}/rest/api/2/myself", auth=(EMAIL, TOKEN), timeout=10).status_code
        )
    )
    worker.start()
    for _ in range(50):
        if control.get("held")["waiting"] == [number]:
            break
        threading.Event().wait(0.05)
    assert control.get("held")["waiting"] == [number] and results == []
    control.send("POST", "release", {"request": number})
    worker.join(5)
    assert results == [200]


def test_a_request_held_at_the_door_whose_client_went_away_is_dropped_not_applied(
    server: SandboxServer,
) -> None:
    """A client killed while its request waits at the door never sent it, as far as the tracker knows."""
    control = Control(server.base_url)
    emulator = server.emulator
    assert isinstance(emulator, JiraEmulator)
    before = len(emulator.issues["PAY-1"].comments)
    control.send("POST", "hold", {"route": "POST /rest/api/{version}/issue/{key}/comment"})
    body = json.dumps({"body": "Gone before it landed"}).encode()
    auth = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    head = (
        f"POST /rest/api/2/issue/PAY-1/comment HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(head.encode() + body)
        for _ in range(100):
            if control.get("held")["waiting"]:
                break
            threading.Event().wait(0.05)
        assert control.get("held")["waiting"], "the POST never arrived"
    control.send("POST", "release", {})
    for _ in range(100):
        dropped = [e for e in control.get("requests")["log"] if e.get("fault") == "client gone"]
        if dropped:
            break
        threading.Event().wait(0.05)
    assert [e["route"] for e in dropped] == ["/rest/api/{version}/issue/{key}/comment"]
    assert len(emulator.issues["PAY-1"].comments) == before, "never applied"


def test_request_log_counts_and_redacts(server: SandboxServer) -> None:
    requests.get(
        f"{server.base_url}/rest/api/2/myself", params={"token": "leaky"}, auth=(EMAIL, TOKEN), timeout=10
    )
    log = Control(server.base_url).get("requests")
    assert log["by_route"]["GET /rest/api/{version}/myself"] >= 1
    assert "leaky" not in json.dumps(log)


@pytest.mark.parametrize("flavour", ["cloud", "dc"])
def test_real_export_loads_whole(flavour: str) -> None:
    path = shared_file("data/aea-jira/issues.json")
    expected = json.loads(path.read_text())["issues"]
    with SandboxServer(JiraEmulator.from_search(path, flavour=flavour)) as running:
        client = JIRA(server=running.base_url, basic_auth=(EMAIL, TOKEN), max_retries=0)
        issues = client.search_issues(
            "project = AEAREP ORDER BY key ASC", maxResults=False, fields="status,updated"
        )
        assert len(issues) == len(expected) == 1301
        assert {i.key for i in issues} == {e["key"] for e in expected}
        emulator = running.emulator
        assert isinstance(emulator, JiraEmulator)
        histories = sum(len(i.histories) for i in emulator.issues.values())
        assert histories == sum(len(e["changelog"]["histories"]) for e in expected) == 17378


def test_indexed_updated_bound_answers_like_a_full_scan(client: JIRA) -> None:
    """The emulator's bisect over the sorted result equals evaluating every issue."""
    order = " ORDER BY updated ASC, key ASC"
    for bound in ("2026/03/01 09:00", "2026/03/01 09:10", "2026/03/01 11:59", "2026/03/02 00:00"):
        for operator in (">=", ">"):
            clause = f'updated {operator} "{bound}"{order}'
            fast = client.search_issues(f"project = PAY AND {clause}", maxResults=False)
            scan = client.search_issues(f"(project = PAY OR project = NONE) AND {clause}", maxResults=False)
            assert [i.key for i in fast] == [i.key for i in scan]


def test_slow_response_past_the_client_timeout(server: SandboxServer) -> None:
    Control(server.base_url).faults({"kind": "slow", "count": 1, "delay": 1.5, "path": "/myself"})
    with pytest.raises(requests.exceptions.ReadTimeout):
        _raw().get(f"{server.base_url}/rest/api/2/myself", timeout=0.5)
    assert _raw().get(f"{server.base_url}/rest/api/2/myself", timeout=5).status_code == 200


def test_dropped_connection(server: SandboxServer) -> None:
    Control(server.base_url).faults({"kind": "drop", "count": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        _raw().get(f"{server.base_url}/rest/api/2/myself", timeout=5)
    assert _raw().get(f"{server.base_url}/rest/api/2/myself", timeout=5).status_code == 200
    assert Control(server.base_url).get("faults")["injected"] == {"drop": 1}


def test_probability_faults_are_reproducible(server: SandboxServer) -> None:
    control = Control(server.base_url)
    outcomes = []
    for _ in range(2):
        control.faults({"kind": "5xx", "probability": 0.3, "seed": 11})
        outcomes.append(
            [_raw().get(f"{server.base_url}/rest/api/2/myself", timeout=5).status_code for _ in range(20)]
        )
    assert outcomes[0] == outcomes[1] and 503 in outcomes[0] and 200 in outcomes[0]


def test_rank_field_holds_a_lexorank_and_moves_touch_only_the_moved(
    client: JIRA, server: SandboxServer
) -> None:
    emulator = server.emulator
    assert isinstance(emulator, JiraEmulator)
    first = client.issue("PAY-1", fields="customfield_10019").fields.customfield_10019
    assert first.startswith("0|") and ":" in first
    ranks = {key: issue.rank for key, issue in emulator.issues.items()}
    session = _raw()
    url = f"{server.base_url}/rest/agile/1.0/issue/rank"
    moved = session.put(url, data=json.dumps({"issues": ["PAY-30", "PAY-20"], "rankAfterIssue": "PAY-1"}))
    assert moved.status_code == 204
    order = [i.key for i in client.search_issues("project = PAY ORDER BY Rank ASC", maxResults=4)]
    assert order == ["PAY-1", "PAY-30", "PAY-20", "PAY-2"]
    changed = {key for key, issue in emulator.issues.items() if issue.rank != ranks[key]}
    assert changed == {"PAY-30", "PAY-20"}
    assert ranks["PAY-1"] < emulator.issues["PAY-30"].rank < emulator.issues["PAY-20"].rank < ranks["PAY-2"]
    history = client.issue("PAY-30", expand="changelog").changelog.histories
    assert any(item.field == "Rank" for h in history for item in h.items)
    with pytest.raises(JIRAError) as caught:
        client.issue("PAY-3").update(fields={"customfield_10019": "0|000000:"})
    assert caught.value.status_code == 400


def test_rank_anchor_rules(server: SandboxServer) -> None:
    session = _raw()
    url = f"{server.base_url}/rest/agile/1.0/issue/rank"
    itself = session.put(url, data=json.dumps({"issues": ["PAY-5", "PAY-6"], "rankBeforeIssue": "PAY-5"}))
    assert itself.status_code == 207
    assert {e["issueKey"]: e["status"] for e in itself.json()["entries"]} == {"PAY-5": 400, "PAY-6": 200}
    missing = session.put(url, data=json.dumps({"issues": ["PAY-5"], "rankBeforeIssue": "NOPE-9"}))
    assert missing.status_code == 400
    wrong_field = session.put(
        url, data=json.dumps({"issues": ["PAY-5"], "rankAfterIssue": "PAY-9", "rankCustomFieldId": 10100})
    )
    assert wrong_field.status_code == 400
    by_id = session.put(url, data=json.dumps({"issues": ["20007"], "rankAfterIssue": "20009"}))
    assert by_id.status_code == 204


def test_an_edit_that_changes_nothing_leaves_updated_alone(client: JIRA, server: SandboxServer) -> None:
    client.issue("PAY-3").update(update={"labels": [{"add": "mb-bottleneck"}]})
    before = client.issue("PAY-3", expand="changelog")
    client.issue("PAY-3").update(
        update={"labels": [{"add": "mb-bottleneck"}]}, fields={"customfield_10100": 3.0}
    )
    after = client.issue("PAY-3", expand="changelog")
    assert after.fields.updated == before.fields.updated
    assert after.changelog.total == before.changelog.total
    client.issue("PAY-3").update(update={"labels": [{"set": ["ui", "mb-bottleneck"]}]})
    assert client.issue("PAY-3").fields.labels == ["ui", "mb-bottleneck"]


def test_number_fields_and_hidden_fields_refuse_edits(client: JIRA, server: SandboxServer) -> None:
    with pytest.raises(JIRAError) as text:
        client.issue("PAY-3").update(fields={"customfield_10100": "high"})
    assert text.value.status_code == 400 and text.value.response is not None
    assert "customfield_10100" in text.value.response.json()["errors"]
    Control(server.base_url).edit(op="hide_field", field="customfield_10100")
    with pytest.raises(JIRAError) as hidden:
        client.issue("PAY-3").update(fields={"customfield_10100": 2})
    assert hidden.value.status_code == 400 and "cannot be set" in hidden.value.text


def test_remote_link_updates_replace_content_and_log_history(client: JIRA, server: SandboxServer) -> None:
    session = _raw()
    url = f"{server.base_url}/rest/api/2/issue/PAY-4/remotelink"
    body = {"globalId": "mb:okr", "relationship": "supports",
            "object": {"url": "https://okr.example.com/1", "title": "KR1"}}  # fmt: skip
    created = session.post(url, data=json.dumps(body))
    stamp = client.issue("PAY-4").fields.updated
    same = session.post(url, data=json.dumps(body))
    assert same.status_code == 200 and same.json()["id"] == created.json()["id"]
    assert client.issue("PAY-4").fields.updated == stamp  # nothing changed
    replaced = {"globalId": "mb:okr", "object": {"url": "https://okr.example.com/2", "title": "KR2"}}
    assert session.post(url, data=json.dumps(replaced)).status_code == 200
    (link,) = session.get(url).json()
    assert link["object"]["title"] == "KR2" and "relationship" not in link  # left out: cleared
    assert session.get(url, params={"globalId": "mb:okr"}).json()["id"] == link["id"]
    assert session.delete(f"{url}/{link['id']}").status_code == 204
    assert session.delete(url, params={"globalId": "mb:okr"}).status_code == 404
    history = client.issue("PAY-4", expand="changelog").changelog.histories
    fields = [item.field for h in history for item in h.items]
    assert fields.count("RemoteIssueLink") == 3  # added, changed, removed


def test_bulk_fetch_reads_a_hundred_by_id_or_key(server: SandboxServer, flavour: str) -> None:
    session = _raw()
    url = f"{server.base_url}/rest/api/3/issue/bulkfetch"
    body = {
        "issueIdsOrKeys": ["PAY-3", "20001", "NOPE-1", "99999"],
        "fields": ["labels", "customfield_10019"],
    }
    answer = session.post(url, data=json.dumps(body))
    if flavour != "cloud":
        assert answer.status_code == 404
        return
    assert answer.status_code == 200
    issues = answer.json()["issues"]
    assert [i["key"] for i in issues] == ["PAY-1", "PAY-3"]  # ascending id, the unknown left out
    assert set(issues[0]["fields"]) == {"labels", "customfield_10019"}
    too_many = session.post(url, data=json.dumps({"issueIdsOrKeys": [str(n) for n in range(101)]}))
    assert too_many.status_code == 400


def test_a_query_naming_a_missing_issue(server: SandboxServer, flavour: str) -> None:
    session = _raw()
    jql = "id in (20001, 99999) ORDER BY key ASC"
    if flavour == "cloud":
        answer = session.get(f"{server.base_url}/rest/api/3/search/jql", params={"jql": jql})
        assert answer.status_code == 400 and "99999" in answer.json()["errorMessages"][0]
        return
    search = f"{server.base_url}/rest/api/2/search"
    assert session.get(search, params={"jql": jql}).status_code == 400
    lenient = session.get(search, params={"jql": jql, "validateQuery": "false"}).json()
    assert [i["key"] for i in lenient["issues"]] == ["PAY-1"]
    assert "99999" in lenient["warningMessages"][0]


def test_notify_users_false_needs_the_permission(server: SandboxServer, flavour: str) -> None:
    """With Administer Projects the flag spares the watchers; without it Cloud ignores the flag (the
    watcher is emailed) and Data Center refuses the edit (403)."""
    control, session = Control(server.base_url), _raw()
    url = f"{server.base_url}/rest/api/2/issue/PAY-3"

    def edit(value: float, quiet: bool) -> int:
        params = {"notifyUsers": "false"} if quiet else None
        body = json.dumps({"fields": {"customfield_10100": value}})
        return session.put(url, data=body, params=params).status_code

    assert edit(1.0, quiet=True) == 204 and control.get("state")["emails"] == 0
    assert edit(1.0, quiet=False) == 204 and control.get("state")["emails"] == 0  # nothing changed
    assert edit(2.0, quiet=False) == 204 and control.get("state")["emails"] == 1  # the reporter
    control.edit(op="set_permissions", permissions=["EDIT_ISSUES", "BROWSE_PROJECTS"])  # not Administer
    asked = {"projectKey": "PAY", "permissions": "ADMINISTER_PROJECTS"}
    answer = session.get(f"{server.base_url}/rest/api/2/mypermissions", params=asked).json()
    assert answer["permissions"]["ADMINISTER_PROJECTS"]["havePermission"] is False
    assert edit(3.0, quiet=True) == (403 if flavour == "dc" else 204)
    assert control.get("state")["emails"] == (1 if flavour == "dc" else 2)


def test_bulk_edit_limits_and_permission(server: SandboxServer, flavour: str) -> None:
    """Cloud's bulk edit: 1 to 1,000 issues, the Bulk Change permission; Data Center has none."""
    control, session = Control(server.base_url), _raw()
    url = f"{server.base_url}/rest/api/3/bulk/issues/fields"
    labels = {"fieldId": "labels", "bulkEditMultiSelectFieldOption": "ADD", "labels": [{"name": "x"}]}

    def submit(issues: list[str], actions: tuple[str, ...] = ("labels",)) -> requests.Response:
        body = {"selectedIssueIdsOrKeys": issues, "selectedActions": list(actions),
                "editedFieldsInput": {"labelsFields": [labels]}}  # fmt: skip
        return session.post(url, data=json.dumps(body))

    if flavour == "dc":
        assert submit(["PAY-1"]).status_code == 404
        return
    assert submit([f"PAY-{n}" for n in range(1, 1002)]).status_code == 400
    assert submit(["PAY-1"], actions=("labels", "summary")).status_code == 400
    answer = submit(["PAY-1", "PAY-2", "NOPE-1"])
    assert answer.status_code == 201  # bulk notifications on by default: the watchers are emailed
    task = answer.json()["taskId"]
    progress = [session.get(f"{server.base_url}/rest/api/3/bulk/queue/{task}").json() for _ in range(2)]
    assert progress[0]["status"] == "RUNNING" and progress[1]["status"] == "COMPLETE"
    assert sorted(progress[1]["processedAccessibleIssues"]) == [20001, 20002]
    assert progress[1]["invalidOrInaccessibleIssueCount"] == 1
    assert control.get("state")["emails"] == 2
    control.edit(op="set_permissions", permissions=["EDIT_ISSUES", "BROWSE_PROJECTS"])
    assert submit(["PAY-3"]).status_code == 403
