"""Asana task, story and goal JSON -> `bridge.domain` objects, by the tracker's mapping. Pure: no I/O.

A task's raw status is its section in its home project (the first configured project it belongs to), or
the pseudo-status `completed` when it is marked complete and the status map names `completed`. Its
history is the `section_changed`, `marked_complete` and `marked_incomplete` stories, each one status
change keyed by the story's gid, so a re-read story is de-duplicated. Blockers come from the task's own
`dependencies`, so each task reports all of its blockers and none of another task's.

With parent tasks as milestones, a subtask is usually a member of no project (Asana's default): when its
parent is a milestone of a configured project, it belongs to that project, without a section. Its status
is then its completion, the pseudo-status `completed` or `incomplete` (categorised by the status map when
it names them, else done and to do), and its history the `marked_complete`/`marked_incomplete` stories.

Goals: top-level goals are objectives, sub-goals key results (of their top-level ancestor, their target
and current from the metric), and a goal relationship whose supporting resource is a task links that
task, when it is a milestone, to the key result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bridge.domain import (
    Dependency,
    KeyResult,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    SkippedItem,
    StatusCategory,
    StatusChange,
    Task,
    categorise,
    flow_times,
)
from bridge.mapping import Facts, end_of_day, key_results_for, number, team_for, work_type_for
from bridge_asana.config import AsanaTrackerConfig

COMPLETED = "completed"
"""The pseudo-status of a task marked complete (a key of the status map)."""
INCOMPLETE = "incomplete"
"""The pseudo-status of an open subtask that sits in no section of a configured project."""
STATUS_STORIES = frozenset({"section_changed", "marked_complete", "marked_incomplete"})
VALUE_KEYS = ("number_value", "enum_value", "multi_enum_values", "date_value", "text_value", "people_value")
READ_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


class MalformedRecord(ValueError):
    """A record the mapping cannot read; it is skipped and counted, its page still lands."""


@dataclass(frozen=True, slots=True)
class KnownMilestone:
    """What tasks attach by: a milestone's name and the section it sits in."""

    name: str
    section: str | None


@dataclass
class Mapped:
    """What one page of tasks turns into."""

    milestones: list[Milestone] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    links: list[KeyResultLink] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    outside: int = 0
    """Records in none of the configured projects (a subtask, a task moved away): not ours."""


# ---- small readers ------------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """Asana's `2026-03-02T09:00:00.000Z` as aware UTC; None for none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedRecord(f"timestamp {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecord(f"timestamp {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise MalformedRecord(f"timestamp {value!r} has no offset")
    return parsed.astimezone(UTC)


def gid_of(value: Any) -> str | None:
    """The gid of a reference (`{"gid": "12"}`), checked to be a string."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedRecord(f"reference {value!r} is not an object")
    gid = value.get("gid")
    if not isinstance(gid, str) or not gid:
        raise MalformedRecord(f"reference {value!r} has no gid")
    return gid


def record_gid(record: Any) -> str | None:
    """A record's gid, or None when it has none (such a record is skipped)."""
    gid = record.get("gid") if isinstance(record, dict) else None
    return gid if isinstance(gid, str) and gid else None


def record_key(record: Any) -> str:
    """What a skipped record is called in logs: its gid, else its name."""
    gid = record_gid(record)
    if gid:
        return gid
    name = record.get("name") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name else "?"


def _objects(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MalformedRecord(f"{key} is not a list of objects")
    return value


def _text(record: dict[str, Any], key: str, default: str = "") -> str:
    value = record.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise MalformedRecord(f"{key} is not a string")
    return value


def _flag(record: dict[str, Any], key: str) -> bool:
    value = record.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedRecord(f"{key} is not a boolean")
    return value


def field_value(entry: dict[str, Any]) -> Any:
    """A custom field's value in plain form: a number, text, an option ({gid, name}), a list or a day."""
    for key in VALUE_KEYS:
        value = entry.get(key)
        if value in (None, []):
            continue
        if key == "date_value" and isinstance(value, dict):
            return value.get("date_time") or value.get("date")
        return value
    return entry.get("display_value")


def _ref_name(value: Any) -> str:
    return str(value.get("name") or "") if isinstance(value, dict) else ""


# ---- tasks and milestones -----------------------------------------------------------------------------


@dataclass
class AsanaMapping:
    """The tracker's mapping with custom field names resolved to gids."""

    source: str
    config: AsanaTrackerConfig
    section_projects: Mapping[str, str] = field(default_factory=dict)
    """Section gid -> project gid, for the configured projects (to tell their moves from others')."""
    value_field: str | None = None
    effort_field: str | None = None
    due_field: str | None = None
    attach_field: str | None = None
    project_names: Mapping[str, str] = field(default_factory=dict)
    """Project gid -> name, for the configured projects (a subtask outside them takes its parent's)."""

    def home(self, record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The (project, section) of the first configured project the record belongs to."""
        memberships = _objects(record, "memberships")
        by_project = {}
        for membership in memberships:
            project = membership.get("project")
            gid = gid_of(project)
            if gid is not None and isinstance(project, dict):
                section = membership.get("section")
                by_project[gid] = (project, section if isinstance(section, dict) else {})
        return next((by_project[p] for p in self.config.projects if p in by_project), None)

    def adopter(self, record: dict[str, Any], parents: Mapping[str, str]) -> dict[str, Any] | None:
        """With parent tasks as milestones, the project (a reference) of a record in no configured project
        whose parent is one of `parents` (milestone gid -> project gid); else None."""
        if self.config.milestones.source != "parent":
            return None
        parent = gid_of(record.get("parent"))
        project = parents.get(parent) if parent is not None else None
        if project is None:
            return None
        return {"gid": project, "name": self.project_names.get(project, "")}

    def is_milestone(self, record: dict[str, Any]) -> bool:
        source = self.config.milestones.source
        if source == "subtype":
            return record.get("resource_subtype") == "milestone"
        if source == "parent":
            return record.get("parent") is None and int(record.get("num_subtasks") or 0) > 0
        return False  # sections are the milestones

    def section_of(self, record: dict[str, Any]) -> str | None:
        home = self.home(record)
        return gid_of(home[1]) if home is not None and home[1] else None

    def map_tasks(
        self,
        records: Sequence[Any],
        stories: Mapping[str, Sequence[Any]],
        known: Mapping[str, KnownMilestone],
        supports: Mapping[str, Sequence[str]],
        parents: Mapping[str, str] | None = None,
    ) -> Mapped:
        """Milestones (with their key-result links), tasks, status changes and blockers of a page.

        `parents` (milestone gid -> project gid) adopts subtasks outside the configured projects (see
        `adopter`)."""
        out = Mapped()
        for record in records:
            try:
                if not isinstance(record, dict):
                    raise MalformedRecord("the record is not an object")
                if record_gid(record) is None:
                    raise MalformedRecord("the record has no gid")
                self._map_one(record, stories, known, supports, parents or {}, out)
            except (MalformedRecord, *READ_ERRORS) as exc:
                out.skipped.append(
                    SkippedItem(self.source, record_key(record), f"{type(exc).__name__}: {exc}")
                )
        return out

    def _map_one(
        self,
        record: dict[str, Any],
        stories: Mapping[str, Sequence[Any]],
        known: Mapping[str, KnownMilestone],
        supports: Mapping[str, Sequence[str]],
        parents: Mapping[str, str],
        out: Mapped,
    ) -> None:
        home = self.home(record)
        adopted = self.adopter(record, parents) if home is None else None
        if home is None and adopted is None:
            out.outside += 1
            return
        project, section = home if home is not None else (adopted or {}, {})
        facts = self._facts(record, section)
        if adopted is not None:
            facts.add("project", adopted["gid"], adopted["name"])
        gid = str(record["gid"])
        # Everything is read before anything is added, so a skipped record leaves nothing behind.
        if self.is_milestone(record):
            milestone = self._milestone(gid, record, section, facts)
            links = self._links(gid, facts, supports.get(gid, ()))
            out.milestones.append(milestone)
            out.links.extend(links)
            return
        if adopted is not None:
            changes = self._completion_changes(gid, stories.get(gid, ()))
        else:
            changes = self._changes(gid, stories.get(gid, ()), str(gid_of(project)), section)
        task = self._task(gid, record, section, facts, changes, known, loose=adopted is not None)
        blockers = [
            Dependency(self.source, str(gid_of(blocker)), gid) for blocker in _objects(record, "dependencies")
        ]
        out.tasks.append(task)
        out.changes.extend(changes)
        out.dependencies.extend(blockers)

    def _facts(self, record: dict[str, Any], section: dict[str, Any]) -> Facts:
        facts = Facts()
        for membership in _objects(record, "memberships"):
            project = membership.get("project")
            if isinstance(project, dict):
                facts.add("project", project.get("gid"), project.get("name"))
        facts.add("section", section.get("gid"), section.get("name"))
        for tag in _objects(record, "tags"):
            facts.add("tag", tag.get("gid"), tag.get("name"))
        for entry in _objects(record, "custom_fields"):
            value = field_value(entry)
            facts.fields[str(gid_of(entry))] = value
            if isinstance(entry.get("name"), str):
                facts.fields[entry["name"]] = value
        return facts

    def _status(
        self, record: dict[str, Any], section: dict[str, Any], *, lenient: bool
    ) -> tuple[str, StatusCategory]:
        if _flag(record, "completed"):
            category = categorise(COMPLETED, COMPLETED, self.config.status_map)
            if category is not None:
                return COMPLETED, category
        section_gid = gid_of(section) if section else None
        name = _ref_name(section)
        category = categorise(section_gid, name, self.config.status_map)
        if category is None and lenient:
            # A milestone often sits in a section of its own ("Milestones"): its completion tells enough.
            category = StatusCategory.DONE if _flag(record, "completed") else StatusCategory.TODO
        if category is None or section_gid is None:
            raise MalformedRecord(f"section {name!r} ({section_gid}) is not in status_map")
        return section_gid, category

    def _custom(self, record: dict[str, Any], field_gid: str | None) -> Any:
        if field_gid is None:
            return None
        for entry in _objects(record, "custom_fields"):
            if entry.get("gid") == field_gid:
                return field_value(entry)
        return None

    def _due(self, record: dict[str, Any]) -> datetime | None:
        if self.due_field is not None:
            value = self._custom(record, self.due_field)
            return parse_time(value) if isinstance(value, str) and len(value) > 10 else end_of_day(value)
        due_at = parse_time(record.get("due_at"))
        return due_at if due_at is not None else end_of_day(_text(record, "due_on") or None)

    def _url(self, record: dict[str, Any]) -> str | None:
        return _text(record, "permalink_url") or None

    def _milestone(
        self, gid: str, record: dict[str, Any], section: dict[str, Any], facts: Facts
    ) -> Milestone:
        raw_status, category = self._status(record, section, lenient=True)
        return Milestone(
            source=self.source,
            remote_id=gid,
            key=gid,
            title=_text(record, "name") or gid,
            team=team_for(self.config, facts),
            value=number(self._custom(record, self.value_field)),
            effort=number(self._custom(record, self.effort_field)),
            due=self._due(record),
            raw_status=raw_status,
            category=category,
            created=parse_time(record.get("created_at")),
            updated=parse_time(record.get("modified_at")),
            url=self._url(record),
            description=_text(record, "notes").strip() or None,
            labels=tuple(_ref_name(tag) for tag in _objects(record, "tags") if _ref_name(tag)),
        )

    def section_milestone(self, gid: str, name: str, project: str) -> Milestone:
        """A section that is a milestone (`milestones.source = "section"`)."""
        return Milestone(
            source=self.source,
            remote_id=gid,
            key=gid,
            title=name,
            team=self.config.team,
            raw_status=gid,
            category=categorise(gid, name, self.config.status_map) or StatusCategory.TODO,
            url=f"{self.config.url}/0/{project}/list",
        )

    def _task(
        self,
        gid: str,
        record: dict[str, Any],
        section: dict[str, Any],
        facts: Facts,
        changes: list[StatusChange],
        known: Mapping[str, KnownMilestone],
        *,
        loose: bool = False,
    ) -> Task:
        if loose:
            raw_status = COMPLETED if _flag(record, "completed") else INCOMPLETE
            category = self._pseudo(raw_status)
        else:
            raw_status, category = self._status(record, section, lenient=False)
        flow = flow_times([(c.at, c.to_category) for c in changes], current=category)
        started = next((c.at for c in changes if c.to_category.started), None)
        return Task(
            source=self.source,
            remote_id=gid,
            key=gid,
            title=_text(record, "name") or gid,
            milestone_id=self.milestone_of(record, section, known),
            team=team_for(self.config, facts),
            work_type=work_type_for(self.config, facts),
            raw_status=raw_status,
            category=category,
            created=parse_time(record.get("created_at")),
            updated=parse_time(record.get("modified_at")),
            started=started,
            done=flow.finished if flow is not None else None,
            url=self._url(record),
            labels=tuple(_ref_name(tag) for tag in _objects(record, "tags") if _ref_name(tag)),
        )

    # ---- which milestone a task belongs to ----------------------------------------------------------

    def milestone_of(
        self, record: dict[str, Any], section: dict[str, Any], known: Mapping[str, KnownMilestone]
    ) -> str | None:
        attach = self.config.tasks.attach
        if attach == "dependency":
            # The milestone waits on its tasks: it is among the task's dependents.
            dependents = (gid_of(ref) for ref in _objects(record, "dependents"))
            return next((g for g in dependents if g in known), None)
        if attach == "parent":
            parent = gid_of(record.get("parent"))
            from_parent = self.config.milestones.source == "parent"
            return parent if parent is not None and (from_parent or parent in known) else None
        section_gid = gid_of(section) if section else None
        if attach == "section":
            if self.config.milestones.source == "section":
                return section_gid if section_gid in known else None
            in_section = sorted(g for g, m in known.items() if m.section == section_gid)
            return in_section[0] if in_section else None
        return self._named_milestone(self._custom(record, self.attach_field), known)

    @staticmethod
    def _named_milestone(value: Any, known: Mapping[str, KnownMilestone]) -> str | None:
        if isinstance(value, dict):
            value = value.get("name") or value.get("gid")
        if value is None or value == "":
            return None
        text = str(value).strip()
        if text in known:
            return text
        folded = text.casefold()
        return next((g for g, m in sorted(known.items()) if m.name.casefold() == folded), None)

    # ---- history ------------------------------------------------------------------------------------

    def _changes(
        self, gid: str, stories: Sequence[Any], project: str, section: dict[str, Any]
    ) -> list[StatusChange]:
        """One status change per status story, oldest first; moves in other projects are left out."""
        entries = self._status_stories(stories, project)
        completion = categorise(COMPLETED, COMPLETED, self.config.status_map) is not None
        first_move = next((s for _, _, s in entries if s["resource_subtype"] == "section_changed"), None)
        where = _section_ref(first_move.get("old_section")) if first_move is not None else None
        if where is None:
            where = (gid_of(section) if section else None, _ref_name(section))
        status = where
        changes = []
        for at, _, story in entries:
            kind = story["resource_subtype"]
            if kind == "section_changed":
                where = _section_ref(story.get("new_section")) or where
                target = where
            elif not completion:
                continue  # without `completed` in the map, completion is not a status of its own
            else:
                target = (COMPLETED, COMPLETED) if kind == "marked_complete" else where
            change = self._change(gid, str(story["gid"]), at, status, target)
            if change is not None:
                changes.append(change)
            status = target
        return changes

    def _pseudo(self, status: str) -> StatusCategory:
        """The category of `completed` or `incomplete`: the status map's, else done or to do."""
        found = categorise(status, status, self.config.status_map)
        if found is not None:
            return found
        return StatusCategory.DONE if status == COMPLETED else StatusCategory.TODO

    def _completion_changes(self, gid: str, stories: Sequence[Any]) -> list[StatusChange]:
        """A subtask outside the configured projects: one change per completion story, oldest first."""
        entries = [
            (at, story)
            for at, _, story in self._status_stories(stories, "")
            if story["resource_subtype"] != "section_changed"
        ]
        if not entries:
            return []
        # Before its first completion story the task was the opposite of what that story made it.
        status = COMPLETED if entries[0][1]["resource_subtype"] == "marked_incomplete" else INCOMPLETE
        changes = []
        for at, story in entries:
            target = COMPLETED if story["resource_subtype"] == "marked_complete" else INCOMPLETE
            changes.append(
                StatusChange(
                    source=self.source,
                    remote_id=str(story["gid"]),
                    item_id=gid,
                    at=at,
                    from_status=status,
                    to_status=target,
                    from_category=self._pseudo(status),
                    to_category=self._pseudo(target),
                )
            )
            status = target
        return changes

    def _status_stories(
        self, stories: Sequence[Any], project: str
    ) -> list[tuple[datetime, int, dict[str, Any]]]:
        entries = []
        for index, story in enumerate(stories):
            if not isinstance(story, dict) or story.get("resource_subtype") not in STATUS_STORIES:
                continue
            at = parse_time(story.get("created_at"))
            if at is None or record_gid(story) is None:
                raise MalformedRecord(f"story {story.get('gid')!r} has no gid or no time")
            if story["resource_subtype"] == "section_changed" and not self._in_project(story, project):
                continue
            entries.append((at, index, story))
        entries.sort(key=lambda entry: (entry[0], entry[1]))  # same-moment stories keep Asana's order
        return entries

    def _in_project(self, story: dict[str, Any], project: str) -> bool:
        moved_to = _section_ref(story.get("new_section"))
        owner = self.section_projects.get(moved_to[0] or "") if moved_to is not None else None
        if owner is None and isinstance(story.get("project"), dict):
            owner = gid_of(story["project"])
        return owner is None or owner == project

    def _change(
        self,
        gid: str,
        story_gid: str,
        at: datetime,
        status: tuple[str | None, str],
        target: tuple[str | None, str],
    ) -> StatusChange | None:
        to_category = categorise(target[0], target[1], self.config.status_map)
        if to_category is None or target[0] is None:
            return None  # a move into a section the mapping does not know tells nothing about flow
        return StatusChange(
            source=self.source,
            remote_id=story_gid,
            item_id=gid,
            at=at,
            from_status=status[0],
            to_status=target[0],
            from_category=categorise(status[0], status[1], self.config.status_map),
            to_category=to_category,
        )

    # ---- key results --------------------------------------------------------------------------------

    def _links(self, gid: str, facts: Facts, supported: Sequence[str]) -> list[KeyResultLink]:
        milestone = Ref(self.source, gid)
        links = [
            KeyResultLink(milestone, _rule_ref(target), LinkOrigin.RULE)
            for target in key_results_for(self.config, facts)
        ]
        links.extend(
            KeyResultLink(milestone, Ref(self.source, goal), LinkOrigin.TRACKER) for goal in sorted(supported)
        )
        return links


def _section_ref(value: Any) -> tuple[str | None, str] | None:
    if not isinstance(value, dict):
        return None
    return gid_of(value), _ref_name(value)


def _rule_ref(target: str) -> Ref:
    from bridge.config import CONFIG_SOURCE

    if ":" in target:
        source, remote_id = target.split(":", 1)
        return Ref(source, remote_id)
    return Ref(CONFIG_SOURCE, target)


# ---- goals --------------------------------------------------------------------------------------------


@dataclass
class MappedGoals:
    """Objectives, key results, and which key results each task supports."""

    objectives: list[Objective] = field(default_factory=list)
    key_results: list[KeyResult] = field(default_factory=list)
    supports: dict[str, list[str]] = field(default_factory=dict)
    """Task gid -> the key results (goal gids) it supports."""
    backs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Task gid -> every goal read that it supports (gid -> name), key result or not."""
    skipped: list[SkippedItem] = field(default_factory=list)

    def digest(self) -> str:
        """A fingerprint of what a page of these would store, to tell a quiet cycle from a changed one."""
        text = repr((self.objectives, self.key_results, [s.key for s in self.skipped]))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def map_goals(source: str, goals: Sequence[Any], relationships: Mapping[str, Sequence[Any]]) -> MappedGoals:
    """Goals and their relationships (by supported goal) as objectives, key results and task support."""
    out = MappedGoals()
    records: dict[str, dict[str, Any]] = {}
    for goal in goals:
        gid = record_gid(goal)
        if gid is None or not isinstance(goal.get("name"), str):
            out.skipped.append(
                SkippedItem(source, record_key(goal), "MalformedRecord: a goal without gid or name")
            )
            continue
        records[gid] = goal
    parents, backers = _goal_graph(records, relationships)
    for gid, goal in records.items():
        top = _top_goal(gid, parents)
        try:
            if top == gid:
                out.objectives.append(Objective(source, gid, goal["name"]))
            else:
                out.key_results.append(_key_result(source, gid, top, goal))
        except (MalformedRecord, *READ_ERRORS) as exc:
            out.skipped.append(SkippedItem(source, gid, f"{type(exc).__name__}: {exc}"))
    krs = {kr.remote_id for kr in out.key_results}
    out.backs = {task: {g: str(records[g]["name"]) for g in sorted(goals)} for task, goals in backers.items()}
    for task, supported in sorted(backers.items()):
        wanted = sorted(g for g in supported if g in krs)
        if wanted:
            out.supports[task] = wanted
    return out


def _goal_graph(
    records: Mapping[str, Any], relationships: Mapping[str, Sequence[Any]]
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each goal's parent (the first goal it supports) and the goals each task supports."""
    parents: dict[str, str] = {}
    backers: dict[str, set[str]] = {}
    for supported in records:
        for relation in relationships.get(supported, ()):
            resource = relation.get("supporting_resource") if isinstance(relation, dict) else None
            gid = record_gid(resource)
            if gid is None or not isinstance(resource, dict):
                continue
            kind = resource.get("resource_type")
            if kind == "goal" and gid in records and gid != supported:
                parents.setdefault(gid, supported)
            elif kind == "task":
                backers.setdefault(gid, set()).add(supported)
    return parents, backers


def _top_goal(gid: str, parents: Mapping[str, str]) -> str:
    seen = {gid}
    while gid in parents and parents[gid] not in seen:  # a cycle ends the walk where it closes
        gid = parents[gid]
        seen.add(gid)
    return gid


def _key_result(source: str, gid: str, objective: str, goal: dict[str, Any]) -> KeyResult:
    metric = goal.get("metric")
    if metric is not None and not isinstance(metric, dict):
        raise MalformedRecord("metric is not an object")
    metric = metric or {}
    unit = metric.get("unit")
    return KeyResult(
        source=source,
        remote_id=gid,
        objective_id=objective,
        title=str(goal["name"]),
        target=number(metric.get("target_number_value")),
        current=number(metric.get("current_number_value")),
        start=number(metric.get("initial_number_value")) or 0.0,
        unit=str(unit) if unit not in (None, "", "none") else None,
        period_end=_period_end(goal),
    )


def _period_end(goal: dict[str, Any]) -> date | None:
    """The last day the goal is due by: its time period's end, else its own due date (None if neither,
    or one that is no date)."""
    period = goal.get("time_period")
    found = period.get("end_on") if isinstance(period, dict) else None
    for value in (found, goal.get("due_on")):
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                continue
    return None
