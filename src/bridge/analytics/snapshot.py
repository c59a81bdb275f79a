"""The lookups every part of the analysis shares, built from the store's contents as analytics sees them.

A `Snapshot` (in `bridge.domain`) holds the domain values a loader builds from store rows, one row each.
`Index` is built from it once per analysis: items by reference, each task's status history in time
order, its flow times, and each milestone's team, so that no part of the analysis scans the whole
history twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from bridge.domain import (
    FlowTimes,
    Milestone,
    Ref,
    Snapshot,
    StatusCategory,
    StatusChange,
    Task,
)
from bridge.flow_facts import FlowFacts, Step, facts_of, flow_times_of, from_micros, micros

NO_TEAM = "(no team)"
"""The team name used for work that no team rule matched."""


Key = tuple[str, str]
"""An item's (source, remote_id): the lookups below use plain tuples, which hash far faster than `Ref`
over a million status changes."""

Finish = tuple[Task, int, int, int]
"""A finished task with its flow in exact microseconds since the epoch: (task, started, finished,
active time). Cycle time is finished - started."""


def key_of(item: Milestone | Task) -> Key:
    return (item.source, item.remote_id)


def as_ref(key: Key) -> Ref:
    return Ref(key[0], key[1])


def parent_key(task: Task) -> Key | None:
    """The milestone a task belongs to (tasks refer to milestones of their own tracker)."""
    return (task.source, task.milestone_id) if task.milestone_id else None


_CHANGE_KEY = attrgetter("source", "item_id")
_CHANGE_STEP = attrgetter("at", "to_status", "to_category")


def histories(changes: Iterable[StatusChange]) -> dict[Key, list[Step]]:
    """Each item's status entries in time order."""
    grouped: defaultdict[Key, list[Step]] = defaultdict(list)
    changes = changes if isinstance(changes, Sequence) else list(changes)
    # attribute lookups done in C: this loop runs once per status change, a million times in a big store
    for key, step in zip(map(_CHANGE_KEY, changes), map(_CHANGE_STEP, changes), strict=True):
        grouped[key].append(step)
    for steps in grouped.values():
        steps.sort()
    return dict(grouped)


def task_flow(task: Task, facts: FlowFacts | None) -> FlowTimes | None:
    """Cycle and active time from the history's facts; a task without history falls back on its dates."""
    if facts is not None:
        return facts.flow_times(task.category)
    if task.category is StatusCategory.DONE and task.started and task.done and task.done >= task.started:
        cycle = task.done - task.started
        return FlowTimes(started=task.started, finished=task.done, cycle_time=cycle, active_time=cycle)
    return None


def last_done(task: Task, facts: FlowFacts | None) -> datetime | None:
    """When a done task last entered `done` (its finish), without computing its whole flow."""
    if facts is not None and facts.last_done is not None:
        return from_micros(facts.last_done)
    return task.done


def first_start(task: Task, facts: FlowFacts | None) -> datetime | None:
    """When the task first entered `in_progress` or `waiting`; its age as work in progress counts from
    here."""
    if facts is not None and facts.first_start is not None:
        return from_micros(facts.first_start)
    return task.started


@dataclass
class Index:
    """Lookups over one snapshot, computed once. Flow times are kept for tasks finished since `since`."""

    since: datetime | None
    milestones: dict[Key, Milestone]
    tasks: dict[Key, Task]
    facts: dict[Key, FlowFacts]
    """Each task's flow facts: stored ones, else computed from its history (tasks with none have none)."""
    finish: dict[Key, Finish]
    """The tasks with flow times (done, finished since `since`), each with its flow in microseconds:
    what the passes over finished work (work types, throughput, cycle medians, deliveries) read, without
    a datetime made for each of tens of thousands of tasks; `flows` gives them as datetimes."""
    milestone_team: dict[Key, str]
    tasks_of: dict[Key, list[Task]] = field(default_factory=dict)
    derived: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)
    """Figures several parts of one analysis read, computed by the first to ask (keyed by what and for
    which arguments); the index is not changed once built, so they stay true."""
    status_names: dict[Key, str] = field(default_factory=dict)
    """(source, raw status) -> the status's display name, where the pull has stored one."""
    open_tasks: dict[Key, Task] = field(default_factory=dict)
    """The tasks not done, in `tasks` order: the few that several parts of the analysis look at one by
    one (in a long-lived store most tasks are done)."""
    dated: dict[Key, FlowTimes] = field(default_factory=dict)
    """The flows of `finish` taken from tasks' own dates (tasks without facts), as made."""
    _flows: dict[Key, FlowTimes] | None = field(default=None, repr=False, compare=False)

    @property
    def flows(self) -> dict[Key, FlowTimes]:
        """The flow times of `finish`, in its order, made on first asking: only the flow charts (and a
        report that is not a cycle's) read them as datetimes."""
        if self._flows is None:
            found = {key: flow_times_of(s, f, a) for key, (_, s, f, a) in self.finish.items()}
            found.update(self.dated)  # a key already there keeps its place
            self._flows = found
        return self._flows

    def finished_at(self, key: Key) -> datetime | None:
        """When a task of `finish` finished (`flows[key].finished`, without making its whole flow)."""
        found = self.finish.get(key)
        if found is None:
            return None
        dated = self.dated.get(key)
        return dated.finished if dated is not None else from_micros(found[2])

    def status_name(self, source: str, status: str | None) -> str | None:
        """A raw status as a person reads it: its name, or the id itself until a pull names it."""
        if status is None:
            return None
        return self.status_names.get((source, status), status)

    def team_of(self, task: Task) -> str:
        """A task's team; one with none takes its milestone's."""
        if task.team:
            return task.team
        parent = parent_key(task)
        if parent is not None and parent in self.milestone_team:
            return self.milestone_team[parent]
        return NO_TEAM


def build_index(snapshot: Snapshot, since: datetime | None = None) -> Index:
    """Index a snapshot; flows of tasks that finished before `since` are not computed (no window
    reaches back that far)."""
    milestones = {(m.source, m.remote_id): m for m in snapshot.milestones if not m.deleted}
    live = snapshot.tasks
    if any(map(_DELETED, live)):
        live = [t for t in live if not t.deleted]
    # keys and parents made in C (attribute getters over the whole list), not one tuple display a task:
    # this runs over every task of the store, a hundred thousand in a big one
    tasks = dict(zip(map(_TASK_KEY, live), live, strict=True))
    facts = task_facts(tasks, snapshot)
    finish: dict[Key, Finish] = {}
    dated: dict[Key, FlowTimes] = {}
    open_tasks: dict[Key, Task] = {}
    done = StatusCategory.DONE
    # `last_done` inline, for done tasks only: most tasks are done; the finish is compared in
    # microseconds, which is exact, before any datetime is made of it
    since_micros = micros(since) if since is not None else None
    found_facts = facts.get
    for key, task in tasks.items():
        if task.category is not done:
            open_tasks[key] = task
            continue
        found = found_facts(key)
        if found is not None and found.last_done is not None:
            if since_micros is not None and found.last_done < since_micros:
                continue
        elif task.done is None or (since is not None and task.done < since):
            continue
        # `task_flow` of a done task, kept in microseconds: the datetimes are made only if asked for
        if found is not None:
            if found.flow is not None:
                finish[key] = (task, *found.flow)
            continue
        flow = task_flow(task, None)
        if flow is not None:
            finish[key] = (task, micros(flow.started), micros(flow.finished), flow.active_time // _MICRO)
            dated[key] = flow
    tasks_of = _tasks_of(tasks.values(), milestones)
    return Index(
        since=since,
        milestones=milestones,
        tasks=tasks,
        facts=facts,
        finish=finish,
        milestone_team=milestone_teams(milestones, tasks_of),
        tasks_of=tasks_of,
        status_names={(s.source, s.remote_id): s.name for s in snapshot.statuses},
        open_tasks=open_tasks,
        dated=dated,
    )


_MICRO = timedelta(microseconds=1)
_DELETED = attrgetter("deleted")
_TASK_KEY = attrgetter("source", "remote_id")
_PARENT = attrgetter("source", "milestone_id")


def _tasks_of(tasks: Collection[Task], milestones: Mapping[Key, Milestone]) -> dict[Key, list[Task]]:
    """Each milestone's tasks, in the order of `tasks` (the index's: one task a key), by `parent_key`
    for every task at once."""
    grouped: defaultdict[Key, list[Task]] = defaultdict(list)
    # a task of no milestone has (source, None) or (source, ""): no milestone's key
    known = milestones if all(key[1] for key in milestones) else {k: m for k, m in milestones.items() if k[1]}
    for parent, task in zip(map(_PARENT, tasks), tasks, strict=True):
        if parent in known:
            grouped[parent].append(task)
    return dict(grouped)


def task_facts(tasks: Mapping[Key, Task], snapshot: Snapshot) -> dict[Key, FlowFacts]:
    """The stored facts of the tasks, and for those without, the facts of their loaded history."""
    stored = snapshot.flow_facts
    # the loader reads the facts of loaded tasks only: checked in one pass in C, then copied whole
    if stored.keys() <= tasks.keys():
        found = dict(stored)
    else:
        found = {key: facts for key, facts in stored.items() if key in tasks}
    for key, steps in histories(snapshot.status_changes).items():
        if key in tasks and key not in found:
            computed = facts_of(steps)
            if computed is not None:
                found[key] = computed
    return found


def milestone_teams(
    milestones: Mapping[Key, Milestone], tasks_of: Mapping[Key, list[Task]]
) -> dict[Key, str]:
    """A milestone's own team, else the team most of its tasks belong to (ties: the first by name)."""
    teams: dict[Key, str] = {}
    for key, milestone in milestones.items():
        if milestone.team:
            teams[key] = milestone.team
            continue
        counts = Counter(task.team for task in tasks_of.get(key, ()) if task.team)
        if counts:
            best = max(counts.values())
            teams[key] = min(team for team, count in counts.items() if count == best)
        else:
            teams[key] = NO_TEAM
    return teams
