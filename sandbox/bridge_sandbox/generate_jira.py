"""The generated organisation's Jira teams as a Jira Cloud search response with `expand=changelog`."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bridge_sandbox.generate import STATUSES, MilestonePlan, Organisation, TaskPlan
from bridge_sandbox.jira import SITE, format_time

ZONE = ZoneInfo("America/New_York")
VALUE_FIELD, EFFORT_FIELD = "customfield_10100", "customfield_10016"
FIELD_NAMES = {VALUE_FIELD: "Value", EFFORT_FIELD: "Story Points"}
EPIC = {"id": "10000", "name": "Epic", "subtask": False, "hierarchyLevel": 1}
STORY = {"id": "10001", "name": "Story", "subtask": False, "hierarchyLevel": 0}
PROJECT_IDS = {"PAY": "10100", "MOB": "10200"}


def render_jira(organisation: Organisation) -> dict[str, Any]:
    milestones, tasks = organisation.for_tracker("jira")
    keys: dict[tuple[str, int], str] = {}
    counters: dict[str, int] = {}
    issues: list[dict[str, Any]] = []
    history_ids = iter(range(1_000_000, 100_000_000))
    for milestone in milestones:
        key = _next_key(counters, milestone.team.container)
        keys[("m", milestone.number)] = key
        issues.append(_milestone_issue(milestone, key))
    live = [t for t in tasks if not t.deleted]  # a deleted Jira issue is simply gone
    for task in live:
        keys[("t", task.number)] = _next_key(counters, task.team.container)
    for task in live:
        issues.append(_task_issue(task, keys, history_ids))
    _link_blockers(live, keys, issues)
    return {
        "startAt": 0,
        "maxResults": len(issues),
        "total": len(issues),
        "names": FIELD_NAMES,
        "issues": issues,
    }


def _next_key(counters: dict[str, int], project: str) -> str:
    counters[project] = counters.get(project, 0) + 1
    return f"{project}-{counters[project]}"


def _status(name: str) -> dict[str, Any]:
    status_id, category = STATUSES[name]
    key = {"todo": "new", "in_progress": "indeterminate", "waiting": "indeterminate", "done": "done"}[
        category
    ]
    return {"self": f"{SITE}/rest/api/2/status/{status_id}", "id": status_id, "name": name,
            "statusCategory": {"key": key}}  # fmt: skip


def _project(key: str) -> dict[str, Any]:
    return {"id": PROJECT_IDS.get(key, "10900"), "key": key, "name": key.title()}


def _issue_id(key: str) -> str:
    project, number = key.rsplit("-", 1)
    return str(int(PROJECT_IDS.get(project, "10900")) * 1000 + int(number))


def _milestone_issue(milestone: MilestonePlan, key: str) -> dict[str, Any]:
    stamp = format_time(milestone.created, ZONE)
    fields: dict[str, Any] = {
        "summary": milestone.title,
        "description": milestone.description or None,
        "project": _project(milestone.team.container),
        "issuetype": EPIC,
        "status": _status(milestone.status),
        "labels": [f"okr-{milestone.key_result}"] if milestone.key_result else [],
        "created": stamp,
        "updated": stamp,
        "duedate": milestone.due.isoformat() if milestone.due else None,
        VALUE_FIELD: milestone.value,
        EFFORT_FIELD: milestone.effort,
        "issuelinks": [],
    }
    return {"id": _issue_id(key), "key": key, "fields": fields,
            "changelog": {"startAt": 0, "maxResults": 0, "total": 0, "histories": []}}  # fmt: skip


def _task_issue(task: TaskPlan, keys: dict[tuple[str, int], str], ids: Any) -> dict[str, Any]:
    key = keys[("t", task.number)]
    histories = []
    previous = "To Do"
    for change in task.changes:
        if change.status == previous:
            continue
        item = {"field": "status", "fieldtype": "jira", "fieldId": "status",
                "from": STATUSES[previous][0], "fromString": previous,
                "to": STATUSES[change.status][0], "toString": change.status}  # fmt: skip
        author = {"accountId": "gen-user", "displayName": "Team member"}
        histories.append(
            {"id": str(next(ids)), "author": author, "created": format_time(change.at, ZONE), "items": [item]}
        )
        previous = change.status
    histories.reverse()  # newest first, as Jira Cloud sends them
    fields: dict[str, Any] = {
        "summary": task.title,
        "project": _project(task.team.container),
        "issuetype": STORY,
        "status": _status(task.status),
        "labels": list(task.labels) + (["archived"] if task.archived else []),
        "created": format_time(task.created, ZONE),
        "updated": format_time(max(task.updated, task.created), ZONE),
        "resolutiondate": format_time(task.updated, ZONE) if task.status == "Done" else None,
        "issuelinks": [],
    }
    if task.milestone is not None and ("m", task.milestone) in keys:
        parent = keys[("m", task.milestone)]
        fields["parent"] = {"id": _issue_id(parent), "key": parent}
    return {"id": _issue_id(key), "key": key, "fields": fields,
            "changelog": {"startAt": 0, "maxResults": len(histories), "total": len(histories),
                          "histories": histories}}  # fmt: skip


def _link_blockers(
    tasks: list[TaskPlan], keys: dict[tuple[str, int], str], issues: list[dict[str, Any]]
) -> None:
    by_key = {issue["key"]: issue for issue in issues}
    link_type = {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"}
    for task in tasks:
        blocked = keys[("t", task.number)]
        for number in task.blocked_by:
            blocker = keys.get(("t", number))
            if blocker is None:
                continue
            link_id = f"{_issue_id(blocker)}{_issue_id(blocked)}"
            by_key[blocker]["fields"]["issuelinks"].append(
                {"id": link_id, "type": link_type, "outwardIssue": {"id": _issue_id(blocked), "key": blocked}}
            )
            by_key[blocked]["fields"]["issuelinks"].append(
                {"id": link_id, "type": link_type, "inwardIssue": {"id": _issue_id(blocker), "key": blocker}}
            )
