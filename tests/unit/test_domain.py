"""Status categories and flow times: the definitions everything downstream relies on."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bridge.domain import (
    StatusCategory,
    Task,
    categorise,
    display_name,
    flow_times,
    slot_builder,
    unchecked_constructor,
)
from bridge.text import plural

TODO, DOING, WAITING, DONE = (
    StatusCategory.TODO,
    StatusCategory.IN_PROGRESS,
    StatusCategory.WAITING,
    StatusCategory.DONE,
)
D0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return D0 + timedelta(days=n)


def test_exactly_four_categories_in_stage_order() -> None:
    assert [c.value for c in StatusCategory] == ["todo", "in_progress", "waiting", "done"]


def test_cycle_time_from_first_start_to_last_done_including_waiting() -> None:
    times = flow_times([(day(0), TODO), (day(1), DOING), (day(3), WAITING), (day(5), DOING), (day(6), DONE)])
    assert times is not None
    assert times.started == day(1) and times.finished == day(6)
    assert times.cycle_time == timedelta(days=5)
    assert times.active_time == timedelta(days=3), "active time leaves the two waiting days out"


def test_waiting_counts_as_started() -> None:
    times = flow_times([(day(2), WAITING), (day(4), DONE)])
    assert times is not None and times.cycle_time == timedelta(days=2)
    assert times.active_time == timedelta(0)


def test_reopened_item_finishes_at_its_last_done() -> None:
    times = flow_times([(day(1), DOING), (day(2), DONE), (day(4), DOING), (day(7), DONE)])
    assert times is not None and times.finished == day(7) and times.cycle_time == timedelta(days=6)


def test_order_of_input_does_not_matter() -> None:
    changes = [(day(6), DONE), (day(1), DOING), (day(0), TODO)]
    times = flow_times(changes)
    assert times is not None and times.cycle_time == timedelta(days=5)


@pytest.mark.parametrize(
    "changes",
    [
        [],
        [(day(0), TODO), (day(2), DONE)],  # never started
        [(day(1), DOING), (day(2), DONE), (day(3), DOING)],  # reopened, not done now
        [(day(1), DOING)],
    ],
    ids=["no-history", "never-started", "reopened", "in-progress"],
)
def test_items_without_a_cycle_time(changes: list[tuple[datetime, StatusCategory]]) -> None:
    assert flow_times(changes) is None


def test_current_category_overrides_history() -> None:
    assert flow_times([(day(1), DOING), (day(2), DONE)], current=DOING) is None


def test_offsets_are_normalised_to_utc() -> None:
    plus_eight = timezone(timedelta(hours=8))
    times = flow_times([(datetime(2026, 1, 5, 17, 0, tzinfo=plus_eight), DOING), (day(1), DONE)])
    assert times is not None and times.started == D0 and times.started.tzinfo is UTC


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        flow_times([(datetime(2026, 1, 5), DOING)])  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        Task(source="s", remote_id="1", key="K-1", title="t", created=datetime(2026, 1, 5))  # noqa: DTZ001


def test_status_ids_win_over_names() -> None:
    status_map = {"10068": DONE, "In Progress": DOING, "已完成": TODO}
    assert categorise("10068", "已完成", status_map) is DONE
    assert categorise("999", "in progress", status_map) is DOING, "names match regardless of case"
    assert categorise("999", "Unknown", status_map) is None


@pytest.mark.parametrize(
    ("key", "title", "shown"),
    [
        ("PAY-1", "Wallet export", "PAY-1 Wallet export"),  # a Jira key people say aloud
        ("c8Ls2bPS", "Pipeline pricing", "Pipeline pricing"),  # a Trello short link finds, it names nothing
        ("1207060000000014", "Growth milestone 2", "Growth milestone 2"),  # an Asana gid
        ("Design milestone 3", "Design milestone 3", "Design milestone 3"),  # a label milestone: once
        ("PAY-2", "  ", "PAY-2"),  # untitled: the key
        ("v1.2", "v1.2", "v1.2"),  # a Jira fix version, named by itself
    ],
)
def test_display_name_shows_a_key_only_where_people_use_it(key: str, title: str, shown: str) -> None:
    assert display_name(key, title) == shown


def test_plural_and_category_labels_read_as_english() -> None:
    assert [plural(n, "open task") for n in (0, 1, 2)] == ["0 open tasks", "1 open task", "2 open tasks"]
    assert plural(2, "entry", "entries") == "2 entries"
    assert StatusCategory.IN_PROGRESS.label == "in progress"


def test_unchecked_constructor_makes_the_value_the_class_makes() -> None:
    fields = ("jira", "t1", "PAY-1", "Pay", "m1", "payments", "backend", "Done", DONE, day(0), day(2))
    fields += (day(1), day(2), None, ("urgent",), False, 3)
    built = unchecked_constructor(Task)(*fields)
    made = Task(*fields)
    assert type(built) is Task
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.title = "changed"  # type: ignore[misc]


@dataclasses.dataclass(frozen=True, slots=True)
class _Child(Task):
    note: str = ""


def test_slot_builder_sets_the_named_and_fixed_slots_of_a_subclass_only() -> None:
    build = slot_builder(_Child, ("source", "remote_id", "note"), {"category": DONE})
    built = build("jira", "t1", "a note")
    assert type(built) is _Child
    assert (built.source, built.remote_id, built.note, built.category) == ("jira", "t1", "a note", DONE)
    with pytest.raises(AttributeError):
        _ = built.title  # left unset
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.note = "changed"  # type: ignore[misc]
