"""What the bridge last wrote into tracker fields, as values: the `written` rows the store keeps and the
planner compares against, and the names and ids that mark what the bridge owns.

Pure values, no I/O: both `bridge.store` (which reads and records the rows) and `bridge.sync` (which plans
from them) stand on this module, neither on the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.domain import LinkTarget, Ref

LABELS_FIELD = "labels"
"""The `written` row holding the bridge's labels on an item (a sorted JSON list)."""
LINK_PREFIX = "link:"
"""`written` rows of links are `link:<global id>`."""
LINK_ID_PREFIX = "milestone-bridge:"
"""Global ids of the bridge's links start with this, so it can tell them from a user's."""
KEY_RESULT_LINK_PREFIX = LINK_ID_PREFIX + "kr:"
"""The bridge's link to a key result is `milestone-bridge:kr:<key result's source>:<its remote id>`."""


STATUS_UPDATE_FIELD = "status_update"
"""The logical field of a key result that takes status updates (an Asana goal): its value is the status
type of the newest status update the bridge posted. A status update is history, never taken back: the
planner writes no empty value to it and `bridge purge` leaves it in place."""
STATUS_MARKER_PREFIX = "[milestone-bridge:kr-status:"
"""The bridge's status updates end with `[milestone-bridge:kr-status:<source>:<id>]`, so it reads back its
own newest one (a user's status update is theirs, and the bridge neither counts nor answers it)."""


def status_marker(item: Ref) -> str:
    """The marker line of the bridge's status updates on key result `item`."""
    return f"{STATUS_MARKER_PREFIX}{item.source}:{item.remote_id}]"


COMMENT_MARKER_PREFIX = "[milestone-bridge:"
"""The bridge's comments end with a marker line `[milestone-bridge:<what>:<id>:<n>]`, which it looks for
before posting (so a retry, a crash or a second replica never posts one twice) and purges by."""


def comment_marker(what: str, item: Ref, completion: int) -> str:
    """The marker of the bridge's comment `what` (`reached`) on `item`, for its `completion`-th time."""
    return f"{COMMENT_MARKER_PREFIX}{what}:{item.source}:{item.remote_id}:{completion}]"


def with_marker(text: str, marker: str) -> str:
    """`text` ending with `marker` on its own line (once)."""
    body = text.rstrip()
    return body if body.endswith(marker) else f"{body}\n\n{marker}"


def key_result_link_id(key_result: Ref) -> str:
    """The global id of the bridge's link to `key_result`: stable across cycles."""
    return f"{KEY_RESULT_LINK_PREFIX}{key_result.source}:{key_result.remote_id}"


def native_link(source: str, global_id: str) -> bool:
    """Whether a link goes to a key result held in tracker `source` itself (an Asana goal, say): the
    tracker links it natively, and cannot say whether the bridge or a user made the link."""
    return global_id.startswith(f"{KEY_RESULT_LINK_PREFIX}{source}:")


@dataclass(frozen=True, slots=True)
class WrittenValue:
    """A `written` row: what the bridge last wrote into one field of one item."""

    value: Any
    at: datetime
    generation: int = 0


class Written:
    """The `written` rows of one tracker, by item: what the bridge last wrote, field by field."""

    def __init__(self, rows: Mapping[tuple[Ref, str], WrittenValue] | None = None) -> None:
        self.rows: dict[tuple[Ref, str], WrittenValue] = dict(rows or {})
        self._names: dict[Ref, list[str]] = {}
        for ref, name in self.rows:
            self._names.setdefault(ref, []).append(name)

    def get(self, ref: Ref, name: str) -> WrittenValue | None:
        return self.rows.get((ref, name))

    def value(self, ref: Ref, name: str) -> Any:
        found = self.rows.get((ref, name))
        return found.value if found is not None else None

    def fields(self, ref: Ref) -> set[str]:
        """Managed fields written on `ref` (not its labels, links or comments)."""
        return {
            n
            for n in self._names.get(ref, ())
            if n != LABELS_FIELD and not n.startswith((LINK_PREFIX, COMMENT_MARKER_PREFIX))
        }

    def comments(self, ref: Ref) -> set[str]:
        """The markers of the bridge's comments posted on `ref`."""
        return {n for n in self._names.get(ref, ()) if n.startswith(COMMENT_MARKER_PREFIX)}

    def links(self, ref: Ref) -> set[str]:
        return {n[len(LINK_PREFIX) :] for n in self._names.get(ref, ()) if n.startswith(LINK_PREFIX)}

    def newer_than(self, generation: int) -> set[Ref]:
        """Items a later analysis (another replica's, say) has written to already."""
        return {ref for (ref, _), value in self.rows.items() if value.generation > generation}

    def last_at(self, ref: Ref) -> datetime | None:
        times = [self.rows[(ref, n)].at for n in self._names.get(ref, ())]
        return max(times) if times else None


def canonical(value: Any) -> Any:
    """A value in the one form it is compared and stored in: links as dicts, sets sorted, 3.0 as 3."""
    if isinstance(value, LinkTarget):
        return {"global_id": value.global_id, "url": value.url, "title": value.title}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def value_text(value: Any) -> str | None:
    """A value as the `written` table keeps it: canonical JSON (None stays None)."""
    if value is None:
        return None
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def value_hash(value: Any) -> str:
    return hashlib.sha256((value_text(value) or "null").encode()).hexdigest()
