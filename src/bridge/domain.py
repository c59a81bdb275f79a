"""Plain, frozen values passed between the layers: connectors, store, analytics and planning.

Nothing here does I/O. Every datetime is timezone-aware UTC; constructors reject naive ones so that a
mistake surfaces where it is made, not three layers later.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.flow_facts import FlowFacts


class StatusCategory(enum.StrEnum):
    """The four categories every raw tracker status maps to, in stage order."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    DONE = "done"

    @property
    def started(self) -> bool:
        """Whether entering this category starts the cycle-time clock."""
        return self in _STARTED

    @property
    def label(self) -> str:
        """The category as a person reads it: `in progress`, not `in_progress`."""
        return self.value.replace("_", " ")


STATUS_CATEGORIES: tuple[str, ...] = tuple(category.value for category in StatusCategory)
_STARTED = frozenset({StatusCategory.IN_PROGRESS, StatusCategory.WAITING})


class LinkOrigin(enum.StrEnum):
    """Where a milestone's link to a key result came from."""

    TRACKER = "tracker"
    RULE = "rule"
    SUGGESTED = "suggested"
    CONFIRMED = "confirmed"


def require_utc(value: datetime, what: str = "datetime") -> datetime:
    """Return `value` converted to UTC; a naive datetime is a programming error."""
    if value.tzinfo is UTC:  # the common case, kept cheap: histories hold millions of these
        return value
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _utc_fields(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        # already UTC is the common case (a store load builds 100,000 tasks): no message, no setattr
        if value is not None and value.tzinfo is not UTC:
            object.__setattr__(obj, name, require_utc(value, f"{type(obj).__name__}.{name}"))


_PERSON_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
"""A key people say aloud (Jira's `PAY-1`), unlike an id that only finds the item (a Trello short link,
an Asana gid)."""


def display_name(key: str, title: str) -> str:
    """An item as a person reads it: `PAY-1 Title` where the key is one people use; the title alone where
    the key is only an id or is the title itself (a Trello label milestone); the key when untitled."""
    title = title.strip()
    if not title:
        return key
    if key == title or not is_person_key(key):
        return title
    return f"{key} {title}"


def is_person_key(key: str) -> bool:
    """A key people use and read (Jira's `PAY-1`), not only a tracker's id."""
    return _PERSON_KEY.fullmatch(key) is not None


@dataclass(frozen=True, slots=True)
class Ref:
    """A tracker item's identity: the tracker's name in the config and the item's id there."""

    source: str
    remote_id: str

    def __str__(self) -> str:
        return f"{self.source}:{self.remote_id}"


@dataclass(frozen=True, slots=True)
class Team:
    source: str
    remote_id: str
    name: str


@dataclass(frozen=True, slots=True)
class StatusName:
    """A raw status's display name: a Jira status, a Trello list or an Asana section, by its id."""

    source: str
    remote_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Objective:
    source: str
    remote_id: str
    title: str
    weight: float = 1.0
    url: str | None = None


@dataclass(frozen=True, slots=True)
class KeyResult:
    source: str
    remote_id: str
    objective_id: str
    title: str
    target: float | None = None
    current: float | None = None
    start: float = 0.0
    unit: str | None = None
    weight: float = 1.0
    url: str | None = None
    period_end: date | None = None
    """The last day of the period the key result is due by (its objective's `period_end` in the config,
    else `[okrs] period_end`); None when nothing says."""


@dataclass(frozen=True, slots=True)
class Milestone:
    source: str
    remote_id: str
    key: str
    title: str
    team: str | None = None
    value: float | None = None
    effort: float | None = None
    due: datetime | None = None
    raw_status: str | None = None
    category: StatusCategory = StatusCategory.TODO
    created: datetime | None = None
    updated: datetime | None = None
    url: str | None = None
    deleted: bool = False
    watchers: int | None = None
    """People the tracker emails on each edit of the item (Jira's watch count); None where unknown."""
    description: str | None = None
    """The tracker's description of the milestone as plain text (Jira's rich text flattened)."""
    labels: tuple[str, ...] = ()
    """The milestone's own labels or tags in the tracker."""

    def __post_init__(self) -> None:
        _utc_fields(self, "due", "created", "updated")


@dataclass(frozen=True, slots=True)
class Task:
    source: str
    remote_id: str
    key: str
    title: str
    milestone_id: str | None = None
    team: str | None = None
    work_type: str | None = None
    raw_status: str | None = None
    category: StatusCategory = StatusCategory.TODO
    created: datetime | None = None
    updated: datetime | None = None
    started: datetime | None = None
    done: datetime | None = None
    url: str | None = None
    labels: tuple[str, ...] = ()
    deleted: bool = False
    watchers: int | None = None
    """People the tracker emails on each edit of the item (Jira's watch count); None where unknown."""

    def __post_init__(self) -> None:
        created, updated, started, done = self.created, self.updated, self.started, self.done
        if (
            (created is None or created.tzinfo is UTC)
            and (updated is None or updated.tzinfo is UTC)
            and (started is None or started.tzinfo is UTC)
            and (done is None or done.tzinfo is UTC)
        ):
            return  # the common case, checked inline: a store load builds 100,000 tasks
        _utc_fields(self, "created", "updated", "started", "done")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One move of an item from one raw status to another, with both categories."""

    source: str
    remote_id: str
    item_id: str
    at: datetime
    from_status: str | None
    to_status: str
    from_category: StatusCategory | None
    to_category: StatusCategory

    def __post_init__(self) -> None:
        if self.at.tzinfo is not UTC:  # histories hold millions of these: the common case stays cheap
            object.__setattr__(self, "at", require_utc(self.at, "StatusChange.at"))


@dataclass(frozen=True, slots=True)
class Dependency:
    """`blocker_id` has to finish before `blocked_id` can."""

    source: str
    blocker_id: str
    blocked_id: str


@dataclass(frozen=True, slots=True)
class KeyResultLink:
    milestone: Ref
    key_result: Ref
    origin: LinkOrigin
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the analysis reads; each field is a list of domain values built from store rows."""

    milestones: Sequence[Milestone] = ()
    tasks: Sequence[Task] = ()
    status_changes: Sequence[StatusChange] = ()
    dependencies: Sequence[Dependency] = ()
    objectives: Sequence[Objective] = ()
    key_results: Sequence[KeyResult] = ()
    links: Sequence[KeyResultLink] = ()
    teams: Sequence[Team] = ()
    flow_facts: Mapping[tuple[str, str], FlowFacts] = dataclass_field(default_factory=dict)
    """Stored flow facts (`bridge.flow_facts.FlowFacts`) by task (source, remote_id); tasks without
    them are analysed from `status_changes`."""
    statuses: Sequence[StatusName] = ()
    """Raw statuses' display names; a status without one is shown by its id."""


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An item a connector could not read; logged with its key and counted, the page goes on."""

    source: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class RemotePage:
    """One page of a pull stream, stored in one transaction together with the cursor it reaches."""

    source: str
    stream: str
    milestones: Sequence[Milestone] = ()
    tasks: Sequence[Task] = ()
    status_changes: Sequence[StatusChange] = ()
    dependencies: Sequence[Dependency] = ()
    teams: Sequence[Team] = ()
    objectives: Sequence[Objective] = ()
    key_results: Sequence[KeyResult] = ()
    links: Sequence[KeyResultLink] = ()
    statuses: Sequence[StatusName] = ()
    skipped: Sequence[SkippedItem] = ()
    cursor: str | None = None
    held: Sequence[ItemState] = ()
    """What the page's items hold of what the bridge manages (fields, labels, place), as the page shows
    it: stored, so the push plans against it without reading the items again (`bridge.store.held`). A
    place must compare with places read at another time (Jira's Rank, Trello's `pos`; not an index in a
    listing, which moves when another item moves): else leave it None and the push reads it."""
    held_links: bool = False
    """Whether `held` carries the items' links too (a page that does not show them leaves them unknown:
    the push reads those of the items whose links matter)."""
    flow_facts: Mapping[str, FlowFacts | str] | None = None
    """The flow facts of the page's tasks that came with history, by task id, when the connector computed
    them while mapping the page (on its own thread, not the one storing pages); each equals `facts_of`
    of the task's history in `status_changes` (or is its JSON text, as the store keeps it, in a page that
    came from the pull's worker process). None: the store computes them from `status_changes`."""


class WriteKind(enum.StrEnum):
    """What a write does to a tracker item. Every kind is idempotent: applying it twice is applying it once.

    - `field`: set managed field `field` (`rank` or `okr`, the config's `write.rank_field`/`okr_field`)
      to `value` (a number or text; None clears it).
    - `label_add` / `label_remove`: add or remove label/tag `field` (always one carrying the bridge's
      prefix); for `label_add`, `value` is the colour to create it with where labels have colours.
    - `link`: add or update the link identified by `field` (a stable global id) to `value`, a `LinkTarget`;
      with `value` None, remove that link.
    - `order`: move the item within container `field` (backlog, list, project) to just after
      `value[0]` or, when that is None, just before `value[1]` (both `Ref`s or None).
    - `comment`: post comment `value` (its text) on the item unless one carrying marker `field` is
      already there (see `bridge.written.comment_marker`); with `value` None, delete the bridge's
      comments carrying that marker.
    """

    FIELD = "field"
    LABEL_ADD = "label_add"
    LABEL_REMOVE = "label_remove"
    LINK = "link"
    ORDER = "order"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """A clickable link from a tracker item to what explains it (a key result's page)."""

    global_id: str
    """Stable across cycles, so the same link is updated, never added twice."""
    url: str
    title: str


@dataclass(frozen=True, slots=True)
class ItemState:
    """What a tracker item holds now, of what the bridge may manage; read just before planning."""

    item: Ref
    key: str
    fields: Mapping[str, Any] = dataclass_field(default_factory=dict)
    """Managed fields by logical name (`rank`, `okr`) -> their current value (None when empty)."""
    labels: frozenset[str] = frozenset()
    """Every label or tag the item carries (the user's too: the plan only touches the bridge's)."""
    links: Mapping[str, LinkTarget] = dataclass_field(default_factory=dict)
    """The bridge's links on the item, by global id."""
    duplicates: frozenset[str] = frozenset()
    """Global ids of the bridge's links the item carries more than once (copies the bridge made after a
    lost answer, or two runs racing): the plan writes each again, which keeps one copy and removes the
    others."""
    container: str | None = None
    """Where the item is ordered (Jira board backlog, Trello list, Asana project/section)."""
    position: Any = None
    """Its place there, comparable within the container (Jira rank, Trello pos, Asana index)."""


@dataclass(frozen=True, slots=True)
class FieldWrite:
    """One change the bridge wants made to a tracker item (see `WriteKind`)."""

    item: Ref
    field: str
    value: Any
    previous: Any = None
    kind: WriteKind = WriteKind.FIELD
    reason: str = ""
    """Why: printed by `--dry-run` and `bridge explain`."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    write: FieldWrite
    ok: bool
    at: datetime
    error: str | None = None
    read_back: bool = False
    """The request's answer was lost, and `ok` is what reading the item back from the tracker showed."""

    def __post_init__(self) -> None:
        _utc_fields(self, "at")


@dataclass(frozen=True, slots=True)
class WriteCost:
    """What a set of writes costs a tracker and its users: shown by `bridge sync --dry-run`."""

    edits: int
    """Writes: each value, label, link or place changed."""
    items: int
    """Items changed (the measure `push.write_budget` limits)."""
    requests: int
    """Write requests the connector would send for them (Batch requests for Asana)."""
    emails: int = 0
    """Notification emails the tracker would send its users' watchers (Jira; 0 where none are sent)."""


@dataclass(frozen=True, slots=True)
class FlowTimes:
    """An item's start, finish, cycle time and active time (cycle time less time spent waiting)."""

    started: datetime
    finished: datetime
    cycle_time: timedelta
    active_time: timedelta


def unchecked_constructor(cls: type[Any]) -> Callable[..., Any]:
    """A constructor of the frozen, slotted dataclass `cls` that sets each field through its slot,
    positionally in field order, without `__init__` and `__post_init__`: for values already known to
    be what the checks would make of them. A frozen class's own `__init__` sets each field through
    `object.__setattr__`, three times as slow, which counts at a hundred thousand tasks (0.33 -> 0.12 s
    of CPU; `slot_builder` halves what is left). Only for loaders and computations that build values
    they have checked themselves."""
    return slot_builder(cls, [f.name for f in fields(cls)])


def slot_builder(
    cls: type[Any], names: Sequence[str], fixed: Mapping[str, Any] | None = None
) -> Callable[..., Any]:
    """A function of the slots `names` (positional, in that order) that makes a `cls` with those slots
    set, and those of `fixed` set to its values, and no other code run; other slots are left unset.

    The value is made as an unfrozen twin of `cls` (the same slots, on the same base) and given the
    class `cls` once its slots are set: plain attribute stores, which the interpreter specialises for
    slots, cost half of a call of each slot's setter (measured at 100,000 tasks of 17 fields: 0.070 ->
    0.033 s of CPU)."""
    base = cls.__base__ or object
    twin = type(
        f"_Unfrozen{cls.__name__}",
        (base,),
        {
            "__slots__": tuple(vars(cls).get("__slots__", ())),
            # both, or the inherited frozen one keeps each store on the slow path
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )
    fixed = fixed or {}
    scope: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    scope.update({f"_fixed_{name}": value for name, value in fixed.items()})
    values = {**{name: name for name in names}, **{name: f"_fixed_{name}" for name in fixed}}
    probe: Any = object.__new__(twin)
    probe.__class__ = cls  # a TypeError here, at import, for a layout the twin cannot share
    lines = [f"def build({', '.join(names)}):", "    made = _new(_twin)"]
    lines += [f"    made.{name} = {value}" for name, value in values.items()]
    lines += ["    made.__class__ = _cls", "    return made"]
    exec("\n".join(lines), scope)  # source made of the class's own slot names only
    built: Callable[..., Any] = scope["build"]
    return built


def flow_times(
    changes: Iterable[tuple[datetime, StatusCategory]],
    current: StatusCategory | None = None,
) -> FlowTimes | None:
    """Cycle time from the first entry into `in_progress` or `waiting` to the last entry into `done`.

    `changes` are (when, category entered) pairs in any order. `current` is the item's category now;
    when omitted, the last change decides. Items that never started, or are not done now, have none.
    Active time leaves out the time spent in `waiting` between start and finish.
    """
    ordered = sorted((require_utc(at, "change time"), category) for at, category in changes)
    if not ordered:
        return None
    now_category = current if current is not None else ordered[-1][1]
    if now_category is not StatusCategory.DONE:
        return None
    started = next((at for at, category in ordered if category.started), None)
    finished = next((at for at, category in reversed(ordered) if category is StatusCategory.DONE), None)
    if started is None or finished is None or finished < started:
        return None
    waiting = timedelta()
    for (at, category), (next_at, _) in itertools.pairwise(ordered):
        if category is StatusCategory.WAITING and at >= started and next_at <= finished:
            waiting += next_at - at
    cycle = finished - started
    return FlowTimes(started=started, finished=finished, cycle_time=cycle, active_time=cycle - waiting)


def categorise(
    raw: str | None, name: str | None, status_map: Mapping[str, StatusCategory]
) -> StatusCategory | None:
    """Map a raw status to its category: the id wins over the name (Jira names are localised)."""
    if raw is not None and raw in status_map:
        return status_map[raw]
    if name is not None:
        if name in status_map:
            return status_map[name]
        folded = name.casefold()
        for key, category in status_map.items():
            if key.casefold() == folded:
                return category
    return None
