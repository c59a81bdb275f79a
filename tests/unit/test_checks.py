"""`bridge.checks.compare`: a tracker's config against what its connector discovered."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.checks import compare, compare_with_notes, lenient
from bridge.config import TrackerConfig, parse_config
from bridge.connector import ConnectorRegistry, DiscoveredField, Discovery
from bridge.errors import ConfigError


def tracker(body: str, name: str = "t") -> TrackerConfig:
    return parse_config(f"[trackers.{name}]\n{body}", ConnectorRegistry.default()).trackers[name]


def paths(problems: Any) -> list[str]:
    return [p.path for p in problems]


def messages(problems: Any) -> dict[str, str]:
    return {p.path: p.message for p in problems}


# ---- Jira -------------------------------------------------------------------------------------------------

JIRA = """kind = "jira"
url = "https://acme.atlassian.net"
email_env = "J_EMAIL"
token_env = "J_TOKEN"
projects = ["PAY", "MOB"]
status_map = { "To Do" = "todo", "3" = "in_progress", "in review" = "in_progress", "Done" = "done" }
"""

JIRA_FOUND = Discovery(
    containers=[("PAY", "Payments"), ("MOB", "Mobile")],
    statuses=[("10000", "To Do"), ("3", "In Progress"), ("10003", "In Review"), ("10001", "Done")],
    item_types=["Bug", "Epic", "Key Result", "Story", "Task"],
    labels=["backend", "ui"],
    fields=[
        DiscoveredField("customfield_10016", "Story Points", "number (float)"),
        DiscoveredField("customfield_10100", "Value", "number (float)"),
        DiscoveredField("customfield_10200", "Value Rank", "number (float)"),
        DiscoveredField("customfield_10201", "Key Result", "string (textfield)"),
        DiscoveredField("customfield_10300", "Team", "option (select)"),
    ],
    extra={"deployment": "cloud", "time_zone": "UTC"},
)

JIRA_MAPPING = """
[trackers.t.fields]
value = "value"
effort = "customfield_10016"

[trackers.t.write]
rank_field = "Value Rank"
okr_field = "customfield_10201"

[trackers.t.okrs]
key_result_type = "key result"
target_field = "Value"

[trackers.t.tasks]
issue_types = ["Story", "Bug"]

[[trackers.t.teams]]
name = "payments"
project = "pay"

[[trackers.t.work_types]]
name = "frontend"
label = "UI"

[[trackers.t.work_types]]
name = "bugs"
issue_type = "bug"
component = "anything"

[[trackers.t.work_types]]
name = "by field"
field = "Team"
value = "Core"
"""


def test_a_jira_mapping_that_matches_passes() -> None:
    assert compare("t", tracker(JIRA + JIRA_MAPPING), JIRA_FOUND) == []


def test_statuses_match_by_id_or_by_name_case_insensitively() -> None:
    config = tracker(JIRA.replace('"in review"', '"In Reveiw"').replace('"3"', '"99"'))
    found = messages(compare("t", config, JIRA_FOUND))
    assert found == {
        'trackers.t.status_map."In Reveiw"': "Jira has no status 'In Reveiw' (did you mean 'In Review'?)",
        "trackers.t.status_map.99": "Jira has no status '99'",
    }


def test_jira_projects_fields_and_types_are_named_by_path() -> None:
    mapping = (
        JIRA_MAPPING.replace('value = "value"', 'value = "Valeu"')
        .replace('rank_field = "Value Rank"', 'rank_field = "Team"')
        .replace('okr_field = "customfield_10201"', 'okr_field = "Team"')
        .replace('issue_types = ["Story", "Bug"]', 'issue_types = ["Story", "bug"]')
        .replace('label = "UI"', 'label = "uix"')
    )
    config = tracker(JIRA.replace('["PAY", "MOB"]', '["PAY", "MOBX"]') + mapping)
    found = messages(compare("t", config, JIRA_FOUND))
    assert found == {
        "trackers.t.projects[1]": "Jira has no project 'MOBX' (did you mean 'Mobile'?)",
        "trackers.t.fields.value": "Jira has no custom field 'Valeu' (did you mean 'Value'?)",
        "trackers.t.write.rank_field": (
            "Jira field 'Team' is an option field; the rank field must be number or string"
        ),
        "trackers.t.write.okr_field": "Jira field 'Team' is an option field; the OKR field must be string",
        "trackers.t.tasks.issue_types[1]": "Jira has no issue type 'bug' (did you mean 'Bug'?)",
    }
    _, notes = compare_with_notes("t", config, JIRA_FOUND)
    assert messages(notes) == {
        "trackers.t.work_types[0].label": "no Jira issue has the label 'uix' yet (did you mean 'ui'?)"
    }


def test_jira_data_center_labels_are_not_judged_and_issue_types_are() -> None:
    mapping = JIRA_MAPPING.replace('label = "UI"', 'label = "never-seen"').replace(
        'key_result_type = "key result"', 'key_result_type = "Objective KR"'
    )
    found = Discovery(**_replace(JIRA_FOUND, extra={"deployment": "data center"}))
    problems, notes = compare_with_notes("t", tracker(JIRA + mapping), found)
    assert paths(problems) == ["trackers.t.okrs.key_result_type"] and notes == []


def _replace(found: Discovery, **changes: Any) -> dict[str, Any]:
    fields = {name: getattr(found, name) for name in Discovery.__dataclass_fields__}
    return {**fields, **changes}


def test_a_rule_on_an_unknown_project_or_field() -> None:
    mapping = JIRA_MAPPING.replace('project = "pay"', 'project = "PAYX"').replace(
        'field = "Team"', 'field = "Squad"'
    )
    assert paths(compare("t", tracker(JIRA + mapping), JIRA_FOUND)) == [
        "trackers.t.teams[0].project",
        "trackers.t.work_types[2].field",
    ]


# ---- Trello -----------------------------------------------------------------------------------------------

DESIGN, CONTENT = "a" * 24, "b" * 24
TRELLO = f"""kind = "trello"
api_key_env = "T_KEY"
token_env = "T_TOKEN"
boards = ["{DESIGN}", "Ab12Cd34"]
status_map = {{ "To Do" = "todo", "doing" = "in_progress", "Done" = "done" }}

[trackers.t.fields]
value = "Value"

[trackers.t.write]
rank_field = "Value rank"
okr_field = "Key result"

[trackers.t.okrs]
list = "key results"

[[trackers.t.teams]]
name = "design"
board = "Design"

[[trackers.t.work_types]]
name = "prototype"
label = "prototype"

[[trackers.t.work_types]]
name = "review"
list = "Doing"

[[trackers.t.work_types]]
name = "by id"
label = "{"c" * 24}"
"""

TRELLO_FOUND = Discovery(
    containers=[(DESIGN, "Design (short link Zz99Yy88)"), (CONTENT, "Content (short link Ab12Cd34)")],
    statuses=[
        ("l1", "Design / To Do"),
        ("l2", "Design / Doing"),
        ("l3", "Design / Done"),
        ("l4", "Content / Key Results (archived list)"),
    ],
    labels=["M:Launch", "prototype"],
    fields=[
        DiscoveredField("f1", "Value", "number; board Design"),
        DiscoveredField("f2", "Value rank", "number; board Design"),
        DiscoveredField("f3", "Key result", "text; board Content"),
        DiscoveredField("f4", "Size", "list, 3 options: S, M, L; board Design"),
        DiscoveredField("f5", "Due", "date; board Design"),
    ],
)


def test_a_trello_mapping_that_matches_passes() -> None:
    assert compare("t", tracker(TRELLO), TRELLO_FOUND) == []


def test_trello_boards_lists_labels_fields_and_the_okr_list() -> None:
    config = tracker(
        TRELLO.replace('"Ab12Cd34"', '"Content"')
        .replace('"doing"', '"Doign"')
        .replace('rank_field = "Value rank"', 'rank_field = "Size"')
        .replace('okr_field = "Key result"', 'okr_field = "Due"')
        .replace('list = "key results"', 'list = "Objectives"')
        .replace('label = "prototype"', 'label = "prototyp"')
        .replace('value = "Value"', 'value = "f9"')
    )
    found = messages(compare("t", config, TRELLO_FOUND))
    assert found == {
        "trackers.t.boards[1]": (
            "Trello has no board 'Content' that this token can read (boards are named by id or short link)"
        ),
        "trackers.t.status_map.Doign": "Trello has no list 'Doign' (did you mean 'Doing'?)",
        "trackers.t.work_types[0].label": "Trello has no label 'prototyp' (did you mean 'prototype'?)",
        "trackers.t.fields.value": "Trello has no custom field 'f9'",
        "trackers.t.write.rank_field": (
            "Trello field 'Size' is a list field; the rank field must be number or text"
        ),
        "trackers.t.write.okr_field": (
            "Trello field 'Due' is a date field; the OKR field must be text or list"
        ),
        "trackers.t.okrs.list": "Trello has no list 'Objectives' on the configured boards",
    }


def test_trello_milestone_list() -> None:
    body = TRELLO.replace(
        "[trackers.t.fields]",
        '[trackers.t.milestones]\nsource = "list"\nlist = "Roadmap"\n\n[trackers.t.fields]',
    )
    assert paths(compare("t", tracker(body), TRELLO_FOUND)) == ["trackers.t.milestones.list"]


# ---- Asana ------------------------------------------------------------------------------------------------

ASANA = """kind = "asana"
token_env = "A_TOKEN"
workspace = "100"
projects = ["300", "301"]
status_map = { "To Do" = "todo", "402" = "done", "completed" = "done" }

[trackers.t.milestones]
source = "section"
sections = ["Milestones"]

[trackers.t.tasks]
attach = "section"

[trackers.t.okrs]
time_period = "750"

[trackers.t.fields]
value = "Value"

[trackers.t.write]
rank_field = "Value rank"
okr_field = "Priority"

[[trackers.t.teams]]
name = "growth"
project = "roadmap"

[[trackers.t.work_types]]
name = "ui"
tag = "UI"

[[trackers.t.work_types]]
name = "reviews"
section = "To Do"
"""

ASANA_FOUND = Discovery(
    containers=[
        ("100", "workspace: Acme"),
        ("300", "project: Roadmap"),
        ("301", "project: Backlog (archived)"),
    ],
    statuses=[
        ("400", "Roadmap / To Do"),
        ("401", "Roadmap / Milestones"),
        ("402", "Roadmap / Done"),
        ("410", "Backlog / Column 0"),
        ("completed", "any task marked complete, whatever its section"),
    ],
    item_types=["default_task", "milestone", "approval"],
    labels=["ui"],
    fields=[
        DiscoveredField("500", "Value", "number, precision 0"),
        DiscoveredField("501", "Priority", "enum, 2 options: Low, High"),
        DiscoveredField("502", "Value rank", "number, precision 0"),
        DiscoveredField("503", "Budget", "number, precision 2; on none of the projects listed"),
    ],
    extra={"goals": "1", "time_periods": "750 FY26 (2026-01-01 to 2026-12-31); 751 FY27 (? to ?)"},
)


def test_an_asana_mapping_that_matches_passes() -> None:
    assert compare("t", tracker(ASANA), ASANA_FOUND) == []


def test_asana_workspace_projects_sections_fields_and_time_period() -> None:
    config = tracker(
        ASANA.replace('workspace = "100"', 'workspace = "101"')
        .replace('["300", "301"]', '["300", "399"]')
        .replace('sections = ["Milestones"]', 'sections = ["Milestone"]')
        .replace('value = "Value"', 'value = "Budget"')
        .replace('rank_field = "Value rank"', 'rank_field = "Priority"')
        .replace('time_period = "750"', 'time_period = "760"')
    )
    found = messages(compare("t", config, ASANA_FOUND))
    assert found == {
        "trackers.t.workspace": "Asana has no workspace '101' that this token can read",
        "trackers.t.projects[1]": "Asana has no project '399' that this token can read",
        "trackers.t.fields.value": "Asana field 'Budget' is on none of the configured projects",
        "trackers.t.write.rank_field": (
            "Asana field 'Priority' is an enum field; the rank field must be number or text"
        ),
        "trackers.t.milestones.sections[0]": "Asana has no section 'Milestone' (did you mean 'Milestones'?)",
        "trackers.t.okrs.time_period": "Asana has no time period '760' (see `bridge discover`)",
    }


def test_asana_tags_are_judged_only_when_the_workspace_is_readable() -> None:
    config = ASANA.replace('tag = "UI"', 'tag = "design"')
    assert messages(compare("t", tracker(config), ASANA_FOUND)) == {
        "trackers.t.work_types[0].tag": "Asana has no tag 'design'"
    }
    elsewhere = tracker(config.replace('workspace = "100"', 'workspace = "101"'))
    assert paths(compare("t", elsewhere, ASANA_FOUND)) == ["trackers.t.workspace"]


# ---- connecting -------------------------------------------------------------------------------------------


def test_the_lenient_copy_names_no_field_and_keeps_the_rest() -> None:
    config = tracker(JIRA + JIRA_MAPPING)
    loose = lenient(config)
    assert loose.fields.value is None and loose.fields.effort is None
    assert loose.write.rank_field is None and loose.write.okr_field is None
    assert loose.okrs.target_field is None and loose.okrs.key_result_type == "key result"  # type: ignore[attr-defined]
    assert loose.status_map == config.status_map and loose.projects == ["PAY", "MOB"]  # type: ignore[attr-defined]
    assert config.write.rank_field == "Value Rank", "the original is left alone"


# ---- forecast date fields ---------------------------------------------------------------------------------


def test_forecast_fields_must_exist_and_be_date_fields() -> None:
    found = Discovery(
        containers=JIRA_FOUND.containers,
        statuses=JIRA_FOUND.statuses,
        item_types=JIRA_FOUND.item_types,
        labels=JIRA_FOUND.labels,
        fields=[
            *JIRA_FOUND.fields,
            DiscoveredField("customfield_10400", "P50 finish", "date (datepicker)"),
            DiscoveredField("customfield_10401", "Planned start", "datetime (datetime)"),
        ],
        extra=JIRA_FOUND.extra,
    )
    good = JIRA_MAPPING.replace(
        "[trackers.t.write]\n",
        '[trackers.t.write]\nforecast_fields = { p50 = "p50 finish", p85 = "customfield_10400" }\n',
    )
    assert compare("t", tracker(JIRA + good), found) == []
    bad = JIRA_MAPPING.replace(
        "[trackers.t.write]\n",
        '[trackers.t.write]\nforecast_fields = { p50 = "P50 finsh", p85 = "Planned start" }\n',
    )
    assert messages(compare("t", tracker(JIRA + bad), found)) == {
        "trackers.t.write.forecast_fields.p50": (
            "Jira has no custom field 'P50 finsh' (did you mean 'P50 finish'?)"
        ),
        "trackers.t.write.forecast_fields.p85": (
            "Jira field 'Planned start' is a datetime field; the P85 forecast field must be date"
        ),
    }


def test_a_trello_date_field_takes_a_forecast_date() -> None:
    config = tracker(
        TRELLO.replace("[trackers.t.write]\n", '[trackers.t.write]\nforecast_fields = { p85 = "Due" }\n')
    )
    assert compare("t", config, TRELLO_FOUND) == []
    wrong = tracker(
        TRELLO.replace("[trackers.t.write]\n", '[trackers.t.write]\nforecast_fields = { p50 = "Size" }\n')
    )
    assert messages(compare("t", wrong, TRELLO_FOUND)) == {
        "trackers.t.write.forecast_fields.p50": (
            "Trello field 'Size' is a list field; the P50 forecast field must be date"
        )
    }


def test_the_two_forecast_dates_need_two_fields() -> None:
    with pytest.raises(ConfigError) as raised:
        tracker(JIRA + '[trackers.t.write]\nforecast_fields = { p50 = "Finish", p85 = "finish" }\n')
    assert "trackers.t.write.forecast_fields.p85" in str(raised.value)
    assert "names the same field as p50 ('Finish')" in str(raised.value)
