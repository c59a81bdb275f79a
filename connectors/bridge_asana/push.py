"""Writing back to Asana: the value rank and OKR custom fields, the bridge's tags, goal links and order.

What a write becomes (see `bridge.domain.WriteKind`):
- `field` (`rank`, `okr`, `forecast_p50`, `forecast_p85`): `PUT /tasks/{gid}` with `custom_fields`
  {field gid: value} (null clears it); the fields are `write.rank_field` (a number or text field; a text
  or enum field for `rank_value = "band"`), `write.okr_field` (a text field, or an enum field whose
  option is named by the value) and `write.forecast_fields` (date fields, given `{"date": "YYYY-MM-DD"}`
  and read from `date_value.date`), given by name or gid. Two field writes to one task share
  one PUT.
- `label_add` / `label_remove`: `POST /tasks/{gid}/addTag` / `removeTag`. A tag is found by its exact
  name among the workspace's tags (those seen on tasks by `read_state`, else the workspace's listing)
  and created (`POST /tags`, with the colour of Asana's palette nearest the configured colour name)
  when missing. A name that several tags share is one label: adding uses the oldest (the lowest gid),
  removing removes each. A creation is not retried: when it gets no answer (Asana may have made the
  tag), the workspace's tags are listed again and a tag found is used; one still missing is created once
  more (after two lost creations its writes fail and the next cycle looks again). Copies of a tag the
  bridge adds (a lost creation that landed late, two runs racing) are merged into the oldest when the
  bridge next adds it: the tasks of each copy (`GET /tags/{gid}/tasks`) get the oldest, then the copies
  are deleted (`DELETE /tags/{gid}`), through the Batch API.
- `link`: a supporting relationship from the task to an Asana goal, the link's global id being
  `milestone-bridge:kr:<tracker>:<goal gid>` (the planner's id of a key result read from this tracker)
  or `asana-goal:<goal gid>`: `POST /goals/{goal}/addSupportingRelationship` (value a `LinkTarget`) or
  `removeSupportingRelationship` (value None). A global id that names no goal of the workspace cannot
  be written in Asana (a relationship needs a goal to hang on), so such a write fails and says so.
  A relationship already there (or already gone) is a success, checked by reading the task's goals.
- `order`: `POST /sections/{section}/addTask` when the container is a section, `POST
  /tasks/{gid}/addProject` when it is a project, with `insert_after` (or `insert_before`).
- `comment` (field: the bridge's marker line, value: the text): a comment story on the task. Right
  before each post, the task's comments are looked at (`GET /tasks/{gid}/stories` through the Batch
  API, a hundred stories a page): a comment story (`comment_added`) by the bridge's own user (`GET
  /users/me`, asked once) carrying the marker means it is there already (a post whose answer was lost,
  another replica's, even one posted while this push ran), and nothing is sent. Otherwise `POST
  /tasks/{gid}/stories` with the text and the marker on its last line, on its own and never sent again
  without an answer: an unanswered post is read back by its marker (`comment_found`). Posting a comment
  notifies the task's followers. No text deletes the bridge's comments carrying the marker (their
  tasks' comments read ten to a Batch request, `DELETE /stories/{gid}` through the Batch API); a user's
  comment is never touched, whatever it says. A section milestone cannot take a comment (only tasks
  can): such a write is refused and says so.
- `field` `status_update` on a goal (a key result): `POST /status_updates` with the goal as `parent`, the
  value as `status_type`, a title and the reason as text ending with the bridge's marker line. `read_state`
  reads a goal (an item no task answers for) as the status type of the newest status update carrying
  that marker (`GET /status_updates?parent=`), so a user's own status updates are neither counted nor
  overwritten; a status update is never taken back.

Independent writes go ten to a Batch API request, each action charged to the rate limit. The Batch API
runs a request's actions in parallel, in no set order, so moves that touch a common task (one placed
next to another being moved) go in successive requests, each filled up with other writes. A Batch
request that still fails after every retry, or an action in it answering 5xx, leaves its writes unknown
(the kit reads them back from the tasks and settles each as Asana holds it) and the push goes on,
until the writer's breaker counts three requests without an answer in a row: then the push raises, as
for refused credentials.
The checks every connector makes (another tracker's item, a kind of write the config switched off, a
field the bridge does not manage) are the kit's (`bridge.kit.Writer`); `refuse` adds Asana's own.

`read_state` reads the tasks ten to a Batch request (`GET /tasks/{gid}`), or, for many tasks or when
native order is written, by listing the configured projects (which gives each section's order too).
Goal links come from the goals each task supports (`GET /goals?task=`), or for many tasks from the
workspace's goals and their relationships. Asana does not record who made a relationship, so every goal
a task supports is reported (by the first form of global id, with the goal's URL and name): a user's
relationship is told from the bridge's only by what the bridge recorded as written.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import Any

from bridge.config import FIELD_KEYS, FORECAST_FIELDS
from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteCost, WriteKind
from bridge.errors import (
    AuthError,
    BridgeError,
    FatalAPIError,
    OutcomeUnknown,
    RetriableAPIError,
    UserError,
    WriteRefused,
)
from bridge.http import redact
from bridge.kit import Outcomes, Writer
from bridge.mapping import resolve_field
from bridge.written import KEY_RESULT_LINK_PREFIX as BRIDGE_LINK
from bridge.written import STATUS_MARKER_PREFIX, STATUS_UPDATE_FIELD, status_marker, with_marker
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import field_value, record_gid
from bridge_asana.session import MAX_BATCH, PAGE_LIMIT, Action, ActionResult, AsanaSession

log = logging.getLogger(__name__)

GOAL_LINK = "asana-goal:"
"""A link to an Asana goal may be named `asana-goal:<gid>` or, as the planner names the link to a key
result, `BRIDGE_LINK<tracker>:<goal gid>` (a key result read from this tracker is one of its goals);
`read_state` uses this second form."""
RANK, OKR = "rank", "okr"
LISTING_AT = 50
"""From this many tasks on, `read_state` lists the projects instead of reading each task."""
STATE_FIELDS = (
    "custom_fields.number_value", "custom_fields.text_value", "custom_fields.enum_value.name",
    "custom_fields.date_value", "custom_fields.display_value", "tags.name", "memberships.project",
    "memberships.section",
)  # fmt: skip
GOAL_FIELDS = ("name",)
STATUS_FIELDS = ("status_type", "text", "created_at")
GOAL_STATUS_TYPES = ("on_track", "at_risk", "off_track", "achieved", "partial", "missed", "dropped")
"""The status types of a goal's status update (asana.yaml, StatusUpdateBase.status_type)."""
STATUS_WORDS = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track", "achieved": "met"}
LABELS = (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE)
WRITABLE = (WriteKind.FIELD, WriteKind.LINK, WriteKind.ORDER, WriteKind.COMMENT, *LABELS)
COMMENT_FIELDS = ("resource_subtype", "text", "created_by")
"""What the look for the bridge's comments reads of each story of a task."""
COMMENT_SUBTYPE = "comment_added"
GONE = (400, 404)
PALETTE = frozenset(
    f"{shade}-{hue}"
    for shade in ("dark", "light")
    for hue in ("pink", "green", "blue", "red", "teal", "brown", "orange", "purple", "warm-gray")
)
"""Asana's tag colours (asana.yaml, TagBase.color)."""
COLOURS = {
    "red": "dark-red", "orange": "dark-orange", "yellow": "light-orange", "amber": "light-orange",
    "green": "dark-green", "lime": "light-green", "blue": "dark-blue", "sky": "light-blue",
    "cyan": "light-teal", "teal": "dark-teal", "purple": "dark-purple", "violet": "light-purple",
    "pink": "dark-pink", "magenta": "light-pink", "brown": "dark-brown", "gray": "dark-warm-gray",
    "grey": "dark-warm-gray", "black": "dark-warm-gray", "white": "light-warm-gray",
}  # fmt: skip
"""Plain colour names (as labels elsewhere take them) -> the nearest colour of Asana's palette."""


def goal_link(tracker: str, goal: str) -> str:
    """The global id of the bridge's link from a task of `tracker` to its goal `goal`."""
    return f"{BRIDGE_LINK}{tracker}:{goal}"


def goal_of(tracker: str, global_id: str) -> str | None:
    """The goal gid a link's global id names, or None when it names no goal of `tracker`."""
    if global_id.startswith(GOAL_LINK):
        gid = global_id.removeprefix(GOAL_LINK)
    elif global_id.startswith(f"{BRIDGE_LINK}{tracker}:"):
        gid = global_id.removeprefix(f"{BRIDGE_LINK}{tracker}:")
    else:
        return None
    return gid if gid.isdigit() else None


def palette_colour(name: Any) -> str | None:
    """An Asana tag colour for a colour name (`red` -> `dark-red`); None (no colour) when unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    wanted = name.strip().lower().replace("_", "-").replace(" ", "-")
    if wanted in PALETTE:
        return wanted
    return COLOURS.get(wanted)


@dataclass(frozen=True, slots=True)
class ManagedField:
    """A configured custom field: its gid, name, type and (enum) options by folded name."""

    gid: str
    name: str
    kind: str
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Move:
    """A task put just after (`side` "after") or before an anchor task, or at the start (no anchor)."""

    task: str
    anchor: str | None
    side: str

    def follows(self, earlier: Move) -> bool:
        """Whether this move must wait for `earlier`: one moves the other's task or anchor, or both put
        a task on the same side of the same anchor (their order there would be left to chance)."""
        if earlier.task in (self.task, self.anchor) or self.task == earlier.anchor:
            return True
        return (self.anchor, self.side) == (earlier.anchor, earlier.side)


@dataclass
class Job:
    """One action of a push and the writes (by index) whose outcome it decides."""

    action: Action
    writes: list[int]
    move: Move | None = None
    """For moves: which task goes next to which."""
    link: tuple[str, str, bool] | None = None
    """For links: (task, goal, wanted): checked by reading the task's goals when the action fails."""
    result: ActionResult | None = None
    error: BridgeError | None = None
    """Why the whole batch holding this job failed (the job never ran, or, an `OutcomeUnknown`, the
    batch got no answer and the kit reads its writes back)."""


class AsanaWriter(Writer[AsanaTrackerConfig]):
    """The write side of one Asana tracker over the puller's session and setup."""

    def __init__(
        self,
        name: str,
        config: AsanaTrackerConfig,
        session: AsanaSession,
        custom_fields: Mapping[str, Mapping[str, Any]],
        sections: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, config)
        self.session = session
        self.sections = dict(sections or {})
        """The configured projects' sections, gid -> name: a section milestone takes no comment."""
        self._me: str | None = None
        """The gid of the token's user, who posts the bridge's comments (asked once)."""
        band = config.write.rank_mode == "band"
        self.fields: dict[str, ManagedField] = {}
        """The configured write fields by logical name (`rank`, `okr`); a bad one is a `UserError` here."""
        for logical, wanted, kinds in (
            (RANK, config.write.rank_field, ("text", "enum") if band else ("number", "text")),
            (OKR, config.write.okr_field, ("text", "enum")),
            *((day, config.write.field_named(day), ("date",)) for day in FORECAST_FIELDS),
        ):
            managed = _managed_field(name, logical, wanted, kinds, custom_fields)
            if managed is not None:
                self.fields[logical] = managed
        self._tags: dict[str, list[str]] = {}
        """Tag name -> gids, as far as this process has seen the workspace's tags."""
        self._task_tags: dict[str, dict[str, list[str]]] = {}
        """Task gid -> its tags (name -> gids) at the last `read_state`."""
        self._unanswered: dict[str, int] = {}
        """Tag name -> its creations that got no answer; after two, not tried again by this writer."""
        self._workspace_goals: set[str] = set()
        self._foreign_goals: set[str] = set()

    # ---- reading ------------------------------------------------------------------------------------

    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        refs: dict[str, Ref] = {}
        for ref in items:
            refs.setdefault(ref.remote_id, ref)
        if not refs:
            return {}
        wanted = sorted(refs)
        order = self.config.write.native_order
        positions: dict[tuple[str, str], int] = {}
        if order or len(wanted) >= LISTING_AT:
            records, positions = self._list_projects(set(wanted))
            records.update(self._read_tasks([g for g in wanted if g not in records]))
        else:
            records = self._read_tasks(wanted)
        missing = [gid for gid in wanted if gid not in records]
        goals = self._read_goal_statuses([refs[gid] for gid in missing]) if missing else {}
        linked = sorted(records) if links is None else sorted(g for g in records if refs[g] in links)
        links_of = self._read_links(linked) if self.config.write.okr_links and linked else {}
        states = {}
        for gid, record in records.items():
            states[refs[gid]] = self._state(
                refs[gid], record, positions if order else None, links_of.get(gid)
            )
        return states | goals

    def _read_goal_statuses(self, refs: Sequence[Ref]) -> dict[Ref, ItemState]:
        """The goals among `refs` (items no task answered for), each holding the status type of the
        newest status update the bridge posted on it (`STATUS_MARKER_PREFIX`; None before its first):
        `GET /status_updates?parent=`, ten to a Batch request. What is no goal answers 400 or 404."""
        listings = self.session.collect(
            [
                Action("/status_updates", {"parent": ref.remote_id}, STATUS_FIELDS, limit=PAGE_LIMIT)
                for ref in refs
            ],
            absent=GONE,
        )
        states: dict[Ref, ItemState] = {}
        for ref, updates in zip(refs, listings, strict=True):
            if updates is None:
                continue
            ours = [u for u in _objects(updates) if STATUS_MARKER_PREFIX in str(u.get("text") or "")]
            newest = max(
                ours, key=lambda u: (str(u.get("created_at") or ""), int(record_gid(u) or 0)), default=None
            )
            status = newest.get("status_type") if newest is not None else None
            states[ref] = ItemState(item=ref, key=ref.remote_id, fields={STATUS_UPDATE_FIELD: status})
        return states

    def _read_tasks(self, gids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Tasks by gid, ten to a Batch request; those Asana does not have (or are no task) left out."""
        actions = [Action(f"/tasks/{gid}", fields=STATE_FIELDS) for gid in gids]
        records = {}
        for gid, body in zip(gids, self.session.batches(actions, absent=GONE), strict=True):
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict) and record_gid(data) == gid:
                records[gid] = data
        return records

    def _list_projects(
        self, wanted: set[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], int]]:
        """The wanted tasks found in the configured projects, and every task's index in its section."""
        projects = list(self.config.projects)
        actions = [Action("/tasks", {"project": p}, STATE_FIELDS, limit=PAGE_LIMIT) for p in projects]
        listed = self.session.collect(actions, absent=GONE)
        records: dict[str, dict[str, Any]] = {}
        positions: dict[tuple[str, str], int] = {}
        for project, found in zip(projects, listed, strict=True):
            positions.update(places(project, found or []))
            records.update((gid, r) for r in found or [] if (gid := record_gid(r)) in wanted and gid)
        return records, positions

    def _read_links(self, gids: Sequence[str]) -> dict[str, dict[str, LinkTarget]]:
        """Each task's goal relationships as links, by global id: per task, or per goal for many tasks."""
        if not gids:
            return {}
        if len(gids) >= LISTING_AT:
            listing = Action("/goals", {"workspace": self.config.workspace}, GOAL_FIELDS, limit=PAGE_LIMIT)
            named = _goal_names(self.session.collect([listing])[0])
            self._workspace_goals |= set(named)
            if len(named) <= len(gids):
                return self._links_by_goal(named, set(gids))
        return {
            task: {goal_link(self.name, g): self._target(g, name) for g, name in supported.items()}
            for task, supported in self._goals_of(gids).items()
        }

    def _links_by_goal(self, named: Mapping[str, str], wanted: set[str]) -> dict[str, dict[str, LinkTarget]]:
        """The wanted tasks' links, from the relationships of each goal `named` (gid -> name)."""
        fields = ("supporting_resource.resource_type",)
        actions = [
            Action("/goal_relationships", {"supported_goal": g}, fields, limit=PAGE_LIMIT) for g in named
        ]
        found: dict[str, dict[str, LinkTarget]] = {}
        for goal, relations in zip(named, self.session.collect(actions, absent=GONE), strict=True):
            for relation in _objects(relations):
                resource = _object(relation.get("supporting_resource"))
                task = record_gid(resource)
                if task in wanted and resource.get("resource_type") in (None, "task"):
                    found.setdefault(task, {})[goal_link(self.name, goal)] = self._target(goal, named[goal])
        return found

    def _goals_of(self, tasks: Sequence[str]) -> dict[str, dict[str, str]]:
        """The goals each task supports (gid -> name), ten tasks to a Batch request."""
        actions = [Action("/goals", {"task": t}, GOAL_FIELDS, limit=PAGE_LIMIT) for t in tasks]
        return {
            task: _goal_names(goals)
            for task, goals in zip(tasks, self.session.collect(actions, absent=GONE), strict=True)
        }

    def _target(self, goal: str, name: str) -> LinkTarget:
        return LinkTarget(goal_link(self.name, goal), f"{self.config.url.rstrip('/')}/0/goal/{goal}", name)

    def held(
        self,
        ref: Ref,
        record: dict[str, Any],
        positions: Mapping[tuple[str, str], int] | None,
        goals: Mapping[str, str] | None,
    ) -> ItemState:
        """What task `record` (read with at least `STATE_FIELDS`) holds of what the bridge manages, as a
        pull page shows it: its place from `positions` (see `places`; None: no place), its links from
        `goals` (every goal it supports, gid -> name; None: not known)."""
        links = None
        if goals is not None and self.config.write.okr_links:
            links = {goal_link(self.name, g): self._target(g, name) for g, name in goals.items()}
        return self._state(ref, record, positions, links)

    def _state(
        self,
        ref: Ref,
        record: dict[str, Any],
        positions: Mapping[tuple[str, str], int] | None,
        links: Mapping[str, LinkTarget] | None,
    ) -> ItemState:
        gid = ref.remote_id
        values = {str(e.get("gid")): e for e in _objects(record.get("custom_fields"))}
        fields: dict[str, Any] = {}
        for logical, managed in self.fields.items():
            entry = values.get(managed.gid)
            fields[logical] = _read_value(managed, entry) if entry is not None else None
        tags = self._note_tags(gid, record)
        project, container = self._home(record)
        position = None
        if positions is not None and project is not None:
            position = positions.get((project, gid))
        return ItemState(
            item=ref,
            key=gid,
            fields=fields,
            labels=frozenset(tags),
            links=dict(links or {}),
            container=container,
            position=position,
        )

    def _note_tags(self, task: str, record: Mapping[str, Any]) -> dict[str, list[str]]:
        """The task's tags (name -> gids), remembered for removing them and added to the known tags."""
        tags: dict[str, list[str]] = {}
        for tag in _objects(record.get("tags")):
            gid, name = record_gid(tag), tag.get("name")
            if gid and isinstance(name, str):
                tags.setdefault(name, []).append(gid)
                known = self._tags.setdefault(name, [])
                if gid not in known:
                    known[:] = _oldest_first([*known, gid])
        self._task_tags[task] = tags
        return tags

    def _home(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        """The first configured project the task is in, and its section there (the project without one)."""
        for project in self.config.projects:
            for membership in _objects(record.get("memberships")):
                if record_gid(membership.get("project")) == project:
                    return project, record_gid(membership.get("section")) or project
        return None, None

    # ---- writing ------------------------------------------------------------------------------------

    def holds(self, write: FieldWrite, states: Mapping[Ref, ItemState]) -> bool:
        """As the kit reads a write back, but a link by its goal alone: Asana reports each goal a task
        supports with the goal's own URL, under the first form of its global id."""
        if write.kind is not WriteKind.LINK:
            return super().holds(write, states)
        state = states.get(write.item)
        goal = goal_of(self.name, write.field)
        held = state is not None and any(goal_of(self.name, gid) == goal for gid in state.links)
        return state is not None and held == (write.value is not None)

    def refuse(self, write: FieldWrite) -> None:
        """What Asana cannot take, known without a request: no task gid, a value its field cannot hold,
        a link to what is not a goal, an order write's neighbours that are no tasks, a comment on a
        section milestone."""
        task = write.item.remote_id
        if not task.isdigit():
            raise WriteRefused(f"{task!r} is not an Asana task gid")
        if write.kind is WriteKind.FIELD and write.field == STATUS_UPDATE_FIELD:
            if write.value not in GOAL_STATUS_TYPES:
                raise WriteRefused(
                    f"{write.value!r} is not a goal's status type ({', '.join(GOAL_STATUS_TYPES)})"
                )
        elif write.kind is WriteKind.FIELD:
            # The template let through only a configured field, which `__init__` found or refused.
            _write_value(self.fields[write.field], write.value)
        elif write.kind is WriteKind.LINK and goal_of(self.name, write.field) is None:
            raise WriteRefused(
                f"link {write.field!r} is not supported: Asana links a task only to a goal of workspace "
                f"{self.config.workspace} (`{GOAL_LINK}<gid>` or `{BRIDGE_LINK}{self.name}:<gid>`)"
            )
        elif write.kind is WriteKind.ORDER:
            _neighbours(write.value)
        elif write.kind is WriteKind.COMMENT and write.value is not None and task in self.sections:
            raise WriteRefused(
                f"milestone {self.sections[task]!r} is an Asana section, and a section cannot take a "
                "comment (only a task can): it is not announced in Asana"
            )
        elif write.kind not in WRITABLE:
            raise WriteRefused(f"the asana connector cannot write {write.kind!r}")

    def requests_for(self, writes: Sequence[FieldWrite]) -> int:
        """Batch requests of ten actions: one `PUT` per task for its fields, one action per other write
        (see `send`; moves that depend on each other may take a few more). A comment to post costs a
        look at its task's comments and a post, each a request of its own; a deletion a look (ten tasks'
        comments to a Batch request) and one Batch action."""
        comments = [w for w in writes if w.kind is WriteKind.COMMENT]
        rest = [w for w in writes if w.kind is not WriteKind.COMMENT]
        fielded = {w.item for w in rest if w.kind is WriteKind.FIELD}
        actions = len(fielded) + sum(1 for w in rest if w.kind is not WriteKind.FIELD)
        actions += sum(1 for w in comments if w.value is None)
        looks = len({w.item for w in comments if w.value is None})
        posts = sum(1 for w in comments if w.value is not None)
        return -(-actions // MAX_BATCH) + -(-looks // MAX_BATCH) + 2 * posts

    def cost(self, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost:
        """As the kit counts (see `requests_for`), and each comment posted notifies the task's followers
        (their count as the pull last saw it, where it did)."""
        posted = {w.item for w in writes if w.kind is WriteKind.COMMENT and w.value is not None}
        counted = super().cost(writes, watchers)
        return replace(counted, emails=counted.emails + sum(watchers.get(item, 0) for item in posted))

    def send(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """The edits, links and moves (`_send_edits`), then the comments (`_send_comments`)."""
        edits = [(index, write) for index, write in writes if write.kind is not WriteKind.COMMENT]
        comments = [(index, write) for index, write in writes if write.kind is WriteKind.COMMENT]
        if edits:
            self._send_edits(edits, outcomes)
        if comments:
            self._send_comments(comments, outcomes)

    def _send_edits(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Find or create the tags, check the goals, then every action ten to a Batch request."""
        tags = self._tags_for(writes, outcomes)
        self._check_goals(writes, outcomes)
        puts: dict[str, Job] = {}
        jobs = [
            job
            for index, write in writes
            if not outcomes.settled(index)
            for job in self._jobs(index, write, tags, puts)
        ]
        self._run(jobs)
        self._settle_links(jobs)
        failures: dict[int, str | BridgeError] = {}
        for job in jobs:
            failure = self._failure(job)
            if failure is None:
                continue
            for index in job.writes:
                failures.setdefault(index, failure)
            if job.action.path.endswith("/addTag"):
                self._forget_tag(str(job.action.params.get("tag")))
        for index, _ in writes:  # a write settles once, on the word of every job it made
            outcomes.settle(index, failures.get(index))

    def _failure(self, job: Job) -> str | BridgeError | None:
        """Why a job failed (its batch refused, or its own action), None when it was done. An action
        answering 5xx may have been applied: its writes are `OutcomeUnknown`, for the kit to read back."""
        if job.error is not None:
            return job.error
        if job.result is not None and not job.result.ok:
            error = self.session.action_error(job.action, job.result)
            if job.result.status >= 500:
                return OutcomeUnknown(str(error))
            return str(error)
        return None

    def _jobs(
        self, index: int, write: FieldWrite, tags: Mapping[str, list[str]], puts: dict[str, Job]
    ) -> list[Job]:
        """The actions write `index` takes (a field write may join the task's PUT instead: none)."""
        task = write.item.remote_id
        if write.kind is WriteKind.FIELD and write.field == STATUS_UPDATE_FIELD:
            return [Job(self._status_update(write), [index])]
        if write.kind is WriteKind.FIELD:
            return self._field_job(index, task, write, puts)
        if write.kind is WriteKind.LINK:
            goal = str(goal_of(self.name, write.field))  # `refuse` saw it name a goal
            wanted = write.value is not None
            verb = "addSupportingRelationship" if wanted else "removeSupportingRelationship"
            action = Action(f"/goals/{goal}/{verb}", {"supporting_resource": task}, method="post")
            return [Job(action, [index], link=(task, goal, wanted))]
        if write.kind is WriteKind.ORDER:
            return [self._move(index, task, write)]
        adding = write.kind is WriteKind.LABEL_ADD
        found = tags.get(write.field, [])
        # To remove: every tag of that name the task carries (as last read), else the workspace's.
        chosen = found[:1] if adding else self._task_tags.get(task, {}).get(write.field) or found
        verb = "addTag" if adding else "removeTag"
        return [Job(Action(f"/tasks/{task}/{verb}", {"tag": tag}, method="post"), [index]) for tag in chosen]

    def _status_update(self, write: FieldWrite) -> Action:
        """`POST /status_updates` on goal `write.item`: its status type, a title saying it and the reason
        as text, ending with the bridge's marker (how `read_state` tells its own updates from a user's)."""
        words = STATUS_WORDS.get(str(write.value), str(write.value).replace("_", " "))
        reason = write.reason or f"key result {words}"
        data = {
            "parent": write.item.remote_id,
            "status_type": write.value,
            "title": f"Key result {words}",
            "text": with_marker(reason, status_marker(write.item)),
        }
        return Action("/status_updates", data, ("status_type",), method="post")

    def _field_job(self, index: int, task: str, write: FieldWrite, puts: dict[str, Job]) -> list[Job]:
        managed = self.fields[write.field]
        value = _write_value(managed, write.value)
        job = puts.get(task)
        if job is not None:  # one PUT carries every field write to a task
            job.action.params["custom_fields"][managed.gid] = value
            job.writes.append(index)
            return []
        action = Action(
            f"/tasks/{task}", {"custom_fields": {managed.gid: value}}, ("modified_at",), method="put"
        )
        puts[task] = Job(action, [index])
        return [puts[task]]

    def _move(self, index: int, task: str, write: FieldWrite) -> Job:
        container = str(write.field)
        after, before = _neighbours(write.value)
        placed = Move(task, after or before, "before" if after is None and before is not None else "after")
        place: dict[str, Any] = {}
        if after is not None:
            place["insert_after"] = after
        elif before is not None:
            place["insert_before"] = before
        if container in self.config.projects:  # no neighbour: the start of the project
            data = {"project": container, **(place or {"insert_after": None})}
            return Job(Action(f"/tasks/{task}/addProject", data, method="post"), [index], move=placed)
        data = {"task": task, **place}
        return Job(Action(f"/sections/{container}/addTask", data, method="post"), [index], move=placed)

    # ---- tags ---------------------------------------------------------------------------------------

    def _tags_for(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> dict[str, list[str]]:
        """Tag gids by name for the label writes; tags to add that the workspace lacks are created."""
        adds = [(i, w) for i, w in writes if w.kind is WriteKind.LABEL_ADD]
        if not any(w.kind in LABELS for _, w in writes):
            return {}
        needed = {w.field for _, w in adds}
        if any(name not in self._tags for name in needed):
            self._list_tags()
        for name in sorted(needed - {n for n, gids in self._tags.items() if gids}):
            try:
                self._tags[name] = [self._create_tag(name, adds)]
            except AuthError:
                raise
            except (WriteRefused, FatalAPIError) as exc:  # this tag's writes fail, the others go on
                for index in (i for i, w in adds if w.field == name):
                    outcomes.fail(index, exc)
        for name in sorted(n for n in needed if len(self._tags.get(n, ())) > 1):
            self._merge_tags(name)
        return {name: list(gids) for name, gids in self._tags.items()}

    def _create_tag(self, name: str, adds: Sequence[tuple[int, FieldWrite]]) -> str:
        """The gid of a new tag `name` (the workspace was just listed without one). When the creation
        gets no answer, the workspace's tags are listed again at once: a tag found is used; none found,
        it is created once more (should the lost one land later, the next push adding that tag merges
        the two). A second creation without an answer is `WriteRefused`: its writes wait a cycle."""
        lost = self._unanswered.get(name, 0)
        if lost >= 2:
            raise WriteRefused(
                f"creating tag {name!r} got no answer twice and the workspace does not show it; it is "
                "looked for again next cycle"
            )
        colour = palette_colour(next(w.value for _, w in adds if w.field == name))
        try:
            tag = self.breaker.call(
                partial(self.session.create_tag, self.config.workspace, name, colour), "POST /tags"
            )
        except WriteRefused as exc:
            if not isinstance(exc.__cause__, RetriableAPIError):
                raise
            self._list_tags()
            if self._tags.get(name):
                log.info("%s: tag %s was made although its creation got no answer", self.name, name)
                return self._tags[name][0]
            self._unanswered[name] = lost + 1
            log.info("%s: creating tag %s got no answer and the workspace lacks it: creating it again",
                     self.name, name)  # fmt: skip
            return self._create_tag(name, adds)
        log.info("%s: created tag %s (%s)", self.name, name, tag.get("color"))
        return str(tag["gid"])

    def _merge_tags(self, name: str) -> None:
        """Move every task carrying a newer copy of tag `name` to the oldest, then delete the copies.

        Only tags of a name the bridge adds get here: its own, never a user's other tags. A step that
        fails leaves the copies in place (every write uses the oldest meanwhile), for the next push."""
        kept, *copies = self._tags[name]
        try:
            listed = self.session.collect([Action(f"/tags/{gid}/tasks", fields=("name",), limit=PAGE_LIMIT)
                                           for gid in copies])  # fmt: skip
            tasks = sorted({gid for found in listed for gid in map(record_gid, found or []) if gid})
            self._run_all([Action(f"/tasks/{task}/addTag", {"tag": kept}, method="post") for task in tasks])
            self._run_all([Action(f"/tags/{gid}", method="delete") for gid in copies])
        except AuthError:
            raise
        except (WriteRefused, FatalAPIError) as exc:
            log.warning("%s: merging the copies of tag %s failed (%s); the oldest is used meanwhile",
                        self.name, name, exc)  # fmt: skip
            return
        self._tags[name] = [kept]
        for tags in self._task_tags.values():
            if any(gid in copies for gid in tags.get(name, ())):
                tags[name] = [kept]
        log.info("%s: the workspace held tag %s %d times; merged into the oldest", self.name, name,
                 len(copies) + 1)  # fmt: skip

    def _run_all(self, actions: Sequence[Action]) -> None:
        """`actions`, ten to a Batch request; `WriteRefused` when one of them failed."""
        for start in range(0, len(actions), MAX_BATCH):
            chunk = actions[start : start + MAX_BATCH]
            results = self.breaker.call(partial(self.session.batch_results, chunk), "a Batch request")
            for action, result in zip(chunk, results, strict=True):
                if not result.ok and result.status != 404:  # 404: already gone
                    raise WriteRefused(str(self.session.action_error(action, result)))

    def _list_tags(self) -> None:
        action = Action("/tags", {"workspace": self.config.workspace}, ("name",), limit=PAGE_LIMIT)
        listed = self.session.collect([action])[0] or []
        found: dict[str, list[str]] = {}
        for tag in listed:
            gid, name = record_gid(tag), tag.get("name") if isinstance(tag, dict) else None
            if gid and isinstance(name, str):
                found.setdefault(name, []).append(gid)
        self._tags = {name: _oldest_first(gids) for name, gids in found.items()}

    def _forget_tag(self, gid: str) -> None:
        """A tag that could not be added (deleted meanwhile?) is looked up again next time."""
        for name in [n for n, gids in self._tags.items() if gid in gids]:
            del self._tags[name]

    # ---- comments -------------------------------------------------------------------------------------

    def _send_comments(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Post the comments missing, each right after looking for its marker among its task's comments
        by the bridge's user (`_post_unless_there`), then delete the ones to purge: their tasks' comments
        are looked at together, the deletions go through the Batch API."""
        posts = [(index, write) for index, write in writes if write.value is not None]
        purges = [(index, write) for index, write in writes if write.value is None]
        for index, write in posts:
            self._post_unless_there(index, write, outcomes)
        if purges:
            self._purge_comments(purges, outcomes)

    def _post_unless_there(self, index: int, write: FieldWrite, outcomes: Outcomes) -> None:
        """Look for the comment's marker on its task, then post it unless it is there. The look comes
        right before the post (not once for the whole push), so a comment another replica posted
        meanwhile, or an earlier post whose answer was lost, is found: one request more per comment.
        Nothing is posted without looking first: a look that fails fails the write (the next cycle looks
        again)."""
        task, marker = write.item.remote_id, write.field
        try:
            comments = self._bridge_comments([task])[task]
        except AuthError:
            raise
        except BridgeError as exc:
            outcomes.fail(index, _unread(self.name, exc))
            return
        if comments is None:
            outcomes.fail(index, f"task {task} is gone (deleted, or not visible to the bridge's user)")
        elif any(marker in text for _, text in comments):
            outcomes.ok(index)  # posted before: a lost answer, another replica
        else:
            outcomes.settle(index, self._post_comment(task, with_marker(str(write.value), marker)))

    def _purge_comments(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Delete the bridge's comments carrying each write's marker (their tasks' comments read ten
        tasks to a Batch request, the deletions through the Batch API); none there is what was wanted."""
        try:
            found = self._bridge_comments(sorted({write.item.remote_id for _, write in writes}))
        except AuthError:
            raise
        except BridgeError as exc:
            for index, _ in writes:
                outcomes.fail(index, _unread(self.name, exc))
            return
        deletions: list[Job] = []
        for index, write in writes:
            marked = [gid for gid, text in found.get(write.item.remote_id) or () if write.field in text]
            deletions.extend(Job(Action(f"/stories/{gid}", method="delete"), [index]) for gid in marked)
            if not marked:
                outcomes.ok(index)  # none there (or the task is gone): what was wanted
        if deletions:
            self._run(deletions)
            failures: dict[int, str | BridgeError] = {}
            for job in deletions:
                failure = None if job.result is not None and job.result.status == 404 else self._failure(job)
                if failure is not None:  # a 404: deleted already, as wanted
                    failures.setdefault(job.writes[0], failure)
            for index in dict.fromkeys(job.writes[0] for job in deletions):
                outcomes.settle(index, failures.get(index))

    def _post_comment(self, task: str, text: str) -> BridgeError | None:
        """Post one comment; why it failed, or None. An unanswered post is an `OutcomeUnknown`, which the
        kit reads back by its marker (`comment_found`) instead of posting it again."""
        try:
            self.breaker.call(partial(self.session.create_comment, task, text), f"POST /tasks/{task}/stories")
        except AuthError:
            raise
        except (WriteRefused, FatalAPIError) as exc:
            return exc
        return None

    def comment_found(self, write: FieldWrite) -> bool:
        """Whether the task carries a comment by the bridge's user with `write`'s marker."""
        task = write.item.remote_id
        try:
            comments = self._bridge_comments([task]).get(task)
        except AuthError:
            raise
        except BridgeError as exc:
            raise WriteRefused(f"the comments of task {task} could not be read back: {exc}") from exc
        return any(write.field in text for _, text in comments or ())

    def _bridge_comments(self, tasks: Sequence[str]) -> dict[str, list[tuple[str, str]] | None]:
        """Each task's comments by the bridge's user as (story gid, text), oldest first; None for a task
        Asana does not have. Ten tasks' stories to a Batch request, every page of them."""
        me = self._bridge_user()
        actions = [Action(f"/tasks/{t}/stories", fields=COMMENT_FIELDS, limit=PAGE_LIMIT) for t in tasks]
        found: dict[str, list[tuple[str, str]] | None] = {}
        for task, stories in zip(tasks, self.session.collect(actions, absent=GONE), strict=True):
            found[task] = (
                None
                if stories is None
                else [
                    (gid, str(story.get("text") or ""))
                    for story in _objects(stories)
                    if (gid := record_gid(story))
                    and story.get("resource_subtype") == COMMENT_SUBTYPE
                    and record_gid(story.get("created_by")) == me
                ]
            )
        return found

    def _bridge_user(self) -> str:
        """The gid of the token's user, who posts the bridge's comments (`GET /users/me`, once)."""
        if self._me is None:
            body = self.session.batch([Action("/users/me", fields=("name",))])[0]
            me = record_gid(body.get("data")) if isinstance(body, dict) else None
            if me is None:
                raise FatalAPIError(f"{self.name}: unexpected answer to GET /users/me")
            self._me = me
        return self._me

    # ---- goals ----------------------------------------------------------------------------------------

    def _check_goals(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Links to add must name goals of the workspace: unknown ones are read (ten to a request)."""
        adds = {
            index: str(goal_of(self.name, write.field))  # `refuse` saw each name a goal
            for index, write in writes
            if write.kind is WriteKind.LINK and write.value is not None
        }
        unknown = sorted(set(adds.values()) - self._workspace_goals - self._foreign_goals)
        if unknown:
            actions = [Action(f"/goals/{g}", fields=("workspace",)) for g in unknown]
            for goal, body in zip(unknown, self.session.batches(actions, absent=GONE), strict=True):
                data = body.get("data") if isinstance(body, dict) else None
                workspace = record_gid(data.get("workspace")) if isinstance(data, dict) else None
                if workspace == self.config.workspace:
                    self._workspace_goals.add(goal)
                else:
                    self._foreign_goals.add(goal)
        for index, goal in adds.items():
            if goal in self._foreign_goals:
                outcomes.fail(
                    index,
                    f"link {outcomes.writes[index].field!r} is not supported: {goal} is not a goal of "
                    f"workspace {self.config.workspace}",
                )

    def _settle_links(self, jobs: Sequence[Job]) -> None:
        """A relationship refused because it was already there (or already gone) is what was wanted."""
        failed = [j for j in jobs if j.link is not None and j.result is not None and j.result.status in GONE]
        if not failed:
            return
        tasks = sorted({j.link[0] for j in failed if j.link is not None})
        supported = self._goals_of(tasks)
        for job in failed:
            assert job.link is not None
            task, goal, wanted = job.link
            if (goal in supported.get(task, {})) == wanted:
                job.result = ActionResult(200, {"data": {}})

    # ---- sending ------------------------------------------------------------------------------------

    def _run(self, jobs: Sequence[Job]) -> None:
        """Every job, ten to a Batch request; moves sharing a task wait for the one before them."""
        for chunk in _schedule(jobs):
            actions = [job.action for job in chunk]
            try:
                results = self.breaker.call(partial(self.session.batch_results, actions), "a Batch request")
            except AuthError:
                raise
            except (WriteRefused, FatalAPIError) as exc:  # the request itself failed: its writes fail
                for job in chunk:
                    job.error = exc
                continue
            for job, result in zip(chunk, results, strict=True):
                job.result = result


def _schedule(jobs: Sequence[Job]) -> list[list[Job]]:
    """Batches of at most ten jobs, in an order that respects the moves' dependencies.

    A move goes in a later round than every earlier move it must follow (`Move.follows`); each round's
    last batch is filled up with other (independent) writes, and those left go at the end.
    """
    free = [job for job in jobs if job.move is None]
    rounds: list[list[Job]] = []
    placed: list[tuple[int, Move]] = []
    for job in jobs:
        if job.move is None:
            continue
        move = job.move
        level = 1 + max((r for r, earlier in placed if move.follows(earlier)), default=-1)
        placed.append((level, move))
        while len(rounds) <= level:
            rounds.append([])
        rounds[level].append(job)
    chunks: list[list[Job]] = []
    for moves in rounds:
        for start in range(0, len(moves), MAX_BATCH):
            chunks.append(moves[start : start + MAX_BATCH])
        room = MAX_BATCH - len(chunks[-1])
        chunks[-1].extend(free[:room])
        free = free[room:]
    chunks.extend(free[start : start + MAX_BATCH] for start in range(0, len(free), MAX_BATCH))
    return chunks


# ---- values -------------------------------------------------------------------------------------------


def _managed_field(
    tracker: str,
    logical: str,
    wanted: str | None,
    kinds: Sequence[str],
    custom_fields: Mapping[str, Mapping[str, Any]],
) -> ManagedField | None:
    if wanted is None:
        return None
    pairs = sorted((gid, str(f.get("name") or gid)) for gid, f in custom_fields.items())
    gid = resolve_field(wanted, pairs)
    where = f"trackers.{tracker}.write.{FIELD_KEYS[logical]}"
    if gid is None:
        raise UserError(
            f"{where}: no custom field {wanted!r} on the configured projects (see `bridge discover`)"
        )
    definition = custom_fields[gid]
    kind = str(definition.get("resource_subtype") or definition.get("type") or "")
    if kind not in kinds:
        raise UserError(
            f"{where}: {wanted!r} is a {kind or 'untyped'} field; it must be {' or '.join(kinds)}"
        )
    options = {
        str(o.get("name") or "").casefold(): str(o["gid"])
        for o in _objects(definition.get("enum_options"))
        if record_gid(o) and o.get("enabled", True) is not False
    }
    return ManagedField(gid, str(definition.get("name") or gid), kind, options)


def _read_value(managed: ManagedField, entry: Mapping[str, Any]) -> Any:
    if managed.kind == "date":
        held = entry.get("date_value")
        day = held.get("date") if isinstance(held, dict) else None
        return str(day)[:10] if day else None
    if managed.kind == "number":
        value = entry.get("number_value")
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if managed.kind == "enum":
        option = entry.get("enum_value")
        return str(option.get("name")) if isinstance(option, dict) and option.get("name") else None
    value = field_value(dict(entry))
    return str(value) if value not in (None, "") else None


def _write_value(managed: ManagedField, value: Any) -> Any:
    if value is None:
        return None
    if managed.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise WriteRefused(f"{managed.name} is a number field; {value!r} is not a number")
        return value
    if managed.kind == "enum":
        option = managed.options.get(str(value).casefold())
        if option is None:
            raise WriteRefused(f"{managed.name} has no option named {str(value)!r}")
        return option
    if managed.kind == "date":
        try:
            return {"date": date.fromisoformat(str(value)).isoformat()}
        except ValueError:
            raise WriteRefused(f"{managed.name} is a date field; {value!r} is not a day") from None
    return str(value)


def _neighbours(value: Any) -> tuple[str | None, str | None]:
    """The (after, before) task gids of an order write's value (`Ref`s, gids or None)."""
    if value is None:
        return None, None
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise WriteRefused(f"an order write's value is (after, before), not {value!r}")
    return _task_gid(value[0]), _task_gid(value[1])


def _task_gid(value: Any) -> str | None:
    if value is None:
        return None
    gid = value.remote_id if isinstance(value, Ref) else str(value)
    if not gid.isdigit():
        raise WriteRefused(f"{gid!r} is not an Asana task gid")
    return gid


def places(project: str, records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Each task's index in its section (the project, for a task in none) of `project`, from a listing of
    the project's tasks in its order (`GET /tasks?project=`). Indexes of one listing compare with each
    other; an index kept from an older listing still compares with those of tasks that did not move
    since (another task's move shifts indexes, never the order of the tasks that stayed)."""
    positions: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    for record in records:
        gid = record_gid(record)
        if gid is None:
            continue
        container = _membership(record, project) or project
        positions[(project, gid)] = counts.get(container, 0)
        counts[container] = counts.get(container, 0) + 1
    return positions


def _membership(record: Mapping[str, Any], project: str) -> str | None:
    for membership in _objects(record.get("memberships")):
        if record_gid(membership.get("project")) == project:
            return record_gid(membership.get("section"))
    return None


def _goal_names(goals: Sequence[Any] | None) -> dict[str, str]:
    """Goal gid -> name, of a listing of goals."""
    return {gid: str(goal.get("name") or "") for goal in _objects(goals) if (gid := record_gid(goal))}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


__all__ = [
    "BRIDGE_LINK", "GOAL_LINK", "STATE_FIELDS", "AsanaWriter", "goal_link", "goal_of", "palette_colour",
    "places",
]  # fmt: skip


def _oldest_first(gids: Sequence[str]) -> list[str]:
    """Gids oldest first: Asana's grow with time, so a shorter or lower number is older."""
    return sorted(dict.fromkeys(gids), key=lambda gid: (len(gid), gid))


def _unread(tracker: str, error: BridgeError) -> str:
    """Why a comment write failed when its task's comments could not be read."""
    return f"the task's comments could not be read: {redact(str(error)).removeprefix(f'{tracker}: ')}"
