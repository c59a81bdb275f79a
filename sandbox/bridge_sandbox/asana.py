"""A stateful emulator of the Asana REST API (`/api/1.0`), as the `asana` v5 SDK talks to it.

Clients point the SDK at it with `Configuration.host = base_url + "/api/1.0"` and the personal access
token given to the constructor (default `sandbox-asana-token`), sent as `Authorization: Bearer ...`.

Seed format ("Asana API-shaped JSON")
-------------------------------------
`AsanaEmulator.from_seed(path_or_dict)` reads one JSON object. Every key is optional (an empty object, or
no seed at all, gives one workspace and one user). Each object is shaped like the API's own full record;
a reference may be `{"gid": "..."}` or a bare gid, unknown keys are ignored, timestamps are ISO 8601:

    workspaces          [{gid, name, is_organization}]
    users               [{gid, name, email}]          me: the token's user gid (default: the first user)
    custom_fields       [{gid, name, type: number|text|enum|multi_enum|date, precision, workspace,
                          enum_options: [{gid, name, color, enabled}]}]
    tags                [{gid, name, color, notes, workspace}]
    projects            [{gid, name, workspace, archived, color, notes, created_at, modified_at,
                          custom_field_settings: [{gid, custom_field, is_important}]}]
    sections            [{gid, name, project, tasks?}]  `tasks` (gids) fixes the board order; otherwise
                                                        tasks keep the order of the `tasks` list
    tasks               [{gid, name, resource_subtype: default_task|milestone, completed, completed_at,
                          created_at, modified_at, due_on, due_at, start_on, notes, permalink_url,
                          assignee, parent, dependencies: [...], tags: [...],
                          memberships: [{project, section}],        (no section: the first one)
                          custom_fields: [{gid, number_value | text_value | enum_value |
                                           multi_enum_values | date_value}]}]
    stories             {task gid: [{gid, created_at, created_by, resource_subtype, text, ...}]},
                        oldest first; resource_subtype e.g. section_changed, marked_complete,
                        marked_incomplete, added_to_project, comment_added
    goals               [{gid, name, workspace, owner, status, notes, due_on, start_on, parent,
                          time_period: {gid, display_name, period, start_on, end_on},
                          metric: {unit, precision, initial_number_value, target_number_value,
                                   current_number_value, progress_source}}]
    goal_relationships  [{gid, supported_goal, supporting_resource, resource_subtype,
                          contribution_weight}]   (a goal's `parent` is shorthand for a subgoal link)
    time_periods        [{gid, display_name, period, start_on, end_on, parent, workspace}]  (a goal's
                        `time_period` adds its period to the goal's workspace too)
    attachments         [{gid, name, parent, url, resource_subtype: external}]

A custom field used by a task but missing from its project's settings is added to them; a definition
missing from `custom_fields` is taken from the task's own copy. A custom field or time period without a
`workspace` belongs to the first workspace. `dump_state()` writes this same format
(with each section's task order), so a dump seeds an equal emulator.

Endpoints
---------
`users/{gid|me}`, `workspaces[/{gid}]`, `projects?workspace=`, `workspaces/{gid}/projects`,
`projects/{gid}`, `projects/{gid}/sections`, `sections/{gid}`, `sections/{gid}/addTask`,
`tasks?project=|section=|tag=|assignee=&workspace=` (with `modified_since`, `completed_since`),
`projects/{gid}/tasks`, `sections/{gid}/tasks`, `tags/{gid}/tasks`, `tasks/{gid}` (GET, PUT, DELETE),
`tasks/{gid}/subtasks|dependencies|dependents|stories|tags`, `tasks/{gid}/addTag|removeTag|addProject`,
`tasks/{gid}/addDependencies|removeDependencies`, `tasks/{gid}/setParent`, `tags?workspace=`,
`workspaces/{gid}/tags` (GET, POST), `tags` (POST), `tags/{gid}` (GET, DELETE),
`projects/{gid}/custom_field_settings`, `custom_fields/{gid}`, `workspaces/{gid}/custom_fields`,
`time_periods?workspace=&start_on=&end_on=`, `time_periods/{gid}`, `goals?workspace=&time_periods=`,
`goals` (POST), `goals/{gid}` (GET, DELETE), `goals/{gid}/parentGoals`,
`goals/{gid}/addSupportingRelationship|removeSupportingRelationship`,
`goal_relationships?supported_goal=`, `goal_relationships/{gid}`, `status_updates` (POST on a goal, which
becomes its `current_status_update`; GET `?parent=` a goal), `attachments` (POST multipart or form,
GET `?parent=`), `attachments/{gid}` (GET, DELETE), `events?resource=&sync=`, `batch`.

Behaviour kept from the real service (each a thing a sync must survive), with its source:
- Errors are `{"errors": [{"message", "help"}]}` (5xx add a `phrase`); a missing or wrong token gives
  401 "Not Authorized" (developers.asana.com/docs/errors). Bad parameters read "<param>: <problem>",
  like Asana's "workspace: Missing input"; the exact wording of the other messages is the emulator's own.
- Lists return compact records (a task: gid, resource_type, name, resource_subtype); `opt_fields`
  (comma-separated, dotted paths allowed) returns those fields plus gid and resource_type
  (developers.asana.com/docs/inputoutput-options). A single GET returns the full record.
- Pagination: `limit` must be 1..100 (400 otherwise); `next_page` is `{offset, path, uri}` or null; the
  offset is an opaque signed token shaped like the JWTs Asana hands out and expires after `offset_ttl`
  seconds (default 900, the `exp - iat` of Asana's documented example); an expired, forged or
  foreign offset gives 400 (developers.asana.com/docs/pagination: "an offset token will expire").
- Every change stamps the task's `modified_at` and writes the story Asana writes (marked_complete,
  name_changed, <type>_custom_field_changed, added_to_tag, added_to_project, dependency_added,
  attachment_added, comment_added, ...) and an event, as the getTasks `modified_since` note in asana.yaml
  describes ("any of its properties change, or associations ... are modified"; "adding stories").
  A new task's first values write no change stories. The stories the API user's own writes create on a
  task someone follows (its assignee or a seed's `followers`) are counted: `api_stories` in the state.
  QUIRK: moving a task between sections of a project (addTask, a board drag) writes a section_changed
  story and its events but leaves `modified_at` alone, so a `modified_since` poll misses the move.
  Source: a known behaviour of the real service reported by integrators (the emulator's brief names
  it); the API reference does not document it, and its own note above suggests the opposite, so re-check
  it against a live workspace before relying on its exact scope.
- `sections/{gid}/addTask` puts the task at the top of the section unless `insert_before` or
  `insert_after` names a task of that section (asana.yaml, addTaskForSection). `tasks/{gid}/addProject`
  adds a task to a project or moves it within one (asana.yaml, addProjectForTask): next to a task of the
  project named by `insert_before`/`insert_after` (into that task's section), into `section` (its end, or
  its start with `insert_after: null`), or else at the end of the project (its start with
  `insert_after: null`); both anchors at once, an anchor outside the project or a 21st project is 400.
  A move within the task's own section writes no story and leaves `modified_at` alone, like a move
  between sections, and sends the task's subscribers an `added` event with the section as parent (the
  emulator's assumption: the reference does not say what a reorder emits).
- Adding or removing a goal relationship whose supporting resource is a task stamps the task's
  `modified_at` (an association change, as the getTasks `modified_since` note reads) and reaches the
  task's subscribers as well as the goal's; no story is written (the reference names none).
- Events (asana.yaml, Events tag and getEvents): a request without a sync token, or with an unknown or
  expired one (after `sync_ttl` seconds, default 24 h), gets 412 with a fresh `sync` token in the body;
  with a valid token, the events since it, at most 100 a call with `has_more`. Events on a task also
  reach its projects and its parent task ("bubble up").
- `tasks/{gid}/setParent` (asana.yaml, setParentForTask): `parent` is required (null makes the task a
  top-level one), at most one of `insert_before`/`insert_after`, each a subtask of the new parent (400
  otherwise; `insert_after: null` puts it first, else it goes last); a task cannot become a subtask of
  itself or of one of its own subtasks (400). A new parent sends a `removed` event with the old parent
  as `parent` (heard where the old parent's events are heard) and an `added` event with the new one, as
  the Events reference describes added/removed for "the parent object that resource was added to or
  removed from", and stamps the subtask's `modified_at` (an association change); no story is written
  (the reference names none), and a subtask is a member of no project unless added to one.
- Batch (asana.yaml, Batch API tag): at most 10 actions (400 otherwise, also for none), answered in order
  as `{status_code, headers, body}`; each action counts as one request against the vendor rate limit,
  and if any would exceed it the whole batch gets 429 and no action runs (the actions charged before the
  refusal stay spent: Asana counts refused requests against the quota too); attachment uploads are
  refused per action.
- Rate limit (developers.asana.com/docs/rate-limits): 150 requests a minute per token on the free tier,
  429 with `Retry-After` and Asana's message; only while the fault plan has `{"kind": "vendor_limits"}`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from html import escape
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlencode

from bridge_sandbox.messages import HTTPError, Request, Response
from bridge_sandbox.server import Clock, Emulator, Handler, Route, route

log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")
Render = Callable[[Any], JSON]
FieldTree = dict[str, "FieldTree | None"]

BASE = "/api/1.0"
APP = "https://app.asana.com"
HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)
RATE_LIMIT_MESSAGE = (
    "You've made too many requests and hit a rate limit. Please retry after the given amount of time."
)
SYNC_MESSAGE = (
    "Sync token invalid or too old. If you are attempting to keep resources in sync, you must fetch the "
    "full dataset for this query now and use the new sync token for the next sync."
)
TASK_FILTER_MESSAGE = (
    "Must specify exactly one of project, tag, section, user task list, or assignee + workspace"
)
MAX_LIMIT = 100
MAX_BATCH_ACTIONS = 10
MAX_PROJECTS_PER_TASK = 20  # asana.yaml, addProjectForTask: "at most 20 projects multi-homed to it"
EVENTS_PER_CALL = 100
FIRST_GID = 1_209_000_000_000_000
FIELD_TYPES = ("text", "number", "enum", "multi_enum", "date")
TASK_SUBTYPES = ("default_task", "milestone", "approval")
COLORS = frozenset(
    f"{shade}-{hue}"
    for shade in ("dark", "light")
    for hue in ("pink", "green", "blue", "red", "teal", "brown", "orange", "purple", "warm-gray")
)
READ_ONLY_TASK_FIELDS = frozenset((
    "gid", "resource_type", "created_at", "modified_at", "completed_at", "memberships", "projects", "tags",
    "dependencies", "dependents", "num_subtasks", "permalink_url", "workspace", "parent",
))  # fmt: skip
# Fields of full records that the emulator does not model: always these values.
FIXED_PROJECT_FIELDS: JSON = {
    "team": None, "owner": None, "public": True, "completed": False, "completed_at": None,
    "default_view": "list", "due_on": None, "start_on": None, "privacy_setting": "public_to_workspace",
    "members": [], "followers": [],
}  # fmt: skip
FIXED_TASK_FIELDS: JSON = {"followers": [], "is_rendered_as_separator": False}
GOAL_STATUS_TYPES = frozenset(
    {"on_track", "at_risk", "off_track", "achieved", "partial", "missed", "dropped"}
)
"""The `status_type`s a goal's status update may have (the OpenAPI's description of the field)."""
FIXED_GOAL_FIELDS: JSON = {
    "liked": False, "likes": [], "num_likes": 0, "team": None, "followers": [], "current_status_update": None,
    "privacy_setting": "public_to_workspace",
}  # fmt: skip
PAGING_PARAMS = frozenset({"offset", "limit", "opt_fields", "opt_pretty", "body"})


# ---- small helpers ----------------------------------------------------------------------------------


def asana_error(status: int, message: str) -> HTTPError:
    """An error in Asana's shape: `{"errors": [{"message": ..., "help": ...}]}`."""
    return HTTPError(status, {"errors": [{"message": message, "help": HELP}]})


def format_time(when: datetime | None) -> str | None:
    """Asana's timestamp form: UTC with milliseconds and a `Z`."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, param: str = "time") -> datetime:
    """An ISO 8601 timestamp (a date alone means its midnight UTC) as an aware UTC datetime."""
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise asana_error(400, f"{param}: Not a valid date-time: {text}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def gid_of(ref: Any) -> str | None:
    """A reference as seeds and request bodies give it (`"123"`, `123`, `{"gid": "123"}`) as a gid."""
    if isinstance(ref, dict):
        return gid_of(ref.get("gid"))
    if ref is None or ref == "":
        return None
    return str(ref)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_opt_fields(values: list[str]) -> FieldTree | None:
    """`opt_fields` as a tree (`{"memberships": {"section": {"name": None}}}`); None when none asked.

    A leaf (None) means the whole value; it wins over any dotted path below it.
    """
    if not values:
        return None
    tree: FieldTree = {}
    for path in values:
        parts = [part for part in path.strip().split(".") if part]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.get(part, {})
            if child is None:
                break
            node[part] = child
            node = child
        else:
            node[parts[-1]] = None
    return tree


def select_fields(value: Any, tree: FieldTree | None) -> Any:
    """Keep what `tree` asks for (plus gid and resource_type of every object) in a rendered value."""
    if isinstance(value, list):
        return [select_fields(item, tree) for item in value]
    if not isinstance(value, dict) or tree is None:
        return value
    out = {key: value[key] for key in ("gid", "resource_type") if key in value}
    for name, subtree in tree.items():
        if name in value:
            out[name] = select_fields(value[name], subtree)
    return out


def _bool_arg(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    return raw.strip().lower() in ("true", "1", "yes")


def _is_date_value(value: Any) -> bool:
    """A date field's value: `{"date": "YYYY-MM-DD"}` or `{"date_time": ISO 8601}`."""
    if not isinstance(value, dict) or not (value.get("date") or value.get("date_time")):
        return False
    try:
        if value.get("date"):
            date.fromisoformat(str(value["date"]))
            if len(str(value["date"])) != 10:
                return False
        if value.get("date_time"):
            datetime.fromisoformat(str(value["date_time"]).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise asana_error(400, f"{name}: Must be a string")
    return value


def _check_boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise asana_error(400, f"{name}: Must be a boolean")
    return value


def _check_date(name: str, value: Any) -> str | None:
    try:
        return None if value is None else date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise asana_error(400, f"{name}: Not a valid date: {value}") from None


def _check_datetime(name: str, value: Any) -> str | None:
    return None if value is None else format_time(parse_time(value, name))


def _check_subtype(name: str, value: Any) -> str:
    if value not in TASK_SUBTYPES:
        raise asana_error(400, f"{name}: Must be one of {', '.join(TASK_SUBTYPES)}")
    return str(value)


# ---- the domain ---------------------------------------------------------------------------------------


@dataclass
class Task:
    """One task (or milestone); its project memberships map project gid -> section gid."""

    gid: str
    name: str
    workspace: str
    created_at: datetime
    modified_at: datetime
    subtype: str = "default_task"
    completed: bool = False
    completed_at: datetime | None = None
    due_on: str | None = None
    due_at: str | None = None
    start_on: str | None = None
    notes: str = ""
    parent: str | None = None
    assignee: str | None = None
    permalink_url: str = ""
    memberships: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    custom_values: dict[str, Any] = field(default_factory=dict)
    """Custom field gid -> number, text, enum option gid, list of option gids, or {"date": ...}."""
    followers: list[str] = field(default_factory=list)
    """User gids the seed names as followers; the assignee follows a task too, as in Asana."""

    @property
    def followed(self) -> bool:
        """Someone follows the task, and so sees (and may be notified of) each story on it."""
        return bool(self.followers or self.assignee)


@dataclass(frozen=True)
class Event:
    seq: int
    scopes: frozenset[str]
    """The resources (task, its projects, its parent, a goal) whose subscribers see this event."""
    body: JSON


@dataclass(frozen=True)
class SyncToken:
    resource: str
    position: int
    issued: datetime


class OffsetTokens:
    """Opaque page tokens, signed and expiring, shaped like the JWTs Asana hands out."""

    HEADER = _b64(b'{"typ":"JWT","alg":"HS256"}')

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)

    def issue(self, claims: JSON, now: datetime) -> str:
        payload = {**claims, "iat": int(now.timestamp()), "exp": now.timestamp() + self.ttl}
        signed = f"{self.HEADER}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
        return f"{signed}.{self._sign(signed)}"

    def read(self, token: str, now: datetime) -> JSON:
        """The claims of a token issued here; 400 for a forged, mangled or expired one."""
        parts = token.split(".")
        expected = self._sign(".".join(parts[:2])).encode()
        if len(parts) != 3 or not hmac.compare_digest(parts[2].encode(), expected):
            raise asana_error(400, "offset: Not a valid offset token")
        claims: JSON = json.loads(_unb64(parts[1]))
        if float(claims["exp"]) <= now.timestamp():
            raise asana_error(400, "offset: Your pagination token has expired; start again without offset")
        return claims

    def _sign(self, signed: str) -> str:
        return _b64(hmac.new(self._key, signed.encode(), hashlib.sha256).digest())


class AsanaState:
    """What the emulated Asana holds, and the changes a user or the API makes to it.

    Every change stamps `modified_at` from the clock, writes the story Asana writes and records an event,
    except where the real service is known to differ (see the module docstring).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.workspaces: dict[str, JSON] = {}
        self.users: dict[str, JSON] = {}
        self.me = ""
        self.custom_fields: dict[str, JSON] = {}
        self.tags: dict[str, JSON] = {}
        self.projects: dict[str, JSON] = {}
        self.sections: dict[str, JSON] = {}
        self.project_sections: dict[str, list[str]] = {}
        self.section_tasks: dict[str, list[str]] = {}
        self.tasks: dict[str, Task] = {}
        self.subtasks: dict[str, list[str]] = {}
        self.dependents: dict[str, list[str]] = {}
        self.stories: dict[str, list[JSON]] = {}
        self.api_stories = 0
        """Stories the API user's writes created on tasks someone follows (each lands in their inbox)."""
        self.time_periods: dict[str, JSON] = {}
        self.period_info: dict[str, JSON] = {}
        """Per time period: its workspace and parent period (not part of a goal's embedded copy)."""
        self.goals: dict[str, JSON] = {}
        self.status_updates: dict[str, JSON] = {}
        """Status updates by gid, oldest first, each with `_parent` (the goal it is on)."""
        self.relationships: dict[str, JSON] = {}
        self.attachments: dict[str, JSON] = {}
        self.events: list[Event] = []
        self._next_gid = FIRST_GID
        self._used: set[str] = set()

    # ---- ids and lookups ------------------------------------------------------------------------

    def new_gid(self) -> str:
        while str(self._next_gid) in self._used:
            self._next_gid += 1
        gid = str(self._next_gid)
        self._used.add(gid)
        return gid

    def claim(self, ref: Any) -> str:
        """The seed's gid (remembered, so new gids never collide with it) or a new one."""
        gid = gid_of(ref)
        if gid is None:
            return self.new_gid()
        self._used.add(gid)
        return gid

    def find(self, table: dict[str, T], ref: Any, param: str | None = None) -> T:
        """An object by gid: 404 for a path parameter (`param` None), 400 naming a body or query one."""
        gid = gid_of(ref)
        if gid is not None and gid in table:
            return table[gid]
        if param is None:
            raise asana_error(404, f"Unknown object: {gid}")
        if gid is None:
            raise asana_error(400, f"{param}: Missing input")
        raise asana_error(400, f"{param}: Not a recognized ID: {gid}")

    def task(self, ref: Any, param: str | None = None) -> Task:
        return self.find(self.tasks, ref, param)

    def tables(self) -> dict[str, dict[str, Any]]:
        """Every kind of object by its `resource_type`, in the order gids are looked up."""
        return {
            "task": self.tasks,
            "project": self.projects,
            "section": self.sections,
            "goal": self.goals,
            "status_update": self.status_updates,
            "tag": self.tags,
            "user": self.users,
            "workspace": self.workspaces,
            "custom_field": self.custom_fields,
            "attachment": self.attachments,
            "goal_relationship": self.relationships,
        }

    def kind_of(self, gid: str) -> str | None:
        return next((kind for kind, table in self.tables().items() if gid in table), None)

    def project_tasks(self, project: str) -> list[str]:
        return [t for section in self.project_sections.get(project, []) for t in self.section_tasks[section]]

    def default_workspace(self) -> str:
        return next(iter(self.workspaces))

    # ---- references and renderings ---------------------------------------------------------------

    def ref(self, gid: str | None) -> JSON | None:
        """The compact record of any object, as nested references and list pages carry it."""
        if gid is None:
            return None
        kind = self.kind_of(gid)
        if kind is None:
            return {"gid": gid}
        record = self.tables()[kind][gid]
        if kind == "task":
            return {
                "gid": gid,
                "resource_type": kind,
                "name": record.name,
                "resource_subtype": record.subtype,
            }
        if kind == "custom_field":
            return self.render_field(record)
        if kind == "goal_relationship":
            return self.relationship_compact(record)
        if kind == "status_update":
            return self.status_compact(record)
        compact = {"gid": gid, "resource_type": kind, "name": record["name"]}
        if kind == "goal":
            compact["owner"] = self.ref(record["owner"])
        if kind == "attachment":
            compact["resource_subtype"] = record["resource_subtype"]
        return compact

    def refs(self, gids: Iterable[str]) -> list[JSON]:
        return [r for r in (self.ref(g) for g in gids) if r is not None]

    def task_fields(self, task: Task) -> list[str]:
        """The custom fields a task shows: its projects' settings, then any it holds a value for."""
        gids = [s["custom_field"] for p in task.memberships for s in self.projects[p]["settings"]]
        gids += [g for g in task.custom_values if g in self.custom_fields]
        return list(dict.fromkeys(gids))

    def render_task(self, task: Task) -> JSON:
        first_project = next(iter(task.memberships), None)
        return {
            "gid": task.gid,
            "resource_type": "task",
            "name": task.name,
            "resource_subtype": task.subtype,
            "assignee": self.ref(task.assignee),
            "completed": task.completed,
            "completed_at": format_time(task.completed_at),
            "created_at": format_time(task.created_at),
            "modified_at": format_time(task.modified_at),
            "due_on": task.due_on,
            "due_at": task.due_at,
            "start_on": task.start_on,
            "notes": task.notes,
            "html_notes": f"<body>{escape(task.notes)}</body>",
            "memberships": [
                {"project": self.ref(p), "section": self.ref(s)} for p, s in task.memberships.items()
            ],
            "projects": self.refs(task.memberships),
            "parent": self.ref(task.parent),
            "dependencies": [{"gid": g, "resource_type": "task"} for g in task.dependencies],
            "dependents": [{"gid": g, "resource_type": "task"} for g in self.dependents.get(task.gid, [])],
            "num_subtasks": len(self.subtasks.get(task.gid, [])),
            "tags": self.refs(task.tags),
            "custom_fields": [self.field_value(g, task) for g in self.task_fields(task)],
            "workspace": self.ref(task.workspace),
            "permalink_url": task.permalink_url or f"{APP}/0/{first_project or 0}/{task.gid}",
            **copy.deepcopy(FIXED_TASK_FIELDS),
        }

    def render_field(self, definition: JSON) -> JSON:
        kind = definition["type"]
        out: JSON = {
            "gid": definition["gid"],
            "resource_type": "custom_field",
            "name": definition["name"],
            "type": kind,
            "resource_subtype": kind,
            "representation_type": kind,
            "enabled": True,
            "description": definition.get("description", ""),
            "is_global_to_workspace": True,
        }
        if kind == "number":
            out["precision"] = definition.get("precision", 0)
        if kind in ("enum", "multi_enum"):
            out["enum_options"] = [dict(option) for option in definition["enum_options"]]
        return out

    def field_value(self, field_gid: str, task: Task) -> JSON:
        """A custom field as it sits on a task: its definition, its typed value and `display_value`."""
        definition = self.custom_fields[field_gid]
        out = self.render_field(definition)
        value = task.custom_values.get(field_gid)
        kind = definition["type"]
        if kind in ("enum", "multi_enum"):
            options = {o["gid"]: o for o in definition["enum_options"]}
            if kind == "enum":
                out["enum_value"] = dict(options[value]) if value in options else None
            else:
                out["multi_enum_values"] = [dict(options[g]) for g in value or [] if g in options]
        else:
            out[f"{kind}_value"] = copy.deepcopy(value)
        out["display_value"] = self.display(definition, value)
        return out

    def display(self, definition: JSON, value: Any) -> str | None:
        if value is None or value == []:
            return None
        kind = definition["type"]
        names = {o["gid"]: o["name"] for o in definition.get("enum_options", [])}
        if kind == "number":
            precision = int(definition.get("precision", 0))
            return f"{float(value):.{precision}f}"
        if kind == "enum":
            return str(names.get(value, ""))
        if kind == "multi_enum":
            return ", ".join(names.get(g, "") for g in value)
        if kind == "date":
            return str(value.get("date") or value.get("date_time") or "")
        return str(value)

    def render_project(self, project: JSON) -> JSON:
        return {
            "gid": project["gid"],
            "resource_type": "project",
            "name": project["name"],
            "archived": project["archived"],
            "color": project["color"],
            "notes": project["notes"],
            "created_at": format_time(project["created_at"]),
            "modified_at": format_time(project["modified_at"]),
            "workspace": self.ref(project["workspace"]),
            "custom_field_settings": [self.render_setting(project, s) for s in project["settings"]],
            "permalink_url": f"{APP}/0/{project['gid']}/list",
            **copy.deepcopy(FIXED_PROJECT_FIELDS),
        }

    def render_setting(self, project: JSON, setting: JSON) -> JSON:
        parent = self.ref(project["gid"])
        return {
            "gid": setting["gid"],
            "resource_type": "custom_field_setting",
            "custom_field": self.render_field(self.custom_fields[setting["custom_field"]]),
            "is_important": setting["is_important"],
            "parent": parent,
            "project": parent,
        }

    def render_section(self, section: JSON) -> JSON:
        project = self.ref(section["project"])
        return {
            "gid": section["gid"],
            "resource_type": "section",
            "name": section["name"],
            "created_at": format_time(section["created_at"]),
            "project": project,
            "projects": [project],
        }

    def render_tag(self, tag: JSON) -> JSON:
        return {
            "gid": tag["gid"],
            "resource_type": "tag",
            "name": tag["name"],
            "color": tag["color"],
            "notes": tag["notes"],
            "created_at": format_time(tag["created_at"]),
            "followers": [],
            "workspace": self.ref(tag["workspace"]),
            "permalink_url": f"{APP}/0/{tag['gid']}/list",
        }

    def render_user(self, user: JSON) -> JSON:
        return {
            "gid": user["gid"],
            "resource_type": "user",
            "name": user["name"],
            "email": user["email"],
            "photo": None,
            "workspaces": self.refs(self.workspaces),
        }

    def render_workspace(self, workspace: JSON) -> JSON:
        return {
            "gid": workspace["gid"],
            "resource_type": "workspace",
            "name": workspace["name"],
            "is_organization": workspace["is_organization"],
            "email_domains": [],
        }

    def render_story(self, story: JSON) -> JSON:
        out = {key: copy.deepcopy(value) for key, value in story.items() if key != "_target"}
        out["target"] = self.ref(story["_target"])
        return out

    def story_compact(self, story: JSON) -> JSON:
        keys = ("gid", "resource_type", "created_at", "created_by", "resource_subtype", "text")
        return {k: copy.deepcopy(story.get(k)) for k in keys}

    def render_goal(self, goal: JSON) -> JSON:
        period = self.time_periods.get(goal["time_period"] or "")
        return {
            "gid": goal["gid"],
            "resource_type": "goal",
            "name": goal["name"],
            "notes": goal["notes"],
            "html_notes": f"<body>{escape(goal['notes'])}</body>",
            "due_on": goal["due_on"],
            "start_on": goal["start_on"],
            "is_workspace_level": goal["is_workspace_level"],
            "workspace": self.ref(goal["workspace"]),
            "time_period": dict(period) if period else None,
            "metric": copy.deepcopy(goal["metric"]),
            "owner": self.ref(goal["owner"]),
            "status": goal["status"],
            **copy.deepcopy(FIXED_GOAL_FIELDS),
            "current_status_update": self.status_compact(self.status_updates[goal["current_status_update"]])
            if goal.get("current_status_update") in self.status_updates
            else None,
        }

    def status_compact(self, update: JSON) -> JSON:
        keys = ("gid", "resource_type", "resource_subtype", "title")
        return {k: copy.deepcopy(update.get(k)) for k in keys}

    def render_status(self, update: JSON) -> JSON:
        out = {key: copy.deepcopy(value) for key, value in update.items() if key != "_parent"}
        out["parent"] = {**(self.ref(update["_parent"]) or {}), "name": self.goals[update["_parent"]]["name"]}
        return out

    def render_period(self, gid: str) -> JSON:
        """A time period's full record: its compact fields and its parent period (or null)."""
        parent = self.period_info.get(gid, {}).get("parent")
        known = self.time_periods.get(parent or "")
        return {**self.time_periods[gid], "parent": dict(known) if known else None}

    def render_relationship(self, relation: JSON) -> JSON:
        return {**self.relationship_compact(relation), "supported_goal": self.ref(relation["supported_goal"])}

    def relationship_compact(self, relation: JSON) -> JSON:
        return {
            "gid": relation["gid"],
            "resource_type": "goal_relationship",
            "resource_subtype": relation["resource_subtype"],
            "supporting_resource": self.ref(relation["supporting_resource"]),
            "contribution_weight": relation["contribution_weight"],
        }

    def render_attachment(self, attachment: JSON) -> JSON:
        external = attachment["resource_subtype"] == "external"
        out = {
            **(self.ref(attachment["gid"]) or {}),
            "created_at": format_time(attachment["created_at"]),
            "host": attachment["host"],
            "parent": self.ref(attachment["parent"]),
            "download_url": attachment["url"],
            "view_url": attachment["url"],
            "connected_to_app": False,
            "permanent_url": f"{APP}/app/asana/-/get_asset?asset_id={attachment['gid']}",
        }
        if not external:
            out["size"] = attachment["size"]
        return out

    # ---- seeding ----------------------------------------------------------------------------------

    def load(self, seed: JSON) -> None:
        """Take in a seed (see the module docstring); a broken one raises ValueError."""
        try:
            self._load(seed)
        except HTTPError as exc:  # a lookup or a timestamp failed the way a bad request would
            raise ValueError(f"the Asana seed is inconsistent: {exc.body['errors'][0]['message']}") from None

    def _load(self, seed: JSON) -> None:
        for workspace in seed.get("workspaces") or []:
            self._add_workspace(workspace)
        if not self.workspaces:
            self._add_workspace({"name": "Sandbox workspace"})
        for user in seed.get("users") or []:
            self._add_user(user)
        if not self.users:
            self._add_user({"name": "Sandbox user", "email": "sandbox@example.com"})
        self.me = gid_of(seed.get("me")) or next(iter(self.users))
        for definition in seed.get("custom_fields") or []:
            self._add_field(definition)
        for tag in seed.get("tags") or []:
            self._add_tag(tag)
        for project in seed.get("projects") or []:
            self._add_project(project)
        for section in seed.get("sections") or []:
            self._add_section(section)
        self._load_tasks(seed.get("tasks") or [])
        self._order_sections(seed.get("sections") or [])
        self._load_stories(seed.get("stories") or {})
        for period in seed.get("time_periods") or []:
            self._add_period(period)
        self._load_goals(seed.get("goals") or [], seed.get("goal_relationships") or [])
        for attachment in seed.get("attachments") or []:
            self._add_attachment(attachment)

    def _stamp(self, raw: Any, default: datetime | None = None) -> datetime:
        return parse_time(raw) if raw else default or self.clock.now()

    def _add_workspace(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        self.workspaces[gid] = {
            "gid": gid,
            "name": str(raw.get("name") or gid),
            "is_organization": bool(raw.get("is_organization", True)),
        }
        return self.workspaces[gid]

    def _add_user(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        self.users[gid] = {"gid": gid, "name": str(raw.get("name") or gid), "email": raw.get("email")}
        return self.users[gid]

    def _add_field(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        kind = str(raw.get("type") or raw.get("resource_subtype") or "text")
        if kind not in FIELD_TYPES:
            raise ValueError(f"custom field {gid} has type {kind!r}; one of {', '.join(FIELD_TYPES)}")
        definition: JSON = {
            "gid": gid,
            "name": str(raw.get("name") or gid),
            "type": kind,
            "description": str(raw.get("description") or ""),
            "workspace": gid_of(raw.get("workspace")) or self.default_workspace(),
            "enum_options": [],
        }
        if kind == "number":
            definition["precision"] = int(raw.get("precision") or 0)
        self.custom_fields[gid] = definition
        for option in raw.get("enum_options") or []:
            self.add_option(definition, option)
        return definition

    def add_option(self, definition: JSON, raw: JSON) -> JSON:
        option: JSON = {
            "gid": self.claim(raw.get("gid")),
            "resource_type": "enum_option",
            "name": str(raw.get("name") or ""),
            "enabled": bool(raw.get("enabled", True)),
            "color": str(raw.get("color") or "none"),
        }
        definition["enum_options"].append(option)
        return option

    def _add_tag(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        self.tags[gid] = {
            "gid": gid,
            "name": str(raw.get("name") or ""),
            "color": raw.get("color"),
            "notes": str(raw.get("notes") or ""),
            "created_at": self._stamp(raw.get("created_at")),
            "workspace": gid_of(raw.get("workspace")) or self.default_workspace(),
        }
        return self.tags[gid]

    def _add_project(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        created = self._stamp(raw.get("created_at"))
        project: JSON = {
            "gid": gid,
            "name": str(raw.get("name") or gid),
            "archived": bool(raw.get("archived", False)),
            "workspace": gid_of(raw.get("workspace")) or self.default_workspace(),
            "settings": [],
            "color": raw.get("color") or "none",
            "notes": str(raw.get("notes") or ""),
            "created_at": created,
            "modified_at": self._stamp(raw.get("modified_at"), created),
        }
        self.projects[gid] = project
        self.project_sections[gid] = []
        for setting in raw.get("custom_field_settings") or []:
            self._add_setting(project, setting)
        return project

    def _add_setting(self, project: JSON, raw: JSON) -> None:
        embedded = raw.get("custom_field")
        field_gid = gid_of(embedded)
        if field_gid not in self.custom_fields:
            if not isinstance(embedded, dict):
                raise ValueError(f"project {project['gid']} uses unknown custom field {field_gid}")
            field_gid = self._add_field(embedded)["gid"]
        if any(s["custom_field"] == field_gid for s in project["settings"]):
            return
        project["settings"].append(
            {
                "gid": self.claim(raw.get("gid")),
                "custom_field": field_gid,
                "is_important": bool(raw.get("is_important", True)),
            }
        )

    def _add_section(self, raw: JSON) -> JSON:
        project = self.find(self.projects, raw.get("project"), "project")
        gid = self.claim(raw.get("gid"))
        self.sections[gid] = {
            "gid": gid,
            "name": str(raw.get("name") or "Untitled section"),
            "project": project["gid"],
            "created_at": self._stamp(raw.get("created_at")),
        }
        self.project_sections[project["gid"]].append(gid)
        self.section_tasks[gid] = []
        return self.sections[gid]

    def first_section(self, project: str) -> str:
        """The project's first section; Asana gives every project an "Untitled section" to start with."""
        if not self.project_sections[project]:
            self._add_section({"project": project, "name": "Untitled section"})
        return self.project_sections[project][0]

    def _load_tasks(self, raws: list[JSON]) -> None:
        for raw in raws:
            self._add_task(raw)
        for task in self.tasks.values():
            task.dependencies = [g for g in task.dependencies if g in self.tasks and g != task.gid]
            for blocker in task.dependencies:
                self.dependents.setdefault(blocker, []).append(task.gid)
            if task.parent is not None:
                self.subtasks.setdefault(task.parent, []).append(task.gid)

    def _add_task(self, raw: JSON) -> Task:
        gid = self.claim(raw.get("gid"))
        created = self._stamp(raw.get("created_at"))
        subtype = str(raw.get("resource_subtype") or "default_task")
        if subtype not in TASK_SUBTYPES:
            raise asana_error(
                400, f"resource_subtype: Must be one of {', '.join(TASK_SUBTYPES)}, not {subtype}"
            )
        task = Task(
            gid=gid,
            name=str(raw.get("name") or ""),
            created_at=created,
            subtype=subtype,
            modified_at=self._stamp(raw.get("modified_at"), created),
            completed=bool(raw.get("completed")),
            completed_at=parse_time(raw["completed_at"]) if raw.get("completed_at") else None,
            due_on=raw.get("due_on"),
            due_at=raw.get("due_at"),
            start_on=raw.get("start_on"),
            notes=str(raw.get("notes") or ""),
            parent=gid_of(raw.get("parent")),
            assignee=gid_of(raw.get("assignee")),
            permalink_url=str(raw.get("permalink_url") or ""),
            dependencies=[g for g in map(gid_of, raw.get("dependencies") or []) if g],
            workspace=gid_of(raw.get("workspace")) or self.default_workspace(),
            followers=[g for g in map(gid_of, raw.get("followers") or []) if g],
        )
        placements = self._placements(raw)
        self.tasks[gid] = task
        for project, section in placements:
            task.memberships[project] = section
            self.section_tasks[section].append(task.gid)
            task.workspace = self.projects[project]["workspace"]
        task.tags = [self._seed_tag(tag) for tag in raw.get("tags") or []]
        for value in raw.get("custom_fields") or []:
            self._load_value(task, value)
        return task

    def _placements(self, raw: JSON) -> list[tuple[str, str]]:
        """A task's (project, section) pairs, checked; a membership without a section takes the first."""
        memberships = raw.get("memberships") or [{"project": p} for p in raw.get("projects") or []]
        placements = []
        for membership in memberships:
            project = self.find(self.projects, membership.get("project"), "project")["gid"]
            section = gid_of(membership.get("section")) or self.first_section(project)
            if self.find(self.sections, section, "section")["project"] != project:
                raise asana_error(400, f"section: Section {section} is not in project {project}")
            placements.append((project, section))
        return placements

    def _seed_tag(self, ref: Any) -> str:
        gid = gid_of(ref)
        if gid not in self.tags:
            gid = self._add_tag(ref if isinstance(ref, dict) else {"gid": gid, "name": gid})["gid"]
        return str(gid)

    def _load_value(self, task: Task, raw: JSON) -> None:
        """A task's custom field value from the API's shape; the definition too if the seed lacks it."""
        gid = gid_of(raw)
        if gid not in self.custom_fields:
            self._add_field(raw)
        definition = self.custom_fields[str(gid)]
        kind = definition["type"]
        value: Any
        if kind == "enum":
            value = self._seed_option(definition, raw.get("enum_value"))
        elif kind == "multi_enum":
            value = [self._seed_option(definition, o) for o in raw.get("multi_enum_values") or []]
        else:
            value = raw.get(f"{kind}_value")
        if value is not None and value != []:
            task.custom_values[definition["gid"]] = value
        for project in task.memberships:
            self._add_setting(self.projects[project], {"custom_field": definition["gid"]})

    def _seed_option(self, definition: JSON, ref: Any) -> str | None:
        gid = gid_of(ref)
        if gid is None or gid in {o["gid"] for o in definition["enum_options"]}:
            return gid
        return str(self.add_option(definition, ref if isinstance(ref, dict) else {"gid": gid})["gid"])

    def _order_sections(self, raws: list[JSON]) -> None:
        for raw in raws:
            order = [g for g in map(gid_of, raw.get("tasks") or []) if g]
            gid = gid_of(raw.get("gid"))
            if not order or gid not in self.section_tasks:
                continue
            present, ordered = self.section_tasks[gid], set(order)
            members = set(present)
            self.section_tasks[gid] = [g for g in order if g in members] + [
                g for g in present if g not in ordered
            ]

    def _load_stories(self, raw: JSON | list[JSON]) -> None:
        by_task: Iterable[tuple[Any, list[JSON]]]
        if isinstance(raw, list):  # a flat list whose stories name their task as `target`
            by_task = [(gid_of(story.get("target")), [story]) for story in raw]
        else:
            by_task = raw.items()
        for task_gid, stories in by_task:
            task = self.find(self.tasks, task_gid, "stories")
            for story in stories:
                self.stories.setdefault(task.gid, []).append(self._seed_story(task, story))

    def _seed_story(self, task: Task, raw: JSON) -> JSON:
        story = {k: self._seed_ref(v) for k, v in raw.items() if k not in ("target", "_target")}
        creator = gid_of(raw.get("created_by"))
        story.update(
            {
                "gid": self.claim(raw.get("gid")),
                "resource_type": "story",
                "created_at": format_time(self._stamp(raw.get("created_at"), task.created_at)),
                "created_by": self.ref(creator) if creator in self.users else raw.get("created_by"),
                "resource_subtype": str(raw.get("resource_subtype") or "comment_added"),
                "type": raw.get("type")
                or ("comment" if raw.get("resource_subtype") == "comment_added" else "system"),
                "text": str(raw.get("text") or ""),
                "_target": task.gid,
            }
        )
        return story

    def _seed_ref(self, value: Any) -> Any:
        """A story's reference to a known object (`{"gid": ...}`) as the compact record the API gives."""
        gid = gid_of(value) if isinstance(value, dict) else None
        if gid is not None and self.kind_of(gid) is not None:
            return self.ref(gid)
        return copy.deepcopy(value)

    def _load_goals(self, goals: list[JSON], relationships: list[JSON]) -> None:
        for raw in goals:
            self.add_goal(raw)
        for raw in relationships:
            self._add_relationship(raw)
        for raw in goals:  # `parent` is shorthand for "this goal is a subgoal of that one"
            parent, child = gid_of(raw.get("parent") or raw.get("parent_goal")), gid_of(raw.get("gid"))
            if parent is not None and child is not None and not self._relationship(parent, child):
                self._add_relationship({"supported_goal": parent, "supporting_resource": child})

    def add_goal(self, raw: JSON) -> JSON:
        gid = self.claim(raw.get("gid"))
        workspace = gid_of(raw.get("workspace")) or self.default_workspace()
        period = raw.get("time_period")
        period_gid = None
        if isinstance(period, dict) or gid_of(period) is not None:
            period_gid = self._add_period(period if isinstance(period, dict) else {"gid": period}, workspace)
        self.goals[gid] = {
            "gid": gid,
            "name": str(raw.get("name") or ""),
            "notes": str(raw.get("notes") or ""),
            "workspace": workspace,
            "owner": gid_of(raw.get("owner")),
            "status": raw.get("status"),
            "due_on": raw.get("due_on"),
            "start_on": raw.get("start_on"),
            "is_workspace_level": bool(raw.get("is_workspace_level", True)),
            "time_period": period_gid,
            "metric": self.normalise_metric(raw.get("metric")),
        }
        return self.goals[gid]

    def _add_period(self, raw: JSON, workspace: str | None = None) -> str:
        gid = self.claim(raw.get("gid"))
        known = self.time_periods.get(gid, {})
        info = self.period_info.get(gid, {})
        self.time_periods[gid] = {
            "gid": gid,
            "resource_type": "time_period",
            "display_name": raw.get("display_name", known.get("display_name")),
            "period": raw.get("period", known.get("period")),
            "start_on": raw.get("start_on", known.get("start_on")),
            "end_on": raw.get("end_on", known.get("end_on")),
        }
        self.period_info[gid] = {
            "workspace": gid_of(raw.get("workspace"))
            or info.get("workspace")
            or workspace
            or self.default_workspace(),
            "parent": gid_of(raw.get("parent")) or info.get("parent"),
        }
        return gid

    def normalise_metric(self, raw: Any) -> JSON | None:
        """A goal's metric with Asana's defaults filled in and its display value worked out."""
        if not isinstance(raw, dict):
            return None
        metric: JSON = {
            "gid": self.claim(raw.get("gid")),
            "resource_type": "goal_metric",
            "resource_subtype": "number",
            "precision": 0,
            "unit": "none",
            "initial_number_value": 0,
            "target_number_value": 0,
            "current_number_value": 0,
            "progress_source": "manual",
            "is_custom_weight": False,
        }
        metric.update({k: copy.deepcopy(v) for k, v in raw.items() if k not in ("gid", "resource_type")})
        current, precision = metric["current_number_value"], int(metric["precision"])
        percent = metric["unit"] == "percentage"  # stored as a fraction, shown as a percentage
        display = None if current is None else f"{float(current) * (100 if percent else 1):.{precision}f}"
        metric["current_display_value"] = f"{display}%" if display is not None and percent else display
        return metric

    def _relationship(self, goal: str, supporting: str) -> JSON | None:
        return next(
            (
                r
                for r in self.relationships.values()
                if r["supported_goal"] == goal and r["supporting_resource"] == supporting
            ),
            None,
        )

    def _add_relationship(self, raw: JSON) -> JSON:
        goal = self.find(self.goals, raw.get("supported_goal"), "supported_goal")["gid"]
        supporting = self.supporting(raw.get("supporting_resource"))
        gid = self.claim(raw.get("gid"))
        subtype = raw.get("resource_subtype") or (
            "subgoal" if supporting in self.goals else "supporting_work"
        )
        weight = raw.get("contribution_weight")
        self.relationships[gid] = {
            "gid": gid,
            "resource_subtype": subtype,
            "supported_goal": goal,
            "supporting_resource": supporting,
            "contribution_weight": 1.0 if weight is None else float(weight),
        }
        return self.relationships[gid]

    def supporting(self, ref: Any) -> str:
        """A goal, project or task that can support a goal."""
        gid = gid_of(ref)
        if gid is None:
            raise asana_error(400, "supporting_resource: Missing input")
        if self.kind_of(gid) not in ("goal", "project", "task"):
            raise asana_error(400, f"supporting_resource: Not a recognized ID: {gid}")
        return gid

    def _add_attachment(self, raw: JSON) -> JSON:
        parent = self.task(raw.get("parent"), "parent")
        gid = self.claim(raw.get("gid"))
        subtype = str(raw.get("resource_subtype") or "external")
        self.attachments[gid] = {
            "gid": gid,
            "name": str(raw.get("name") or ""),
            "resource_subtype": subtype,
            "parent": parent.gid,
            "url": raw.get("url") or raw.get("view_url") or raw.get("download_url"),
            "host": "external" if subtype == "external" else "asana",
            "size": int(raw.get("size") or 0),
            "created_at": self._stamp(raw.get("created_at")),
        }
        return self.attachments[gid]

    # ---- stories, events, modification --------------------------------------------------------------

    def touch(self, task: Task) -> None:
        task.modified_at = self.clock.now()

    def task_scopes(self, task: Task) -> set[str]:
        """Who hears of a change to a task: itself, its projects, its parent and the parent's projects."""
        scopes = {task.gid, *task.memberships}
        parent = self.tasks.get(task.parent or "")
        if parent is not None:
            scopes |= {parent.gid, *parent.memberships}
        return scopes

    def event(
        self, scopes: Iterable[str], resource: JSON | None, action: str, actor: str, **extra: Any
    ) -> None:
        body: JSON = {
            "user": self.ref(actor),
            "created_at": format_time(self.clock.now()),
            "type": (resource or {}).get("resource_type"),
            "action": action,
            "resource": resource,
            "parent": extra.pop("parent", None),
            **extra,
        }
        self.events.append(Event(len(self.events) + 1, frozenset(scopes), body))

    def story(self, task: Task, subtype: str, text: str, actor: str, **extra: Any) -> JSON:
        """Write a system story on a task and its `added` event; the caller decides about `modified_at`."""
        story: JSON = {
            "gid": self.new_gid(),
            "resource_type": "story",
            "created_at": format_time(self.clock.now()),
            "created_by": self.ref(actor),
            "resource_subtype": subtype,
            "type": "comment" if subtype == "comment_added" else "system",
            "text": text,
            **extra,
            "_target": task.gid,
        }
        self.stories.setdefault(task.gid, []).append(story)
        if actor == self.me and task.followed:
            self.api_stories += 1
        compact = {"gid": story["gid"], "resource_type": "story", "resource_subtype": subtype}
        self.event(self.task_scopes(task), compact, "added", actor, parent=self.ref(task.gid))
        return story

    def task_changed(self, task: Task, actor: str, field_name: str, **change: Any) -> None:
        change = {"field": field_name, "action": "changed", **change}
        self.event(self.task_scopes(task), self.ref(task.gid), "changed", actor, change=change)

    # ---- task changes -------------------------------------------------------------------------------

    def create_task(self, raw: JSON, actor: str) -> Task:
        """A new task at the bottom of its section (or of its project's first section), or a subtask."""
        project = gid_of(raw.get("project"))
        parent = self.task(raw["parent"], "parent").gid if raw.get("parent") else None
        if project is None and parent is None:
            raise asana_error(400, "project: Missing input")
        seed = {
            "name": _check_text("name", raw.get("name") or ""),
            "resource_subtype": raw.get("subtype") or raw.get("resource_subtype"),
            "created_at": format_time(self.clock.now()),
            "notes": raw.get("notes"),
            "due_on": _check_date("due_on", raw.get("due_on")),
            "completed": bool(raw.get("completed")),
            "parent": parent,
            "memberships": [{"project": project, "section": raw.get("section")}] if project else [],
        }
        task = self._add_task(seed)
        try:
            values = self._check_values(task, raw.get("custom_fields") or {})
        except HTTPError:
            self._forget(task)
            raise
        # Values given at creation are the task's first values: Asana writes no change stories for them.
        task.custom_values.update({gid: value for gid, value in values.items() if value is not None})
        task.completed_at = task.created_at if task.completed else None
        if parent is not None:
            self.subtasks.setdefault(parent, []).append(task.gid)
        for scope in [*task.memberships, parent]:
            if scope is not None:
                self.event(self.task_scopes(task), self.ref(task.gid), "added", actor, parent=self.ref(scope))
        return task

    def _forget(self, task: Task) -> None:
        for section in task.memberships.values():
            self.section_tasks[section].remove(task.gid)
        del self.tasks[task.gid]

    def update_task(self, task: Task, fields: JSON, actor: str) -> None:
        """Apply a `PUT /tasks/{gid}` body; every field is checked first, so a bad one changes nothing."""
        checked = [(name, self._check(task, name, value)) for name, value in fields.items()]
        changed = [self._apply(task, name, value, actor) for name, value in checked]
        if any(changed):
            self.touch(task)

    def _check(self, task: Task, name: str, value: Any) -> Any:
        """A field of a task update, checked (and normalised) before anything changes."""
        if name in READ_ONLY_TASK_FIELDS:
            raise asana_error(400, f"{name}: Cannot write this property")
        checkers: dict[str, Callable[[str, Any], Any]] = {
            "name": _check_text,
            "notes": _check_text,
            "completed": _check_boolean,
            "due_on": _check_date,
            "start_on": _check_date,
            "due_at": _check_datetime,
            "resource_subtype": _check_subtype,
            "assignee": self._check_assignee,
            "custom_fields": lambda _, values: self._check_values(task, values),
        }
        if name not in checkers:
            raise asana_error(400, f"{name}: Unknown property")
        return checkers[name](name, value)

    def _check_assignee(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        return str(self.find(self.users, self.me if value == "me" else value, name)["gid"])

    def _check_values(self, task: Task, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise asana_error(400, "custom_fields: Must be an object mapping custom field gids to values")
        allowed = set(self.task_fields(task))
        checked = {}
        for gid, value in values.items():
            definition = self.find(self.custom_fields, gid, "custom_fields")
            if definition["gid"] not in allowed:
                raise asana_error(400, f"custom_fields: Custom field with ID {gid} is not on given object")
            checked[definition["gid"]] = self._check_value(definition, value)
        return checked

    def _check_value(self, definition: JSON, value: Any) -> Any:
        kind, name = definition["type"], definition["name"]
        options = {o["gid"] for o in definition.get("enum_options", [])}
        ok = (
            value is None
            or {
                "number": _is_number(value),
                "text": isinstance(value, str),
                "enum": isinstance(value, str) and value in options,
                "multi_enum": isinstance(value, list) and all(v in options for v in value),
                "date": _is_date_value(value),
            }[kind]
        )
        if not ok:
            raise asana_error(400, f"custom_fields: {value!r} is not a valid {kind} value for {name}")
        if kind == "date" and value is not None:
            # As Asana gives it back: the day, and `date_time` null when no time was chosen.
            return {
                "date": value.get("date") or str(value["date_time"])[:10],
                "date_time": value.get("date_time"),
            }
        return None if value == [] else value

    def _apply(self, task: Task, name: str, value: Any, actor: str) -> bool:
        if name == "custom_fields":
            return any([self._apply_value(task, gid, v, actor) for gid, v in value.items()])
        attribute = {"resource_subtype": "subtype"}.get(name, name)
        old = getattr(task, attribute)
        if old == value:
            return False
        setattr(task, attribute, value)
        if name == "completed":
            self._completed(task, bool(value), actor)
        else:
            self._changed_story(task, name, old, value, actor)
        self.task_changed(task, actor, name, new_value=self.ref(value) if name == "assignee" else value)
        return True

    def _completed(self, task: Task, completed: bool, actor: str) -> None:
        task.completed_at = self.clock.now() if completed else None
        if completed:
            self.story(task, "marked_complete", "marked this task complete", actor)
        else:
            self.story(task, "marked_incomplete", "marked incomplete", actor)

    def _changed_story(self, task: Task, name: str, old: Any, new: Any, actor: str) -> None:
        if name == "name":
            self.story(
                task, "name_changed", f'changed the name to "{new}"', actor, old_name=old, new_name=new
            )
        elif name == "notes":
            self.story(task, "notes_changed", "changed the description", actor)
        elif name in ("due_on", "due_at", "start_on"):
            dates = {"start_on": task.start_on, "due_on": task.due_on, "due_at": task.due_at}
            self.story(
                task,
                "due_date_changed",
                f"changed the due date to {new}",
                actor,
                new_dates=dates,
                old_dates={**dates, name: old},
            )
        elif name == "assignee":
            who = self.users[new]["name"] if new else None
            subtype, text = ("assigned", f"assigned to {who}") if who else ("unassigned", "unassigned")
            self.story(task, subtype, text, actor, assignee=self.ref(new))
        elif name == "resource_subtype":
            self.story(
                task,
                "resource_subtype_changed",
                f"changed this task to a {new}",
                actor,
                old_resource_subtype=old,
                new_resource_subtype=new,
            )

    def _apply_value(self, task: Task, gid: str, value: Any, actor: str) -> bool:
        old = task.custom_values.get(gid)
        if old == value:
            return False
        definition = self.custom_fields[gid]
        if value is None:
            task.custom_values.pop(gid, None)
        else:
            task.custom_values[gid] = copy.deepcopy(value)
        before, after = self.display(definition, old), self.display(definition, value)
        kind = definition["type"]
        typed = {f"old_{kind}_value": old, f"new_{kind}_value": value}
        if kind in ("enum", "multi_enum"):
            key = "enum_value" if kind == "enum" else "multi_enum_values"
            typed = {
                f"old_{key}": self._options(definition, old),
                f"new_{key}": self._options(definition, value),
            }
        self.story(
            task,
            f"{kind}_custom_field_changed",
            f'changed {definition["name"]} from "{before or ""}" to "{after or ""}"',
            actor,
            custom_field=self.render_field(definition),
            **typed,
        )
        self.task_changed(task, actor, "custom_fields", new_value=self.field_value(gid, task))
        return True

    def _options(self, definition: JSON, value: Any) -> Any:
        options = {o["gid"]: o for o in definition["enum_options"]}
        if isinstance(value, list):
            return [dict(options[g]) for g in value if g in options]
        return dict(options[value]) if value in options else None

    def move_task(
        self,
        task: Task,
        section_gid: str,
        actor: str,
        before: str | None = None,
        after: str | None = None,
        *,
        bottom: bool = False,
    ) -> None:
        """Put a task into a section: next to `before`/`after` (a task of that section), else at the top,
        or at the bottom with `bottom`."""
        section = self.find(self.sections, section_gid, "section")
        project = section["project"]
        self._check_neighbours(section["gid"], task.gid, before, after)
        old = task.memberships.get(project)
        if old is not None:
            self.section_tasks[old].remove(task.gid)
        self._place(section["gid"], task.gid, before, after, bottom=bottom)
        task.memberships[project] = section["gid"]
        if old is None:  # joining a project is an association change, so it does count as a modification
            name = self.projects[project]["name"]
            self.story(task, "added_to_project", f"added to {name}", actor, project=self.ref(project))
            self.event(self.task_scopes(task), self.ref(task.gid), "added", actor, parent=self.ref(project))
            self.touch(task)
        elif old != section["gid"]:
            self._section_changed(task, old, section, actor)
        else:
            # A move within its section: no story and `modified_at` stays (see the module docstring),
            # but subscribers hear that the task was put (again) into the section.
            self.event(self.task_scopes(task), self.ref(task.gid), "added", actor, parent=self.ref(old))

    def add_to_project(self, task: Task, project_gid: Any, placement: JSON, actor: str) -> None:
        """`POST /tasks/{gid}/addProject`: join a project, or move within one (asana.yaml,
        addProjectForTask). `placement` holds the body's `section`, `insert_before` and `insert_after`
        as given: a key present with null means the start (`insert_after`) or end (`insert_before`)."""
        project = self.find(self.projects, project_gid, "project")["gid"]
        if self.projects[project]["workspace"] != task.workspace:
            raise asana_error(400, f"project: Project {project} is not in the task's workspace")
        if "insert_before" in placement and "insert_after" in placement:
            raise asana_error(400, "insert_before, insert_after: Only one may be given")
        if project not in task.memberships and len(task.memberships) >= MAX_PROJECTS_PER_TASK:
            raise asana_error(400, f"project: A task can be in at most {MAX_PROJECTS_PER_TASK} projects")
        before, after = gid_of(placement.get("insert_before")), gid_of(placement.get("insert_after"))
        anchor = before or after
        section = gid_of(placement.get("section"))
        if section is not None:
            if self.find(self.sections, section, "section")["project"] != project:
                raise asana_error(400, f"section: Section {section} is not in project {project}")
        elif anchor is not None:
            holder = self.tasks[anchor].memberships.get(project) if anchor in self.tasks else None
            param = "insert_before" if before else "insert_after"
            if holder is None or anchor == task.gid:
                raise asana_error(400, f"{param}: Task {anchor} is not another task in project {project}")
            section = holder
        else:
            sections = self.project_sections.get(project) or []
            if not sections:
                raise asana_error(400, f"project: Project {project} has no section to add the task to")
            start = "insert_after" in placement  # insert_after: null puts it first
            section = sections[0] if start else sections[-1]
        at_start = "insert_after" in placement and after is None
        self.move_task(
            task, section, actor, before=before, after=after, bottom=anchor is None and not at_start
        )

    def _section_changed(self, task: Task, old: str, section: JSON, actor: str) -> None:
        # QUIRK (see the module docstring): a move between sections writes its story and events but,
        # as on the real service, does not stamp `modified_at`.
        project = section["project"]
        text = (
            f'moved this task from "{self.sections[old]["name"]}" to "{section["name"]}" in '
            f"{self.projects[project]['name']}"
        )
        self.story(
            task,
            "section_changed",
            text,
            actor,
            old_section=self.ref(old),
            new_section=self.ref(section["gid"]),
            project=self.ref(project),
        )
        scopes = self.task_scopes(task)
        self.event(scopes, self.ref(task.gid), "removed", actor, parent=self.ref(old))
        self.event(scopes, self.ref(task.gid), "added", actor, parent=self.ref(section["gid"]))

    def _check_neighbours(self, section: str, task: str, before: str | None, after: str | None) -> None:
        if before is not None and after is not None:
            raise asana_error(400, "insert_before, insert_after: Only one may be given")
        for param, neighbour in (("insert_before", before), ("insert_after", after)):
            if neighbour is not None and (neighbour == task or neighbour not in self.section_tasks[section]):
                raise asana_error(400, f"{param}: Task {neighbour} is not another task in section {section}")

    def _place(
        self, section: str, task: str, before: str | None, after: str | None, *, bottom: bool = False
    ) -> None:
        order = self.section_tasks[section]
        if before is not None:
            order.insert(order.index(before), task)
        elif after is not None:
            order.insert(order.index(after) + 1, task)
        elif bottom:
            order.append(task)
        else:
            order.insert(0, task)

    def set_parent(self, task: Task, parent_ref: Any, placement: JSON, actor: str) -> None:
        """`POST /tasks/{gid}/setParent`: make the task a subtask of `parent_ref` (or, for None, a
        top-level task), placed by `placement`'s `insert_before`/`insert_after` as given (see the module
        docstring)."""
        parent = self.task(parent_ref, "parent").gid if parent_ref is not None else None
        ancestor = parent
        while ancestor is not None:
            if ancestor == task.gid:
                raise asana_error(400, "parent: A task cannot be a subtask of itself or of its subtasks")
            ancestor = self.tasks[ancestor].parent
        if "insert_before" in placement and "insert_after" in placement:
            raise asana_error(400, "insert_before, insert_after: Only one of them may be given")
        siblings = [g for g in self.subtasks.get(parent or "", []) if g != task.gid]
        anchors = {k: gid_of(placement[k]) for k in ("insert_before", "insert_after") if k in placement}
        for param, anchor in anchors.items():
            if anchor is not None and (parent is None or anchor not in siblings):
                raise asana_error(400, f"{param}: Task {anchor} is not a subtask of the new parent")
        old = task.parent
        if old is not None:
            if old != parent:
                self.event(self.task_scopes(task), self.ref(task.gid), "removed", actor, parent=self.ref(old))
            self.subtasks[old].remove(task.gid)
        task.parent = parent
        if parent is None:
            self.touch(task)
            return
        if anchors.get("insert_before") is not None:
            siblings.insert(siblings.index(str(anchors["insert_before"])), task.gid)
        elif anchors.get("insert_after") is not None:
            siblings.insert(siblings.index(str(anchors["insert_after"])) + 1, task.gid)
        elif "insert_after" in anchors:
            siblings.insert(0, task.gid)
        else:
            siblings.append(task.gid)
        self.subtasks[parent] = siblings
        self.event(self.task_scopes(task), self.ref(task.gid), "added", actor, parent=self.ref(parent))
        if old != parent:
            self.touch(task)

    def delete_task(self, task: Task, actor: str) -> None:
        """Delete a task and its subtasks, as Asana's trash does; its stories go with it."""
        for child in list(self.subtasks.get(task.gid, [])):
            self.delete_task(self.tasks[child], actor)
        self.event(self.task_scopes(task), self.ref(task.gid), "deleted", actor)
        for section in task.memberships.values():
            self.section_tasks[section].remove(task.gid)
        for blocker in task.dependencies:
            self.dependents[blocker].remove(task.gid)
        for dependent in self.dependents.pop(task.gid, []):
            self.tasks[dependent].dependencies.remove(task.gid)
        if task.parent in self.subtasks:
            self.subtasks[task.parent].remove(task.gid)
        for gid in [g for g, a in self.attachments.items() if a["parent"] == task.gid]:
            del self.attachments[gid]
        self.stories.pop(task.gid, None)
        self.subtasks.pop(task.gid, None)
        del self.tasks[task.gid]

    def add_tag(self, task: Task, tag_ref: Any, actor: str) -> bool:
        tag = self.find(self.tags, tag_ref, "tag")
        if tag["gid"] in task.tags:
            return False
        task.tags.append(tag["gid"])
        self.story(task, "added_to_tag", f"added to {tag['name']}", actor, tag=self.ref(tag["gid"]))
        self.task_changed(task, actor, "tags", action="added", added_value=self.ref(tag["gid"]))
        self.touch(task)
        return True

    def remove_tag(self, task: Task, tag_ref: Any, actor: str) -> bool:
        tag = self.find(self.tags, tag_ref, "tag")
        if tag["gid"] not in task.tags:
            return False
        task.tags.remove(tag["gid"])
        self.story(task, "removed_from_tag", f"removed from {tag['name']}", actor, tag=self.ref(tag["gid"]))
        self.task_changed(task, actor, "tags", action="removed", removed_value=self.ref(tag["gid"]))
        self.touch(task)
        return True

    def add_dependency(self, task: Task, blocker_ref: Any, actor: str) -> bool:
        blocker = self.task(blocker_ref, "dependencies")
        if blocker.gid in task.dependencies:
            return False
        if blocker.gid == task.gid or task.gid in self._blockers_of(blocker.gid):
            raise asana_error(400, "dependencies: Cannot create a circular dependency")
        task.dependencies.append(blocker.gid)
        self.dependents.setdefault(blocker.gid, []).append(task.gid)
        self.story(
            task,
            "dependency_added",
            f'marked this task as waiting on "{blocker.name}"',
            actor,
            dependency=self.ref(blocker.gid),
        )
        self.task_changed(task, actor, "dependencies", action="added", added_value=self.ref(blocker.gid))
        self.touch(task)
        return True

    def remove_dependency(self, task: Task, blocker_ref: Any, actor: str) -> bool:
        blocker = self.task(blocker_ref, "dependencies")
        if blocker.gid not in task.dependencies:
            return False
        task.dependencies.remove(blocker.gid)
        self.dependents[blocker.gid].remove(task.gid)
        self.story(
            task,
            "dependency_removed",
            f'removed the dependency on "{blocker.name}"',
            actor,
            dependency=self.ref(blocker.gid),
        )
        self.task_changed(task, actor, "dependencies", action="removed", removed_value=self.ref(blocker.gid))
        self.touch(task)
        return True

    def _blockers_of(self, gid: str) -> set[str]:
        """Every task `gid` waits on, directly or through others."""
        seen: set[str] = set()
        todo = [gid]
        while todo:
            for blocker in self.tasks[todo.pop()].dependencies:
                if blocker not in seen:
                    seen.add(blocker)
                    todo.append(blocker)
        return seen

    def add_comment(self, task: Task, text: str, actor: str) -> JSON:
        story = self.story(task, "comment_added", text, actor)
        self.touch(task)  # adding a story counts as modifying the task (getTasks, modified_since)
        return story

    # ---- other objects ------------------------------------------------------------------------------

    def delete_tag(self, gid: str) -> None:
        for task in self.tasks.values():
            if gid in task.tags:
                task.tags.remove(gid)
                self.touch(task)
        del self.tags[gid]

    def create_tag(self, raw: JSON, workspace: str | None) -> JSON:
        workspace = workspace or gid_of(raw.get("workspace"))
        self.find(self.workspaces, workspace, "workspace")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise asana_error(400, "name: Missing input")
        color = raw.get("color")
        if color is not None and color not in COLORS:
            raise asana_error(400, f"color: Not a valid color: {color}")
        return self._add_tag(
            {"name": name, "color": color, "notes": raw.get("notes"), "workspace": workspace}
        )

    def create_goal(self, raw: JSON, actor: str) -> JSON:
        """`POST /goals`: a goal in a workspace (the emulator has no teams), owned by `actor` unless the
        request names an owner; a time period must be one the workspace has."""
        if raw.get("team") is not None:
            raise asana_error(400, "team: the emulated workspaces have no teams; give workspace")
        workspace = self.find(self.workspaces, gid_of(raw.get("workspace")), "workspace")["gid"]
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise asana_error(400, "name: Missing input")
        period = gid_of(raw.get("time_period"))
        if period is not None:
            self.find(self.time_periods, period, "time_period")
        goal = self.add_goal(
            {
                "name": name,
                "notes": raw.get("notes"),
                "workspace": workspace,
                "owner": gid_of(raw.get("owner")) or actor,
                "due_on": raw.get("due_on"),
                "start_on": raw.get("start_on"),
                "is_workspace_level": raw.get("is_workspace_level", True),
                "time_period": period,
            }
        )
        self.event({goal["gid"]}, self.ref(goal["gid"]), "added", actor)
        return goal

    def create_status_update(self, raw: JSON, actor: str) -> JSON:
        """`POST /status_updates` (createStatusForObject) on a goal: `text` and a goal's `status_type`
        are required; the update becomes the goal's `current_status_update`. The emulated workspaces keep
        status updates on goals only (a project or portfolio parent is answered 400)."""
        parent = gid_of(raw.get("parent"))
        if parent is None:
            raise asana_error(400, "parent: Missing input")
        if parent not in self.goals:
            raise asana_error(400, "parent: the emulator keeps status updates on goals only")
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise asana_error(400, "text: Missing input")
        status_type = raw.get("status_type")
        if status_type not in GOAL_STATUS_TYPES:
            raise asana_error(400, f"status_type: Not a valid goal status: {status_type}")
        title = raw.get("title")
        now = format_time(self.clock.now())
        update: JSON = {
            "gid": self.new_gid(),
            "resource_type": "status_update",
            "resource_subtype": "goal_status_update",
            "title": str(title) if title is not None else "",
            "text": text,
            "html_text": f"<body>{escape(text)}</body>",
            "status_type": status_type,
            "author": self.ref(actor),
            "created_by": self.ref(actor),
            "created_at": now,
            "modified_at": now,
            "hearted": False, "hearts": [], "liked": False, "likes": [], "num_hearts": 0, "num_likes": 0,
            "reaction_summary": [],
            "_parent": parent,
        }  # fmt: skip
        self.status_updates[update["gid"]] = update
        self.goals[parent]["current_status_update"] = update["gid"]
        self.event({parent}, self.ref(update["gid"]), "added", actor, parent=self.ref(parent))
        return update

    def statuses_of(self, parent: str | None) -> list[JSON]:
        """`GET /status_updates?parent=` (getStatusesForObject): the goal's status updates, oldest first."""
        if parent is None:
            raise asana_error(400, "parent: Missing input")
        if parent not in self.goals:
            raise asana_error(400, "parent: the emulator keeps status updates on goals only")
        return [u for u in self.status_updates.values() if u["_parent"] == parent]

    def delete_goal(self, goal: JSON, actor: str) -> None:
        """`DELETE /goals/{gid}`: the goal and every relationship it is part of go."""
        gid = goal["gid"]
        for relation in [
            r for r in self.relationships.values() if gid in (r["supported_goal"], r["supporting_resource"])
        ]:
            del self.relationships[relation["gid"]]
        del self.goals[gid]
        self.event({gid}, self.ref(gid), "deleted", actor)

    def create_section(self, project: str, name: str, actor: str) -> JSON:
        section = self._add_section({"project": project, "name": name})
        self.event({project}, self.ref(section["gid"]), "added", actor, parent=self.ref(project))
        return section

    def add_attachment(self, raw: JSON, actor: str) -> JSON:
        task = self.task(raw.get("parent"), "parent")
        subtype = str(raw.get("resource_subtype") or ("asana" if raw.get("size") else "external"))
        if subtype == "external" and not (raw.get("url") and raw.get("name")):
            raise asana_error(400, "url, name: Missing input (an external attachment needs both)")
        attachment = self._add_attachment(
            {**raw, "resource_subtype": subtype, "gid": None, "created_at": None}
        )
        self.story(task, "attachment_added", f"attached {attachment['name']}", actor)
        self.event(
            self.task_scopes(task), self.ref(attachment["gid"]), "added", actor, parent=self.ref(task.gid)
        )
        self.touch(task)
        return attachment

    def delete_attachment(self, attachment: JSON, actor: str) -> None:
        task = self.tasks[attachment["parent"]]
        self.event(
            self.task_scopes(task), self.ref(attachment["gid"]), "deleted", actor, parent=self.ref(task.gid)
        )
        del self.attachments[attachment["gid"]]

    def add_supporting(self, goal: JSON, raw: JSON, actor: str) -> JSON:
        supporting = self.supporting(raw.get("supporting_resource"))
        # A cycle would close if the goal already supports, however indirectly, what is to support it.
        if supporting == goal["gid"] or supporting in self._supported_by(goal["gid"]):
            raise asana_error(400, "supporting_resource: A goal cannot support itself, even indirectly")
        existing = self._relationship(goal["gid"], supporting)
        if existing is not None:
            return existing
        relation = self._add_relationship(
            {
                "supported_goal": goal["gid"],
                "supporting_resource": supporting,
                "contribution_weight": raw.get("contribution_weight"),
            }
        )
        scopes = self._supporting_changed(goal["gid"], supporting)
        self.event(scopes, self.ref(relation["gid"]), "added", actor, parent=self.ref(goal["gid"]))
        return relation

    def _supporting_changed(self, goal: str, supporting: str) -> set[str]:
        """Who hears of a relationship added or removed; a supporting task counts as modified."""
        task = self.tasks.get(supporting)
        if task is None:
            return {goal, supporting}
        self.touch(task)
        return {goal, *self.task_scopes(task)}

    def remove_supporting(self, goal: JSON, raw: JSON, actor: str) -> None:
        supporting = self.supporting(raw.get("supporting_resource"))
        relation = self._relationship(goal["gid"], supporting)
        if relation is None:
            raise asana_error(400, f"supporting_resource: {supporting} does not support goal {goal['gid']}")
        scopes = self._supporting_changed(goal["gid"], supporting)
        self.event(scopes, self.ref(relation["gid"]), "removed", actor, parent=self.ref(goal["gid"]))
        del self.relationships[relation["gid"]]

    def _supported_by(self, gid: str) -> set[str]:
        """Every goal that `gid` supports, directly or through other goals."""
        seen: set[str] = set()
        todo = [gid]
        while todo:
            current = todo.pop()
            for relation in self.relationships.values():
                goal = relation["supported_goal"]
                if relation["supporting_resource"] == current and goal not in seen:
                    seen.add(goal)
                    todo.append(goal)
        return seen

    def parent_goals(self, gid: str) -> list[str]:
        return [r["supported_goal"] for r in self.relationships.values() if r["supporting_resource"] == gid]

    # ---- the whole state ----------------------------------------------------------------------------

    def dump(self) -> JSON:
        """Everything, in the seed format (so a dump seeds an equal emulator)."""
        return {
            "workspaces": [self.render_workspace(w) for w in self.workspaces.values()],
            "users": [self.render_user(u) for u in self.users.values()],
            "me": self.me,
            "custom_fields": [
                {**self.render_field(f), "workspace": self.ref(f["workspace"])}
                for f in self.custom_fields.values()
            ],
            "tags": [self.render_tag(t) for t in self.tags.values()],
            "projects": [self.render_project(p) for p in self.projects.values()],
            "sections": [
                {**self.render_section(s), "tasks": list(self.section_tasks[g])}
                for g, s in self.sections.items()
            ],
            "tasks": [self.render_task(t) for t in self.tasks.values()],
            "stories": {g: [self.render_story(s) for s in stories] for g, stories in self.stories.items()},
            "time_periods": [
                {**self.render_period(g), "workspace": self.ref(self.period_info[g]["workspace"])}
                for g in self.time_periods
            ],
            "goals": [self.render_goal(g) for g in self.goals.values()],
            "goal_relationships": [self.render_relationship(r) for r in self.relationships.values()],
            "attachments": [self.render_attachment(a) for a in self.attachments.values()],
            "event_count": len(self.events),
        }


# ---- the HTTP API -------------------------------------------------------------------------------------


def _item_gid(item: Any) -> str:
    return item.gid if isinstance(item, Task) else str(item["gid"])


def _wrong_type(value: Any) -> Any:
    """A value of a type the field never has, for the `malformed` fault."""
    if isinstance(value, str):
        return 404
    if isinstance(value, list):
        return {"unexpected": "object"}
    if isinstance(value, dict):
        return ["unexpected", "list"]
    if isinstance(value, bool | int | float):
        return "not a number"
    return {"unexpected": "object"}


def _multipart(content_type: str, body: bytes) -> JSON:
    """The fields of a multipart/form-data body; a file part yields its name and size."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: JSON = {}
    parts = message.get_payload()
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Message):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename:
            fields.setdefault("name", filename)
            fields.update(size=len(data), file=True)
        else:
            fields[str(part.get_param("name", header="content-disposition"))] = data.decode("utf-8")
    return fields


class AsanaEmulator(Emulator):
    """Asana's REST API under `/api/1.0`, for one personal access token (see the module docstring)."""

    name: ClassVar[str] = "asana"
    vendor_limit: ClassVar[tuple[int, float] | None] = (150, 60.0)  # the free tier's requests per minute

    def __init__(
        self,
        token: str = "sandbox-asana-token",
        *,
        seed: JSON | None = None,
        offset_ttl: float = 900.0,
        sync_ttl: float = 24 * 3600.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.state = AsanaState(self.clock)
        self.offsets = OffsetTokens(offset_ttl)
        self.sync_ttl = sync_ttl
        self._sync_tokens: dict[str, SyncToken] = {}
        self._phrases = 0
        self.state.load(seed or {})

    @classmethod
    def from_seed(cls, source: str | Path | JSON, **kwargs: Any) -> AsanaEmulator:
        """Seed from Asana API-shaped JSON (a dict or a file); see the module docstring for the format."""
        if isinstance(source, str | Path):
            with open(source, encoding="utf-8") as handle:
                source = json.load(handle)
        if not isinstance(source, dict):
            raise ValueError("an Asana seed is a JSON object")
        emulator = cls(seed=source, **kwargs)
        log.info(
            "asana sandbox seeded: %d projects, %d tasks",
            len(emulator.state.projects),
            len(emulator.state.tasks),
        )
        return emulator

    # ---- hooks of the shared machinery --------------------------------------------------------------

    def _collect_routes(self) -> list[Route]:
        # Handlers run on the server's threads; taking the state lock per request keeps each one atomic.
        return [replace(r, handler=self._atomic(r.handler)) for r in super()._collect_routes()]

    def _atomic(self, handler: Handler) -> Handler:
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return handler(*args, **kwargs)

        return run

    def authenticate(self, request: Request) -> str:
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode()):
            return self.state.me
        raise asana_error(401, "Not Authorized")

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def dump_state(self) -> JSON:
        return {
            **self.state.dump(),
            "now": format_time(self.clock.now()),
            "api_stories": self.state.api_stories,
        }

    def not_found(self, request: Request) -> HTTPError:
        return asana_error(404, "No matching route for request")

    def error_body(self, status: int, message: str) -> Any:
        error = {"message": RATE_LIMIT_MESSAGE if status == 429 else message, "help": HELP}
        if status >= 500:  # Asana tags server errors with a phrase support can look up
            self._phrases += 1
            error["phrase"] = f"{self._phrases} sandbox squids snuggle softly"
        return {"errors": [error]}

    def malform(self, body: Any, rule: JSON) -> Any:
        """Break one record of a good answer (`field`: "gid" drops it, any other gets a wrong type)."""
        if not isinstance(body, dict) or not body.get("data"):
            return body
        broken = copy.deepcopy(body)
        items = broken["data"] if isinstance(broken["data"], list) else [broken["data"]]
        if not all(isinstance(item, dict) for item in items):
            return body
        item = items[min(int(rule.get("item", 0)), len(items) - 1)]
        name = str(rule.get("field") or "gid")
        if name == "gid":
            item.pop("gid", None)
        else:
            item[name] = _wrong_type(item.get(name))
        return broken

    # ---- request and response plumbing --------------------------------------------------------------

    def _actor(self, request: Request) -> str:
        return request.principal or self.state.me

    def _data(self, request: Request) -> JSON:
        """The `data` object of a JSON body (`{}` when there is no body)."""
        if not request.body:
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise asana_error(400, "Could not parse request data, invalid JSON") from None
        data = body.get("data", {}) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise asana_error(400, "data: Must be an object")
        return data

    def _form(self, request: Request) -> JSON:
        content_type = request.header("content-type") or ""
        if content_type.startswith("multipart/form-data"):
            return _multipart(content_type, request.body)
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
        return self._data(request)

    def _one(self, request: Request, record: JSON | None) -> JSON:
        """A single-record answer: the full record, or the fields `opt_fields` asks for."""
        fields = parse_opt_fields(request.args("opt_fields"))
        return {"data": select_fields(record, fields) if fields is not None else record}

    def _compact(self, item: Any) -> JSON:
        return self.state.ref(_item_gid(item)) or {}

    def _page(self, request: Request, items: Sequence[Any], compact: Render, full: Render) -> JSON:
        """A list answer: compact records (or `opt_fields`), paged when `limit` is given."""
        limit = self._limit(request)
        start = self._start(request, items)
        end = len(items) if limit is None else min(start + limit, len(items))
        fields = parse_opt_fields(request.args("opt_fields"))
        page = items[start:end]
        data = (
            [select_fields(full(i), fields) for i in page]
            if fields is not None
            else [compact(i) for i in page]
        )
        body: JSON = {"data": data}
        if limit is not None:
            body["next_page"] = self._next_page(request, items, end) if end < len(items) else None
        return body

    def _limit(self, request: Request) -> int | None:
        raw = request.arg("limit")
        if raw is None or raw == "":
            return None
        try:
            limit = int(raw)
        except ValueError:
            raise asana_error(400, f"limit: Not a valid integer: {raw}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise asana_error(400, f"limit: Must be between 1 and {MAX_LIMIT}, got {limit}")
        return limit

    @staticmethod
    def _fingerprint(request: Request) -> str:
        """What an offset belongs to: the route and its filters (paging and output options aside)."""
        query = sorted(
            (k, v) for k, values in request.query.items() if k not in PAGING_PARAMS for v in values
        )
        raw = json.dumps([request.method, request.path.rstrip("/"), query])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def _start(self, request: Request, items: Sequence[Any]) -> int:
        token = request.arg("offset")
        if not token:
            return 0
        claims = self.offsets.read(token, self.clock.now())
        if claims.get("q") != self._fingerprint(request):
            raise asana_error(400, "offset: Not a valid offset token for this request")
        # Resume after the last record sent, wherever it sits now; by position if it is gone.
        gids = [_item_gid(item) for item in items]
        last = claims.get("g")
        return gids.index(last) + 1 if last in gids else min(int(claims.get("i", 0)), len(items))

    def _next_page(self, request: Request, items: Sequence[Any], end: int) -> JSON:
        claims = {"q": self._fingerprint(request), "i": end, "g": _item_gid(items[end - 1])}
        token = self.offsets.issue(claims, self.clock.now())
        pairs = [(k, v) for k, values in request.query.items() if k not in ("offset", "body") for v in values]
        path = f"{request.path.removeprefix(BASE)}?{urlencode([*pairs, ('offset', token)])}"
        host = request.header("host") or "127.0.0.1"
        return {"offset": token, "path": path, "uri": f"http://{host}{BASE}{path}"}

    # ---- users, workspaces, projects, sections ------------------------------------------------------

    @route("GET", BASE + "/users/{user_gid}")
    def get_user(self, request: Request, user_gid: str) -> Any:
        user = self.state.find(self.state.users, self.state.me if user_gid == "me" else user_gid)
        return self._one(request, self.state.render_user(user))

    @route("GET", BASE + "/workspaces")
    def get_workspaces(self, request: Request) -> Any:
        workspaces = list(self.state.workspaces.values())
        return self._page(request, workspaces, self._compact, self.state.render_workspace)

    @route("GET", BASE + "/workspaces/{workspace_gid}")
    def get_workspace(self, request: Request, workspace_gid: str) -> Any:
        workspace = self.state.find(self.state.workspaces, workspace_gid)
        return self._one(request, self.state.render_workspace(workspace))

    @route("GET", BASE + "/projects")
    def get_projects(self, request: Request) -> Any:
        workspace = request.arg("workspace") or None
        if workspace is not None:
            self.state.find(self.state.workspaces, workspace, "workspace")
        return self._projects(request, workspace)

    @route("GET", BASE + "/workspaces/{workspace_gid}/projects")
    def get_workspace_projects(self, request: Request, workspace_gid: str) -> Any:
        return self._projects(request, self.state.find(self.state.workspaces, workspace_gid)["gid"])

    def _projects(self, request: Request, workspace: str | None) -> JSON:
        archived = _bool_arg(request.arg("archived"))
        projects = [
            p
            for p in self.state.projects.values()
            if workspace in (None, p["workspace"]) and archived in (None, p["archived"])
        ]
        return self._page(request, projects, self._compact, self.state.render_project)

    @route("GET", BASE + "/projects/{project_gid}")
    def get_project(self, request: Request, project_gid: str) -> Any:
        return self._one(
            request, self.state.render_project(self.state.find(self.state.projects, project_gid))
        )

    @route("GET", BASE + "/projects/{project_gid}/sections")
    def get_sections(self, request: Request, project_gid: str) -> Any:
        project = self.state.find(self.state.projects, project_gid)
        sections = [self.state.sections[g] for g in self.state.project_sections[project["gid"]]]
        return self._page(request, sections, self._compact, self.state.render_section)

    @route("GET", BASE + "/sections/{section_gid}")
    def get_section(self, request: Request, section_gid: str) -> Any:
        return self._one(
            request, self.state.render_section(self.state.find(self.state.sections, section_gid))
        )

    @route("POST", BASE + "/sections/{section_gid}/addTask")
    def add_task_to_section(self, request: Request, section_gid: str) -> Any:
        section = self.state.find(self.state.sections, section_gid)
        data = self._data(request)
        task = self.state.task(data.get("task"), "task")
        before, after = gid_of(data.get("insert_before")), gid_of(data.get("insert_after"))
        self.state.move_task(task, section["gid"], self._actor(request), before=before, after=after)
        return {"data": {}}

    # ---- tasks --------------------------------------------------------------------------------------

    @route("GET", BASE + "/tasks")
    def get_tasks(self, request: Request) -> Any:
        tasks = self._tasks_for(request)
        since = request.arg("modified_since")
        if since:
            moment = parse_time(since, "modified_since")
            tasks = [t for t in tasks if t.modified_at >= moment]
        return self._task_page(request, tasks)

    def _tasks_for(self, request: Request) -> list[Task]:
        """GET /tasks needs exactly one container: a project, a section, a tag, or assignee + workspace."""
        given = {name: request.arg(name) for name in ("project", "section", "tag", "assignee", "workspace")}
        containers = [n for n in ("project", "section", "tag") if given[n]]
        if given["assignee"] or given["workspace"]:
            containers.append("assignee")
        if len(containers) != 1 or (
            containers == ["assignee"] and not (given["assignee"] and given["workspace"])
        ):
            raise asana_error(400, TASK_FILTER_MESSAGE)
        state = self.state
        if given["project"]:
            project = state.find(state.projects, given["project"], "project")["gid"]
            return [state.tasks[g] for g in state.project_tasks(project)]
        if given["section"]:
            section = state.find(state.sections, given["section"], "section")["gid"]
            return [state.tasks[g] for g in state.section_tasks[section]]
        if given["tag"]:
            tag = state.find(state.tags, given["tag"], "tag")["gid"]
            return [t for t in state.tasks.values() if tag in t.tags]
        assignee = state.me if given["assignee"] == "me" else given["assignee"]
        return [
            t for t in state.tasks.values() if t.assignee == assignee and t.workspace == given["workspace"]
        ]

    def _task_page(self, request: Request, tasks: list[Task]) -> JSON:
        since = request.arg("completed_since")
        if since == "now":
            tasks = [t for t in tasks if not t.completed]
        elif since:
            moment = parse_time(since, "completed_since")
            tasks = [t for t in tasks if not t.completed or (t.completed_at or moment) >= moment]
        return self._page(request, tasks, self._compact, self.state.render_task)

    @route("GET", BASE + "/projects/{project_gid}/tasks")
    def get_project_tasks(self, request: Request, project_gid: str) -> Any:
        project = self.state.find(self.state.projects, project_gid)["gid"]
        return self._task_page(request, [self.state.tasks[g] for g in self.state.project_tasks(project)])

    @route("GET", BASE + "/sections/{section_gid}/tasks")
    def get_section_tasks(self, request: Request, section_gid: str) -> Any:
        section = self.state.find(self.state.sections, section_gid)["gid"]
        return self._task_page(request, [self.state.tasks[g] for g in self.state.section_tasks[section]])

    @route("GET", BASE + "/tags/{tag_gid}/tasks")
    def get_tag_tasks(self, request: Request, tag_gid: str) -> Any:
        tag = self.state.find(self.state.tags, tag_gid)["gid"]
        return self._task_page(request, [t for t in self.state.tasks.values() if tag in t.tags])

    @route("GET", BASE + "/tasks/{task_gid}")
    def get_task(self, request: Request, task_gid: str) -> Any:
        return self._one(request, self.state.render_task(self.state.task(task_gid)))

    @route("PUT", BASE + "/tasks/{task_gid}")
    def update_task(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        self.state.update_task(task, self._data(request), self._actor(request))
        return self._one(request, self.state.render_task(task))

    @route("DELETE", BASE + "/tasks/{task_gid}")
    def delete_task(self, request: Request, task_gid: str) -> Any:
        self.state.delete_task(self.state.task(task_gid), self._actor(request))
        return {"data": {}}

    @route("GET", BASE + "/tasks/{task_gid}/subtasks")
    def get_subtasks(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        return self._task_page(request, [self.state.tasks[g] for g in self.state.subtasks.get(task.gid, [])])

    @route("POST", BASE + "/tasks/{task_gid}/setParent")
    def set_parent(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        data = self._data(request)
        if "parent" not in data:
            raise asana_error(400, "parent: Missing input")
        placement: JSON = {k: data[k] for k in ("insert_before", "insert_after") if k in data}
        self.state.set_parent(task, data["parent"], placement, self._actor(request))
        return self._one(request, self.state.render_task(task))

    @route("GET", BASE + "/tasks/{task_gid}/dependencies")
    def get_dependencies(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        return self._task_page(request, [self.state.tasks[g] for g in task.dependencies])

    @route("GET", BASE + "/tasks/{task_gid}/dependents")
    def get_dependents(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        return self._task_page(
            request, [self.state.tasks[g] for g in self.state.dependents.get(task.gid, [])]
        )

    @route("POST", BASE + "/tasks/{task_gid}/addDependencies")
    def add_dependencies(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        for blocker in self._gids(self._data(request), "dependencies"):
            self.state.add_dependency(task, blocker, self._actor(request))
        return {"data": {}}

    @route("POST", BASE + "/tasks/{task_gid}/removeDependencies")
    def remove_dependencies(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        for blocker in self._gids(self._data(request), "dependencies"):
            self.state.remove_dependency(task, blocker, self._actor(request))
        return {"data": {}}

    @staticmethod
    def _gids(data: JSON, param: str) -> list[str]:
        values = data.get(param)
        if not isinstance(values, list) or not values:
            raise asana_error(400, f"{param}: Missing input")
        return [str(gid_of(v)) for v in values]

    @route("GET", BASE + "/tasks/{task_gid}/stories")
    def get_stories(self, request: Request, task_gid: str) -> Any:
        stories = self.state.stories.get(self.state.task(task_gid).gid, [])
        return self._page(request, stories, self.state.story_compact, self.state.render_story)

    @route("POST", BASE + "/tasks/{task_gid}/stories")
    def create_story(self, request: Request, task_gid: str) -> Any:
        """createStoryForTask: a comment (`text` or `html_text`) by the caller; 201 with the story."""
        task = self.state.task(task_gid)
        data = self._data(request)
        text = data.get("text") or data.get("html_text")
        if not isinstance(text, str) or not text.strip():
            raise asana_error(400, "text: Missing input")
        story = self.state.add_comment(task, text, self._actor(request))
        return Response(201, self._one(request, self.state.render_story(story)))

    @route("DELETE", BASE + "/stories/{story_gid}")
    def delete_story(self, request: Request, story_gid: str) -> Any:
        """deleteStory: only a comment its author wrote can be deleted (403 otherwise)."""
        for task_gid, stories in self.state.stories.items():
            found = next((x for x in stories if x["gid"] == story_gid), None)
            if found is None:
                continue
            if found["type"] != "comment" or found["created_by"] != self.state.ref(self._actor(request)):
                raise asana_error(403, "You do not have permission to delete this story.")
            self.state.stories[task_gid] = [x for x in stories if x is not found]
            self.state.touch(self.state.task(task_gid))
            return {"data": {}}
        raise asana_error(404, "story: Unknown object")

    @route("GET", BASE + "/tasks/{task_gid}/tags")
    def get_task_tags(self, request: Request, task_gid: str) -> Any:
        tags = [self.state.tags[g] for g in self.state.task(task_gid).tags]
        return self._page(request, tags, self._compact, self.state.render_tag)

    @route("POST", BASE + "/tasks/{task_gid}/addProject")
    def add_project(self, request: Request, task_gid: str) -> Any:
        task = self.state.task(task_gid)
        data = self._data(request)
        placement: JSON = {k: data[k] for k in ("section", "insert_before", "insert_after") if k in data}
        self.state.add_to_project(task, data.get("project"), placement, self._actor(request))
        return {"data": {}}

    @route("POST", BASE + "/tasks/{task_gid}/addTag")
    def add_tag(self, request: Request, task_gid: str) -> Any:
        self.state.add_tag(self.state.task(task_gid), self._data(request).get("tag"), self._actor(request))
        return {"data": {}}

    @route("POST", BASE + "/tasks/{task_gid}/removeTag")
    def remove_tag(self, request: Request, task_gid: str) -> Any:
        self.state.remove_tag(self.state.task(task_gid), self._data(request).get("tag"), self._actor(request))
        return {"data": {}}

    # ---- tags and custom fields ---------------------------------------------------------------------

    @route("GET", BASE + "/tags")
    def get_tags(self, request: Request) -> Any:
        workspace = request.arg("workspace") or None
        tags = [t for t in self.state.tags.values() if workspace in (None, t["workspace"])]
        return self._page(request, tags, self._compact, self.state.render_tag)

    @route("GET", BASE + "/workspaces/{workspace_gid}/tags")
    def get_workspace_tags(self, request: Request, workspace_gid: str) -> Any:
        workspace = self.state.find(self.state.workspaces, workspace_gid)["gid"]
        tags = [t for t in self.state.tags.values() if t["workspace"] == workspace]
        return self._page(request, tags, self._compact, self.state.render_tag)

    @route("GET", BASE + "/tags/{tag_gid}")
    def get_tag(self, request: Request, tag_gid: str) -> Any:
        return self._one(request, self.state.render_tag(self.state.find(self.state.tags, tag_gid)))

    @route("DELETE", BASE + "/tags/{tag_gid}")
    def delete_tag(self, request: Request, tag_gid: str) -> Any:
        """The tag goes, and with it from every task carrying it."""
        self.state.delete_tag(self.state.find(self.state.tags, tag_gid)["gid"])
        return {"data": {}}

    @route("POST", BASE + "/tags")
    def create_tag(self, request: Request) -> Any:
        return self._created_tag(request, self.state.create_tag(self._data(request), None))

    @route("POST", BASE + "/workspaces/{workspace_gid}/tags")
    def create_workspace_tag(self, request: Request, workspace_gid: str) -> Any:
        workspace = self.state.find(self.state.workspaces, workspace_gid)["gid"]
        return self._created_tag(request, self.state.create_tag(self._data(request), workspace))

    def _created_tag(self, request: Request, tag: JSON) -> Response:
        body = self._one(request, self.state.render_tag(tag))
        return Response(201, body, {"Location": f"{BASE}/tags/{tag['gid']}"})

    @route("GET", BASE + "/projects/{project_gid}/custom_field_settings")
    def get_custom_field_settings(self, request: Request, project_gid: str) -> Any:
        project = self.state.find(self.state.projects, project_gid)

        def render(setting: JSON) -> JSON:
            return self.state.render_setting(project, setting)

        return self._page(request, project["settings"], render, render)

    @route("GET", BASE + "/custom_fields/{custom_field_gid}")
    def get_custom_field(self, request: Request, custom_field_gid: str) -> Any:
        definition = self.state.find(self.state.custom_fields, custom_field_gid)
        return self._one(request, self.state.render_field(definition))

    @route("GET", BASE + "/workspaces/{workspace_gid}/custom_fields")
    def get_workspace_custom_fields(self, request: Request, workspace_gid: str) -> Any:
        workspace = self.state.find(self.state.workspaces, workspace_gid)["gid"]
        fields = [f for f in self.state.custom_fields.values() if f["workspace"] == workspace]
        return self._page(request, fields, self._compact, self.state.render_field)

    # ---- time periods and goals -------------------------------------------------------------------------

    @route("GET", BASE + "/time_periods")
    def get_time_periods(self, request: Request) -> Any:
        workspace = self.state.find(self.state.workspaces, request.arg("workspace") or None, "workspace")
        start_on, end_on = request.arg("start_on"), request.arg("end_on")
        for name, value in (("start_on", start_on), ("end_on", end_on)):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise asana_error(400, f"{name}: Not a valid date: {value}") from None
        periods = [
            dict(period)
            for gid, period in self.state.time_periods.items()
            if self.state.period_info[gid]["workspace"] == workspace["gid"]
            and (not start_on or (period["start_on"] or "") >= start_on)
            and (not end_on or (period["end_on"] or "9999") <= end_on)
        ]
        return self._page(request, periods, dict, lambda p: self.state.render_period(p["gid"]))

    @route("GET", BASE + "/time_periods/{time_period_gid}")
    def get_time_period(self, request: Request, time_period_gid: str) -> Any:
        period = self.state.find(self.state.time_periods, time_period_gid)
        return self._one(request, self.state.render_period(period["gid"]))

    @route("GET", BASE + "/goals")
    def get_goals(self, request: Request) -> Any:
        return self._page(request, self._goals_for(request), self._compact, self.state.render_goal)

    def _goals_for(self, request: Request) -> list[JSON]:
        workspace, team = request.arg("workspace"), request.arg("team")
        supported = request.arg("project") or request.arg("task") or request.arg("portfolio")
        if not (workspace or team or supported):
            raise asana_error(400, "workspace: Missing input (or team, portfolio, project or task)")
        goals = [g for g in self.state.goals.values() if not workspace or g["workspace"] == workspace]
        if team:
            goals = []  # the emulator has no teams, so no team goals
        if supported:
            goals = [g for g in goals if g["gid"] in self.state.parent_goals(supported)]
        periods = set(request.args("time_periods")) | set(request.args("time_period"))
        if periods:
            goals = [g for g in goals if g["time_period"] in periods]
        level = _bool_arg(request.arg("is_workspace_level"))
        return [g for g in goals if level in (None, g["is_workspace_level"])]

    @route("POST", BASE + "/goals")
    def create_goal(self, request: Request) -> Any:
        goal = self.state.create_goal(self._data(request), self._actor(request))
        body = self._one(request, self.state.render_goal(goal))
        return Response(201, body, {"Location": f"{BASE}/goals/{goal['gid']}"})

    @route("GET", BASE + "/goals/{goal_gid}")
    def get_goal(self, request: Request, goal_gid: str) -> Any:
        return self._one(request, self.state.render_goal(self.state.find(self.state.goals, goal_gid)))

    @route("DELETE", BASE + "/goals/{goal_gid}")
    def delete_goal(self, request: Request, goal_gid: str) -> Any:
        goal = self.state.find(self.state.goals, goal_gid)
        self.state.delete_goal(goal, self._actor(request))
        return {"data": {}}

    @route("POST", BASE + "/status_updates")
    def create_status_update(self, request: Request) -> Any:
        """createStatusForObject: 201 with the status update."""
        update = self.state.create_status_update(self._data(request), self._actor(request))
        return Response(201, self._one(request, self.state.render_status(update)))

    @route("GET", BASE + "/status_updates")
    def get_status_updates(self, request: Request) -> Any:
        """getStatusesForObject: the parent's status updates (compact, or `opt_fields`), paged."""
        found = self.state.statuses_of(request.arg("parent"))
        return self._page(request, found, self.state.status_compact, self.state.render_status)

    @route("GET", BASE + "/goals/{goal_gid}/parentGoals")
    def get_parent_goals(self, request: Request, goal_gid: str) -> Any:
        goal = self.state.find(self.state.goals, goal_gid)
        parents = [self.state.goals[g] for g in self.state.parent_goals(goal["gid"]) if g in self.state.goals]
        return self._page(request, parents, self._compact, self.state.render_goal)

    @route("POST", BASE + "/goals/{goal_gid}/addSupportingRelationship")
    def add_supporting(self, request: Request, goal_gid: str) -> Any:
        goal = self.state.find(self.state.goals, goal_gid)
        relation = self.state.add_supporting(goal, self._data(request), self._actor(request))
        return self._one(request, self.state.render_relationship(relation))

    @route("POST", BASE + "/goals/{goal_gid}/removeSupportingRelationship")
    def remove_supporting(self, request: Request, goal_gid: str) -> Any:
        goal = self.state.find(self.state.goals, goal_gid)
        self.state.remove_supporting(goal, self._data(request), self._actor(request))
        return {"data": {}}

    @route("GET", BASE + "/goal_relationships")
    def get_goal_relationships(self, request: Request) -> Any:
        goal = self.state.find(self.state.goals, request.arg("supported_goal"), "supported_goal")["gid"]
        subtype = request.arg("resource_subtype") or None
        relations = [
            r
            for r in self.state.relationships.values()
            if r["supported_goal"] == goal and subtype in (None, r["resource_subtype"])
        ]
        return self._page(request, relations, self.state.relationship_compact, self.state.render_relationship)

    @route("GET", BASE + "/goal_relationships/{goal_relationship_gid}")
    def get_goal_relationship(self, request: Request, goal_relationship_gid: str) -> Any:
        relation = self.state.find(self.state.relationships, goal_relationship_gid)
        return self._one(request, self.state.render_relationship(relation))

    # ---- attachments ----------------------------------------------------------------------------------

    @route("POST", BASE + "/attachments")
    def create_attachment(self, request: Request) -> Any:
        attachment = self.state.add_attachment(self._form(request), self._actor(request))
        fields = parse_opt_fields(request.args("opt_fields"))
        if fields is not None:
            return {"data": select_fields(self.state.render_attachment(attachment), fields)}
        return {"data": self.state.ref(attachment["gid"])}  # Asana answers with the compact record

    @route("GET", BASE + "/attachments")
    def get_attachments(self, request: Request) -> Any:
        parent = self.state.task(request.arg("parent"), "parent").gid
        attachments = [a for a in self.state.attachments.values() if a["parent"] == parent]
        return self._page(request, attachments, self._compact, self.state.render_attachment)

    @route("GET", BASE + "/attachments/{attachment_gid}")
    def get_attachment(self, request: Request, attachment_gid: str) -> Any:
        attachment = self.state.find(self.state.attachments, attachment_gid)
        return self._one(request, self.state.render_attachment(attachment))

    @route("DELETE", BASE + "/attachments/{attachment_gid}")
    def delete_attachment(self, request: Request, attachment_gid: str) -> Any:
        attachment = self.state.find(self.state.attachments, attachment_gid)
        self.state.delete_attachment(attachment, self._actor(request))
        return {"data": {}}

    # ---- events -----------------------------------------------------------------------------------------

    @route("GET", BASE + "/events")
    def get_events(self, request: Request) -> Any:
        resource = request.arg("resource")
        if not resource:
            raise asana_error(400, "resource: Missing input")
        if self.state.kind_of(resource) not in ("task", "project", "goal"):
            raise asana_error(400, f"resource: Not a recognized ID: {resource}")
        now = self.clock.now()
        token = self._sync_tokens.get(request.arg("sync") or "")
        if (
            token is None
            or token.resource != resource
            or now - token.issued > timedelta(seconds=self.sync_ttl)
        ):
            fresh = self._issue_sync(resource, len(self.state.events), now)
            raise HTTPError(412, {"errors": [{"message": SYNC_MESSAGE, "help": HELP}], "sync": fresh})
        pending = [e for e in self.state.events[token.position :] if resource in e.scopes]
        sent = pending[:EVENTS_PER_CALL]
        has_more = len(pending) > EVENTS_PER_CALL
        position = sent[-1].seq if has_more else len(self.state.events)
        return {
            "data": [copy.deepcopy(e.body) for e in sent],
            "sync": self._issue_sync(resource, position, now),
            "has_more": has_more,
        }

    def _issue_sync(self, resource: str, position: int, now: datetime) -> str:
        token = secrets.token_hex(16)
        self._sync_tokens[token] = SyncToken(resource, position, now)
        return token

    # ---- batch ------------------------------------------------------------------------------------------

    @route("POST", BASE + "/batch")
    def batch(self, request: Request) -> Any:
        actions = self._data(request).get("actions")
        if not isinstance(actions, list) or not actions:
            raise asana_error(400, "actions: Missing input")
        if len(actions) > MAX_BATCH_ACTIONS:
            raise asana_error(
                400, f"actions: At most {MAX_BATCH_ACTIONS} actions are allowed, got {len(actions)}"
            )
        # The server charged this request once; each further action is one more against the budget,
        # and if any would go over, the whole batch is refused.
        for _ in range(len(actions) - 1):
            limited = self.faults.vendor_limit(request, self)
            if limited is not None:
                return limited
        return {"data": [self._run_action(request, action) for action in actions]}

    def _run_action(self, request: Request, action: Any) -> JSON:
        try:
            sub, handler, params = self._action_request(request, action)
            result = handler(sub, **params)
        except HTTPError as exc:
            body = exc.body if exc.body is not None else self.error_body(exc.status, "Error")
            return {"status_code": exc.status, "headers": dict(exc.headers), "body": body}
        if isinstance(result, Response):
            return {"status_code": result.status, "headers": dict(result.headers), "body": result.body}
        return {"status_code": 200, "headers": {}, "body": result}

    def _action_request(self, request: Request, action: Any) -> tuple[Request, Handler, dict[str, str]]:
        if not isinstance(action, dict) or not all(
            isinstance(action.get(k), str) for k in ("relative_path", "method")
        ):
            raise asana_error(400, "relative_path, method: Missing input")
        method = action["method"].upper()
        relative, _, raw_query = action["relative_path"].partition("?")
        path = f"{BASE}/{relative.strip('/')}"
        if path == f"{BASE}/batch" or (method == "POST" and path == f"{BASE}/attachments"):
            raise asana_error(400, f"{method} {relative}: not allowed in a batch request")
        found = self.match(method, path)
        if found is None:
            raise self.not_found(request)
        query = parse_qs(raw_query, keep_blank_values=True)
        data = action.get("data") or {}
        if method == "GET":
            query.update({k: [str(v)] for k, v in data.items()})
        options = action.get("options") or {}
        query.update({k: [str(options[k])] for k in ("limit", "offset") if k in options})
        if options.get("fields"):
            query["opt_fields"] = [",".join(options["fields"])]
        body = b"" if method == "GET" else json.dumps({"data": data}).encode()
        sub = replace(request, method=method, path=path, query=query, body=body, params=found[1])
        return sub, found[0].handler, found[1]

    # ---- the control API's edits ------------------------------------------------------------------------

    def edit(self, change: JSON) -> Any:
        """Apply a change as a user would make it in Asana; return the changed object.

        Ops: create_task {project, section?, name, subtype?, parent?, notes?, due_on?, completed?,
        custom_fields?, tags?}, move_task {task, section, insert_before?, insert_after?}, update_task
        {task, fields}, complete_task {task, completed?}, delete_task {task}, add_tag / remove_tag
        {task, tag (gid or name)}, set_custom_field {task, field (gid or name), value (enum: option gid
        or name)}, add_dependency / remove_dependency {task, blocked_by}, add_to_project {task, project,
        section?}, set_parent {task, parent (null: none), insert_before?, insert_after?}, add_comment
        {task, text}, create_section {project, name}, create_tag {name, color?}, create_goal {name,
        time_period?, metric?, parent?, owner?, status?}, update_goal {goal, fields},
        add_supporting / remove_supporting {goal, supporting, contribution_weight?}. `by` names the user
        making the change (default: the token's user).
        """
        edits: dict[str, Callable[[JSON, str], Any]] = {
            "create_task": self._edit_create_task,
            "move_task": self._edit_move_task,
            "update_task": self._edit_update_task,
            "complete_task": self._edit_complete_task,
            "delete_task": self._edit_delete_task,
            "add_tag": self._edit_add_tag,
            "remove_tag": self._edit_remove_tag,
            "set_custom_field": self._edit_set_custom_field,
            "add_dependency": self._edit_add_dependency,
            "remove_dependency": self._edit_remove_dependency,
            "add_to_project": self._edit_add_to_project,
            "set_parent": self._edit_set_parent,
            "add_comment": self._edit_add_comment,
            "create_section": self._edit_create_section,
            "create_tag": self._edit_create_tag,
            "create_goal": self._edit_create_goal,
            "update_goal": self._edit_update_goal,
            "add_supporting": self._edit_add_supporting,
            "remove_supporting": self._edit_remove_supporting,
        }
        op = str(change.get("op") or "")
        if op not in edits:
            raise HTTPError(400, {"error": f"unknown edit op {op!r}; one of {', '.join(sorted(edits))}"})
        actor = self.state.find(self.state.users, change.get("by") or self.state.me, "by")["gid"]
        return edits[op](change, actor)

    def _rendered(self, task: Task) -> JSON:
        return self.state.render_task(task)

    def _edit_create_task(self, change: JSON, actor: str) -> JSON:
        task = self.state.create_task(change, actor)
        for tag in change.get("tags") or []:
            self.state.add_tag(task, self._tag(tag, create=True), actor)
        return self._rendered(task)

    def _edit_move_task(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        section = self.state.find(self.state.sections, change.get("section"), "section")["gid"]
        before, after = gid_of(change.get("insert_before")), gid_of(change.get("insert_after"))
        self.state.move_task(task, section, actor, before=before, after=after)
        return self._rendered(task)

    def _edit_update_task(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.update_task(task, dict(change.get("fields") or {}), actor)
        return self._rendered(task)

    def _edit_complete_task(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.update_task(task, {"completed": bool(change.get("completed", True))}, actor)
        return self._rendered(task)

    def _edit_delete_task(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.delete_task(task, actor)
        return {"gid": task.gid, "deleted": True}

    def _tag(self, ref: Any, *, create: bool = False) -> str:
        """A tag by gid or by name; `create` makes a missing named tag, as typing a new tag name does."""
        gid = gid_of(ref)
        if gid in self.state.tags:
            return str(gid)
        named = next((g for g, t in self.state.tags.items() if t["name"] == ref), None)
        if named is None and create and isinstance(ref, str):
            named = self.state.create_tag({"name": ref}, self.state.default_workspace())["gid"]
        return named or self.state.find(self.state.tags, ref, "tag")["gid"]

    def _edit_add_tag(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.add_tag(task, self._tag(change.get("tag"), create=True), actor)
        return self._rendered(task)

    def _edit_remove_tag(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.remove_tag(task, self._tag(change.get("tag")), actor)
        return self._rendered(task)

    def _edit_set_custom_field(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        ref = change.get("field")
        definition = next((f for f in self.state.custom_fields.values() if f["name"] == ref), None)
        definition = definition or self.state.find(self.state.custom_fields, ref, "field")
        value = change.get("value")
        names = {o["name"]: o["gid"] for o in definition["enum_options"]}
        if definition["type"] == "enum":
            value = names.get(value, value)
        elif definition["type"] == "multi_enum" and isinstance(value, list):
            value = [names.get(v, v) for v in value]
        self.state.update_task(task, {"custom_fields": {definition["gid"]: value}}, actor)
        return self._rendered(task)

    def _edit_add_dependency(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.add_dependency(task, change.get("blocked_by"), actor)
        return self._rendered(task)

    def _edit_remove_dependency(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        self.state.remove_dependency(task, change.get("blocked_by"), actor)
        return self._rendered(task)

    def _edit_add_to_project(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        project = self.state.find(self.state.projects, change.get("project"), "project")["gid"]
        section = gid_of(change.get("section")) or self.state.first_section(project)
        self.state.move_task(task, section, actor)
        return self._rendered(task)

    def _edit_set_parent(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        placement: JSON = {k: change[k] for k in ("insert_before", "insert_after") if k in change}
        self.state.set_parent(task, change.get("parent"), placement, actor)
        return self._rendered(task)

    def _edit_add_comment(self, change: JSON, actor: str) -> JSON:
        task = self.state.task(change.get("task"), "task")
        return self.state.render_story(self.state.add_comment(task, str(change.get("text") or ""), actor))

    def _edit_create_section(self, change: JSON, actor: str) -> JSON:
        project = self.state.find(self.state.projects, change.get("project"), "project")["gid"]
        section = self.state.create_section(project, str(change.get("name") or "Untitled section"), actor)
        return self.state.render_section(section)

    def _edit_create_tag(self, change: JSON, actor: str) -> JSON:
        return self.state.render_tag(self.state.create_tag(change, self.state.default_workspace()))

    def _edit_create_goal(self, change: JSON, actor: str) -> JSON:
        goal = self.state.add_goal({k: v for k, v in change.items() if k not in ("op", "by", "gid")})
        self.state.event({goal["gid"]}, self.state.ref(goal["gid"]), "added", actor)
        parent = change.get("parent")
        if parent is not None:
            self.state.add_supporting(
                self.state.find(self.state.goals, parent, "parent"),
                {"supporting_resource": goal["gid"]},
                actor,
            )
        return self.state.render_goal(goal)

    def _edit_update_goal(self, change: JSON, actor: str) -> JSON:
        goal = self.state.find(self.state.goals, change.get("goal"), "goal")
        fields = dict(change.get("fields") or {})
        metric = fields.pop("metric", None)
        for name in ("name", "notes", "status", "due_on", "start_on"):
            if name in fields:
                goal[name] = fields.pop(name)
        if fields:
            raise asana_error(400, f"{', '.join(sorted(fields))}: Cannot be changed by this edit")
        if isinstance(metric, dict):
            goal["metric"] = self.state.normalise_metric({**(goal["metric"] or {}), **metric})
        self.state.event({goal["gid"]}, self.state.ref(goal["gid"]), "changed", actor)
        return self.state.render_goal(goal)

    def _edit_add_supporting(self, change: JSON, actor: str) -> JSON:
        goal = self.state.find(self.state.goals, change.get("goal"), "goal")
        raw = {
            "supporting_resource": change.get("supporting"),
            "contribution_weight": change.get("contribution_weight"),
        }
        return self.state.render_relationship(self.state.add_supporting(goal, raw, actor))

    def _edit_remove_supporting(self, change: JSON, actor: str) -> JSON:
        goal = self.state.find(self.state.goals, change.get("goal"), "goal")
        self.state.remove_supporting(goal, {"supporting_resource": change.get("supporting")}, actor)
        return self.state.render_goal(goal)
