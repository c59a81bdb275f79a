"""Applying an admin's mapping rules to one tracker item, whatever the tracker.

A connector describes each item as `Facts`: for every match key (`project`, `label`, `list`, ...) the
set of values the item has, plus its custom field values. Team, work-type and OKR rules then match the
same way everywhere: every key a rule gives must match (case-insensitively), and the first matching rule
wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bridge.config import MATCH_KEYS, MatchRule, TrackerConfig
from bridge.domain import StatusCategory, categorise


@dataclass
class Facts:
    """What rules can match on for one item."""

    values: dict[str, set[str]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    """Custom field values by id and by name."""

    def add(self, key: str, *values: Any) -> None:
        bucket = self.values.setdefault(key, set())
        for value in values:
            if value is not None:
                text = str(value)
                if text:
                    bucket.add(text.casefold())


def matches(rule: MatchRule, facts: Facts) -> bool:
    for key in MATCH_KEYS:
        wanted = getattr(rule, key)
        if wanted is None or key == "field":
            continue
        if str(wanted).casefold() not in facts.values.get(key, set()):
            return False
    if rule.field is not None:
        value = facts.fields.get(rule.field)
        if rule.value is None:
            return value not in (None, "", [])
        return _field_equals(value, rule.value)
    return True


def _field_equals(value: Any, wanted: str | float | bool) -> bool:
    if isinstance(value, dict):
        value = value.get("value", value.get("name", value.get("id")))
    if isinstance(value, list):
        return any(_field_equals(v, wanted) for v in value)
    if isinstance(wanted, bool) or isinstance(value, bool):
        return bool(value == wanted)
    if isinstance(wanted, int | float) and isinstance(value, int | float):
        return float(value) == float(wanted)
    return str(value).casefold() == str(wanted).casefold()


def first_match(rules: Sequence[Any], facts: Facts) -> Any | None:
    """The first rule whose keys all match (rules are team, work-type or OKR rules)."""
    return next((rule for rule in rules if matches(rule, facts)), None)


def team_for(config: TrackerConfig, facts: Facts) -> str | None:
    rule = first_match(config.teams, facts)
    return str(rule.name) if rule is not None else config.team


def work_type_for(config: TrackerConfig, facts: Facts) -> str | None:
    rule = first_match(config.work_types, facts)
    return str(rule.name) if rule is not None else None


def key_results_for(config: TrackerConfig, facts: Facts) -> list[str]:
    """Every key result an OKR rule assigns (several rules may match one milestone)."""
    return [rule.key_result for rule in config.okr_rules if matches(rule, facts)]


def status_category(config: TrackerConfig, status_id: str | None, name: str | None) -> StatusCategory | None:
    return categorise(status_id, name, config.status_map)


def number(value: Any) -> float | None:
    """A value or effort field's number, whatever shape the tracker gives it in."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer past float's range (JSON allows any length)
            return None
    if isinstance(value, dict):
        return number(value.get("value", value.get("number")))
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def end_of_day(day: str | date | None, zone: ZoneInfo | None = None) -> datetime | None:
    """A due date (a day) as the last minute of that day in `zone` (UTC by default), in UTC."""
    if day is None or day == "":
        return None
    value = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
    return datetime.combine(value, time(23, 59), tzinfo=zone or UTC).astimezone(UTC)


def resolve_field(wanted: str | None, known: Iterable[tuple[str, str]]) -> str | None:
    """A field id from an id or a name (`Story Points` -> `customfield_10016`); None when unknown."""
    if wanted is None:
        return None
    pairs = list(known)
    for field_id, _ in pairs:
        if field_id == wanted:
            return field_id
    folded = wanted.casefold()
    for field_id, name in pairs:
        if name.casefold() == folded:
            return field_id
    return None


def field_names(fields: Mapping[str, str]) -> dict[str, str]:
    """Id -> name, plus name -> id, for facts that rules address either way."""
    both = dict(fields)
    both.update({name: field_id for field_id, name in fields.items()})
    return both
