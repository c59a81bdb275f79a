"""Key-result status writes as the planner and the writer template see them: a goal's status update is
posted when the bridge's own differs, never taken back, refused where key results take none."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.config import BridgeConfig
from bridge.connector import ConnectorRegistry
from bridge.domain import FieldWrite, ItemState, Ref
from bridge.kit.writer import config_refusal
from bridge.sync.plan import Desired, plan
from bridge.written import STATUS_UPDATE_FIELD, Written, WrittenValue

GOAL = Ref("t", "701")
T0 = datetime(2027, 3, 1, tzinfo=UTC)


def planned(wish: object, held: object, written: Written | None = None) -> list[FieldWrite]:
    desired = Desired(GOAL, "701", fields={STATUS_UPDATE_FIELD: wish}, reasons={STATUS_UPDATE_FIELD: "why"})
    state = ItemState(GOAL, "701", fields={STATUS_UPDATE_FIELD: held})
    result = plan("t", {GOAL: desired}, {GOAL: state}, written or Written(), managed_labels=(),
                  opt_out_label="bridge-ignore")  # fmt: skip
    return result.writes


def test_a_status_update_is_posted_when_the_bridges_own_differs_and_never_taken_back() -> None:
    (write,) = planned("off_track", None)
    assert (write.value, write.reason) == ("off_track", "why")
    assert planned("off_track", "off_track") == []
    assert [w.value for w in planned("achieved", "off_track")] == ["achieved"]
    written = Written({(GOAL, STATUS_UPDATE_FIELD): WrittenValue("off_track", T0)})
    assert planned(None, "off_track", written) == [], "no status now: the last status update stays"


def config(kind_table: str) -> BridgeConfig:
    from bridge.config import parse_config

    text = kind_table + '\n[trackers.t.status_map]\n"Done" = "done"\n"To Do" = "todo"\n'
    return parse_config(text, ConnectorRegistry.default(), source="t.toml")


def test_only_trackers_whose_key_results_take_status_updates_get_one() -> None:
    asana = config('[trackers.t]\nkind = "asana"\ntoken_env = "T"\nworkspace = "1"\nprojects = ["2"]\n')
    trello = config('[trackers.t]\nkind = "trello"\napi_key_env = "K"\ntoken_env = "T"\nboards = ["b"]\n')
    post = FieldWrite(GOAL, STATUS_UPDATE_FIELD, "at_risk")
    assert config_refusal("t", asana.tracker("t"), post) is None
    assert config_refusal("t", trello.tracker("t"), post) == "key results here take no status updates"
    take_back = FieldWrite(GOAL, STATUS_UPDATE_FIELD, None)
    assert config_refusal("t", asana.tracker("t"), take_back) == "a status update is never taken back"
