"""The Jira connector's write side against the sandbox, Cloud and Data Center: every kind of write lands
and reads back, a second application changes nothing, a user's labels and links stay, rank moves go 50
a call, and a write Jira refuses is reported while the others land."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import FieldWrite, LinkTarget, Ref, WriteKind, WriteOutcome
from bridge.errors import AuthError, RetriableAPIError
from bridge.http import RetryPolicy
from bridge.sync.plan import same
from bridge.written import LINK_ID_PREFIX as GLOBAL_ID_PREFIX
from bridge.written import comment_marker
from bridge_jira import JiraConnector
from bridge_sandbox.generate import build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import Issue, JiraEmulator
from bridge_sandbox.server import SandboxServer
from tests.contract.test_jira_pull import EMAIL, STATUS_MAP, TOKEN
from tests.sandbox.conftest import Control

RANK_ROUTE = "PUT /rest/agile/1.0/issue/rank"
EDIT_ROUTE = "PUT /rest/api/{version}/issue/{key}"
OKR_LINK = GLOBAL_ID_PREFIX + "okr:KR1.2"
PERMISSIONS_ROUTE = "GET /rest/api/{version}/mypermissions"


@dataclass
class Rig:
    emulator: JiraEmulator
    control: Control
    connector: JiraConnector
    name: str = "t"

    def ref(self, key: str) -> Ref:
        return Ref(self.name, self.emulator.issues[key].id)

    def issue(self, key: str) -> Issue:
        return self.emulator.issues[key]

    def keys(self, project: str = "PAY") -> list[str]:
        found = [k for k in self.emulator.issues if k.startswith(project + "-")]
        return sorted(found, key=lambda k: int(k.rsplit("-", 1)[1]))

    def routes(self, *, setup: bool = False) -> dict[str, int]:
        """Requests by route; the account's permissions (read once per project, as setup) only when
        `setup`."""
        routes = dict(self.control.get("requests")["by_route"])
        if not setup:
            routes.pop(PERMISSIONS_ROUTE, None)
        return routes

    def forget_requests(self) -> None:
        self.control.send("DELETE", "requests")

    def push(self, *writes: FieldWrite) -> list[WriteOutcome]:
        outcomes = self.connector.push(list(writes))
        assert [o.write for o in outcomes] == list(writes)
        return outcomes

    def backlog(self) -> list[str]:
        return [i.key for i in sorted(self.emulator.issues.values(), key=lambda i: i.rank)]

    def bridge_links(self, key: str) -> list[dict[str, Any]]:
        return [
            x for x in self.issue(key).remote_links if str(x.get("globalId", "")).startswith(GLOBAL_ID_PREFIX)
        ]


def _table(base_url: str, okr_links: bool = True, rank_field: str = "Value rank") -> str:
    return f"""
[store]
url = "sqlite:///unused.db"

[trackers.t]
kind = "jira"
url = "{base_url}"
email_env = "T_EMAIL"
token_env = "T_TOKEN"
projects = ["PAY", "MOB"]
max_requests_per_second = 1000

[trackers.t.status_map]
{STATUS_MAP}

[trackers.t.write]
rank_field = "{rank_field}"
okr_field = "OKR"
okr_links = {"true" if okr_links else "false"}
native_order = true
"""


def _open(
    server: SandboxServer, tmp_path: Path, okr_links: bool = True, rank_field: str = "Value rank"
) -> JiraConnector:
    path = tmp_path / "bridge.toml"
    path.write_text(_table(server.base_url, okr_links, rank_field))
    tracker = load_config(path, ConnectorRegistry.default()).tracker("t")
    secrets = {"email_env": EMAIL, "token_env": TOKEN}
    policy = RetryPolicy(sleep=lambda seconds: None)
    return JiraConnector("t", tracker, secrets, JiraConnector.connect("t", tracker, secrets, policy))


@pytest.fixture(params=["cloud", "dc"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    seed = render_jira(build(seed=21, per_tracker=150, now=datetime(2026, 6, 1, tzinfo=UTC)))
    emulator = JiraEmulator.from_search(seed, flavour=str(request.param))
    emulator.add_custom_field("Value rank", "number")
    emulator.add_custom_field("OKR", "string")
    with SandboxServer(emulator) as server:
        connector = _open(server, tmp_path)
        try:
            yield Rig(emulator, Control(server.base_url), connector)
        finally:
            connector.close()


def field(rig: Rig, key: str, name: str, value: Any) -> FieldWrite:
    return FieldWrite(rig.ref(key), name, value, kind=WriteKind.FIELD, reason="test")


def label(rig: Rig, key: str, name: str, add: bool = True) -> FieldWrite:
    kind = WriteKind.LABEL_ADD if add else WriteKind.LABEL_REMOVE
    return FieldWrite(rig.ref(key), name, "red" if add else None, kind=kind)


def link(rig: Rig, key: str, target: LinkTarget | None, global_id: str = OKR_LINK) -> FieldWrite:
    return FieldWrite(rig.ref(key), global_id, target, kind=WriteKind.LINK)


def move(rig: Rig, key: str, after: str | None = None, before: str | None = None) -> FieldWrite:
    value = (rig.ref(after) if after else None, rig.ref(before) if before else None)
    return FieldWrite(rig.ref(key), "PAY", value, kind=WriteKind.ORDER)


KR = LinkTarget(OKR_LINK, "https://okr.example.com/kr/1.2", "KR1.2: checkout conversion 3%")


def _every_kind(rig: Rig) -> list[FieldWrite]:
    return [
        field(rig, "PAY-2", "rank", 3),
        field(rig, "PAY-2", "okr", "KR1.2"),
        label(rig, "PAY-2", "mb-bottleneck"),
        label(rig, "PAY-2", "mb-at-risk"),
        link(rig, "PAY-2", KR),
        field(rig, "PAY-3", "rank", 1),
        label(rig, "PAY-3", "mb-at-risk"),
        move(rig, "PAY-3", before="PAY-1"),
        move(rig, "PAY-2", after="PAY-3"),
    ]


def test_every_kind_of_write_lands_and_reads_back(rig: Rig) -> None:
    rig.forget_requests()
    before = rig.connector.stats()["requests"]
    stamp, histories = rig.issue("PAY-2").fields["updated"], len(rig.issue("PAY-2").histories)
    outcomes = rig.push(*_every_kind(rig))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    routes = rig.routes()
    assert routes[EDIT_ROUTE] == 2  # fields and labels of one issue go in one edit
    assert routes[RANK_ROUTE] == 1  # PAY-3 before PAY-1, PAY-2 after PAY-3: one call
    assert routes["POST /rest/api/{version}/issue/{key}/remotelink"] == 1
    assert rig.connector.stats()["requests"] - before == sum(routes.values()) == 4
    assert rig.backlog()[:3] == ["PAY-3", "PAY-2", "PAY-1"]

    states = rig.connector.read_state([rig.ref("PAY-1"), rig.ref("PAY-2"), rig.ref("PAY-3")])
    two, three, one = states[rig.ref("PAY-2")], states[rig.ref("PAY-3")], states[rig.ref("PAY-1")]
    assert two.key == "PAY-2" and two.fields == {"rank": 3, "okr": "KR1.2"}
    assert {"mb-bottleneck", "mb-at-risk"} <= two.labels
    assert two.links == {OKR_LINK: KR}
    assert three.fields == {"rank": 1, "okr": None} and "mb-at-risk" in three.labels
    assert three.links == {} and one.links == {}
    assert two.container == three.container == one.container == "PAY"
    assert three.position < two.position < one.position  # the Rank field's LexoRank, compared as text
    assert all(str(s.position).startswith("0|") for s in states.values())
    # the bridge's writes change `updated` and the history, which the next pull sees
    assert rig.issue("PAY-2").fields["updated"] != stamp
    assert len(rig.issue("PAY-2").histories) == histories + 3  # the edit, the link, the move


def test_applying_the_same_writes_twice_changes_nothing_the_second_time(rig: Rig) -> None:
    writes = _every_kind(rig)
    assert all(o.ok for o in rig.push(*writes))
    keys = ("PAY-1", "PAY-2", "PAY-3")
    first = {k: (dict(rig.issue(k).fields), [dict(x) for x in rig.issue(k).remote_links]) for k in keys}
    histories = {k: len(rig.issue(k).histories) for k in keys}
    order = rig.backlog()
    assert all(o.ok for o in rig.push(*writes))
    for key in keys:
        fields, links = first[key]
        now = rig.issue(key).fields
        assert {k: v for k, v in now.items() if k not in ("updated", "customfield_10019")} == {
            k: v for k, v in fields.items() if k not in ("updated", "customfield_10019")
        }
        assert rig.issue(key).remote_links == links
    assert len(rig.bridge_links("PAY-2")) == 1  # updated by globalId, never added twice
    assert rig.backlog() == order
    assert rig.issue("PAY-2").fields["labels"].count("mb-bottleneck") == 1
    # the edits and the link changed nothing, so only the moves (made again, to the same place) log
    for key in keys:
        added = rig.issue(key).histories[histories[key] :]
        assert all(item["field"] == "Rank" for h in added for item in h["items"]), added


def test_a_link_changed_in_place_and_removed(rig: Rig) -> None:
    changed = LinkTarget(OKR_LINK, "https://okr.example.com/kr/2.1", "KR2.1: fewer refunds")
    assert all(o.ok for o in rig.push(link(rig, "PAY-4", KR)))
    link_id = rig.bridge_links("PAY-4")[0]["id"]
    assert all(o.ok for o in rig.push(link(rig, "PAY-4", changed)))
    assert [(x["id"], x["object"]["title"]) for x in rig.bridge_links("PAY-4")] == [(link_id, changed.title)]
    assert rig.connector.read_state([rig.ref("PAY-4")])[rig.ref("PAY-4")].links == {OKR_LINK: changed}
    assert all(o.ok for o in rig.push(link(rig, "PAY-4", None)))
    assert rig.bridge_links("PAY-4") == []
    again = rig.push(link(rig, "PAY-4", None))  # already gone: removing twice is removing once
    assert again[0].ok


def test_a_users_labels_fields_and_links_are_never_touched(rig: Rig) -> None:
    key = "PAY-5"
    rig.control.edit(op="update", key=key, update={"labels": [{"add": "ui"}, {"add": "customer-ask"}]})
    user_link = {"object": {"url": "https://wiki.example.com/spec", "title": "Spec"}}
    rig.control.edit(op="add_remote_link", key=key, **user_link)
    foreign = {
        "globalId": "system=https://ci.example.com&id=7",
        "object": {"url": "https://ci", "title": "CI"},
    }
    rig.control.edit(op="add_remote_link", key=key, **foreign)
    summary = rig.issue(key).fields["summary"]
    for _ in range(3):
        outcomes = rig.push(
            label(rig, key, "mb-bottleneck"),
            link(rig, key, KR),
            field(rig, key, "rank", 7),
        )
        assert all(o.ok for o in outcomes)
        outcomes = rig.push(label(rig, key, "mb-bottleneck", add=False), link(rig, key, None))
        assert all(o.ok for o in outcomes)
    issue = rig.issue(key)
    assert (
        set(issue.fields["labels"]) >= {"ui", "customer-ask"}
        and "mb-bottleneck" not in issue.fields["labels"]
    )
    assert sorted(x["object"]["title"] for x in issue.remote_links) == ["CI", "Spec"]
    assert issue.fields["summary"] == summary
    state = rig.connector.read_state([rig.ref(key)])[rig.ref(key)]
    assert {"ui", "customer-ask"} <= state.labels  # the plan sees them, and leaves them alone
    assert state.links == {}  # only the bridge's links are reported
    refused = rig.push(link(rig, key, None, global_id=foreign["globalId"]))
    assert not refused[0].ok and "prefix" in str(refused[0].error)
    assert len(rig.issue(key).remote_links) == 2


def test_rank_moves_go_fifty_a_call(rig: Rig) -> None:
    keys = rig.keys("PAY") + rig.keys("MOB")  # Jira's Rank is one order over the whole site
    anchor, chain, rest = keys[0], keys[1:121], keys[121:]
    writes = [move(rig, chain[0], after=anchor)]
    writes += [move(rig, key, after=previous) for previous, key in itertools.pairwise(chain)]
    rig.forget_requests()
    outcomes = rig.push(*writes)
    assert all(o.ok for o in outcomes)
    calls = [e for e in rig.control.get("requests")["log"] if e["route"] == "/rest/agile/1.0/issue/rank"]
    assert len(calls) == math.ceil(len(chain) / 50) == 3
    order = rig.backlog()
    at = order.index(anchor)
    assert order[at + 1 : at + 1 + len(chain)] == chain
    ranks_before = {k: rig.issue(k).rank for k in rest}
    assert all(o.ok for o in rig.push(move(rig, anchor, after=chain[-1])))
    assert {k: rig.issue(k).rank for k in rest} == ranks_before  # only the moved issue gets a new rank
    assert rig.backlog()[rig.backlog().index(chain[-1]) + 1] == anchor


def test_before_anchor_moves_share_a_call_and_keep_their_order(rig: Rig) -> None:
    rig.forget_requests()
    outcomes = rig.push(
        move(rig, "PAY-20", before="PAY-1"),
        move(rig, "PAY-21", before="PAY-1"),
        move(rig, "PAY-22", after="PAY-21"),
        move(rig, "PAY-30", after="PAY-40"),  # another anchor: a second call
    )
    assert all(o.ok for o in outcomes)
    assert rig.routes()[RANK_ROUTE] == 2
    order = rig.backlog()
    start = order.index("PAY-20")
    assert order[start : start + 4] == ["PAY-20", "PAY-21", "PAY-22", "PAY-1"]
    assert order[order.index("PAY-40") + 1] == "PAY-30"


def test_a_text_rank_field_takes_scores_positions_and_bands_as_text(rig: Rig, tmp_path: Path) -> None:
    connector = _open_again(rig, tmp_path, okr_links=True, rank_field="OKR")
    try:
        writes = [
            FieldWrite(rig.ref("PAY-1"), "rank", 2.667),
            FieldWrite(rig.ref("PAY-2"), "rank", 3),
            FieldWrite(rig.ref("PAY-3"), "rank", "top 5"),
            FieldWrite(rig.ref("PAY-4"), "rank", 1200000.0),
        ]
        assert all(o.ok for o in connector.push(writes))
        held = [
            rig.issue(k).fields[connector.writer.managed["rank"]]
            for k in ("PAY-1", "PAY-2", "PAY-3", "PAY-4")
        ]
        assert held == ["2.667", "3", "top 5", "1200000"]
        states = connector.read_state([rig.ref("PAY-1"), rig.ref("PAY-2")])
        assert same(states[rig.ref("PAY-1")].fields["rank"], 2.667), "the plan sees its own score"
        assert same(states[rig.ref("PAY-2")].fields["rank"], 3)
    finally:
        connector.close()


def test_a_number_rank_field_refuses_a_band_before_any_request(rig: Rig) -> None:
    rig.forget_requests()
    (outcome,) = rig.push(field(rig, "PAY-5", "rank", "top 5"))
    assert not outcome.ok and "write.rank_value must be score or position" in str(outcome.error)
    assert rig.routes().get(EDIT_ROUTE, 0) == 0


def test_a_refused_write_is_reported_and_the_others_land(rig: Rig) -> None:
    rig.control.edit(op="hide_field", field=rig.connector.writer.managed["okr"])
    rig.forget_requests()
    outcomes = rig.push(
        field(rig, "PAY-6", "okr", "KR1.2"),  # not on the edit screen: 400 naming the field
        field(rig, "PAY-6", "rank", 4),
        label(rig, "PAY-6", "mb-bottleneck"),
        field(rig, "PAY-7", "rank", 5),
        field(rig, "PAY-8", "rank", "high"),  # not a number: refused before any request
    )
    assert [o.ok for o in outcomes] == [False, True, True, True, False]
    assert "HTTP 400" in str(outcomes[0].error) and "cannot be set" in str(outcomes[0].error)
    assert TOKEN not in str(outcomes[0].error)
    assert rig.issue("PAY-6").fields[rig.connector.writer.managed["rank"]] == 4
    assert "mb-bottleneck" in rig.issue("PAY-6").fields["labels"]
    assert rig.issue("PAY-7").fields[rig.connector.writer.managed["rank"]] == 5
    assert "number field cannot hold 'high'" in str(outcomes[4].error)
    assert rig.routes()[EDIT_ROUTE] == 3  # PAY-6 twice (refused, then without the hidden field), 7


def test_a_207_fails_only_the_issues_it_names(rig: Rig) -> None:
    doomed = rig.ref("PAY-12")
    writes = [
        move(rig, "PAY-11", after="PAY-50"),
        move(rig, "PAY-12", after="PAY-11"),
        move(rig, "PAY-13", after="PAY-12"),
        link(rig, "PAY-12", KR),
    ]
    rig.control.edit(op="delete", key="PAY-12")
    outcomes = rig.push(*writes)
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert "404" in str(outcomes[1].error) and "404" in str(outcomes[3].error)
    order = rig.backlog()
    assert order[order.index("PAY-50") + 1 : order.index("PAY-50") + 3] == ["PAY-11", "PAY-13"]
    assert doomed not in rig.connector.read_state([doomed, rig.ref("PAY-11")])


def test_5xx_is_retried_and_a_write_that_keeps_failing_is_reported(rig: Rig) -> None:
    pay9, pay10 = rig.issue("PAY-9").id, rig.issue("PAY-10").id
    rig.control.faults(
        {"kind": "5xx", "method": "PUT", "path": f"/issue/{pay9}$", "count": 2, "status": 503},
        {"kind": "5xx", "method": "PUT", "path": f"/issue/{pay10}$", "status": 500},
    )
    outcomes = rig.push(
        field(rig, "PAY-9", "rank", 1), field(rig, "PAY-10", "rank", 2), field(rig, "PAY-11", "rank", 3)
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    rank_field = rig.connector.writer.managed["rank"]
    assert rig.issue("PAY-9").fields[rank_field] == 1 and rig.issue("PAY-11").fields[rank_field] == 3
    assert rank_field not in rig.issue("PAY-10").fields


def test_credentials_refused_raise(rig: Rig) -> None:
    rig.emulator.token = "rotated"
    with pytest.raises(AuthError):
        rig.push(field(rig, "PAY-2", "rank", 3))


def test_read_state_takes_one_request_per_hundred_issues_and_leaves_out_the_missing(
    rig: Rig, tmp_path: Path
) -> None:
    keys = (rig.keys("PAY") + rig.keys("MOB"))[:150]
    refs = [rig.ref(k) for k in keys]
    gone = refs[5]
    rig.control.edit(op="delete", key=keys[5])
    refs.append(Ref("t", "version:10001"))  # a fix version is no issue: left out, no request
    rig.forget_requests()
    before = rig.connector.stats()["requests"]
    states = rig.connector.read_state(refs)
    routes = rig.routes()
    assert len(states) == 149 and gone not in states
    reads = routes.get("POST /rest/api/{version}/issue/bulkfetch", 0) + routes.get(
        "GET /rest/api/{version}/search", 0
    )
    assert reads == 2
    assert routes["GET /rest/api/{version}/issue/{key}/remotelink"] == 149
    assert rig.connector.stats()["requests"] - before == sum(routes.values())
    assert {s.container for s in states.values()} == {"PAY", "MOB"}

    quiet = _open_again(rig, tmp_path)
    rig.forget_requests()
    assert len(quiet.read_state(refs)) == 149
    assert "GET /rest/api/{version}/issue/{key}/remotelink" not in rig.routes()  # okr_links off: not read
    refused = quiet.push([link(rig, "PAY-2", KR), link(rig, "PAY-2", None)])
    assert [o.ok for o in refused] == [False, True]  # nothing added; taking a link back still works
    assert "okr_links" in str(refused[0].error)
    quiet.close()


def _open_again(
    rig: Rig, tmp_path: Path, okr_links: bool = False, rank_field: str = "Value rank"
) -> JiraConnector:
    base = rig.control.base.removesuffix("/_sandbox")

    class _Server:
        base_url = base

    return _open(_Server(), tmp_path, okr_links=okr_links, rank_field=rank_field)  # type: ignore[arg-type]


DC_DEFECTS = {"PUT /api/2/issue/{issueIdOrKey}", "GET /api/2/search"}


def test_the_write_side_speaks_as_the_vendor_documents_say(rig: Rig) -> None:
    """Every request the connector sends here, and the sandbox's answers, conform to the OpenAPI documents
    (Cloud: the platform and agile documents; Data Center: its one document)."""
    from tests.sandbox.openapi import JIRA_UNDOCUMENTED_PATHS, Recorder, problems
    from tests.sandbox.test_fidelity import _contract

    recorder = Recorder()
    recorder.attach(rig.connector.session.session)
    doomed = move(rig, "PAY-12", after="PAY-1")
    rig.control.edit(op="delete", key="PAY-12")
    shared = [label(rig, f"PAY-{n}", "mb-bottleneck") for n in range(4, 10)]  # on Cloud: a bulk edit
    shared += [field(rig, f"PAY-{n}", "rank", 8) for n in range(4, 10)]
    rig.push(*_every_kind(rig), link(rig, "PAY-2", None), doomed, *shared)
    rig.connector.read_state([rig.ref("PAY-2"), rig.ref("PAY-3")])
    cloud = rig.emulator.flavour == "cloud"
    exchanges = recorder.take()
    assert any("/bulk/" in e.path for e in exchanges) is cloud
    verdicts = []
    for exchange in exchanges:
        if exchange.path.startswith(JIRA_UNDOCUMENTED_PATHS):
            continue
        if not cloud:
            document = _contract("jira-software-dc")
            # The DC document's own defects (test_fidelity's xfails): it types every edited field value
            # and the `fields` list of a search as objects. Those requests are judged by the Cloud document.
            defect = document.operation(exchange.method, exchange.path) in DC_DEFECTS
            verdicts.append(document.check(exchange, request=not defect))
            if defect:
                v3 = "/rest/api/3/" + exchange.path.removeprefix("/rest/api/2/")
                verdicts.append(_contract("jira-platform-v3").check(exchange, path=v3, response=False))
        elif exchange.path.startswith("/rest/agile/1.0/"):
            verdicts.append(_contract("jira-software-agile").check(exchange))
        elif exchange.path.startswith("/rest/api/3/"):  # bulk edit, which Cloud serves in v3
            verdicts.append(_contract("jira-platform-v3").check(exchange))
        else:  # REST v2, as the `jira` package speaks it: the v3 operation's request, v3 answers differ
            v3 = "/rest/api/3/" + exchange.path.removeprefix("/rest/api/2/")
            verdicts.append(_contract("jira-platform-v3").check(exchange, path=v3, response=False))
    assert {v.exchange.status for v in verdicts if "rank" in v.exchange.path} == {204, 207}
    found = problems(verdicts)
    assert not found, f"departures from the documents:\n{found}"


def _reopen(rig: Rig, tmp_path: Path, write: str) -> JiraConnector:
    """Another connector to the rig's site, opened as a cycle opens it, with `write` as its write table."""
    base = rig.control.base.removesuffix("/_sandbox")
    path = tmp_path / "other.toml"
    path.write_text(_table(base).split("[trackers.t.write]")[0] + "[trackers.t.write]\n" + write)
    tracker = load_config(path, ConnectorRegistry.default()).tracker("t")
    return JiraConnector.open("t", tracker, {"email_env": EMAIL, "token_env": TOKEN})


def test_writes_the_config_switches_off_are_refused_without_a_request(rig: Rig, tmp_path: Path) -> None:
    quiet = _reopen(rig, tmp_path, 'rank_field = "Value rank"\nlabels = false\n')  # no order, no OKR field
    try:
        rig.forget_requests()
        outcomes = quiet.push(
            [
                label(rig, "PAY-2", "mb-bottleneck"),
                move(rig, "PAY-3", before="PAY-1"),
                field(rig, "PAY-2", "okr", "KR1.2"),
                field(rig, "PAY-2", "rank", 3),
                label(rig, "PAY-2", "mb-at-risk", add=False),  # taking a label back stays allowed
            ]
        )
    finally:
        quiet.close()
    assert [o.ok for o in outcomes] == [False, False, False, True, True]
    errors = [str(o.error) for o in outcomes[:3]]
    assert all(error.startswith("t: ") for error in errors)
    assert "write.labels" in errors[0] and "native_order" in errors[1] and "okr_field" in errors[2]
    assert rig.routes() == {EDIT_ROUTE: 1}  # the rank and the removal, one edit; nothing for the rest
    assert rig.issue("PAY-2").fields[rig.connector.writer.managed["rank"]] == 3
    assert "mb-bottleneck" not in rig.issue("PAY-2").fields["labels"]


def test_three_requests_down_in_a_row_raise_and_an_answer_between_them_resets_the_count(rig: Rig) -> None:
    down = ("PAY-9", "PAY-10", "PAY-12")
    rig.control.faults(
        *({"kind": "5xx", "method": "PUT", "path": f"/issue/{rig.issue(k).id}$", "status": 500} for k in down)
    )
    rig.control.edit(op="hide_field", field=rig.connector.writer.managed["okr"])
    outcomes = rig.push(
        field(rig, "PAY-9", "rank", 1),
        field(rig, "PAY-10", "rank", 2),
        field(rig, "PAY-11", "okr", "KR1.2"),  # refused (400): Jira answered, so it is not down
        field(rig, "PAY-12", "rank", 4),
    )
    assert [o.ok for o in outcomes] == [False, False, False, False]
    assert "HTTP 400" in str(outcomes[2].error) and "HTTP 500" in str(outcomes[3].error)
    with pytest.raises(RetriableAPIError):
        rig.push(*(field(rig, key, "rank", 1) for key in down))


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_writes_whose_answer_was_lost_are_read_back_on_cloud_and_data_center(
    rig: Rig, fault: str, applied: bool
) -> None:
    """Every attempt at PAY-1's edit, its remote link and its move gets no answer: Jira applied each and
    the answer was lost (`lose`), or the connection dropped before it arrived (`drop`). The writes are
    read back (bulk fetch on Cloud, a search on Data Center, the issue's remote links, the ranks) and
    each is settled as what Jira holds."""
    pay1 = rig.issue("PAY-1")
    target = LinkTarget(OKR_LINK, "https://okr.example.com/kr/1.2", "Grow revenue")
    issue_paths = rf"/issue/(PAY-1|{pay1.id})"
    rig.control.faults(
        {"kind": fault, "method": "PUT", "path": issue_paths + "$"},
        {"kind": fault, "method": "POST", "path": issue_paths + "/remotelink$"},
        {"kind": fault, "method": "PUT", "path": "/issue/rank$", "count": 6},
    )
    writes = [
        field(rig, "PAY-1", "rank", 4),
        label(rig, "PAY-1", "mb-bottleneck"),
        link(rig, "PAY-1", target),
        move(rig, "PAY-1", after="PAY-3"),
        field(rig, "PAY-2", "rank", 5),  # answered: three requests without an answer in a row mean down
    ]
    outcomes = rig.push(*writes)
    settled = [(o.ok, o.read_back) for o in outcomes]
    assert settled == [(applied, True)] * 4 + [(True, False)], [o.error for o in outcomes]
    assert (pay1.fields.get(rig.connector.writer.managed["rank"]) == 4) is applied
    assert ("mb-bottleneck" in pay1.fields.get("labels", [])) is applied
    assert len(rig.bridge_links("PAY-1")) == int(applied)


def comment(rig: Rig, key: str, text: str | None, completion: int = 1) -> FieldWrite:
    marker = comment_marker("reached", rig.ref(key), completion)
    return FieldWrite(rig.ref(key), marker, text, kind=WriteKind.COMMENT, reason="milestone reached")


def _bodies(rig: Rig, key: str) -> list[str]:
    return [str(c["text"]) for c in rig.issue(key).comments]


def test_a_comment_is_posted_once_with_its_marker_and_purged(rig: Rig) -> None:
    first = rig.push(comment(rig, "PAY-2", "PAY-2 reached."))
    again = rig.push(comment(rig, "PAY-2", "PAY-2 reached."))  # a retry, another replica: found, not posted
    assert [o.ok for o in first + again] == [True, True]
    marker = comment_marker("reached", rig.ref("PAY-2"), 1)
    assert _bodies(rig, "PAY-2") == [f"PAY-2 reached.\n\n{marker}"]
    rig.push(comment(rig, "PAY-2", "PAY-2 reached again.", completion=2))  # re-opened, done again
    assert len(_bodies(rig, "PAY-2")) == 2
    rig.issue("PAY-2").comments.insert(0, {"id": "u1", "text": "a user's note", "author": {}, "created": ""})
    purged = rig.push(comment(rig, "PAY-2", None), comment(rig, "PAY-2", None, completion=2))
    assert [o.ok for o in purged] == [True, True]
    assert _bodies(rig, "PAY-2") == ["a user's note"]


def test_comments_switched_off_are_refused_without_a_request(rig: Rig, tmp_path: Path) -> None:
    quiet = _reopen(rig, tmp_path, 'rank_field = "Value rank"\ncomments = false\n')
    try:
        rig.forget_requests()
        outcomes = quiet.push([comment(rig, "PAY-2", "PAY-2 reached.")])
    finally:
        quiet.close()
    assert not outcomes[0].ok and "write.comments" in str(outcomes[0].error)
    assert rig.routes() == {} and _bodies(rig, "PAY-2") == []


@pytest.mark.parametrize(("fault", "applied"), [("lose", True), ("drop", False)])
def test_a_comment_whose_answer_was_lost_is_read_back_and_never_doubled(
    rig: Rig, fault: str, applied: bool
) -> None:
    """Every post of the comment gets no answer: Jira took it (`lose`) or never saw it (`drop`). Each
    retry looks for the marker before it posts (it finds the lost one), and a post that never got an
    answer is read back; the next push finds the marker (or posts it): one comment."""
    pay2 = rig.issue("PAY-2")
    rig.control.faults({"kind": fault, "method": "POST", "path": rf"/issue/(PAY-2|{pay2.id})/comment$"})
    outcomes = rig.push(comment(rig, "PAY-2", "PAY-2 reached."))
    assert outcomes[0].ok is applied, outcomes[0].error
    assert len(_bodies(rig, "PAY-2")) == int(applied)
    rig.control.faults()
    assert rig.push(comment(rig, "PAY-2", "PAY-2 reached."))[0].ok
    assert len(_bodies(rig, "PAY-2")) == 1
