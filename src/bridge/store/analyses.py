"""Stored analyses: one per (data version, digest of the analysis settings, UTC day, with flow charts
or not), shared by every tracker's cycle, every replica and `bridge report`.

An analysis is stored as a pickle of the `Report` value and read back through an unpickler that admits
only the bridge's own value classes and a few standard ones, so a row someone else wrote into the
store can give back a report or nothing, never run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, and_, select, text, update

from bridge.store.engine import Store, upsert
from bridge.store.models import AnalysisRow

_ALLOWED_MODULES = ("bridge.analytics.", "bridge.domain")
_ALLOWED_BUILTINS = frozenset(
    {
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("builtins", "frozenset"),
        ("builtins", "set"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "getattr"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }
)


@dataclass(frozen=True, slots=True)
class AnalysisKey:
    data_version: int
    settings_digest: str
    day: str
    flow: bool

    def lock_id(self) -> int:
        """A 63-bit number naming the key for PostgreSQL's advisory locks."""
        digest = hashlib.sha256(repr(self).encode()).digest()
        return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def settings_digest(*sections: Any) -> str:
    """A digest of the settings that decide an analysis (pydantic models, or JSON-able values)."""
    dumped = [s.model_dump(mode="json") if hasattr(s, "model_dump") else s for s in sections]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True, default=str).encode()).hexdigest()


def utc_day(now: datetime) -> str:
    return now.date().isoformat()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_BUILTINS or module.startswith(_ALLOWED_MODULES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a report value")


class _Pickler(pickle.Pickler):
    """Pickles the report's dataclass values as a call of their class with their fields in order.

    A slotted dataclass's own pickling asks `dataclasses.fields` for every value, both ways: a report of
    a million tasks holds hundreds of thousands of values, and that cost several seconds to store and to
    read back. The call re-runs `__init__` on loading, which the unpickler admits for the same classes
    (every field of the bridge's values is an `__init__` argument)."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        values = _FIELD_VALUES.get(kind)
        if values is None:
            if not (is_dataclass(kind) and kind.__module__.startswith(_ALLOWED_MODULES)):
                return NotImplemented
            values = _FIELD_VALUES[kind] = _field_values(kind)
        return kind, values(obj)


def _field_values(kind: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in fields(kind)]
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    many: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return many


_FIELD_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def dumps(report: Any) -> bytes:
    """A report as the store keeps it (read back by `loads`)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(report)
    return buffer.getvalue()


def loads(blob: bytes) -> Any:
    """A stored report; raises `pickle.UnpicklingError` for anything but the bridge's values."""
    return _Unpickler(io.BytesIO(blob)).load()


def _where(key: AnalysisKey) -> Any:
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    return and_(
        t.c.data_version == key.data_version,
        t.c.settings_digest == key.settings_digest,
        t.c.day == key.day,
        t.c.flow.is_(key.flow),
    )


def find(conn: Connection, key: AnalysisKey) -> Any | None:
    """The stored report for `key`, or None (none stored, or one that does not read back)."""
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    blob = conn.execute(select(t.c.report).where(_where(key))).scalar()
    if blob is None:
        return None
    try:
        return loads(bytes(blob))
    except (pickle.UnpicklingError, AttributeError, EOFError, ImportError, TypeError, ValueError):
        return None


def find_document(conn: Connection, key: AnalysisKey) -> str | None:
    """The stored JSON document of the analysis for `key`, or None."""
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    found: str | None = conn.execute(select(t.c.document).where(_where(key))).scalar()
    return found


def save(
    conn: Connection,
    key: AnalysisKey,
    report: Any,
    *,
    now: datetime,
    seconds: float,
    document: str | None = None,
) -> None:
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    row = {
        "data_version": key.data_version,
        "settings_digest": key.settings_digest,
        "day": key.day,
        "flow": key.flow,
        "report": dumps(report),
        "document": document,
        "created_at": now,
        "seconds": round(seconds, 3),
        "pushed": None,
    }
    upsert(conn, t, [row], stamp="created_at")
    # older analyses are of no use to anyone: the store keeps the newest few days' only
    conn.execute(t.delete().where(t.c.day < key.day))


def pushed(conn: Connection, key: AnalysisKey) -> set[str]:
    """The trackers a cycle pushed the analysis of `key` to without error."""
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    found = conn.execute(select(t.c.pushed).where(_where(key))).scalar()
    return set(json.loads(found)) if found else set()


def mark_pushed(store: Store, key: AnalysisKey, tracker: str) -> None:
    t = AnalysisRow.__table__  # type: ignore[attr-defined]
    with store.write() as conn:
        done = pushed(conn, key) | {tracker}
        conn.execute(update(t).where(_where(key)).values(pushed=json.dumps(sorted(done))))


@contextmanager
def one_analyser(store: Store, key: AnalysisKey) -> Iterator[None]:
    """On PostgreSQL, hold the key's advisory lock while analysing, so that one replica analyses a data
    version and the others wait for it and reuse its analysis; SQLite has one writer anyway."""
    if store.dialect != "postgresql":
        yield
        return
    with store.write() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": key.lock_id()})
        yield
