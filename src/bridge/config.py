"""The admin's TOML file as pydantic models, validated with every problem reported at once.

Each problem is named by its dotted path (`trackers.acme-jira.status_map.Done`,
`okrs.objectives[1].key_results[0].id`). Tracker tables are validated by the model their connector
registers, so a third-party connector brings its own keys. Secrets never live in the file: the file
names environment variables (`token_env`, `url_env`), read only by commands that need them.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import json
import logging
import os
import re
import tomllib
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bridge.domain import StatusCategory
from bridge.durations import Duration
from bridge.errors import ConfigError, Problem

CONFIG_ENV = "BRIDGE_CONFIG"
DEFAULT_CONFIG = "bridge.toml"
CONFIG_SOURCE = "config"
"""The `source` of objectives and key results defined in the file rather than in a tracker."""

Loc = tuple[str | int, ...]
RankValue = Literal["score", "position", "band"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OVERRIDE_VARIABLE = re.compile(r"^BRIDGE_([A-Z0-9]+(?:_[A-Z0-9]+)*)__([A-Z0-9_]+)$")
"""`BRIDGE_<SECTION>__<KEY>`: a variable that overrides a scalar setting of a section (not of a tracker),
e.g. `BRIDGE_DAEMON__HTTP_HOST`. The double underscore keeps it apart from `BRIDGE_CONFIG` and the demo's
`BRIDGE_DEMO_*`, and the config may not name such a variable for a secret."""
_TRACKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SECRET_KEYS = ("token", "password", "secret", "api_key", "apikey", "key", "pat", "email", "username")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{_shorten(value)!r} is not an environment variable name (letters, digits and _); "
            "the file names the variable that holds a secret, never the secret itself"
        )
    if OVERRIDE_VARIABLE.match(value):
        raise ValueError(
            f"{value} has the form of a setting's override (BRIDGE_<SECTION>__<KEY>); name another variable"
        )
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{_shorten(value)!r} is not a valid id (letters, digits, '.', '_' and '-', at most 64)"
        )
    return value


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{_shorten(value)!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("the URL carries credentials; name them by environment variable instead")
    return value.rstrip("/")


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


EnvName = Annotated[str, AfterValidator(_env_name)]
Identifier = Annotated[str, AfterValidator(_identifier)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Section(BaseModel):
    """A table of the config: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        """Checks across fields, each yielded with the path (relative to this table) it concerns."""
        yield from ()


SectionT = TypeVar("SectionT", bound=Section)


class StoreConfig(Section):
    url: str | None = None
    """SQLAlchemy URL. Default: `sqlite:///bridge.db` beside the config file."""
    url_env: EnvName | None = None
    """Name of the variable holding the URL, for URLs that carry a password."""
    pool_size: int = Field(default=5, ge=1, le=100)
    echo: bool = False
    auto_upgrade: bool = True
    """Migrate the store to this version's schema when a command that writes it starts. When false, a
    store behind the code is refused until someone runs `bridge db upgrade` (after reviewing the SQL
    from `bridge db upgrade --sql`)."""

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.url is not None and self.url_env is not None:
            yield ("url",), "set url or url_env, not both"
        if self.url is not None:
            yield from ((("url",), message) for message in check_store_url(self.url, literal=True))

    def resolved_url(
        self, base_dir: Path, environ: Mapping[str, str] | None = None, source: str = "config"
    ) -> str:
        """The URL to connect to; relative SQLite paths are read from the config file's folder."""
        if self.url_env is not None:
            env = os.environ if environ is None else environ
            value = env.get(self.url_env)
            if not value:
                raise ConfigError(
                    source, [Problem("store.url_env", f"environment variable {self.url_env} is not set")]
                )
            messages = check_store_url(value, literal=False)
            if messages:
                raise ConfigError(source, [Problem(f"store.url_env ({self.url_env})", m) for m in messages])
            return value
        url = self.url or f"sqlite:///{DEFAULT_DATABASE}"
        return _anchor_sqlite(url, base_dir)


DEFAULT_DATABASE = "bridge.db"


def check_store_url(url: str, *, literal: bool) -> list[str]:
    """What is wrong with a store URL: unparsable, an unsupported database, or a password in the file."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return [f"{_shorten(url)!r} is not a database URL (sqlite:///path or postgresql+psycopg://...)"]
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return [f"{parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"]
    if literal and parsed.password:
        return ["the URL carries a password; put the whole URL in an environment variable named by url_env"]
    return []


def _anchor_sqlite(url: str, base_dir: Path) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(parsed.database)
    if not path.is_absolute():
        path = (base_dir / path).resolve()
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


class ScheduleConfig(Section):
    interval: Duration | None = None
    """How often a tracker's cycle runs (default 15m); or use `cron`."""
    cron: str | None = None
    """A five-field crontab expression, read in UTC."""
    jitter: Duration = timedelta(seconds=30)
    misfire_grace: Duration = timedelta(minutes=5)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.interval is not None and self.cron is not None:
            yield ("cron",), "set interval or cron, not both"
        if self.interval is not None and self.interval < timedelta(seconds=10):
            yield ("interval",), "must be at least 10s"
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone="UTC")
            except ValueError as exc:
                yield ("cron",), f"{self.cron!r} is not a crontab expression: {exc}"

    @property
    def effective_interval(self) -> timedelta | None:
        if self.cron is not None:
            return None
        return self.interval or timedelta(minutes=15)


class DaemonConfig(Section):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535)
    shutdown_timeout: Duration = timedelta(seconds=30)
    lease_ttl: Duration = timedelta(seconds=60)
    heartbeat: Duration = timedelta(seconds=15)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auth_token_env: EnvName | None = None
    """Name of the variable holding the bearer token that the status page, `/status.json`,
    `/report.html` and `/metrics` require; `/healthz` and `/readyz` stay open for probes."""
    max_connections: int = Field(default=32, ge=1, le=1000)
    """Connections the status server holds at once; when full, the one that has waited longest for its
    request headers is closed to make room, or the newcomer is answered 503 when all are being served."""
    header_timeout: Duration = timedelta(seconds=10)
    """How long a client may take to send its request line and headers before it is disconnected."""

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.heartbeat >= self.lease_ttl:
            yield ("heartbeat",), "must be shorter than lease_ttl, or a lease expires while its holder lives"
        if self.header_timeout <= timedelta(0):
            yield ("header_timeout",), "must be longer than zero"


class AnalyticsConfig(Section):
    rank_strategy: Literal["value", "wsjf", "okr"] = "value"
    rank_scope: Literal["team", "portfolio"] = "portfolio"
    window: Duration = timedelta(days=90)
    percentile: float = Field(default=85.0, gt=0, lt=100)
    bottleneck_ratio: float = Field(default=1.5, gt=1.0)
    bottleneck_min_sample: int = Field(default=5, ge=2)
    bottleneck_test: Literal["bootstrap", "mann_whitney"] = "bootstrap"
    bottleneck_confidence: float = Field(default=0.95, ge=0.5, lt=1.0)
    max_milestones_in_progress: int = Field(default=3, ge=1)
    bootstrap_runs: int = Field(default=2000, ge=100, le=100_000)
    """Resamples behind the bootstrap interval of `bottleneck_test = "bootstrap"`."""
    forecast_runs: int = Field(default=2000, ge=100, le=100_000)
    forecast_window: Duration = timedelta(days=90)
    """Daily throughput over this many days before now feeds the Monte Carlo forecasts."""
    seed: int = 0
    """Seeds the bootstrap and the forecasts, so the same store gives the same report."""
    at_risk_below: float = Field(default=0.85, gt=0, le=1)
    """A milestone is at risk when its chance of finishing by its due date is below this (0.85: the
    85th-percentile finish date is after the due date)."""
    suggest_min_score: float = Field(default=0.25, ge=0, le=1)
    """OKR suggestions below this text-similarity score (cosine, 0 to 1) are not shown."""
    slip_share: float = Field(default=0.2, gt=0, le=1)
    slip_window: Duration = timedelta(days=14)
    """A milestone is slipping when its P85 date moved later, within `slip_window`, by more than
    `slip_share` of the time it had left at the window's start."""


KR_STATUS_LABEL_KEYS = ("kr_on_track_label", "kr_at_risk_label", "kr_off_track_label")
"""The `[push]` keys naming the key-result status labels, in the order on track, at risk, off track."""


class PushConfig(Section):
    enabled: bool = True
    label_prefix: str = Field(default="mb-", min_length=1, max_length=20)
    bottleneck_label: NonEmpty = "bottleneck"
    at_risk_label: NonEmpty = "at-risk"
    bottleneck_color: str = "red"
    at_risk_color: str = "orange"
    slipping_label: NonEmpty = "slipping"
    slipping_color: str = "purple"
    needs_estimate_label: NonEmpty = "needs-estimate"
    """On open milestones missing the value or effort `analytics.rank_strategy` needs."""
    needs_estimate_color: str = "yellow"
    too_many_in_progress_label: NonEmpty = "too-many-in-progress"
    """On the lowest-ranked milestones in progress beyond `analytics.max_milestones_in_progress`."""
    too_many_in_progress_color: str = "blue"
    ageing_label: NonEmpty = "ageing"
    """On open tasks in progress longer than their work type's `analytics.percentile` cycle time."""
    ageing_color: str = "sky"
    kr_on_track_label: NonEmpty = "kr-on-track"
    """On a key-result item (Jira issue, Trello card) whose linked open milestones are forecast to finish
    by its period's end, at the 85th percentile (or whose target is met)."""
    kr_at_risk_label: NonEmpty = "kr-at-risk"
    """On a key-result item whose milestones finish by its period's end at the median, not at the 85th
    percentile."""
    kr_off_track_label: NonEmpty = "kr-off-track"
    """On a key-result item with a milestone whose median forecast is after its period's end."""
    kr_status_color: str = "sky"
    opt_out_label: NonEmpty = "bridge-ignore"
    write_budget: int = Field(default=500, ge=0)
    """Items changed per tracker and cycle (each with all its writes); the others wait for the next."""
    max_change_share: float = Field(default=0.5, gt=0, le=1)

    LABEL_KEYS: ClassVar[tuple[str, ...]] = (
        "bottleneck_label",
        "at_risk_label",
        "slipping_label",
        "needs_estimate_label",
        "too_many_in_progress_label",
        "ageing_label",
        *KR_STATUS_LABEL_KEYS,
    )
    """The keys naming the labels the bridge adds (each written with `label_prefix`)."""

    def managed_labels(self) -> dict[str, str]:
        """Every label the bridge adds, prefix included -> the key that names it."""
        return {self.label_prefix + getattr(self, key): key for key in self.LABEL_KEYS}

    def warning_labels(self) -> dict[str, str]:
        """The kind of each item warning (`bridge.analytics.coherence.ItemWarning`) -> its label."""
        return {
            "needs_estimate": self.label_prefix + self.needs_estimate_label,
            "too_many_in_progress": self.label_prefix + self.too_many_in_progress_label,
            "ageing": self.label_prefix + self.ageing_label,
        }

    def problems(self) -> Iterator[tuple[Loc, str]]:
        for name in ("label_prefix", *self.LABEL_KEYS, "opt_out_label"):
            if any(ch.isspace() for ch in getattr(self, name)):
                yield (name,), "labels cannot contain spaces (Jira rejects them)"
        seen: dict[str, str] = {}
        for key in self.LABEL_KEYS:
            label = self.label_prefix + getattr(self, key)
            if label.casefold() in seen:
                other = seen[label.casefold()]
                yield (key,), f"{label!r} is also {other}'s label: each label needs a name of its own"
            seen.setdefault(label.casefold(), key)
        managed = self.managed_labels()
        for label, key in managed.items():
            # Trackers compare label and tag names case-insensitively (Asana, Trello) or not (Jira);
            # the stricter reading keeps every tracker safe.
            if self.opt_out_label.casefold() == label.casefold():
                message = (
                    f"{self.opt_out_label!r} is the label the bridge itself adds ({key} with label_prefix); "
                    "every item it labels would be frozen (opted out of every later write); "
                    "choose a label the bridge does not manage"
                )
                yield ("opt_out_label",), message


class KeyResultConfig(Section):
    id: Identifier
    title: NonEmpty
    target: float | None = None
    current: float | None = None
    start: float = 0.0
    unit: str | None = None
    weight: float = Field(default=1.0, gt=0)
    url: HttpUrl | None = None
    """The OKR tool's page for this key result, used in links written back."""
    keywords: list[NonEmpty] = Field(default_factory=list)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.current is not None and self.target is None:
            yield ("target",), "is required when current is set (progress is current against target)"
        if self.target is not None and self.target == self.start:
            yield ("target",), "equals start, so progress cannot be measured"


class ObjectiveConfig(Section):
    id: Identifier
    title: NonEmpty
    weight: float = Field(default=1.0, gt=0)
    url: HttpUrl | None = None
    period_end: date | None = None
    """The last day of the period its key results are due by (`2027-03-31`); without it, `[okrs]`'s
    `period_end`. Key results get on track / at risk / off track from it."""
    key_results: list[KeyResultConfig] = Field(default_factory=list)


class OkrsConfig(Section):
    period_end: date | None = None
    """The period's last day for every objective that sets none (the key results of trackers too,
    except Asana goals, which carry their own time period)."""
    objectives: list[ObjectiveConfig] = Field(default_factory=list)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        seen: dict[str, str] = {}
        for i, objective in enumerate(self.objectives):
            here = f"okrs.objectives[{i}]"
            yield from _duplicate(seen, objective.id, here, ("objectives", i, "id"))
            if not objective.key_results:
                yield ("objectives", i, "key_results"), "an objective needs at least one key result"
            for j, key_result in enumerate(objective.key_results):
                where = f"{here}.key_results[{j}]"
                yield from _duplicate(seen, key_result.id, where, ("objectives", i, "key_results", j, "id"))

    def key_result_ids(self) -> list[str]:
        return [kr.id for objective in self.objectives for kr in objective.key_results]


AnnounceEvent = Literal["milestone_reached", "key_result_met"]
ANNOUNCE_EVENTS: tuple[str, ...] = get_args(AnnounceEvent)


def _all_events() -> list[AnnounceEvent]:
    return ["milestone_reached", "key_result_met"]


class AnnounceChannelConfig(Section):
    """One chat channel that hears of milestones reached and key results met, by incoming webhook."""

    name: Identifier
    """How reports and `bridge check` name the channel (`delivery`); the URL is never shown."""
    kind: Literal["slack", "teams", "generic"]
    """`slack` (Block Kit), `teams` (an Adaptive Card) or `generic` (a plain JSON document)."""
    url_env: EnvName
    """The environment variable holding the webhook's URL: the URL is a secret (whoever has it can post)."""
    events: list[AnnounceEvent] = Field(default_factory=lambda: _all_events())
    timeout: Duration = timedelta(seconds=10)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if not self.events:
            yield (
                ("events",),
                f"names no event; leave it out for all, or list some of {', '.join(ANNOUNCE_EVENTS)}",
            )
        seen: set[str] = set()
        for i, event in enumerate(self.events):
            if event in seen:
                yield ("events", i), f"{event!r} is listed twice"
            seen.add(event)
        if self.timeout <= timedelta(0):
            yield ("timeout",), "must be more than zero"


class AnnounceConfig(Section):
    """`[announce]`: the chat channels told of milestones reached and key results met."""

    channels: list[AnnounceChannelConfig] = Field(default_factory=list)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        seen: dict[str, str] = {}
        for i, channel in enumerate(self.channels):
            yield from _duplicate(seen, channel.name, f"announce.channels[{i}]", ("channels", i, "name"))

    def url_problem(
        self, channel: AnnounceChannelConfig, environ: Mapping[str, str] | None = None
    ) -> str | None:
        """What keeps `channel`'s webhook URL from being used here (its variable unset, empty or not an
        http(s) URL), naming the variable and never the value; None when it can be used."""
        env = os.environ if environ is None else environ
        value = env.get(channel.url_env)
        if value is None:
            return f"environment variable {channel.url_env} is not set"
        if not value.strip():
            return f"environment variable {channel.url_env} is empty"
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return f"environment variable {channel.url_env} does not hold an http(s) URL"
        return None


def _duplicate(seen: dict[str, str], ident: str, where: str, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if ident in seen:
        yield loc, f"{ident!r} is already used by {seen[ident]}"
    else:
        seen[ident] = where


MatchKey = Literal[
    "project", "board", "component", "label", "tag", "issue_type", "list", "section", "epic", "field"
]
MATCH_KEYS: tuple[str, ...] = get_args(MatchKey)


class MatchRule(Section):
    """Matches tracker items; every key given must match. Which keys apply depends on the tracker kind."""

    project: str | None = None
    board: str | None = None
    component: str | None = None
    label: str | None = None
    tag: str | None = None
    issue_type: str | None = None
    list: str | None = None
    section: str | None = None
    epic: str | None = None
    field: str | None = None
    """A custom field id or name; with `value`, the item matches when the field holds it."""
    value: str | float | bool | None = None

    def matchers(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in MATCH_KEYS if getattr(self, key) is not None}

    def rule_problems(self, allowed: tuple[str, ...], kind: str) -> Iterator[tuple[Loc, str]]:
        given = self.matchers()
        if not given:
            yield (), f"a rule needs at least one of {', '.join(allowed)}"
        for key in given:
            if key not in allowed:
                yield (key,), f"{kind} trackers cannot match on {key}; use one of {', '.join(allowed)}"
        if self.value is not None and self.field is None:
            yield ("value",), "needs field (the custom field whose value to compare)"


class TeamRule(MatchRule):
    name: NonEmpty


class WorkTypeRule(MatchRule):
    name: NonEmpty


class OkrRule(MatchRule):
    key_result: NonEmpty
    """A key result id from [okrs], or `TRACKER:ID` for one held in a tracker."""


class ValueFields(Section):
    value: str | None = None
    """The field holding a milestone's customer value (id or name)."""
    effort: str | None = None
    """The field holding a milestone's effort estimate (id or name)."""
    due: str | None = None
    """A field holding the due date, when not the tracker's own due date."""


class ForecastFields(Section):
    """The date fields that receive an open milestone's forecast finish dates (either may be omitted)."""

    p50: str | None = None
    """A date field for the P50 finish date (half the simulated futures finish by then)."""
    p85: str | None = None
    """A date field for the P85 finish date (the forecast's configured high percentile)."""


FIELD_KEYS: Mapping[str, str] = {
    "rank": "rank_field",
    "okr": "okr_field",
    "forecast_p50": "forecast_fields.p50",
    "forecast_p85": "forecast_fields.p85",
    "kr_status": "kr_status_field",
}
"""Logical field the bridge writes -> the `[trackers.X.write]` key (dotted) naming its tracker field."""
FORECAST_FIELDS: Mapping[str, str] = {"forecast_p50": "P50", "forecast_p85": "P85"}
"""The logical date fields of a milestone's forecast, with how a person names each date."""


class WriteConfig(Section):
    """What the bridge writes to this tracker; it touches nothing it is not told to manage."""

    rank_field: str | None = None
    """A field that receives the milestone's value rank: a number field, or a text (or select) field."""
    rank_value: RankValue | None = None
    """What the rank field holds: `score` (the number the ranking sorts by, which changes only with the
    milestone's own inputs), `position` (#1, #2, ...: every milestone below a moved one changes) or
    `band` (`rank_bands` cut-offs: "top 5", "top 10", "later"). Unset means `position`."""
    rank_bands: list[int] = Field(default_factory=lambda: [5, 10])
    """The band cut-offs of `rank_value = "band"`, in increasing positions."""
    okr_field: str | None = None
    """A text or URL field that receives the linked key result."""
    kr_status_field: str | None = None
    """A text (or select) field of key-result items that receives their status (`on track`, `at risk`,
    `off track`) instead of the status labels; never the field a key result's current value is read
    from."""
    okr_links: bool = True
    """Also add a clickable link (Jira remote link, Trello attachment, Asana goal relationship)."""
    labels: bool = True
    """Add and remove the bridge's labels (bottleneck, at-risk, slipping, needs-estimate,
    too-many-in-progress, ageing), by name (never another label with the prefix)."""
    native_order: bool = False
    """Reorder the backlog, board list or project by value rank."""
    comments: bool = True
    """Let the bridge post its comments here (each once, found again by its marker line). In Jira every
    comment notifies the issue's watchers by email: there is no quiet way to post one."""
    tasks_inherit: bool = False
    """Write the rank field on tasks too (they inherit their milestone's value); with `native_order`,
    tasks follow their milestone's place in the order either way."""
    forecast_fields: ForecastFields = Field(default_factory=ForecastFields)
    """Date fields receiving open milestones' forecast finish dates: `{p50 = "...", p85 = "..."}`."""
    forecast_min_move: Duration = timedelta(days=3)
    """A forecast date is written again only once it moved at least this far from the date the bridge
    last wrote (and at most once a UTC day per item), so a date wobbling by a day stays put."""

    def field_named(self, logical: str) -> str | None:
        """The tracker field the config names for logical field `logical` (None: not managed here)."""
        if logical == "rank":
            return self.rank_field
        if logical == "okr":
            return self.okr_field
        if logical == "forecast_p50":
            return self.forecast_fields.p50
        if logical == "forecast_p85":
            return self.forecast_fields.p85
        if logical == "kr_status":
            return self.kr_status_field
        return None

    def managed_fields(self) -> dict[str, str]:
        """Logical field -> the tracker field the config names for it, for every field it manages."""
        return {logical: named for logical in FIELD_KEYS if (named := self.field_named(logical)) is not None}

    @property
    def rank_mode(self) -> RankValue:
        """`rank_value`, or `position` when the config does not say."""
        return self.rank_value or "position"

    def rank_value_suggestion(self) -> str | None:
        """One line suggesting `rank_value = "score"` when a rank field is written and the key is unset."""
        if self.rank_field is None or self.rank_value is not None:
            return None
        return (
            'write.rank_value = "score" is suggested: unset, the rank field holds positions, so one '
            "milestone's value change rewrites the rank of every milestone below it (and notifies their "
            "watchers); a score changes only with the milestone's own value and effort"
        )

    def problems(self) -> Iterator[tuple[Loc, str]]:
        bands = self.rank_bands
        if not bands:
            yield ("rank_bands",), "lists no cut-off; give increasing positions such as [5, 10]"
        elif any(b < 1 for b in bands) or any(b >= c for b, c in itertools.pairwise(bands)):
            yield ("rank_bands",), f"{bands} must be positions of 1 or more, each larger than the one before"
        dates = self.forecast_fields
        if dates.p50 is not None and dates.p85 is not None and dates.p50.casefold() == dates.p85.casefold():
            same = f"names the same field as p50 ({dates.p50!r}); each date needs a field of its own"
            yield ("forecast_fields", "p85"), same


def _check_status_map(value: dict[str, StatusCategory]) -> dict[str, StatusCategory]:
    if not value:
        raise ValueError("maps no status; list each raw status (id or name) with its category")
    if StatusCategory.DONE not in value.values():
        raise ValueError("no status maps to done, so no item could ever finish")
    if len(value) > 1 and set(value.values()) == {StatusCategory.DONE}:
        raise ValueError(
            "every status maps to done, so every item would count as finished at once and no item "
            "could ever start; map the statuses where work waits or goes on to todo, in_progress or waiting"
        )
    return value


class TrackerConfig(Section):
    """Keys every tracker table has; each connector's model adds its own."""

    kind: str
    match_keys: ClassVar[tuple[str, ...]] = MATCH_KEYS
    status_updates: ClassVar[bool] = False
    """Whether this tracker's key results take status updates (Asana goals) rather than a label."""
    secret_fields: ClassVar[tuple[str, ...]] = ()
    requires_secrets: ClassVar[tuple[str, ...]] = ()

    url: HttpUrl
    enabled: bool = True
    team: str | None = None
    """A team for every item of this tracker that no team rule matches."""
    status_map: Annotated[dict[NonEmpty, StatusCategory], AfterValidator(_check_status_map)]
    """Raw status id or name -> todo | in_progress | waiting | done, listed in stage order."""
    teams: list[TeamRule] = Field(default_factory=list)
    work_types: list[WorkTypeRule] = Field(default_factory=list)
    okr_rules: list[OkrRule] = Field(default_factory=list)
    fields: ValueFields = Field(default_factory=ValueFields)
    write: WriteConfig = Field(default_factory=WriteConfig)
    schedule: ScheduleConfig | None = None
    timeout: Duration = timedelta(seconds=30)
    verify_tls: bool = True
    """Check the tracker's TLS certificate (on by default). Turning it off is logged as a warning at
    every start."""
    ca_bundle: str | None = None
    """A PEM file of private certificate authorities to trust instead of the system's; a relative path
    is read from the config file's folder."""
    max_requests_per_second: float | None = Field(default=None, gt=0)
    """Client-side rate limit; the default follows the vendor's published limits."""
    page_size: int = Field(default=100, ge=1, le=1000)
    lag: Duration = timedelta(minutes=2)
    """Each incremental pull re-reads this much before its cursor (search indexes lag behind edits)."""
    census_interval: Duration = timedelta(hours=24)
    """How often a full listing runs to find items deleted in the tracker."""
    retries: int = Field(default=6, ge=1, le=20)
    """Attempts per request when the failure is worth retrying (429, 5xx, a dropped connection, a
    timeout); 1 means no retry. `Retry-After` is honoured, otherwise the waits double from 1 s."""
    retry_for: Duration = timedelta(minutes=5)
    """Stop retrying a request once this long has passed since its first attempt."""

    def interactive(self) -> TrackerConfig:
        """These settings for a command someone waits on (`check --online`, `discover`, `init`): a
        tracker that is down is reported within seconds instead of after the daemon's patient retries."""
        return self.model_copy(
            update={"retries": min(self.retries, 2), "retry_for": min(self.retry_for, timedelta(seconds=20))}
        )

    def problems(self) -> Iterator[tuple[Loc, str]]:
        for section, rules in (
            ("teams", self.teams),
            ("work_types", self.work_types),
            ("okr_rules", self.okr_rules),
        ):
            for i, rule in enumerate(rules):
                for loc, message in rule.rule_problems(self.match_keys, self.kind):
                    yield (section, i, *loc), message
        if self.write.kr_status_field is not None and self.kind != "jira":
            yield (
                ("write", "kr_status_field"),
                "only Jira key-result issues take a status field; here the status is written as a label",
            )
        if not self.verify_tls and self.ca_bundle is not None:
            yield ("ca_bundle",), "is ignored when verify_tls is false; remove one of them"
        if self.schedule is not None:
            for loc, message in self.schedule.problems():
                yield ("schedule", *loc), message

    def secret_env_names(self) -> dict[str, str]:
        """Config key -> environment variable name, for every credential this tracker uses."""
        names = {}
        for key in self.secret_fields:
            value = getattr(self, key)
            if value is not None:
                names[key] = value
        return names

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        env = os.environ if environ is None else environ
        return [name for name in self.secret_env_names().values() if not env.get(name)]


class BridgeConfig(BaseModel):
    """The whole validated configuration."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    store: StoreConfig = Field(default_factory=StoreConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    okrs: OkrsConfig = Field(default_factory=OkrsConfig)
    announce: AnnounceConfig = Field(default_factory=AnnounceConfig)
    trackers: dict[str, TrackerConfig] = Field(default_factory=dict)
    path: Path | None = None
    """The file it came from; relative paths in it are read from that file's folder."""
    overrides: tuple[Override, ...] = ()
    """The settings that environment variables set, over the file's."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def store_url(self, environ: Mapping[str, str] | None = None) -> str:
        return self.store.resolved_url(self.base_dir, environ, source=str(self.path or "config"))

    def tracker(self, name: str) -> TrackerConfig:
        from bridge.errors import UserError

        if name not in self.trackers:
            known = ", ".join(sorted(self.trackers)) or "none"
            raise UserError(
                f"no tracker named {name!r} in the config{_did_you_mean(name, self.trackers)}; known: {known}"
            )
        return self.trackers[name]

    def schedule_for(self, name: str) -> ScheduleConfig:
        return self.trackers[name].schedule or self.schedule

    def require_secrets(self, name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The tracker's credentials from the environment; every unset variable is named at once."""
        tracker = self.tracker(name)
        env = os.environ if environ is None else environ
        problems = [
            Problem(f"trackers.{name}.{key}", f"environment variable {var} is not set")
            for key, var in tracker.secret_env_names().items()
            if not env.get(var)
        ]
        if problems:
            raise ConfigError(str(self.path or "config"), problems)
        return {key: env[var] for key, var in tracker.secret_env_names().items()}


@dataclass(frozen=True, slots=True)
class Override:
    """A setting taken from an environment variable instead of the file."""

    path: str
    """The setting's dotted path (`daemon.http_host`)."""
    variable: str
    value: str


OVERRIDABLE: dict[str, type[Section]] = {
    "store": StoreConfig,
    "schedule": ScheduleConfig,
    "daemon": DaemonConfig,
    "analytics": AnalyticsConfig,
    "push": PushConfig,
}
"""The sections whose scalar settings environment variables override (`okrs` and the trackers are
tables and arrays the file describes)."""
_NOT_OVERRIDDEN = {
    "store.url": "the store's URL comes from the file's store.url, or from the variable store.url_env names",
    "store.url_env": "name the variable in the file's store.url_env",
}


def env_overrides(environ: Mapping[str, str]) -> tuple[list[Override], list[Problem]]:
    """The `BRIDGE_<SECTION>__<KEY>` variables set (not empty) in `environ`, and what is wrong with each
    that names no setting it may override."""
    found: list[Override] = []
    problems: list[Problem] = []
    for variable in sorted(environ):
        match = OVERRIDE_VARIABLE.match(variable)
        value = environ[variable]
        if match is None or not value:
            continue
        section, key = match.group(1).lower(), match.group(2).lower()
        path = f"{section}.{key}"
        if section not in OVERRIDABLE:
            hint = _did_you_mean(section, OVERRIDABLE)
            message = (
                f"{section!r} is not a section that variables override{hint}; one of {', '.join(OVERRIDABLE)}"
            )
            problems.append(Problem(variable, message))
        elif path in _NOT_OVERRIDDEN:
            problems.append(
                Problem(f"{path} ({variable})", f"is not taken from the environment: {_NOT_OVERRIDDEN[path]}")
            )
        elif key not in OVERRIDABLE[section].model_fields:
            fields = list(OVERRIDABLE[section].model_fields)
            problems.append(Problem(f"{path} ({variable})", _unknown_key_message(key, fields)))
        else:
            found.append(Override(path, variable, value))
    return found, problems


def _apply_overrides(data: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """The file's tables with the overridden settings replaced (a section that is not a table is left
    for validation to report)."""
    merged = dict(data)
    for override in overrides:
        section, key = override.path.split(".", 1)
        table = merged.get(section, {})
        if isinstance(table, dict):
            merged[section] = {**table, key: override.value}
    return merged


def _blame(problem: Problem, overrides: list[Override]) -> Problem:
    """A problem with an overridden setting names the variable that set it."""
    for override in overrides:
        if problem.path == override.path or problem.path.startswith(override.path + "."):
            return Problem(problem.path, f"{problem.message} (set by {override.variable})")
    return problem


class _TopLevel(Section):
    """Everything but the trackers, validated in one go."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    okrs: OkrsConfig = Field(default_factory=OkrsConfig)
    announce: AnnounceConfig = Field(default_factory=AnnounceConfig)
    trackers: dict[str, Any] = Field(default_factory=dict)


class TrackerKinds(Protocol):
    """What validating a config needs of the installed connectors: the kinds of tracker they serve and the
    model of each kind's tracker table. `bridge.connector.ConnectorRegistry` is one; the config module
    takes it as a parameter so that it never imports the connectors' layer."""

    def kinds(self) -> list[str]: ...

    def config_model(self, kind: str) -> type[TrackerConfig]: ...


def default_config_path(explicit: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """`--config`, else `$BRIDGE_CONFIG`, else `./bridge.toml`."""
    if explicit:
        return Path(explicit)
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | Path, connectors: TrackerKinds) -> BridgeConfig:
    """Read and validate a config file, its tracker tables by the model of their kind in `connectors`;
    raise `ConfigError` listing every problem found."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f" (set --config or ${CONFIG_ENV}; config.example.toml is a starting point)"
        raise ConfigError(str(file), [Problem("", f"file not found{hint}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [Problem("", f"cannot read the file: {exc}")]) from None
    return parse_config(text, connectors, source=str(file), path=file.resolve())


def parse_config(
    text: str,
    connectors: TrackerKinds,
    *,
    source: str = "config",
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> BridgeConfig:
    too_deep = _too_deep(text)
    if too_deep is not None:
        raise ConfigError(source, [too_deep])
    try:
        data = tomllib.loads(text)
        return validate_config(data, connectors, source=source, path=path, environ=environ)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [_syntax_problem(exc)]) from None
    except RecursionError:  # a backstop: nesting the scan above lets through must not end in a traceback
        raise ConfigError(source, [Problem("", _TOO_DEEP)]) from None


MAX_CONFIG_NESTING = 64
"""The deepest nesting a config may use (arrays, inline tables and dotted key parts counted alike); a
real config needs fewer than ten. TOML's parser recurses once per level and keeps every prefix of a
dotted key, so a file nested thousands of levels deep would end in a RecursionError or exhaust memory."""
_TOO_DEEP = (
    f"nested too deeply (more than {MAX_CONFIG_NESTING} levels of arrays, inline tables or dotted keys)"
)
_DIGITS = frozenset("0123456789")


def _too_deep(text: str) -> Problem | None:
    """The problem with `text` if its arrays and inline tables nest, or a dotted key has parts, beyond
    `MAX_CONFIG_NESTING`, found by one pass that skips strings and comments (without parsing)."""
    depth = 0
    dots = 0
    line = 1
    i = 0
    end = len(text)
    while i < end:
        char = text[i]
        if char == "\n":
            line += 1
            dots = 0
        elif char == "#":
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
            continue
        elif char in "\"'":
            quote = char * 3 if text.startswith(char * 3, i) else char
            i += len(quote)
            while i < end and not text.startswith(quote, i):
                if text[i] == "\\" and char == '"':
                    i += 1
                elif text[i] == "\n":
                    if len(quote) == 1:
                        break  # an unterminated string: the parser reports it
                    line += 1
                i += 1
            i += len(quote)
            continue
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "." and not (0 < i < end - 1 and text[i - 1] in _DIGITS and text[i + 1] in _DIGITS):
            dots += 1  # a dot outside strings and numbers joins the parts of a key
        if depth + dots > MAX_CONFIG_NESTING:
            return Problem("", f"{_TOO_DEEP} at line {line}")
        i += 1
    return None


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found:
        reason = message[: found.start()].strip()
        return Problem("", f"TOML syntax error at line {found.group(1)}, column {found.group(2)}: {reason}")
    return Problem("", f"TOML syntax error: {message}")


def validate_config(
    data: dict[str, Any],
    connectors: TrackerKinds,
    *,
    source: str = "config",
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> BridgeConfig:
    """The file's settings, with the `BRIDGE_<SECTION>__<KEY>` variables of `environ` (default: the
    process's) over them, validated together; every problem is reported at once."""
    overrides, problems = env_overrides(os.environ if environ is None else environ)
    data = _apply_overrides(data, overrides)
    top = _validate(_TopLevel, data, (), problems)
    raw_trackers = data.get("trackers", {})
    trackers: dict[str, TrackerConfig] = {}
    if isinstance(raw_trackers, dict):
        for name, raw in raw_trackers.items():
            tracker = _validate_tracker(connectors, name, raw, problems)
            if tracker is not None:
                trackers[name] = tracker
        if not raw_trackers:
            problems.append(Problem("trackers", "no tracker configured; add a [trackers.NAME] table"))
        base_dir = path.parent if path is not None else Path.cwd()
        for name, tracker in trackers.items():
            trackers[name] = _anchor_ca_bundle(name, tracker, base_dir, problems)
    if top is not None:
        problems.extend(_cross_checks(top.okrs, trackers))
    if problems or top is None:
        raise ConfigError(source, [_blame(problem, overrides) for problem in problems])
    return BridgeConfig(
        overrides=tuple(overrides),
        store=top.store,
        schedule=top.schedule,
        daemon=top.daemon,
        analytics=top.analytics,
        push=top.push,
        okrs=top.okrs,
        announce=top.announce,
        trackers=trackers,
        path=path,
    )


def _anchor_ca_bundle(
    name: str, tracker: TrackerConfig, base_dir: Path, problems: list[Problem]
) -> TrackerConfig:
    """The tracker with its `ca_bundle` as an absolute path, once the file is found to hold certificates."""
    if tracker.ca_bundle is None:
        return tracker
    where = format_path(("trackers", name, "ca_bundle"))
    message = check_ca_bundle(tracker.ca_bundle, base_dir)
    if message is not None:
        problems.append(Problem(where, message))
        return tracker
    return tracker.model_copy(update={"ca_bundle": str(_resolve(tracker.ca_bundle, base_dir))})


def _resolve(name: str, base_dir: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def check_ca_bundle(name: str, base_dir: Path) -> str | None:
    """What is wrong with a CA bundle file (missing, unreadable, not PEM certificates), or None."""
    import ssl

    if not name.strip():
        return "is empty; name a PEM file of certificate authorities, or leave ca_bundle out"
    path = _resolve(name, base_dir)
    shown = repr(name) if str(path) == name else f"{name!r} ({path})"
    if not path.exists():
        return f"{shown} is not a file: it does not exist"
    if not path.is_file():
        return f"{shown} is not a file; name a PEM file of certificate authorities"
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"{shown} cannot be read: {exc.strerror or exc}"
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError):
        return f"{shown} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"
    return None


_OTHERS_CAN_READ = 0o044


def permission_warning(path: Path | None) -> str | None:
    """A warning when users other than the owner can read the config file, with the fix; else None."""
    if path is None or os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & _OTHERS_CAN_READ:
        return None
    who = "other users" if mode & 0o004 else "its group"
    return (
        f"{path} can be read by {who} (mode {mode & 0o777:03o}); it describes every tracker and where "
        f"its credentials come from, so keep it to its owner: chmod 600 {path}"
    )


def tls_off_warning(name: str, tracker: TrackerConfig) -> str | None:
    """A warning for a tracker whose TLS certificate is not checked; else None."""
    if tracker.verify_tls:
        return None
    return (
        f"trackers.{name}.verify_tls is false: the certificate of {tracker.url} is NOT checked, so anyone "
        "on the network path can read the credentials and alter what the bridge reads and writes; "
        f"set ca_bundle to the site's certificate authority instead"
    )


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another name: it resolves to whatever DNS says


def open_status_page_warning(daemon: DaemonConfig) -> str | None:
    """A warning for a status page that listens beyond this machine with no token; else None."""
    if daemon.auth_token_env is not None or is_loopback(daemon.http_host):
        return None
    return (
        f"daemon.http_host is {daemon.http_host}, which other machines can reach, and daemon.auth_token_env "
        "is not set: anyone who reaches the port reads the status page, /status.json, /report.html and "
        "/metrics (tracker names, errors, the report); name a variable holding a token in auth_token_env, "
        "or keep http_host on 127.0.0.1 behind a proxy that authenticates"
    )


MIN_TOKEN_LENGTH = 16
"""The shortest bearer token the status server accepts."""


def auth_token_problem(daemon: DaemonConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the status server could not start with the token `daemon.auth_token_env` names (its variable
    unset or empty, or the token too short to resist guessing); None when it can, or no token is wanted."""
    name = daemon.auth_token_env
    if name is None:
        return None
    token = (os.environ if environ is None else environ).get(name, "")
    if not token:
        return f"daemon.auth_token_env: environment variable {name} is not set or is empty"
    if len(token) < MIN_TOKEN_LENGTH:
        return (
            f"daemon.auth_token_env: the token in {name} must be at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. `openssl rand -hex 32`)"
        )
    return None


def config_warnings(config: BridgeConfig) -> list[str]:
    """What is worth fixing but not an error: a config file others can read, TLS checks turned off, a
    status page open to the network without a token."""
    warnings = [permission_warning(config.path)]
    warnings.extend(tls_off_warning(name, tracker) for name, tracker in config.trackers.items())
    warnings.append(open_status_page_warning(config.daemon))
    return [warning for warning in warnings if warning is not None]


def log_config_warnings(config: BridgeConfig, logger: logging.Logger | None = None) -> list[str]:
    """Log each of `config_warnings` as a warning; returns them."""
    warnings = config_warnings(config)
    for warning in warnings:
        (logger or logging.getLogger(__name__)).warning("%s", warning)
    return warnings


def _validate_tracker(
    connectors: TrackerKinds, name: str, raw: Any, problems: list[Problem]
) -> TrackerConfig | None:
    loc: Loc = ("trackers", name)
    if not _TRACKER_NAME.match(name) or name == CONFIG_SOURCE:
        problems.append(
            Problem(
                format_path(loc),
                "a tracker's name is lowercase letters, digits, '-' and '_' (at most 40), and not 'config'",
            )
        )
    if not isinstance(raw, dict):
        problems.append(Problem(format_path(loc), "must be a table ([trackers.NAME])"))
        return None
    kind = raw.get("kind")
    kinds = connectors.kinds()
    if kind is None:
        problems.append(Problem(format_path((*loc, "kind")), f"is required; one of {', '.join(kinds)}"))
        return None
    if not isinstance(kind, str) or kind not in kinds:
        hint = _did_you_mean(str(kind), kinds)
        problems.append(
            Problem(
                format_path((*loc, "kind")),
                f"{kind!r} is not an installed connector{hint}; one of {', '.join(kinds)}",
            )
        )
        return None
    model = connectors.config_model(kind)
    return _validate(model, raw, loc, problems)


def _validate(model: type[SectionT], data: Any, loc: Loc, problems: list[Problem]) -> SectionT | None:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems.extend(_problem_from_error(model, error, loc) for error in errors)
        problems.extend(
            Problem(format_path((*loc, *rel)), message) for rel, message in _salvage(model, data, errors)
        )
        return None
    problems.extend(Problem(format_path((*loc, *rel)), message) for rel, message in _all_problems(instance))
    return instance


def _salvage(model: type[BaseModel], data: Any, errors: list[ErrorDetails]) -> Iterator[tuple[Loc, str]]:
    """Checks across fields in the parts of a table that are valid on their own.

    A table with a type error cannot run its own checks, but its nested tables still can, so that
    one pass reports every problem it can find.
    """
    if not isinstance(data, dict):
        return
    for name, field_info in model.model_fields.items():
        if name not in data:
            continue
        failed = [_shift(error, name) for error in errors if error["loc"][:1] == (name,)]
        annotation = _unwrap(field_info.annotation)
        value = data[name]
        if _is_section(annotation):
            yield from _prefixed((name,), _section_checks(annotation, value, failed))
        elif (
            get_origin(annotation) is list
            and _is_section(_unwrap(get_args(annotation)[0]))
            and isinstance(value, list)
        ):
            item_model = _unwrap(get_args(annotation)[0])
            for i, item in enumerate(value):
                item_failed = [_shift(error, i) for error in failed if error["loc"][:1] == (i,)]
                if issubclass(item_model, MatchRule) and issubclass(model, TrackerConfig):
                    if not item_failed:
                        rule = item_model.model_validate(item)
                        yield from _prefixed(
                            (name, i), rule.rule_problems(model.match_keys, str(data.get("kind")))
                        )
                else:
                    yield from _prefixed((name, i), _section_checks(item_model, item, item_failed))


def _section_checks(
    model: type[Section], value: Any, failed: list[ErrorDetails]
) -> Iterator[tuple[Loc, str]]:
    if failed:
        yield from _salvage(model, value, failed)
    else:
        yield from _all_problems(model.model_validate(value))


def _shift(error: ErrorDetails, part: str | int) -> ErrorDetails:
    shifted = dict(error)
    shifted["loc"] = error["loc"][1:] if error["loc"][:1] == (part,) else error["loc"]
    return shifted  # type: ignore[return-value]


def _prefixed(prefix: Loc, items: Iterable[tuple[Loc, str]]) -> Iterator[tuple[Loc, str]]:
    for rel, message in items:
        yield (*prefix, *rel), message


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Section)


def _all_problems(section: Section) -> Iterator[tuple[Loc, str]]:
    """`problems()` of a table and of every table nested in it (a parent may add its own)."""
    yield from section.problems()
    for name in type(section).model_fields:
        value = getattr(section, name)
        if name == "schedule" and isinstance(section, TrackerConfig):
            continue  # TrackerConfig.problems() covers its schedule
        if isinstance(value, Section):
            yield from (((name, *rel), message) for rel, message in _all_problems(value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Section) and not isinstance(item, MatchRule):
                    yield from (((name, i, *rel), message) for rel, message in _all_problems(item))


def _cross_checks(okrs: OkrsConfig, trackers: Mapping[str, TrackerConfig]) -> Iterator[Problem]:
    known = okrs.key_result_ids()
    for name, tracker in trackers.items():
        for i, rule in enumerate(tracker.okr_rules):
            target = rule.key_result
            path = format_path(("trackers", name, "okr_rules", i, "key_result"))
            if ":" in target:
                source = target.split(":", 1)[0]
                if source not in trackers:
                    yield Problem(path, f"{target!r} names tracker {source!r}, which is not configured")
            elif target not in known:
                yield Problem(path, f"{target!r} is not a key result in [okrs]{_did_you_mean(target, known)}")


def format_path(loc: Loc) -> str:
    """`('okrs', 'objectives', 1, 'id')` -> `okrs.objectives[1].id`; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part, ensure_ascii=False)
            out += f".{text}" if out else text
    return out


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problem_from_error(root: type[BaseModel], error: ErrorDetails, prefix: Loc) -> Problem:
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    value = error.get("input")
    message = error["msg"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        fields = _fields_at(root, loc[:-1])
        message = _unknown_key_message(key, fields)
    elif kind == "missing":
        message = "is required"
    elif kind in ("literal_error", "enum"):
        options = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        message = (
            f"{_shorten(str(value))!r} is not one of {', '.join(options)}{_did_you_mean(str(value), options)}"
        )
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "too_short":
        count = error.get("ctx", {}).get("min_length", 1)
        message = f"must have at least {count} {'entry' if count == 1 else 'entries'}"
    elif kind.endswith("_type") or kind.endswith("_parsing") or message.startswith("Input should be"):
        message = f"{message.replace('Input should be', 'must be')}, got {_describe(value)}"
    return Problem(format_path((*prefix, *loc)), message)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return _shorten(repr(value))


def _unknown_key_message(key: str, fields: list[str]) -> str:
    if key.lower() in _SECRET_KEYS or f"{key}_env" in fields:
        if f"{key}_env" in fields:
            return (
                f"{key!r} would keep a secret in the file; put it in an environment variable "
                f"and name that variable with {key}_env"
            )
        return f"unknown key {key!r}; secrets are never read from the file (name an environment variable)"
    hint = _did_you_mean(key, fields)
    return f"unknown key {key!r}{hint}"


def _fields_at(root: type[BaseModel], loc: Loc) -> list[str]:
    current: Any = root
    for part in loc:
        current = _descend(_unwrap(current), part)
        if current is None:
            return []
    model = _unwrap(current)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(tp) if arg is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tp = models[0] if models else members[0]
        else:
            return tp


def _descend(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = get_origin(tp)
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    return None
