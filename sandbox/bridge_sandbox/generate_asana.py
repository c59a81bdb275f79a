"""The generated organisation's Asana teams as an Asana API-shaped seed for `AsanaEmulator.from_seed`.

One workspace with three people; per Asana team one project (named by the team's container) whose
sections are the raw statuses in workflow order. Milestones are milestone tasks that depend on their
tasks (the bridge's default `tasks.attach = "dependency"`), with "Customer value" and "Estimate" number
fields; "Value rank" and "Key result" sit empty on every project for the bridge to write. Work types
are tags, blockers are task dependencies, and each task's history is the stories Asana writes
(added_to_project, section_changed, marked_complete / marked_incomplete, dependency_added). Objectives
and key results are goals and sub-goals; a milestone with a key result supports that key result's goal.

Every gid is worked out from the plan's numbers, so the same organisation gives the same seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bridge_sandbox.asana import format_time
from bridge_sandbox.generate import (
    OBJECTIVES,
    STATUSES,
    Change,
    MilestonePlan,
    Organisation,
    TaskPlan,
    TeamPlan,
)

JSON = dict[str, Any]

# gids: 16 digits like Asana's, one block of ten billion per kind of object, numbered by the plan.
GID_BASE = 1_207_000_000_000_000
BLOCK = 10_000_000_000
ACCOUNT, PROJECT, SECTION, SETTING, GOAL, RELATIONSHIP, MILESTONE, TASK, STORY, METRIC = range(10)

SECTION_NAMES = tuple(STATUSES)
DONE = "Done"
FIELDS = (
    ("Customer value", "number", "What the product owner expects this milestone to be worth."),
    ("Estimate", "number", "Effort, in the team's own points."),
    ("Value rank", "number", "Written by Milestone Bridge: the milestone's place in the value ranking."),
    ("Key result", "text", "Written by Milestone Bridge: the key result the milestone serves."),
)
PEOPLE = (
    ("Robin Okafor", "robin.okafor@example.com"),
    ("Alex Chen", "alex.chen@example.com"),
    ("Sam Rivera", "sam.rivera@example.com"),
)
COLORS = ("dark-green", "dark-blue", "dark-orange", "light-purple", "light-teal", "dark-pink")
# The generator's objectives, typed: (id, title, [(key result id, title, start, target, current)]).
Objectives = tuple[tuple[str, str, Sequence[tuple[str, str, float, float, float]]], ...]
TYPED_OBJECTIVES: Objectives = OBJECTIVES


def _gid(kind: int, number: int) -> str:
    """The gid of the `number`th object of a kind (ACCOUNT, PROJECT, ..., METRIC)."""
    return str(GID_BASE + kind * BLOCK + number)


WORKSPACE_GID = _gid(ACCOUNT, 1)
USER_GIDS = tuple(_gid(ACCOUNT, 10 + i) for i in range(len(PEOPLE)))
FIELD_GIDS = {name: _gid(ACCOUNT, 100 + i) for i, (name, _, _) in enumerate(FIELDS)}
TIME_PERIOD_GID = _gid(ACCOUNT, 300)


def task_gid(number: int) -> str:
    """The gid of the plan's task `number`."""
    return _gid(TASK, number)


def milestone_gid(number: int) -> str:
    """The gid of the plan's milestone `number`."""
    return _gid(MILESTONE, number)


def _ref(value: str) -> JSON:
    return {"gid": value}


def _time(when: datetime) -> str:
    return format_time(when) or ""


@dataclass(frozen=True)
class _Project:
    """One Asana team's project: its gids and when it was set up (before anything in it)."""

    team: TeamPlan
    index: int
    """The team's place in the organisation, which numbers the project's gids."""
    created: datetime

    @property
    def gid(self) -> str:
        return _gid(PROJECT, self.index)

    def section(self, status: str) -> JSON:
        return _ref(_gid(SECTION, self.index * 10 + SECTION_NAMES.index(status)))


class _Story(NamedTuple):
    at: datetime
    subtype: str
    text: str
    extra: JSON


@dataclass
class _Seed:
    """What rendering one task needs to know about the rest of the organisation, and the stories so far."""

    projects: dict[str, _Project]
    live: dict[int, TaskPlan]
    by_milestone: dict[int, list[TaskPlan]]
    tags: dict[str, str]
    stories: dict[str, list[JSON]] = field(default_factory=dict)
    story_count: int = 0

    def write_stories(self, task: str, author: str, stories: Iterable[_Story]) -> None:
        """A task's stories, oldest first, numbered on from the previous task's."""
        records = []
        for story in sorted(stories, key=lambda s: s.at):  # stable: same-moment stories keep their order
            self.story_count += 1
            records.append(
                {
                    "gid": _gid(STORY, self.story_count),
                    "resource_type": "story",
                    "created_at": _time(story.at),
                    "created_by": _ref(author),
                    "resource_subtype": story.subtype,
                    "type": "system",
                    "text": story.text,
                    **story.extra,
                }
            )
        self.stories[task] = records


def render_asana(organisation: Organisation) -> dict[str, Any]:
    """The organisation's Asana teams as one seed in the format `AsanaEmulator.from_seed` reads."""
    milestones, tasks = organisation.for_tracker("asana")
    projects = _projects(organisation, milestones, tasks)
    live = {t.number: t for t in tasks if not t.deleted}  # a deleted Asana task is simply gone
    by_milestone: dict[int, list[TaskPlan]] = {}
    for task in live.values():
        if task.milestone is not None:
            by_milestone.setdefault(task.milestone, []).append(task)
    work_types = list(dict.fromkeys(w for p in projects.values() for w in p.team.work_types))
    tags = {name: _gid(ACCOUNT, 200 + i) for i, name in enumerate(work_types)}
    seed = _Seed(projects, live, by_milestone, tags)
    records = [_milestone_task(m, seed) for m in milestones]
    records += [_task(t, seed) for t in live.values()]
    goals, relationships = _goals(organisation.now, milestones)
    start = min((p.created for p in projects.values()), default=organisation.now)
    return {
        "workspaces": [{"gid": WORKSPACE_GID, "name": "Milestone Bridge sandbox", "is_organization": True}],
        "users": [{"gid": g, "name": n, "email": e} for g, (n, e) in zip(USER_GIDS, PEOPLE, strict=True)],
        "me": USER_GIDS[0],
        "custom_fields": _custom_fields(),
        "tags": _tags(tags, start),
        "projects": [_project(p) for p in projects.values()],
        "sections": [_section(p, status) for p in projects.values() for status in SECTION_NAMES],
        "tasks": records,
        "stories": seed.stories,
        "goals": goals,
        "goal_relationships": relationships,
    }


# ---- workspace-level objects -------------------------------------------------------------------------


def _projects(
    organisation: Organisation, milestones: list[MilestonePlan], tasks: list[TaskPlan]
) -> dict[str, _Project]:
    """The Asana teams' projects by team name, each set up a day before its first milestone or task."""
    projects = {}
    for index, team in enumerate(organisation.teams):
        if team.tracker != "asana":
            continue
        created = [m.created for m in milestones if m.team == team]
        created += [t.created for t in tasks if t.team == team]
        first = min(created, default=organisation.now)
        projects[team.name] = _Project(team, index, first - timedelta(days=1))
    return projects


def _custom_fields() -> list[JSON]:
    definitions = []
    for name, kind, description in FIELDS:
        definition: JSON = {"gid": FIELD_GIDS[name], "name": name, "type": kind, "description": description}
        if kind == "number":
            definition["precision"] = 0
        definitions.append(definition)
    return definitions


def _tags(tags: dict[str, str], start: datetime) -> list[JSON]:
    return [
        {"gid": tag, "name": name, "color": COLORS[i % len(COLORS)], "notes": "",
         "workspace": _ref(WORKSPACE_GID), "created_at": _time(start)}
        for i, (name, tag) in enumerate(tags.items())
    ]  # fmt: skip


def _project(project: _Project) -> JSON:
    settings = [
        {"gid": _gid(SETTING, project.index * 10 + i), "custom_field": _ref(FIELD_GIDS[name]),
         "is_important": True}
        for i, (name, _, _) in enumerate(FIELDS)
    ]  # fmt: skip
    stamp = _time(project.created)
    return {
        "gid": project.gid,
        "name": project.team.container,
        "workspace": _ref(WORKSPACE_GID),
        "archived": False,
        "color": COLORS[project.index % len(COLORS)],
        "notes": f"Work of the {project.team.name} team.",
        "created_at": stamp,
        "modified_at": stamp,
        "custom_field_settings": settings,
    }


def _section(project: _Project, status: str) -> JSON:
    return {
        **project.section(status),
        "name": status,
        "project": _ref(project.gid),
        "created_at": _time(project.created),
    }


# ---- tasks and milestones ----------------------------------------------------------------------------


def _task(task: TaskPlan, seed: _Seed) -> JSON:
    project = seed.projects[task.team.name]
    created = min([task.created, *(c.at for c in task.changes[:1])])  # no story before its task
    blockers = [seed.live[n] for n in task.blocked_by if n in seed.live]
    history = [_added(created, project)]
    history += [_waiting_on(max(created, b.created), b) for b in blockers]
    history += _moves(project, "To Do", task.changes)
    assignee = USER_GIDS[task.number % len(USER_GIDS)]
    seed.write_stories(task_gid(task.number), assignee, history)
    record = _record(task_gid(task.number), task.title, project, history, _final("To Do", task.changes))
    record.update(
        completed_at=_time_or_none(_completed_at(created, "To Do", task.changes)),
        assignee=_ref(assignee),
        tags=[_ref(seed.tags[task.work_type])],
        dependencies=[_ref(task_gid(b.number)) for b in blockers],
    )
    return record


def _milestone_task(milestone: MilestonePlan, seed: _Seed) -> JSON:
    """A milestone task that waits on (depends on) its tasks; its section follows theirs."""
    project = seed.projects[milestone.team.name]
    members = seed.by_milestone.get(milestone.number, [])
    timeline = _rollup_history(members)
    initial = next((c.status for c in reversed(timeline) if c.at <= milestone.created), "To Do")
    later = [c for c in timeline if c.at > milestone.created]
    history = [_added(milestone.created, project)]
    history += [_waiting_on(max(milestone.created, t.created), t) for t in members]
    history += _moves(project, initial, later)
    seed.write_stories(milestone_gid(milestone.number), USER_GIDS[0], history)
    record = _record(
        milestone_gid(milestone.number), milestone.title, project, history, _final(initial, later)
    )
    record.update(
        resource_subtype="milestone",
        notes=milestone.description,
        completed_at=_time_or_none(_completed_at(milestone.created, initial, later)),
        due_on=milestone.due.isoformat() if milestone.due else None,
        assignee=_ref(USER_GIDS[0]),
        dependencies=[_ref(task_gid(t.number)) for t in members],
        custom_fields=_values(milestone),
    )
    return record


def _record(task: str, name: str, project: _Project, history: list[_Story], status: str) -> JSON:
    """What every task record has: created, last modified (its latest story) and where it sits."""
    return {
        "gid": task,
        "name": name,
        "resource_subtype": "default_task",
        "created_at": _time(history[0].at),
        "modified_at": _time(max(s.at for s in history)),
        "completed": status == DONE,
        "due_on": None,
        "notes": "",
        "workspace": _ref(WORKSPACE_GID),
        "memberships": [{"project": _ref(project.gid), "section": project.section(status)}],
    }


def _values(milestone: MilestonePlan) -> list[JSON]:
    pairs = (("Customer value", milestone.value), ("Estimate", milestone.effort))
    return [{"gid": FIELD_GIDS[name], "number_value": v} for name, v in pairs if v is not None]


def _time_or_none(when: datetime | None) -> str | None:
    return None if when is None else _time(when)


# ---- histories ---------------------------------------------------------------------------------------


def _added(at: datetime, project: _Project) -> _Story:
    return _Story(
        at, "added_to_project", f"added to {project.team.container}", {"project": _ref(project.gid)}
    )


def _waiting_on(at: datetime, blocker: TaskPlan) -> _Story:
    text = f'marked this task as waiting on "{blocker.title}"'
    return _Story(at, "dependency_added", text, {"dependency": _ref(task_gid(blocker.number))})


def _moves(project: _Project, initial: str, changes: Sequence[Change]) -> list[_Story]:
    """The stories Asana writes as a task moves through the sections, and in and out of complete."""
    stories = []
    previous = initial
    for change in changes:
        if change.status == previous:  # a drop into the section it is already in writes nothing
            continue
        text = f'moved this task from "{previous}" to "{change.status}" in {project.team.container}'
        extra = {"old_section": project.section(previous), "new_section": project.section(change.status),
                 "project": _ref(project.gid)}  # fmt: skip
        stories.append(_Story(change.at, "section_changed", text, extra))
        if change.status == DONE:
            stories.append(_Story(change.at, "marked_complete", "marked this task complete", {}))
        elif previous == DONE:
            stories.append(_Story(change.at, "marked_incomplete", "marked incomplete", {}))
        previous = change.status
    return stories


def _final(initial: str, changes: Sequence[Change]) -> str:
    return changes[-1].status if changes else initial


def _completed_at(created: datetime, initial: str, changes: Sequence[Change]) -> datetime | None:
    """When a task last entered Done, if it is still there."""
    done_at = created if initial == DONE else None
    previous = initial
    for change in changes:
        if change.status != DONE:
            done_at = None
        elif previous != DONE:
            done_at = change.at
        previous = change.status
    return done_at


def _rollup(statuses: Iterable[str]) -> str:
    """A milestone's status from its tasks' (the generator's rule): Done when all are, begun when any is."""
    seen = list(statuses)
    if seen and all(s == DONE for s in seen):
        return DONE
    return "In Progress" if any(s != "To Do" for s in seen) else "To Do"


def _rollup_history(tasks: list[TaskPlan]) -> list[Change]:
    """A milestone's own status over time, replayed from its tasks' histories (not yet made = To Do)."""
    current = {t.number: "To Do" for t in tasks}
    status = _rollup(current.values())
    timeline = []
    moves = sorted((c.at, t.number, i, c.status) for t in tasks for i, c in enumerate(t.changes))
    for at, number, _, new in moves:
        current[number] = new
        rolled = _rollup(current.values())
        if rolled != status:
            timeline.append(Change(at, rolled))
            status = rolled
    return timeline


# ---- goals -------------------------------------------------------------------------------------------


def _goals(now: datetime, milestones: list[MilestonePlan]) -> tuple[list[JSON], list[JSON]]:
    """Objectives as goals, key results as their sub-goals, and milestones supporting key results."""
    year = now.astimezone(UTC).year
    period = {"gid": TIME_PERIOD_GID, "display_name": f"FY{year % 100:02d}", "period": "FY",
              "start_on": f"{year}-01-01", "end_on": f"{year}-12-31"}  # fmt: skip
    goals: list[JSON] = []
    links: list[JSON] = []
    key_results: dict[str, str] = {}
    for o, (objective_id, title, krs) in enumerate(TYPED_OBJECTIVES, 1):
        objective = _gid(GOAL, o * 100)
        goals.append(_goal(objective, title, f"Objective {objective_id}.", period))
        for k, (kr_id, kr_title, initial, target, current) in enumerate(krs, 1):
            key_result = _gid(GOAL, o * 100 + k)
            key_results[kr_id] = key_result
            metric = _metric(o * 100 + k, initial, target, current)
            goals.append(
                _goal(key_result, kr_title, f"Key result {kr_id} of {objective_id}.", period, metric)
            )
            links.append(_link(len(links) + 1, objective, key_result, "subgoal"))
    for milestone in milestones:
        if milestone.key_result in key_results:
            supported = key_results[milestone.key_result]
            links.append(_link(len(links) + 1, supported, milestone_gid(milestone.number), "supporting_work"))
    return goals, links


def _goal(goal: str, name: str, notes: str, period: JSON, metric: JSON | None = None) -> JSON:
    record: JSON = {
        "gid": goal,
        "name": name,
        "notes": notes,
        "workspace": _ref(WORKSPACE_GID),
        "owner": _ref(USER_GIDS[0]),
        "status": None,
        "start_on": period["start_on"],
        "due_on": period["end_on"],
        "is_workspace_level": True,
        "time_period": dict(period),
    }
    if metric is not None:
        record["metric"] = metric
    return record


def _metric(number: int, initial: float, target: float, current: float) -> JSON:
    whole = all(float(v).is_integer() for v in (initial, target, current))
    return {
        "gid": _gid(METRIC, number),
        "unit": "none",
        "precision": 0 if whole else 1,
        "initial_number_value": initial,
        "target_number_value": target,
        "current_number_value": current,
        "progress_source": "manual",
    }


def _link(number: int, supported: str, supporting: str, subtype: str) -> JSON:
    return {
        "gid": _gid(RELATIONSHIP, number),
        "resource_subtype": subtype,
        "supported_goal": _ref(supported),
        "supporting_resource": _ref(supporting),
    }
