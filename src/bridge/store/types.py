"""Column types that keep the store's promises: datetimes are aware UTC going in and coming out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC. Naive values are refused; loaded values are always aware UTC.

    SQLite keeps no zone, so values are converted to UTC before they are written and marked UTC when
    read; PostgreSQL stores `timestamptz` and hands back the session's zone, converted here to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: the store keeps aware UTC only")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONList(TypeDecorator[list[Any]]):
    """A short list (labels, say) kept as compact JSON text, comparable for change detection."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[Any] | tuple[Any, ...] | None, dialect: Dialect) -> str | None:
        return json_list_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[Any] | None:
        if value is None:
            return None
        loaded = json.loads(value)
        return list(loaded) if isinstance(loaded, list) else [loaded]


def json_list_text(value: list[Any] | tuple[Any, ...] | None) -> str | None:
    """A list as `JSONList` stores it: compact JSON, non-ASCII as it is.

    A list of text (labels) goes through orjson, whose output for text is the standard library's to the
    byte (so stored values still compare equal) in a fraction of the time; anything else, or text
    orjson refuses (a lone surrogate), through the standard library."""
    if value is None:
        return None
    if all(type(item) is str for item in value):
        try:
            return orjson.dumps(list(value)).decode()
        except TypeError:
            pass
    return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
