"""Small builders for analytics tests: milestones, tasks and their status histories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bridge.domain import Milestone, StatusCategory, StatusChange, Task

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SOURCE = "jira"

TODO = StatusCategory.TODO
DOING = StatusCategory.IN_PROGRESS
WAITING = StatusCategory.WAITING
DONE = StatusCategory.DONE

STATUS_NAMES = {TODO: "To Do", DOING: "In Progress", WAITING: "Blocked", DONE: "Done"}


def milestone(key: str, **fields: object) -> Milestone:
    fields.setdefault("title", f"Milestone {key}")
    return Milestone(source=SOURCE, remote_id=key, key=key, **fields)  # type: ignore[arg-type]


def task(key: str, **fields: object) -> Task:
    fields.setdefault("title", f"Task {key}")
    return Task(source=SOURCE, remote_id=key, key=key, **fields)  # type: ignore[arg-type]


def history(
    item: str, *steps: tuple[float, StatusCategory] | tuple[float, StatusCategory, str]
) -> list[StatusChange]:
    """Status changes of `item`; each step is (days before NOW, category entered[, raw status])."""
    changes = []
    previous: tuple[str, StatusCategory] | None = None
    for i, step in enumerate(steps):
        ago, category = step[0], step[1]
        status = step[2] if len(step) > 2 else STATUS_NAMES[category]  # type: ignore[misc]
        changes.append(
            StatusChange(
                source=SOURCE,
                remote_id=f"{item}-{i}",
                item_id=item,
                at=NOW - ago * DAY,
                from_status=previous[0] if previous else None,
                to_status=status,
                from_category=previous[1] if previous else None,
                to_category=category,
            )
        )
        previous = (status, category)
    return changes


def finished(
    key: str, team: str, work_type: str | None, cycle_days: float, *, ended_ago: float = 1.0, **fields: object
) -> tuple[Task, list[StatusChange]]:
    """A task that started `cycle_days` before it finished, `ended_ago` days before NOW."""
    start = ended_ago + cycle_days
    item = task(key, team=team, work_type=work_type, category=DONE, **fields)
    return item, history(key, (start + 1, TODO), (start, DOING), (ended_ago, DONE))


def flatten(pairs: Sequence[tuple[Task, list[StatusChange]]]) -> tuple[list[Task], list[StatusChange]]:
    tasks = [t for t, _ in pairs]
    changes = [c for _, cs in pairs for c in cs]
    return tasks, changes
