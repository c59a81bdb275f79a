"""The check that stored flow facts equal the ones the stored history gives, for every task."""

from __future__ import annotations

from sqlalchemy import select

from bridge.analytics.snapshot import histories
from bridge.flow_facts import FlowFacts, facts_from_json, facts_of
from bridge.store import Store
from bridge.store.models import FlowFactRow, StatusChangeRow, TaskRow
from bridge.store.snapshot import read_status_changes


def stored_facts(store: Store) -> dict[tuple[str, str], FlowFacts | None]:
    table = FlowFactRow.__table__  # type: ignore[attr-defined]
    with store.read() as conn:
        rows = conn.execute(select(table.c.source, table.c.item_id, table.c.facts)).all()
    return {(source, item_id): facts_from_json(text) for source, item_id, text in rows}


def assert_facts_match_history(store: Store) -> int:
    """Every task with history has stored facts equal to those of its stored history; returns how many
    tasks were compared."""
    task = TaskRow.__table__  # type: ignore[attr-defined]
    with store.read() as conn:
        tasks = {(s, r) for s, r in conn.execute(select(task.c.source, task.c.remote_id))}
        changes = read_status_changes(conn)
    assert StatusChangeRow.__tablename__ == "status_change"
    expected = {key: facts_of(steps) for key, steps in histories(changes).items() if key in tasks}
    found = stored_facts(store)
    missing = sorted(expected.keys() - found.keys())
    assert not missing, f"{len(missing)} tasks with history have no facts, e.g. {missing[:3]}"
    wrong = [key for key, facts in expected.items() if found[key] != facts]
    assert not wrong, f"{len(wrong)} tasks' facts differ from their history's, e.g. {wrong[:3]}"
    return len(expected)
