"""Reading an Asana workspace incrementally: per-project streams driven by events, goals, census.

Each configured project is a stream (`project:<gid>`) whose cursor is JSON:
`{"modified_since": ISO, "sync": events token, "milestones": {gid: [name, section]}, "links": {...}}`,
plus `"children": {milestone gid: [subtask gids]}` when parent tasks are the milestones.

A cycle first asks the project's events since the sync token (one request, more only past 100 events).
- No token yet, or Asana refuses it (412: unknown or older than a day): the answer carries a fresh token,
  and the whole project is read, as Asana's 412 message asks ("fetch the full dataset"), because section
  moves in the gap left `modified_at` alone and a `modified_since` read would miss them.
- Events name tasks: `GET /tasks?project=..&modified_since=(cursor - lag)` is read, and the tasks the events
  named that it did not return (section moves keep `modified_at`) are read too, ten to a Batch request.
- No events: nothing is read and only the new sync token is stored. `modified_since` then stays where the
  last read left it, and once it is `QUIET_POLL` old a `modified_since` read runs anyway, so a change the
  events never told of is still found (and re-read from that old cursor, nothing lost).

A quiet cycle therefore costs one request per project stream (its events), plus one Batch request for the
goals stream (the goal list and each known goal's relationships). The cursor's `modified_since` is the
signpost (the cycle's start), never later; re-read tasks are de-duplicated by gid.

Tasks are listed in full before any page is mapped, so that a task can find its milestone (among its
`dependents`, by parent, section or field) wherever the milestone sits in the listing; the cursor keeps
the project's known milestones for incremental cycles. Stories of each page's tasks come ten tasks to a
Batch request, fetched for the next page while the current one is stored. The listing's pages carry no
cursor; the last page carries the new one, so a pull killed half way reads the project again.

With parent tasks as milestones (`milestones.source = "parent"`) a task's role hangs on its subtasks, and
subtasks are usually members of no project, so the project's listing does not hold them:
- Each milestone new to the cursor (all of them on a whole read) has its subtasks read
  (`GET /tasks/{gid}/subtasks`, ten milestones to a Batch request) and they are mapped as its tasks.
- The cursor keeps each milestone's subtasks (`children`). A re-read subtask whose parent is no milestone
  yet has that parent re-read too (it may become one), and a milestone left with none of its known
  subtasks (moved away or deleted) is re-read (it may become a plain task). Events naming a task as the
  parent a subtask was removed from, or added to when it is no milestone yet, have it re-read at once.
- The census lists each milestone's subtasks as well, so a deleted one is found like any task.

A task that became a milestone, or a milestone that became a task, is stored in its new role and left
deleted in its old one (a deleted row in the other table), from what the cursor knew before.

Key-result links come from goal relationships. Whether a milestone's links changed is not visible on the
milestone, so each project cursor keeps its milestones' links, and a milestone whose links differ from
the goals read this cycle is re-read, so that its page (and the links with it) lands with the cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bridge.domain import ItemState, Milestone, Ref, RemotePage, StatusName, Task
from bridge.errors import FatalAPIError, UserError
from bridge.http import prefetched
from bridge.kit import TokenPaginator
from bridge.mapping import resolve_field
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import (
    READ_ERRORS,
    AsanaMapping,
    KnownMilestone,
    MalformedRecord,
    Mapped,
    MappedGoals,
    map_goals,
    record_gid,
)
from bridge_asana.push import STATE_FIELDS, places
from bridge_asana.session import PAGE_LIMIT, Action, AsanaSession, SyncTokenExpired, next_offset

log = logging.getLogger(__name__)

GOALS_STREAM = "goals"
PROJECT_STREAM = "project:"
QUIET_POLL = timedelta(hours=1)
"""How long events alone may vouch for a project before a `modified_since` read runs anyway."""
MAX_EVENT_PAGES = 50
"""Past this many pages of 100 events, reading the whole project is cheaper than following them."""
EPOCH = datetime(2008, 1, 1, tzinfo=UTC)
TASK_FIELDS = (
    "name", "resource_subtype", "completed", "completed_at", "created_at", "modified_at", "due_on",
    "due_at", "permalink_url", "parent", "num_subtasks", "memberships.project.name",
    "memberships.section.name", "tags.name", "dependencies", "dependents", "custom_fields.name",
    "custom_fields.resource_subtype", "custom_fields.number_value", "custom_fields.text_value",
    "custom_fields.enum_value.name", "custom_fields.multi_enum_values.name", "custom_fields.date_value",
    "custom_fields.display_value", "notes",
)  # fmt: skip
STORY_FIELDS = ("resource_subtype", "created_at", "old_section.name", "new_section.name")
GOAL_FIELDS = (
    "name", "metric.unit", "metric.initial_number_value", "metric.target_number_value",
    "metric.current_number_value", "time_period.display_name", "time_period.end_on", "due_on",
)  # fmt: skip
RELATIONSHIP_FIELDS = (
    "resource_subtype", "supporting_resource.resource_type", "supporting_resource.resource_subtype",
)  # fmt: skip
SETTING_FIELDS = (
    "custom_field.name", "custom_field.resource_subtype", "custom_field.enum_options.name",
    "custom_field.enum_options.enabled",
)  # fmt: skip
GONE = (400, 404)
HeldOf = Callable[
    [Ref, dict[str, Any], Mapping[tuple[str, str], int] | None, Mapping[str, str] | None], ItemState
]
"""What a task holds (its record, places by (project, gid), the goals it supports by gid or None)."""
"""Answers meaning "that object is no longer there" for a gid the cursor remembers."""


def project_stream(project: str) -> str:
    return f"{PROJECT_STREAM}{project}"


# ---- cursors ------------------------------------------------------------------------------------------


@dataclass
class ProjectCursor:
    modified_since: datetime | None = None
    sync: str | None = None
    milestones: dict[str, KnownMilestone] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    """Parent mode: each milestone's subtasks as last read (to tell which milestone a subtask left)."""

    @classmethod
    def load(cls, text: str | None) -> ProjectCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            since = raw.get("modified_since")
            return cls(
                modified_since=datetime.fromisoformat(since).astimezone(UTC) if since else None,
                sync=raw.get("sync") or None,
                milestones={
                    str(g): KnownMilestone(str(n), s) for g, (n, s) in raw.get("milestones", {}).items()
                },
                links={str(g): [str(k) for k in krs] for g, krs in raw.get("links", {}).items()},
                children={str(g): [str(c) for c in cs] for g, cs in raw.get("children", {}).items()},
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable Asana cursor: reading the project again")
            return cls()

    def dump(self) -> str:
        raw: dict[str, Any] = {
            "modified_since": self.modified_since.isoformat() if self.modified_since else None,
            "sync": self.sync,
            "milestones": {g: [m.name, m.section] for g, m in sorted(self.milestones.items())},
            "links": dict(sorted(self.links.items())),
        }
        if self.children:
            raw["children"] = {g: sorted(cs) for g, cs in sorted(self.children.items())}
        return json.dumps(raw, ensure_ascii=False)


@dataclass
class GoalsCursor:
    goals: list[str] = field(default_factory=list)
    digest: str | None = None

    @classmethod
    def load(cls, text: str | None) -> GoalsCursor:
        try:
            raw = json.loads(text) if text else {}
            return cls([str(g) for g in raw.get("goals", [])], raw.get("digest"))
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable Asana goals cursor: reading the goals again")
            return cls()

    def dump(self) -> str:
        return json.dumps({"goals": self.goals, "digest": self.digest})


@dataclass
class EventRead:
    """What a project's events since the last cycle say."""

    sync: str | None
    tasks: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)
    """Parent mode: the tasks that subtasks were added to."""
    whole: bool = False
    """Read the whole project: no usable token, or a change (a section's) that reaches every task."""


# ---- the puller ---------------------------------------------------------------------------------------


class AsanaPuller:
    """The read side of one Asana tracker: streams, goals and census over one `AsanaSession`."""

    def __init__(self, name: str, config: AsanaTrackerConfig, session: AsanaSession) -> None:
        self.name = name
        self.config = config
        self.session = session
        self.project_names: dict[str, str] = {}
        with session.setup():
            sections, fields = self._setup()
        self.sections = sections
        self.custom_fields = fields
        """Custom fields the configured projects' tasks can carry: gid -> {name, resource_subtype, ...}."""
        pairs = sorted((gid, str(f.get("name") or gid)) for gid, f in fields.items())
        self.mapping = AsanaMapping(
            source=name,
            config=config,
            section_projects={gid: project for project, found in sections.items() for gid, _ in found},
            value_field=self._resolve(config.fields.value, pairs, "fields.value"),
            effort_field=self._resolve(config.fields.effort, pairs, "fields.effort"),
            due_field=self._resolve(config.fields.due, pairs, "fields.due"),
            attach_field=self._resolve(config.tasks.field, pairs, "tasks.field"),
            project_names=self.project_names,
        )
        self._supports: dict[str, list[str]] | None = None
        self._backs: dict[str, dict[str, str]] | None = None
        """Task gid -> every goal it supports (gid -> name), when this cycle read every goal."""
        self._goal_hint: list[str] = []
        self._milestones: dict[str, dict[str, KnownMilestone]] = {}
        """Each project's milestones as far as this cycle knows them (a task may wait on another's)."""
        self.held: HeldOf | None = None
        """What a task holds of what the bridge manages (the writer's, set with it): pages carry it."""

    @property
    def by_parent(self) -> bool:
        """Parent tasks are the milestones, their subtasks the tasks."""
        return self.config.milestones.source == "parent"

    @property
    def reads_goals(self) -> bool:
        return self.config.okrs is not None and self.config.okrs.goals

    def streams(self) -> list[str]:
        """`goals` (when goals are read), then `project:<gid>` for each configured project."""
        projects = [project_stream(p) for p in self.config.projects]
        # Goals first: project streams attach the key-result links read there.
        return [GOALS_STREAM, *projects] if self.reads_goals else projects

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        """The pages of `stream` since `cursor` (see the module docstring)."""
        if stream == GOALS_STREAM and self.reads_goals:
            return self.pull_goals(cursor)
        for project in self.config.projects:
            if stream == project_stream(project):
                return self.pull_project(project, cursor, signpost, self.config.lag)
        raise ValueError(f"the asana connector has no stream {stream!r}")

    # ---- setup --------------------------------------------------------------------------------------

    def _setup(self) -> tuple[dict[str, list[tuple[str, str]]], dict[str, dict[str, Any]]]:
        """Each project's sections, and the custom fields its tasks can carry (gid -> definition); the
        projects' names (which every section carries) are kept in `project_names`."""
        actions = []
        for project in self.config.projects:
            actions.append(
                Action(f"/projects/{project}/sections", fields=("name", "project.name"), limit=PAGE_LIMIT)
            )
            actions.append(
                Action(
                    f"/projects/{project}/custom_field_settings",
                    fields=SETTING_FIELDS,
                    limit=PAGE_LIMIT,
                )
            )
        found = self._collect(actions)
        sections: dict[str, list[tuple[str, str]]] = {}
        fields: dict[str, dict[str, Any]] = {}
        for i, project in enumerate(self.config.projects):
            listed, settings = found[2 * i], found[2 * i + 1]
            if listed is None or settings is None:
                raise UserError(f"trackers.{self.name}.projects: Asana has no project {project!r}")
            sections[project] = [(str(s["gid"]), str(s.get("name") or "")) for s in listed if record_gid(s)]
            named = (_object(s.get("project")).get("name") for s in listed if isinstance(s, dict))
            name = next((n for n in named if isinstance(n, str) and n), None)
            if name is not None:
                self.project_names[project] = name
            for setting in settings:
                custom = setting.get("custom_field")
                if isinstance(custom, dict) and record_gid(custom):
                    fields[str(custom["gid"])] = custom
        return sections, fields

    def _resolve(self, wanted: str | None, pairs: list[tuple[str, str]], where: str) -> str | None:
        found = resolve_field(wanted, pairs)
        if wanted is not None and found is None:
            raise UserError(
                f"trackers.{self.name}.{where}: no custom field {wanted!r} on the configured projects "
                "(see `bridge discover`)"
            )
        return found

    # ---- batches that page --------------------------------------------------------------------------

    def _collect(self, actions: Sequence[Action], gone: Sequence[int] = (404,)) -> list[list[Any] | None]:
        """Every record each listing action returns, following `next_page`; None where it found nothing."""
        return self.session.collect(actions, absent=gone)

    # ---- goals ----------------------------------------------------------------------------------------

    def pull_goals(self, cursor: str | None) -> Iterator[RemotePage]:
        """The goals as objectives and key results; no page when nothing about them changed."""
        state = GoalsCursor.load(cursor)
        self._goal_hint = state.goals
        mapped = self._read_goals()
        digest = mapped.digest()
        if digest == state.digest:
            return
        for skipped in mapped.skipped:
            log.warning("%s: skipped goal %s: %s", self.name, skipped.key, skipped.reason)
        goals = sorted([o.remote_id for o in mapped.objectives] + [k.remote_id for k in mapped.key_results])
        yield RemotePage(
            source=self.name,
            stream=GOALS_STREAM,
            objectives=mapped.objectives,
            key_results=mapped.key_results,
            skipped=mapped.skipped,
            cursor=GoalsCursor(goals, digest).dump(),
        )

    def _read_goals(self) -> MappedGoals:
        """The workspace's goals and every goal's relationships: one Batch request when the goals are known.

        The goal list and the relationships of the goals the cursor remembers share a batch; a goal new
        since then costs another.
        """
        params: dict[str, Any] = {"workspace": self.config.workspace}
        okrs = self.config.okrs
        if okrs is not None and okrs.time_period:
            params["time_periods"] = okrs.time_period
        listing = Action("/goals", params, GOAL_FIELDS, limit=PAGE_LIMIT)
        hinted = list(self._goal_hint)
        found = self._collect([listing, *(self._relationships(g) for g in hinted)], gone=GONE)
        goals = found[0] or []
        relationships = {g: rel for g, rel in zip(hinted, found[1:], strict=True) if rel is not None}
        fresh = [g for g in (record_gid(goal) for goal in goals) if g and g not in relationships]
        for gid, rel in zip(
            fresh, self._collect([self._relationships(g) for g in fresh], gone=GONE), strict=True
        ):
            relationships[gid] = rel or []
        mapped = map_goals(self.name, goals, relationships)
        self._supports = mapped.supports
        # Every goal a task supports is known when every goal of the workspace was read.
        self._backs = None if self.config.okrs is None or self.config.okrs.time_period else mapped.backs
        return mapped

    @staticmethod
    def _relationships(goal: str) -> Action:
        return Action("/goal_relationships", {"supported_goal": goal}, RELATIONSHIP_FIELDS, limit=PAGE_LIMIT)

    def supports(self) -> Mapping[str, Sequence[str]]:
        """Milestone gid -> the key results it supports, read once per cycle."""
        if not self.reads_goals:
            return {}
        if self._supports is None:
            self._read_goals()
        return self._supports or {}

    # ---- a project ------------------------------------------------------------------------------------

    def pull_project(
        self, project: str, cursor: str | None, signpost: datetime, lag: timedelta
    ) -> Iterator[RemotePage]:
        """Pages of the project's changed tasks; see the module docstring for how change is found."""
        state = ProjectCursor.load(cursor)
        self._milestones[project] = dict(state.milestones)
        events = self._events(project, state.sync)
        supports = self.supports()
        relinked = _relinked(state, supports)
        last_read = state.modified_since
        whole = events.whole or state.sync is None or last_read is None
        if not whole and self._quiet(state, events, relinked, signpost):
            # Only the new sync token is kept; `modified_since` stays for the next read to start from.
            stream = project_stream(project)
            yield RemotePage(
                self.name,
                stream,
                statuses=self._section_names(project),
                cursor=replace(state, sync=events.sync).dump(),
            )
            return
        since = None if whole or last_read is None else max(EPOCH, last_read - lag)
        before = {} if whole else state.milestones
        children = {} if whole else state.children
        adopting = {p for p in events.parents if p not in state.milestones}  # may become milestones
        records, listed = self._changed(project, since, events, adopting | relinked, before, children)
        held = self._held(project, records, listed if whole else None)
        known = self._known(project, before, records, events.gone)
        after = self._after(signpost, events, known, supports, children, records)
        log.debug(
            "%s: project %s: %d tasks to map (%s)",
            self.name, project, len(records), "whole project" if whole else f"changed since {since}",
        )  # fmt: skip
        roles = Roles(state.milestones, last_read) if last_read is not None else None
        yield from self._pages(project, records, known, supports, after, roles, held)

    def _quiet(self, state: ProjectCursor, events: EventRead, relinked: set[str], signpost: datetime) -> bool:
        """Nothing to read: no task named by the events or relinked, and the last read is recent."""
        # Parent mode: a deleted subtask may leave its milestone without one, so it is no quiet cycle.
        orphaning = self.by_parent and any(g in events.gone for cs in state.children.values() for g in cs)
        if events.tasks or relinked or orphaning or state.modified_since is None:
            return False
        return signpost - state.modified_since < QUIET_POLL

    def _changed(
        self,
        project: str,
        since: datetime | None,
        events: EventRead,
        also: set[str],
        before: Mapping[str, KnownMilestone],
        children: Mapping[str, Sequence[str]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The tasks to map: those listed as modified since `since`, those the events named (and `also`)
        that the listing missed, and in parent mode the tasks whose role that may change; and apart, the
        listed ones in the project's order."""
        listing = self._list_tasks(project, since)
        listed = {record_gid(r) for r in listing}
        records = listing + self._read_tasks(sorted((events.tasks | also) - events.gone - listed))
        if self.by_parent:
            records += self._family(records, before, children, events.gone)
        return records, listing

    def _held(
        self, project: str, records: Sequence[dict[str, Any]], listing: Sequence[dict[str, Any]] | None
    ) -> tuple[list[ItemState], bool]:
        """What the project's tasks hold of what the bridge manages, for the pages to carry, and whether
        their goal links are in it (every goal of the workspace read this cycle).

        Places come from one listing of the whole project in its order (`listing`, of a whole read): with
        native order on, an incremental read that found anything lists the project's order too (its
        tasks' states, at most 100 to a request), since a move (the bridge's or a user's) leaves
        `modified_at` alone and shifts others' indexes; without native order, the read tasks carry no place.
        A task whose first configured project is another one gets its place from that project's stream.
        """
        if self.held is None or not records:
            return [], False
        if listing is None and self.config.write.native_order:
            order = Action("/tasks", {"project": project}, STATE_FIELDS, limit=PAGE_LIMIT)
            listing = self._collect([order])[0] or []
        positions = places(project, listing) if listing is not None else None
        read = {gid: r for r in [*records, *(listing or [])] if (gid := record_gid(r)) is not None}
        backs = self._backs if self.reads_goals else None
        held = [
            self.held(
                Ref(self.name, gid), record, positions, backs.get(gid, {}) if backs is not None else None
            )
            for gid, record in read.items()
            if self._first_project(record) in (project, None)
        ]
        return held, backs is not None

    def _first_project(self, record: dict[str, Any]) -> str | None:
        home = self.mapping.home(record)
        return record_gid(home[0]) if home is not None else None

    def _after(
        self,
        signpost: datetime,
        events: EventRead,
        known: dict[str, KnownMilestone],
        supports: Mapping[str, Sequence[str]],
        children: Mapping[str, Sequence[str]],
        records: Sequence[dict[str, Any]],
    ) -> ProjectCursor:
        """The project's cursor once this read's pages are stored."""
        links = {m: list(supports[m]) for m in known if m in supports}
        kids: dict[str, list[str]] = {}
        if self.by_parent:
            after_kids = _children_after(children, records, events.gone)
            kids = {m: sorted(cs) for m, cs in after_kids.items() if m in known and cs}
        return ProjectCursor(min(signpost, datetime.now(UTC)), events.sync, known, links, kids)

    def _events(self, project: str, sync: str | None) -> EventRead:
        """The project's events since `sync`, page after page while Asana has more (each page's `sync`
        starts the next), up to `MAX_EVENT_PAGES`; a refused token asks for a whole read."""
        read = EventRead(sync)
        pages = TokenPaginator(
            f"{self.name}: events of project {project}", _more_events, start=sync, tracker=self.name
        )
        try:
            for count, body in enumerate(pages.pages(partial(self.session.get_events, project)), 1):
                _note_events(read, body["data"], parents=self.by_parent)
                read.sync = str(body["sync"]) if body.get("sync") else pages.token
                if count == MAX_EVENT_PAGES and _more_events(body):
                    log.warning("%s: project %s has more than %d pages of events; reading it whole",
                                self.name, project, MAX_EVENT_PAGES)  # fmt: skip
                    read.whole = True
                    break
        except SyncTokenExpired as refused:
            if not refused.fresh:
                refusal = f"{self.name}: Asana refused the events token and gave no new one"
                raise FatalAPIError(refusal) from None
            return EventRead(refused.fresh, whole=True)
        return read

    def _list_tasks(self, project: str, since: datetime | None) -> list[dict[str, Any]]:
        """The project's tasks modified since `since` (all of them for None), in full, de-duplicated."""
        params: dict[str, Any] = {
            "project": project,
            "opt_fields": ",".join(TASK_FIELDS),
            "limit": min(self.config.page_size, PAGE_LIMIT),
        }
        if since is not None:
            params["modified_since"] = since.isoformat().replace("+00:00", "Z")
        by_gid: dict[str, dict[str, Any]] = {}
        broken: list[dict[str, Any]] = []
        for body in self._task_pages(f"tasks of project {project}", params):
            for record in body["data"]:
                gid = record_gid(record)
                if gid is None:
                    broken.append(record)  # skipped, with a reason, when its page is mapped
                else:
                    by_gid[gid] = record
        return broken + list(by_gid.values())

    def _task_pages(self, listing: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Each page of `GET /tasks` with `params`, following `next_page.offset`."""
        pages: TokenPaginator[dict[str, Any]]
        pages = TokenPaginator(f"{self.name}: {listing}", next_offset, tracker=self.name)
        return pages.pages(lambda at: self.session.get_tasks({**params, "offset": at} if at else params))

    def _read_tasks(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """Tasks by gid, ten to a Batch request; those deleted meanwhile are left out."""
        actions = [Action(f"/tasks/{gid}", fields=TASK_FIELDS) for gid in gids]
        records = []
        for body in self.session.batches(actions, absent=GONE):
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict):
                records.append(data)
        return records

    def _family(
        self,
        records: Sequence[dict[str, Any]],
        before: Mapping[str, KnownMilestone],
        children: Mapping[str, Sequence[str]],
        gone: set[str],
    ) -> list[dict[str, Any]]:
        """Parent mode: the tasks whose role the read may have changed, and the subtasks of new milestones.

        A re-read subtask's parent that was no milestone may now be one; a milestone left with none of
        the subtasks the cursor knew may now be a plain task (both are re-read, ten to a Batch request).
        Each milestone new to the cursor has its subtasks listed, members of no project included.
        """
        read = {g for g in map(record_gid, records) if g}
        wanted = {
            parent
            for parent in map(_parent_gid, records)
            if parent is not None and parent not in before and parent not in read
        }
        left = _children_after(children, records, gone)
        wanted |= {m for m, kids in children.items() if kids and not left.get(m) and m not in read}
        extra = self._read_tasks(sorted(wanted - gone))
        read |= {g for g in map(record_gid, extra) if g}
        fresh = sorted(
            {
                gid
                for gid, kind in ((record_gid(r), self._kind(r)) for r in [*records, *extra])
                if gid is not None and kind == "milestone" and gid not in before
            }
        )
        return extra + self._subtasks(fresh, read)

    def _subtasks(self, milestones: Sequence[str], read: set[str]) -> list[dict[str, Any]]:
        """The subtasks of `milestones` not `read` yet (members of no project too), ten to a request."""
        actions = [
            Action(f"/tasks/{gid}/subtasks", fields=TASK_FIELDS, limit=PAGE_LIMIT) for gid in milestones
        ]
        found = []
        for subtasks in self._collect(actions, gone=GONE):
            for record in subtasks or []:
                gid = record_gid(record)
                if gid is not None and gid not in read:
                    read.add(gid)
                    found.append(record)
        return found

    def _known(
        self,
        project: str,
        before: Mapping[str, KnownMilestone],
        records: Sequence[dict[str, Any]],
        gone: set[str],
    ) -> dict[str, KnownMilestone]:
        """The project's milestones after this read: the cursor's, updated by what was read."""
        known = {g: m for g, m in before.items() if g not in gone}
        for record in records:
            gid = record_gid(record)
            kind = self._kind(record)
            if gid is None or kind == "malformed":
                continue  # the mapping skips it, with its reason
            if kind == "milestone":
                known[gid] = KnownMilestone(str(record.get("name") or gid), self.mapping.section_of(record))
            else:
                known.pop(gid, None)
        known.update(self._section_milestones(project))
        self._milestones[project] = known
        return known

    def _kind(self, record: Any, parents: Mapping[str, str] | None = None) -> str:
        """ "milestone", "task", "outside" (no configured project) or "malformed", without raising.

        `parents` (milestone gid -> project gid) adopts subtasks in no configured project (parent mode).
        """
        try:
            if record_gid(record) is None:
                return "malformed"
            if self.mapping.home(record) is None:
                return "task" if self.mapping.adopter(record, parents or {}) is not None else "outside"
            return "milestone" if self.mapping.is_milestone(record) else "task"
        except (MalformedRecord, *READ_ERRORS):
            return "malformed"

    def _section_milestones(self, project: str) -> dict[str, KnownMilestone]:
        if self.config.milestones.source != "section":
            return {}
        wanted = {s.casefold() for s in self.config.milestones.sections}
        return {
            gid: KnownMilestone(name, gid)
            for gid, name in self.sections.get(project, [])
            if gid in wanted or name.casefold() in wanted
        }

    def _pages(
        self,
        project: str,
        records: list[dict[str, Any]],
        known: dict[str, KnownMilestone],
        supports: Mapping[str, Sequence[str]],
        after: ProjectCursor,
        roles: Roles | None = None,
        held: tuple[Sequence[ItemState], bool] = ((), False),
    ) -> Iterator[RemotePage]:
        size = min(self.config.page_size, PAGE_LIMIT)
        chunks = [records[i : i + size] for i in range(0, len(records), size)] or [[]]
        lookup = {g: m for p, found in self._milestones.items() if p != project for g, m in found.items()}
        lookup.update(known)
        parents = {g: project for g in known} if self.by_parent else {}
        fetched = prefetched(
            ((chunk, self._stories(chunk, parents)) for chunk in chunks),
            stop_event=self.session.policy.stop_event,
        )
        for index, (chunk, stories) in enumerate(fetched):
            mapped = self.mapping.map_tasks(chunk, stories, lookup, supports, parents)
            if roles is not None:
                self._retire(mapped, roles)
            extra = self._section_pages(project, known) if index == 0 else []
            last = index == len(chunks) - 1
            page = self._page(project, mapped, extra, after.dump() if last else None)
            if index == 0:
                page = replace(page, statuses=self._section_names(project), held=held[0], held_links=held[1])
            yield page

    def _stories(self, chunk: Sequence[dict[str, Any]], parents: Mapping[str, str]) -> dict[str, list[Any]]:
        """The stories of a chunk's tasks (milestones keep no history), ten tasks to a Batch request."""
        wanted = [str(record_gid(r)) for r in chunk if self._kind(r, parents) == "task"]
        actions = [Action(f"/tasks/{gid}/stories", fields=STORY_FIELDS, limit=PAGE_LIMIT) for gid in wanted]
        found = self._collect(actions, gone=GONE)
        return {gid: stories or [] for gid, stories in zip(wanted, found, strict=True)}

    def _retire(self, mapped: Mapped, roles: Roles) -> None:
        """Leave an item whose role changed since the cursor's read deleted in its old role.

        A task that was a milestone leaves a deleted milestone; a milestone that the cursor did not know,
        created before its read, may have been stored as a task and leaves a deleted task.
        """
        former = [
            Milestone(
                source=self.name, remote_id=t.remote_id, key=t.key, title=t.title, created=t.created,
                updated=t.updated, url=t.url, deleted=True,
            )
            for t in mapped.tasks
            if t.remote_id in roles.milestones
        ]  # fmt: skip
        promoted = [
            Task(
                source=self.name, remote_id=m.remote_id, key=m.key, title=m.title, created=m.created,
                updated=m.updated, url=m.url, deleted=True,
            )
            for m in mapped.milestones
            if m.remote_id not in roles.milestones and (m.created is None or m.created < roles.read)
        ]  # fmt: skip
        mapped.milestones.extend(former)
        mapped.tasks.extend(promoted)

    def _section_names(self, project: str) -> list[StatusName]:
        """The project's sections by name, as the tasks' raw statuses (a section gid) are shown."""
        return [StatusName(self.name, gid, name) for gid, name in self.sections.get(project, []) if name]

    def _section_pages(self, project: str, known: Mapping[str, KnownMilestone]) -> list[Milestone]:
        sections = self._section_milestones(project)
        return [self.mapping.section_milestone(g, m.name, project) for g, m in sections.items() if g in known]

    def _page(self, project: str, mapped: Mapped, extra: list[Milestone], cursor: str | None) -> RemotePage:
        for skipped in mapped.skipped:
            log.warning("%s: skipped task %s: %s", self.name, skipped.key, skipped.reason)
        if mapped.outside:
            log.debug("%s: %d records outside the configured projects", self.name, mapped.outside)
        return RemotePage(
            source=self.name,
            stream=project_stream(project),
            milestones=[*extra, *mapped.milestones],
            tasks=mapped.tasks,
            status_changes=mapped.changes,
            dependencies=mapped.dependencies,
            links=mapped.links,
            skipped=mapped.skipped,
            cursor=cursor,
        )

    # ---- census -----------------------------------------------------------------------------------------

    def census(self) -> list[str]:
        """The gids of every task of every configured project (and of section milestones), for deletions.

        With parent tasks as milestones, each milestone's subtasks too (ten milestones to a Batch
        request): they are usually members of no project.
        """
        ids: list[str] = []
        for project in self.config.projects:
            params: dict[str, Any] = {"project": project, "limit": PAGE_LIMIT}
            if self.by_parent:
                params["opt_fields"] = "parent,num_subtasks"
            milestones: list[str] = []
            for body in self._task_pages(f"census of project {project}", params):
                for record in body["data"]:
                    gid = record_gid(record)
                    if gid is None:
                        continue
                    ids.append(gid)
                    if self.by_parent and self._is_parent(record):
                        milestones.append(gid)
            actions = [Action(f"/tasks/{gid}/subtasks", limit=PAGE_LIMIT) for gid in milestones]
            for subtasks in self._collect(actions, gone=GONE):
                ids.extend(g for g in (record_gid(r) for r in subtasks or []) if g)
            ids.extend(self._section_milestones(project))
        return list(dict.fromkeys(ids))

    def _is_parent(self, record: dict[str, Any]) -> bool:
        try:
            return self.mapping.is_milestone(record)
        except READ_ERRORS:
            return False


def _more_events(body: Mapping[str, Any]) -> str | None:
    """The sync token to read the next page of events with, when Asana says it has more."""
    return str(body["sync"]) if body.get("has_more") and body.get("sync") else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parent_gid(record: Any) -> str | None:
    """The gid of a record's parent task, None without one (or when it cannot be read)."""
    return record_gid(record.get("parent")) if isinstance(record, dict) else None


def _children_after(
    children: Mapping[str, Sequence[str]], records: Sequence[Any], gone: set[str]
) -> dict[str, set[str]]:
    """Each parent's subtasks: the cursor's, moved by the records read (their parents) and the deleted."""
    kids = {m: set(cs) for m, cs in children.items()}
    owner = {c: m for m, cs in children.items() for c in cs}
    for gid, parent in [(record_gid(r), _parent_gid(r)) for r in records] + [(g, None) for g in gone]:
        if gid is None:
            continue
        old = owner.pop(gid, None)
        if old is not None:
            kids[old].discard(gid)
        if parent is not None:
            kids.setdefault(parent, set()).add(gid)
            owner[gid] = parent
    return kids


def _note_events(read: EventRead, events: Sequence[Any], *, parents: bool = False) -> None:
    """Which tasks the events touched (directly, through a story, or as a dependency), which are gone.

    With `parents` (parent tasks are milestones), also the task a subtask was removed from (it may be
    left with none), and apart, in `parents`, the tasks subtasks were added to (a milestone already
    keeps its role)."""
    for event in events:
        if not isinstance(event, dict):
            continue
        resource, parent = _object(event.get("resource")), _object(event.get("parent"))
        kind, gid = resource.get("resource_type"), record_gid(resource)
        if kind == "task" and gid:
            (read.gone if event.get("action") == "deleted" else read.tasks).add(gid)
        elif kind == "story" and parent.get("resource_type") == "task" and record_gid(parent):
            read.tasks.add(str(parent["gid"]))
        elif kind == "section" and event.get("action") in ("changed", "deleted"):
            read.whole = True  # a renamed or removed section changes the status of every task in it
        if parents and kind == "task" and parent.get("resource_type") == "task" and record_gid(parent):
            action = event.get("action")
            if action == "removed":
                read.tasks.add(str(parent["gid"]))
            elif action == "added":
                read.parents.add(str(parent["gid"]))
        change = _object(event.get("change"))
        for key in ("added_value", "removed_value"):
            value = change.get(key)
            # A dependency added or removed changes the other task's dependents, and so its milestone.
            if isinstance(value, dict) and value.get("resource_type") == "task" and record_gid(value):
                read.tasks.add(str(value["gid"]))
    read.tasks -= read.gone
    read.parents -= read.gone


@dataclass(frozen=True)
class Roles:
    """What the cursor knew before this read: the milestones, and when it was read."""

    milestones: Mapping[str, KnownMilestone]
    read: datetime


def _relinked(state: ProjectCursor, supports: Mapping[str, Sequence[str]]) -> set[str]:
    """The cursor's milestones whose key-result links differ from the goals read this cycle."""
    return {
        gid for gid in state.milestones if sorted(state.links.get(gid, [])) != sorted(supports.get(gid, []))
    }


__all__ = ["GOALS_STREAM", "AsanaPuller", "project_stream"]
