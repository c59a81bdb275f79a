"""Hostile tracker text into the store, property-based, on SQLite and PostgreSQL: whatever an item's
title, labels and status hold (NUL, escape sequences, bidirectional overrides, any Unicode), the page
lands; the text is stored as it came but for NUL, which becomes U+FFFD, and each item that held NUL is
counted once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bridge.domain import Milestone, RemotePage, StatusCategory, Task
from bridge.store import Store
from bridge.store.models import MilestoneRow, TaskRow
from bridge.store.pages import save_page

EXAMPLES = settings(
    max_examples=int(os.environ.get("HOSTILE_STORE_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""A few seconds per store; set HOSTILE_STORE_EXAMPLES for a deeper search."""
T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
SRC = "acme-jira"

hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.lists(
    st.sampled_from(["\x00", "\x1b[2J", "\x1b]0;pwned\x07", "\u202e", "\U000e0041", "\x9b", "'", "\\"])
    | st.text(max_size=5),
    max_size=8,
).map("".join)
"""Any text (lone surrogates aside, which no JSON document from a tracker decodes to), or pieces of
hostile text run together."""


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    s.upgrade()
    yield s
    s.close()


@EXAMPLES
@given(titles=st.lists(hostile, min_size=1, max_size=4), milestone=hostile, label=hostile, status=hostile)
def test_any_text_lands_with_nul_alone_replaced_and_counted(
    store: Store, titles: list[str], milestone: str, label: str, status: str
) -> None:
    tasks = [
        Task(source=SRC, remote_id=str(n), key=f"PAY-{n}", title=title, milestone_id="100",
             category=StatusCategory.IN_PROGRESS, created=T0, updated=T0, labels=(label,), raw_status=status)
        for n, title in enumerate(titles, start=1)
    ]  # fmt: skip
    page = RemotePage(
        source=SRC, stream="issues", milestones=[Milestone(SRC, "100", "PAY-100", milestone)], tasks=tasks
    )
    with store.write() as conn:
        counts = save_page(conn, page, now=T0)
    with store.read() as conn:
        stored = {row.remote_id: row for row in conn.execute(select(TaskRow.__table__))}
        (stored_milestone,) = conn.execute(select(MilestoneRow.__table__))

    def kept(text: str) -> str:
        return text.replace("\x00", "\ufffd")

    for task in tasks:
        row = stored[task.remote_id]
        assert (row.title, row.raw_status) == (kept(task.title), kept(status))
        assert list(row.labels) == [kept(label)]
    assert stored_milestone.title == kept(milestone)
    with_nul = sum("\x00" in t.title + label + status for t in tasks) + ("\x00" in milestone)
    assert counts.cleaned == with_nul
