"""What the analysis needs from a task's status history, computed once when the history arrives.

A task's flow facts are derived from its whole history: when it first entered each category, first
started, last finished and entered its current status; its cycle and active time as if it were done; the
spans of time it spent in each in-flight status; when it first entered each raw status; and the
category entries the cumulative-flow chart counts. The store keeps them with the task (table
`flow_fact`, written in the transaction that writes its history), so an analysis reads one row a task
instead of its whole history. `facts_of` is the one computation: a pull, the backfill and the analysis's
fallback for tasks without stored facts all call it, so the three agree by construction.

Times inside the facts are integer microseconds since the Unix epoch (UTC): exact, compact in JSON, and
what the figures that add time up in seconds (time in status, cumulative flow) compute with directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import orjson

from bridge.domain import FlowTimes, StatusCategory, StatusChange, unchecked_constructor

FACTS_VERSION = 1
"""Bumped when what the facts hold changes; stored facts of another version are recomputed."""

CATEGORIES: tuple[StatusCategory, ...] = tuple(StatusCategory)
_CODE = {category: i for i, category in enumerate(CATEGORIES)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_DONE = StatusCategory.DONE
_WAITING = StatusCategory.WAITING

Step = tuple[datetime, str, StatusCategory]
"""One entry into a raw status: (when, raw status, category)."""

Span = tuple[str, StatusCategory, int, int | None]
"""Time in one in-flight status: (raw status, category, entered, left); `left` is None for the last
status of the history (it lasts until now while the task is open)."""


def micros(at: datetime) -> int:
    """A UTC time as microseconds since the epoch, exactly."""
    return (at - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(0, 0, value)  # positional: a third cheaper than `microseconds=value`


_build_flow_times: Callable[..., FlowTimes] = unchecked_constructor(FlowTimes)


def flow_times_of(started: int, finished: int, active: int) -> FlowTimes:
    """The flow times of facts' `flow` (microseconds): start, finish, cycle and active time."""
    start, finish = _EPOCH + timedelta(0, 0, started), _EPOCH + timedelta(0, 0, finished)
    # built without `__init__` (a frozen class's is three times as slow): an analysis that asks for
    # them makes one for each task finished in its window, tens of thousands in a big store
    return _build_flow_times(start, finish, finish - start, timedelta(0, 0, active))


@dataclass(frozen=True, slots=True)
class FlowFacts:
    """One task's flow facts (see the module's docstring); equal whether computed at pull time or from
    the stored history."""

    first_entry: tuple[int | None, ...]
    """Per category, in `CATEGORIES` order, when the task first entered it."""
    first_start: int | None
    """The first entry into `in_progress` or `waiting`, in history order (work-in-progress age)."""
    last_done: int | None
    """The last entry into `done` (a done task's finish)."""
    flow: tuple[int, int, int] | None
    """(started, finished, active microseconds) by `flow_times`, as if the task were done; None when
    that gives none."""
    current_entered: int | None
    """When the task entered the status it is in now."""
    spans: tuple[Span, ...]
    """In-flight time from the first start on, one span per status entry (`done` entries left out)."""
    first_seen: tuple[tuple[str, int], ...]
    """Each raw status the task entered, with when it first did."""
    entries: tuple[tuple[int, StatusCategory], ...]
    """Category entries in history order, a repeat of the previous category left out."""

    def flow_times(self, current: StatusCategory) -> FlowTimes | None:
        """Cycle and active time, as `flow_times` gives them for a task now in `current`."""
        if current is not StatusCategory.DONE or self.flow is None:
            return None
        started, finished, active = self.flow
        return flow_times_of(started, finished, active)

    def to_json(self) -> str:
        """The facts as the store keeps them: compact JSON (numbers, null and status ids; orjson writes
        the standard library's text to the byte for those, several times faster)."""
        document = {
            "v": FACTS_VERSION,
            "first": list(self.first_entry),
            "start": self.first_start,
            "done": self.last_done,
            "flow": list(self.flow) if self.flow is not None else None,
            "current": self.current_entered,
            "spans": [[s, _CODE[c], a, b] for s, c, a, b in self.spans],
            "seen": [list(pair) for pair in self.first_seen],
            "entries": [[at, _CODE[c]] for at, c in self.entries],
        }
        try:
            return orjson.dumps(document).decode()
        except TypeError:  # text orjson refuses (a lone surrogate in a status id)
            return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


_build_facts: Callable[..., FlowFacts] = unchecked_constructor(FlowFacts)


def facts_from_json(text: str | bytes) -> FlowFacts | None:
    """Stored facts, or None when they are of another version (the history decides then)."""
    data: dict[str, Any] = orjson.loads(text)  # the same values as `json.loads`, in a third of the time
    if data.get("v") != FACTS_VERSION:
        return None
    cats = CATEGORIES
    flow = data["flow"]
    spans = data["spans"]
    # list comprehensions, positional fields and no `__init__` (a frozen class's sets each field through
    # `object.__setattr__`): an analysis decodes the facts of every open and recently finished task,
    # 34,000 of them at 100,000 tasks, 0.21 -> 0.16 s of CPU
    return _build_facts(
        tuple(data["first"]),
        data["start"],
        data["done"],
        (flow[0], flow[1], flow[2]) if flow is not None else None,
        data["current"],
        tuple([(s, cats[c], a, b) for s, c, a, b in spans]) if spans else (),
        tuple(map(tuple, data["seen"])),  # [status, at] pairs
        tuple([(at, cats[c]) for at, c in data["entries"]]),
    )


def steps_of(changes: Iterable[StatusChange]) -> list[Step]:
    """One item's history as steps, in the order the analysis reads them."""
    return sorted((c.at, c.to_status, c.to_category) for c in changes)


def facts_of(steps: Sequence[Step]) -> FlowFacts | None:
    """The facts of a task with this history (steps in time order); None without history."""
    if not steps:
        return None
    first: list[int | None] = [None] * len(CATEGORIES)
    seen: dict[str, int] = {}
    entries: list[tuple[int, StatusCategory]] = []
    epoch, micro = _EPOCH, _MICRO
    times = [(at - epoch) // micro for at, _, _ in steps]  # `micros`, inline: a site has millions
    for at, (_, status, category) in zip(times, steps, strict=True):
        code = _CODE[category]
        if first[code] is None:
            first[code] = at
        seen.setdefault(status, at)
        if not entries or entries[-1][1] is not category:
            entries.append((at, category))
    started = next((at for at, (_, _, category) in zip(times, steps, strict=True) if category.started), None)
    done = next(
        (
            at
            for at, (_, _, c) in zip(reversed(times), reversed(steps), strict=True)
            if c is StatusCategory.DONE
        ),
        None,
    )
    return FlowFacts(
        first_entry=tuple(first),
        first_start=started,
        last_done=done,
        flow=_flow(steps, times),
        current_entered=times[-1],
        spans=_spans(steps, times),
        first_seen=tuple(seen.items()),
        entries=tuple(entries),
    )


def _flow(steps: Sequence[Step], times: Sequence[int]) -> tuple[int, int, int] | None:
    """`flow_times(steps, DONE)` in microseconds, computed on them directly: the same pairs in the same
    order (the times are exact, so they sort as the datetimes do), the same first start, last finish
    and waiting between them, without a datetime or timedelta per step."""
    ordered = sorted([(at, category) for at, (_, _, category) in zip(times, steps, strict=True)])
    started = next((at for at, category in ordered if category.started), None)
    finished = next((at for at, category in reversed(ordered) if category is _DONE), None)
    if started is None or finished is None or finished < started:
        return None
    waiting = 0
    for (at, category), (next_at, _) in pairwise(ordered):
        if category is _WAITING and at >= started and next_at <= finished:
            waiting += next_at - at
    return started, finished, finished - started - waiting


def _spans(steps: Sequence[Step], times: Sequence[int]) -> tuple[Span, ...]:
    spans: list[Span] = []
    started = False
    ends: list[int | None] = [*times[1:], None]
    for (_, status, category), at, end in zip(steps, times, ends, strict=True):
        started = started or category.started
        if started and category is not StatusCategory.DONE:
            spans.append((status, category, at, end))
    return tuple(spans)
