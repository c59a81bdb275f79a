"""A pull whose store is behind the network stores several pages to a transaction on SQLite, each page's
cursor with its rows: fewer commits, the same store; a failure reading a page keeps the pages before it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

import bridge_jira.pull
from bridge.domain import RemotePage
from bridge.errors import RetriableAPIError
from bridge.store.models import TaskRow
from bridge.store.pages import get_cursor
from bridge.sync import pull as pull_module
from bridge.sync.pull import PAGES_PER_COMMIT, pull_all
from bridge.sync.pull_worker import WORKER_ENV
from tests.unit.test_progress import Jira, jira  # noqa: F401 - the fixture

STORE_DELAY_S = 0.05
"""How long storing a page takes here: long enough for the next pages to be fetched meanwhile."""


def _slow_store(monkeypatch: pytest.MonkeyPatch) -> None:
    original = pull_module.save_page

    def slow(conn: Any, page: RemotePage, **kwargs: Any) -> Any:
        time.sleep(STORE_DELAY_S)
        return original(conn, page, **kwargs)

    monkeypatch.setattr(pull_module, "save_page", slow)


def _stored_tasks(rig: Jira) -> int:
    with rig.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(TaskRow.__table__)).scalar_one())  # type: ignore[attr-defined]


def test_a_store_behind_the_network_commits_pages_together_and_ends_the_same(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 5)
    _slow_store(monkeypatch)
    commits: list[int] = []
    event.listen(jira.store.engine, "commit", lambda conn: commits.append(1))
    (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    assert result.ok, result.error
    assert result.pages > PAGES_PER_COMMIT, "enough pages for more than one transaction"
    # the pull's own bookkeeping (its run, the census) commits a few times besides the pages
    assert len(commits) < result.pages / 2, (len(commits), result.pages)
    with jira.store.read() as conn:
        cursor = get_cursor(conn, "t", "issues")
    assert cursor is not None and cursor.value is not None
    # nothing was left out: reading everything again changes nothing
    (again,) = pull_all(jira.store, jira.config, now=datetime.now(UTC), full=True)
    assert again.ok and again.changed == 0 and again.items == result.items


def test_a_page_that_cannot_be_read_keeps_the_pages_before_it_with_their_cursor(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_jira.pull, "PAGE_SIZE", 5)
    monkeypatch.setenv(WORKER_ENV, "off")  # the pages mapped are counted in this process
    _slow_store(monkeypatch)
    mapped: list[RemotePage] = []
    original = bridge_jira.pull.JiraPuller._page

    def failing(self: Any, *args: Any) -> RemotePage:
        if len(mapped) == 4:
            raise RetriableAPIError("t: the fifth page failed", tracker="t")
        page = original(self, *args)
        mapped.append(page)
        return page

    monkeypatch.setattr(bridge_jira.pull.JiraPuller, "_page", failing)
    (result,) = pull_all(jira.store, jira.config, now=datetime.now(UTC))
    assert not result.ok and result.error is not None and "fifth page" in result.error
    assert result.pages == 4
    assert _stored_tasks(jira) == sum(len(page.tasks) for page in mapped) > 0
    with jira.store.read() as conn:
        cursor = get_cursor(conn, "t", "issues")
    assert cursor is not None and cursor.value == mapped[-1].cursor
