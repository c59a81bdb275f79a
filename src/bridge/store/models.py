"""The normalised store's tables.

Every tracker item is keyed by `(source, remote_id)`: `source` is the tracker's name in the config (or
`config` for objectives and key results the admin defines), `remote_id` the tracker's own id, so three
trackers can hold the same numbers without clashing. `synced_at` moves only when a row's content changes.

(No `from __future__ import annotations` here: SQLModel reads these annotations at class creation.)
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from bridge.store.types import JSONList, UTCDateTime

CATEGORY_CHECK = "IN ('todo', 'in_progress', 'waiting', 'done')"


def _utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _category(nullable: bool = False) -> Any:
    return Field(default=None if nullable else "todo", sa_type=String(16), nullable=nullable)


class TeamRow(SQLModel, table=True):
    __tablename__ = "team"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    name: str
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class StatusNameRow(SQLModel, table=True):
    """A raw status's display name (Jira status, Trello list, Asana section), refreshed by every pull."""

    __tablename__ = "status_name"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    name: str
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ObjectiveRow(SQLModel, table=True):
    __tablename__ = "objective"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    title: str
    weight: float = 1.0
    url: str | None = None
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class KeyResultRow(SQLModel, table=True):
    __tablename__ = "key_result"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    objective_id: str = Field(max_length=255)
    title: str
    target: float | None = None
    current: float | None = None
    start: float = 0.0
    unit: str | None = Field(default=None, max_length=32)
    weight: float = 1.0
    url: str | None = None
    period_end: date | None = None
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class MilestoneRow(SQLModel, table=True):
    __tablename__ = "milestone"
    __table_args__ = (
        CheckConstraint(f"category {CATEGORY_CHECK}", name="ck_milestone_category"),
        Index("ix_milestone_team", "source", "team"),
    )

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    key: str = Field(max_length=255)
    title: str
    team: str | None = Field(default=None, max_length=255)
    value: float | None = None
    effort: float | None = None
    due: datetime | None = _utc()
    raw_status: str | None = Field(default=None, max_length=255)
    category: str = _category()
    created: datetime | None = _utc()
    updated: datetime | None = _utc()
    url: str | None = None
    deleted: bool = False
    watchers: int | None = None
    description: str | None = Field(default=None, sa_type=Text)
    labels: list[str] | None = Field(default=None, sa_type=JSONList)
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class MilestoneKeyResultRow(SQLModel, table=True):
    """A milestone moves a key result; `origin` says who said so (tracker, rule, suggested, confirmed)."""

    __tablename__ = "milestone_key_result"
    __table_args__ = (
        CheckConstraint("origin IN ('tracker', 'rule', 'suggested', 'confirmed')", name="ck_mkr_origin"),
        Index("ix_mkr_key_result", "kr_source", "kr_id"),
    )

    milestone_source: str = Field(primary_key=True, max_length=64)
    milestone_id: str = Field(primary_key=True, max_length=255)
    kr_source: str = Field(primary_key=True, max_length=64)
    kr_id: str = Field(primary_key=True, max_length=255)
    origin: str = Field(sa_type=String(16))
    score: float | None = None
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class TaskRow(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(f"category {CATEGORY_CHECK}", name="ck_task_category"),
        Index("ix_task_milestone", "source", "milestone_id"),
        Index("ix_task_team_work_type", "team", "work_type"),
    )

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    key: str = Field(max_length=255)
    title: str
    milestone_id: str | None = Field(default=None, max_length=255)
    team: str | None = Field(default=None, max_length=255)
    work_type: str | None = Field(default=None, max_length=255)
    raw_status: str | None = Field(default=None, max_length=255)
    category: str = _category()
    created: datetime | None = _utc()
    updated: datetime | None = _utc()
    started: datetime | None = _utc()
    done: datetime | None = _utc()
    url: str | None = None
    labels: list[str] | None = Field(default=None, sa_type=JSONList)
    deleted: bool = False
    watchers: int | None = None
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class StatusChangeRow(SQLModel, table=True):
    """One move between raw statuses; the history that cycle times come from.

    `remote_id` is the tracker's id for the change (Jira history id and item index, Trello action id,
    Asana story gid), so a re-read history is de-duplicated by it.
    """

    __tablename__ = "status_change"
    # No index besides the primary key: the table is written in bulk on every pull and read in bulk by
    # the analysis; an index by item cost a random B-tree insert per row (migration 0002).
    __table_args__ = (CheckConstraint(f"to_category {CATEGORY_CHECK}", name="ck_status_change_to"),)

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    item_id: str = Field(max_length=255)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    from_status: str | None = Field(default=None, max_length=255)
    to_status: str = Field(max_length=255)
    from_category: str | None = _category(nullable=True)
    to_category: str = _category()


class FlowFactRow(SQLModel, table=True):
    """A task's flow facts (`bridge.flow_facts`): what the analysis needs from its history, computed
    when the history arrives and written in the same transaction, so an analysis reads one row a task
    instead of its history. A task without a row (or with facts of another `version`) is analysed from
    its history until `bridge db backfill-facts` (or the daemon) writes the row."""

    __tablename__ = "flow_fact"

    source: str = Field(primary_key=True, max_length=64)
    item_id: str = Field(primary_key=True, max_length=255)
    version: int = Field(default=1, nullable=False)
    facts: str = Field(sa_type=Text, nullable=False)
    """The facts as compact JSON (times in microseconds since the epoch, UTC)."""
    computed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DataVersionRow(SQLModel, table=True):
    """The store's data version: one row, whose `version` grows by one in every transaction that
    changes what the analysis reads (pulled items, history, deletions, links). A stored analysis is
    valid for the version it was made from."""

    __tablename__ = "data_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_type=BigInteger, nullable=False)
    changed_at: datetime | None = _utc()


class AnalysisRow(SQLModel, table=True):
    """One stored analysis, shared by every tracker's cycle, every replica and `bridge report`: keyed by
    the data version it was made from, a digest of the config's analysis settings and the UTC day."""

    __tablename__ = "analysis"

    data_version: int = Field(primary_key=True, sa_type=BigInteger)
    settings_digest: str = Field(primary_key=True, max_length=64)
    day: str = Field(primary_key=True, max_length=10)
    """The UTC day (`YYYY-MM-DD`)."""
    flow: bool = Field(primary_key=True)
    """Whether it holds the flow-chart figures (the reports' analysis) or not (a sync cycle's)."""
    report: bytes = Field(sa_type=LargeBinary, nullable=False)
    document: str | None = Field(default=None, sa_type=Text)
    """The report's JSON document (`bridge report --json`), for the analyses with flow charts."""
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    seconds: float = 0.0
    """How long the analysis took."""
    pushed: str | None = Field(default=None, sa_type=Text)
    """The trackers (JSON list) a cycle pushed this analysis to without error: a quiet cycle that
    finds its tracker here has nothing to write."""


class ForecastHistoryRow(SQLModel, table=True):
    """One change of an open milestone's forecast: its P50 and P85 finish dates from `at` on, what the
    forecast stood on (open tasks, the teams' weekly throughput) and the reason it moved."""

    __tablename__ = "forecast_history"

    source: str = Field(primary_key=True, max_length=64)
    milestone_id: str = Field(primary_key=True, max_length=255)
    at: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    name: str = Field(default="", sa_type=Text)
    """How a person reads the milestone (key and title) when its forecast changed."""
    team: str = Field(default="", max_length=255)
    p50: datetime | None = _utc()
    p85: datetime | None = _utc()
    """The finish date at the configured percentile (85 by default)."""
    remaining: int = 0
    weekly_throughput: float | None = None
    reason: str = Field(default="", sa_type=Text)


class MilestoneCompletionRow(SQLModel, table=True):
    """Whether the bridge last saw a milestone done, how many completions of it it has seen, and when it
    saw the last one: what tells a milestone reached this cycle (announced once) from one done before."""

    __tablename__ = "milestone_completion"

    source: str = Field(primary_key=True, max_length=64)
    milestone_id: str = Field(primary_key=True, max_length=255)
    name: str = Field(default="", sa_type=Text)
    """How a person reads the milestone (key and title) when the bridge last saw it."""
    done: bool = False
    completions: int = 0
    """Completions seen, counting one the bridge found done when it started watching."""
    done_at: datetime | None = _utc()
    """When the bridge saw the last completion (None: never seen done)."""
    silent: bool = False
    """The last completion happened before the bridge watched the tracker: never announced."""
    seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    """When the bridge first saw the milestone."""


class CompletionWatchRow(SQLModel, table=True):
    """Since when the bridge watches a tracker's milestones for completions (its first cycle's baseline
    is recorded silently)."""

    __tablename__ = "completion_watch"

    source: str = Field(primary_key=True, max_length=64)
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DependencyRow(SQLModel, table=True):
    """`blocker_id` must finish before `blocked_id` can (Jira "blocks", Asana dependencies)."""

    __tablename__ = "dependency"
    __table_args__ = (Index("ix_dependency_blocked", "source", "blocked_id"),)

    source: str = Field(primary_key=True, max_length=64)
    blocker_id: str = Field(primary_key=True, max_length=255)
    blocked_id: str = Field(primary_key=True, max_length=255)
    synced_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class CursorRow(SQLModel, table=True):
    """How far a tracker's stream has been read; advanced in the same transaction as its rows."""

    __tablename__ = "cursor"

    source: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=64)
    value: str | None = None
    signpost: datetime | None = _utc()
    """The start of the cycle that set `value`; a cursor never passes it."""
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RunRow(SQLModel, table=True):
    """One cycle of one tracker, with its counts and error."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_source_started", "source", "started_at"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    source: str = Field(max_length=64)
    kind: str = Field(default="cycle", max_length=16)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = _utc()
    status: str = Field(default="running", max_length=16)
    items_pulled: int = 0
    items_skipped: int = 0
    writes_planned: int = 0
    writes_done: int = 0
    writes_failed: int = 0
    requests: int = 0
    error: str | None = Field(default=None, sa_type=Text)


class WrittenRow(SQLModel, table=True):
    """What the bridge last wrote into a tracker field, so it can tell its own writes from a user's."""

    __tablename__ = "written"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    field: str = Field(primary_key=True, max_length=128)
    value_hash: str = Field(max_length=64)
    value: str | None = Field(default=None, sa_type=Text)
    generation: int = 0
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class HeldRow(SQLModel, table=True):
    """What a tracker item holds of what the bridge manages, as the last pull (or read) showed it and the
    bridge's writes since left it: the state the push plans against (`bridge.store.held`).

    Values are JSON text. `links` is None until something showed the item's links (a pull page that does
    not show them leaves them as they were, with their `links_at`); `position`
    is None when unknown (a move the bridge made since: its new place is the tracker's to tell).
    """

    __tablename__ = "held"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    key: str = Field(max_length=255)
    fields: str = Field(sa_type=Text)
    labels: str = Field(sa_type=Text)
    links: str | None = Field(default=None, sa_type=Text)
    links_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When `links` were read: they hold while the tracker has not changed the item since."""
    duplicates: str = Field(default="[]", sa_type=Text)
    container: str | None = Field(default=None, max_length=255)
    position: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class LeaseRow(SQLModel, table=True):
    """Who may run a tracker's cycles: one row per tracker (or daemon-wide job), claimed by one replica
    at a time until `expires_at`, which its heartbeat pushes forward.

    `token` (the fencing token) grows by one on every claim and is never reset, so a replica that lost
    its lease can be refused when it tries to commit. Rows are never deleted; a released lease keeps
    its token with `holder` empty.
    """

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=255)
    """The replica holding the lease (`host:pid:random`), or None when free."""
    token: int = Field(default=0, sa_type=BigInteger, nullable=False)
    acquired_at: datetime | None = _utc()
    """When the current (or last) holder claimed it: the start of its cycle."""
    heartbeat_at: datetime | None = _utc()
    expires_at: datetime | None = _utc()
    finished_at: datetime | None = _utc()
    """When the last cycle run under a lease ended; older than `acquired_at` while one runs or was cut off."""
    succeeded: bool | None = None


class OkrDraftRow(SQLModel, table=True):
    """A drafted key result (its member milestones) or objective (its drafted key results), proposed by
    `bridge okr draft` and kept until adopted; the id is a digest of the members, so it stays while they do.
    """

    __tablename__ = "okr_draft"
    __table_args__ = (CheckConstraint("kind IN ('key_result', 'objective')", name="ck_okr_draft_kind"),)

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)
    position: int = 0
    """Its place in the last draft, highest value first."""
    title: str = Field(sa_type=Text)
    measure: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=32)
    parent_id: str | None = Field(default=None, max_length=32)
    """A key result's drafted objective."""
    members: list[str] | None = Field(default=None, sa_type=JSONList)
    """`source:remote_id` of the member milestones (key result) or the drafted key results (objective)."""
    value: float = 0.0
    share: float = 0.0
    reasons: list[str] | None = Field(default=None, sa_type=JSONList)
    terms: list[str] | None = Field(default=None, sa_type=JSONList)
    """The words the members share, most telling first (an adopted key result's keywords)."""
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    adopted_as: str | None = Field(default=None, max_length=320)
    """The key result it became (`config:KR2.3`, `asana:<goal gid>`), once adopted."""
    adopted_at: datetime | None = _utc()


class AnnouncedRow(SQLModel, table=True):
    """One announcement for one chat channel, recorded (committed) before its webhook POST is sent: a key
    found here is never sent to that channel again (at most once; a crash between recording and sending
    loses that message, since a webhook cannot be asked what it received). `outcome` is `sending` until
    the POST's answer is recorded: `sent`, or `failed` with the HTTP `status` (None when none came)."""

    __tablename__ = "announced"
    __table_args__ = (
        CheckConstraint("outcome IN ('sending', 'sent', 'failed')", name="ck_announced_outcome"),
    )

    key: str = Field(primary_key=True, max_length=255)
    channel: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)
    headline: str = Field(sa_type=Text)
    outcome: str = Field(default="sending", sa_type=String(16))
    status: int | None = None
    detail: str | None = Field(default=None, sa_type=Text)
    recorded_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = _utc()


class KeyResultMetRow(SQLModel, table=True):
    """Whether a key result's target was met when a cycle last looked, and how many times it has been
    (the baseline a tracker's first cycle takes counts a target already met as once, silently)."""

    __tablename__ = "key_result_met"

    source: str = Field(primary_key=True, max_length=64)
    remote_id: str = Field(primary_key=True, max_length=255)
    met: bool = False
    times: int = 0
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


metadata = SQLModel.metadata

TABLES = {
    "team": TeamRow,
    "status_name": StatusNameRow,
    "objective": ObjectiveRow,
    "key_result": KeyResultRow,
    "milestone": MilestoneRow,
    "milestone_key_result": MilestoneKeyResultRow,
    "task": TaskRow,
    "status_change": StatusChangeRow,
    "flow_fact": FlowFactRow,
    "data_version": DataVersionRow,
    "analysis": AnalysisRow,
    "dependency": DependencyRow,
    "cursor": CursorRow,
    "run": RunRow,
    "written": WrittenRow,
    "lease": LeaseRow,
    "okr_draft": OkrDraftRow,
    "announced": AnnouncedRow,
    "key_result_met": KeyResultMetRow,
}
