"""Statuses by name: the pull stores each raw status's display name, the analysis shows it, and a store made
before names were kept (migration `statusnames01`) shows ids until the next pull fills them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import inspect

from bridge.analytics.bottlenecks import time_in_status
from bridge.analytics.snapshot import build_index
from bridge.domain import RemotePage, StatusCategory, StatusChange, StatusName, Task
from bridge.store import Store
from bridge.store.migrate import head_revision
from bridge.store.pages import save_page
from bridge.store.snapshot import load_snapshot
from bridge_jira.config import JiraTrackerConfig
from bridge_jira.mapping import JiraMapping

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=10)
SRC = "acme-jira"
DOING, REVIEW, DONE = StatusCategory.IN_PROGRESS, StatusCategory.WAITING, StatusCategory.DONE


def _page(statuses: list[StatusName]) -> RemotePage:
    task = Task(SRC, "1", "PAY-1", "Wallet export", team="payments", category=REVIEW, created=T0, updated=T0)
    changes = [
        StatusChange(SRC, "h1", "1", T0, "10000", "3", StatusCategory.TODO, DOING),
        StatusChange(SRC, "h2", "1", T0 + timedelta(days=2), "3", "10002", DOING, REVIEW),
    ]
    return RemotePage(SRC, "issues", tasks=[task], status_changes=changes, statuses=statuses)


def _statuses_shown(store: Store) -> dict[str, StatusCategory]:
    snapshot = load_snapshot(store)
    return {
        row.status: row.category for row in time_in_status(build_index(snapshot), NOW, timedelta(days=90))
    }


def test_time_in_status_names_each_status_and_a_rename_follows(store: Store) -> None:
    with store.write() as conn:
        save_page(
            conn, _page([StatusName(SRC, "3", "In Progress"), StatusName(SRC, "10002", "Blocked")]), now=T0
        )
    assert _statuses_shown(store) == {"In Progress": DOING, "Blocked": REVIEW}
    with store.write() as conn:  # renamed in the tracker: the next pull's name wins
        save_page(conn, _page([StatusName(SRC, "10002", "Waiting for QA")]), now=NOW)
    assert _statuses_shown(store) == {"In Progress": DOING, "Waiting for QA": REVIEW}


def test_a_status_without_a_name_falls_back_to_its_id(store: Store) -> None:
    with store.write() as conn:
        save_page(conn, _page([StatusName(SRC, "3", "In Progress")]), now=T0)
    assert _statuses_shown(store) == {"In Progress": DOING, "10002": REVIEW}


def test_a_store_from_before_names_upgrades_and_shows_ids_until_the_next_pull(store_url: str) -> None:
    old = Store(store_url)
    try:
        old.upgrade()
        with old.write() as conn:  # a pull by the previous version: no names on its pages
            save_page(conn, _page([]), now=T0)
        old.downgrade("okrdrafts01")  # the schema before names, its rows kept
        assert "status_name" not in inspect(old.engine).get_table_names()
        assert old.upgrade().after == head_revision()
    finally:
        old.close()
    upgraded = Store(store_url)
    try:
        assert set(_statuses_shown(upgraded)) == {"3", "10002"}, "ids until a pull names them"
        with upgraded.write() as conn:
            save_page(conn, _page([StatusName(SRC, "3", "In Progress"), StatusName(SRC, "10002", "Blocked")]),
                      now=NOW)  # fmt: skip
        assert set(_statuses_shown(upgraded)) == {"In Progress", "Blocked"}
    finally:
        upgraded.close()


def _issue(
    issue_id: str, status: tuple[str, str], moves: list[tuple[str, str, str, str]]
) -> dict[str, object]:
    histories = [
        {"id": f"{issue_id}{n}", "created": f"2026-03-0{n + 1}T10:00:00.000+0000",
         "items": [{"field": "status", "from": a, "fromString": an, "to": b, "toString": bn}]}
        for n, (a, an, b, bn) in enumerate(moves)
    ]  # fmt: skip
    return {
        "id": issue_id,
        "key": f"PAY-{issue_id}",
        "fields": {
            "summary": "Wallet export",
            "issuetype": {"name": "Task"},
            "project": {"key": "PAY"},
            "status": {"id": status[0], "name": status[1], "statusCategory": {"key": "indeterminate"}},
            "created": "2026-03-01T09:00:00.000+0000",
            "updated": "2026-03-05T09:00:00.000+0000",
        },
        "changelog": {"histories": histories},
    }


def test_jira_names_a_status_as_it_is_now_over_what_a_history_called_it() -> None:
    config = JiraTrackerConfig.model_validate(
        {
            "kind": "jira",
            "url": "https://acme.atlassian.net",
            "email_env": "E",
            "token_env": "T",
            "projects": ["PAY"],
            "status_map": {"10000": "todo", "3": "in_progress", "10002": "waiting", "10001": "done"},
        }
    )
    mapping = JiraMapping(SRC, config, config.url, ZoneInfo("UTC"), {})
    # the history still says "Doing", the name status 3 had when the move was made; it is "In Progress" now
    old_name = [("10000", "To Do", "3", "Doing")]
    mapping.map_issues([_issue("1", ("10002", "Blocked"), [*old_name, ("3", "Doing", "10002", "Blocked")])])
    mapping.map_issues([_issue("2", ("3", "In Progress"), old_name)])
    mapping.map_issues([_issue("3", ("10002", "Blocked"), old_name)])
    assert {s.remote_id: s.name for s in mapping.statuses()} == {
        "10000": "To Do",
        "3": "In Progress",
        "10002": "Blocked",
    }
