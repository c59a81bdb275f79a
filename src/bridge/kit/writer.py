"""The write side's template: validate, group, send, and one outcome per write.

`Writer.push` is the same for every tracker:
1. each write is checked: against the tracker (an item of another tracker), against the tracker's
   `write` config (a kind of write switched off, a field the bridge does not manage: every connector
   refuses those alike), then by the vendor's own `refuse` hook (a value its field cannot hold);
2. the writes that pass go to the vendor's `send` hook, which groups them as its API allows (one edit per
   issue, ten to a batch, fifty moves a call), sends them and settles each one in the `Outcomes`;
3. writes whose outcome is unknown (their request got no answer after every retry: the tracker may have
   applied them) are read back, all at once (`read_back`, by default one `read_state` of their items),
   and settled as what the tracker holds: applied is done, not applied failed (the next cycle plans it
   again); when the read-back fails too, they fail;
4. the outcomes come back in the order of the writes.

A refusal is `WriteRefused`, the one error a vendor raises for "this write, not the others". A request
that still fails after every retry raises `OutcomeUnknown` (a `WriteRefused`; after a 429 the tracker
did nothing, and it is a plain refusal), until `RetryBreaker.limit` such requests in a row say the
tracker is down: then `push` raises, as it does when the credentials are refused. A vendor passes either
to `Outcomes.fail`, which keeps an `OutcomeUnknown` for the read-back.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from bridge.config import FIELD_KEYS, TrackerConfig
from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteCost, WriteKind, WriteOutcome
from bridge.errors import AuthError, BridgeError, OutcomeUnknown, RetriableAPIError, WriteRefused
from bridge.http import redact
from bridge.written import COMMENT_MARKER_PREFIX, STATUS_UPDATE_FIELD, canonical

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=TrackerConfig)
T = TypeVar("T")

EDIT_KINDS = frozenset({WriteKind.FIELD, WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE})
"""The writes a tracker's item edit carries (its fields and labels), as opposed to links and moves."""

MANAGED_FIELDS = FIELD_KEYS
"""Logical field -> the `[trackers.X.write]` key naming the tracker field it is written to."""


class Outcomes:
    """The outcome of each write of one push, settled by index as the vendor's requests come back."""

    def __init__(self, tracker: str, writes: Sequence[FieldWrite]) -> None:
        self.tracker = tracker
        self.writes = list(writes)
        self._errors: dict[int, str | None] = {}
        self._at: dict[int, datetime] = {}
        self._unknown: dict[int, str] = {}
        """Writes whose request got no answer, with why: settled by `confirm` once read back."""
        self._read_back: set[int] = set()

    def ok(self, index: int) -> None:
        """Write `index` was made (or was already so)."""
        self._settle(index, None)

    def fail(self, index: int, error: str | BaseException) -> None:
        """Write `index` failed; `error` is redacted and names the tracker. An `OutcomeUnknown` leaves
        it unknown instead (see `unknown`)."""
        if isinstance(error, OutcomeUnknown):
            self.unknown(index, error)
            return
        self._settle(index, self._text(error))

    def unknown(self, index: int, error: str | BaseException) -> None:
        """Write `index` got no answer (`error` says why): the tracker may hold it or not. It counts as
        settled for the vendor (not sent again) until the read-back settles it (`confirm`)."""
        if not self.settled(index):
            self._unknown[index] = self._text(error)

    def unknowns(self) -> list[tuple[int, FieldWrite]]:
        """The writes left unknown, with their indexes."""
        return [(index, self.writes[index]) for index in sorted(self._unknown) if index not in self._errors]

    def confirm(self, index: int, applied: bool) -> None:
        """Settle unknown write `index` as the read-back found it: `applied` or not."""
        if index not in self._unknown or index in self._errors:
            return
        self._read_back.add(index)
        if applied:
            self._settle(index, None)
        else:
            self._settle(index, f"{self._unknown[index]}; read back, the tracker does not hold it")

    def _text(self, error: str | BaseException) -> str:
        text = redact(str(error))
        return text if text.startswith(f"{self.tracker}: ") else f"{self.tracker}: {text}"

    def settle(self, index: int, error: str | BaseException | None) -> None:
        """`ok` when `error` is None, else `fail`."""
        if error is None:
            self.ok(index)
        else:
            self.fail(index, error)

    def settled(self, index: int) -> bool:
        return index in self._errors or index in self._unknown

    def _settle(self, index: int, error: str | None) -> None:
        if index not in self._errors:  # the first word on a write stands
            self._errors[index] = error
            self._at[index] = datetime.now(UTC)

    def result(self) -> list[WriteOutcome]:
        """One outcome per write, in order; a write nothing settled failed (it was never sent), and so did
        one left unknown (it could not be read back)."""
        outcomes = []
        for index, write in enumerate(self.writes):
            if index in self._unknown and index not in self._errors:
                self._settle(
                    index, f"{self._unknown[index]}; it could not be read back, so it counts as failed"
                )
            elif index not in self._errors:
                self.fail(index, "the write was not sent")
            error = self._errors[index]
            read_back = index in self._read_back
            outcomes.append(
                WriteOutcome(write, ok=error is None, at=self._at[index], error=error, read_back=read_back)
            )
        return outcomes


class RetryBreaker:
    """Requests failing in a row after every retry: below `limit` their writes fail and the push goes on;
    at `limit` the tracker counts as down and the error is raised."""

    def __init__(self, tracker: str, limit: int = 3) -> None:
        self.tracker = tracker
        self.limit = limit
        self.in_a_row = 0

    def reset(self) -> None:
        self.in_a_row = 0

    def call(self, request: Callable[[], T], what: str = "a request") -> T:
        """The answer of `request`; a `RetriableAPIError` becomes `WriteRefused` until the limit."""
        try:
            answer = request()
        except RetriableAPIError as exc:
            self.in_a_row += 1
            if self.in_a_row >= self.limit:
                raise
            if exc.status == 429:  # answered before anything was done
                log.warning(
                    "%s: %s failed after every retry; its writes are reported failed", self.tracker, what
                )
                raise WriteRefused(redact(str(exc))) from exc
            log.warning(
                "%s: %s got no answer after every retry; its writes are read back", self.tracker, what
            )
            detail = redact(str(exc)).removeprefix(f"{self.tracker}: ")
            raise OutcomeUnknown(f"no answer to {what} ({detail})") from exc
        self.in_a_row = 0
        return answer


def config_refusal(tracker: str, config: TrackerConfig, write: FieldWrite) -> str | None:
    """Why the tracker's config does not let the bridge make `write` (None when it does).

    Adding is refused for what `write` does not manage; removing a label or link stays allowed, so what
    the bridge wrote before a setting was switched off can always be taken back.
    """
    if write.item.source != tracker:
        return f"the item belongs to tracker {write.item.source!r}"
    settings = config.write
    adding = write.value is not None
    if write.kind is WriteKind.LABEL_ADD and not settings.labels:
        return "labels are not managed here (write.labels is off)"
    if write.kind is WriteKind.LINK and adding and not settings.okr_links:
        return "links are not managed here (write.okr_links is off)"
    if write.kind is WriteKind.ORDER and not settings.native_order:
        return "the order is not managed here (write.native_order is off)"
    if write.kind is WriteKind.COMMENT:
        return _comment_refusal(write, settings.comments)
    if write.kind is WriteKind.FIELD and write.field == STATUS_UPDATE_FIELD:
        if not config.status_updates:
            return "key results here take no status updates"
        return None if write.value is not None else "a status update is never taken back"
    if write.kind is WriteKind.FIELD:
        key = MANAGED_FIELDS.get(write.field)
        if key is None:
            known = ", ".join(repr(name) for name in MANAGED_FIELDS)
            return f"field {write.field!r} is not one the bridge writes (only {known})"
        if settings.field_named(write.field) is None:
            return f"field {write.field!r} is not managed here: trackers.{tracker}.write.{key} is not set"
    return None


class Writer(ABC, Generic[ConfigT]):
    """The write side of one tracker: `read_state` and `push`, the vendor filling in `send` (and `refuse`)."""

    def __init__(self, name: str, config: ConfigT, *, retry_limit: int = 3) -> None:
        self.name = name
        self.config = config
        self.breaker = RetryBreaker(name, retry_limit)

    @abstractmethod
    def read_state(
        self, items: Sequence[Ref], *, links: Collection[Ref] | None = None
    ) -> dict[Ref, ItemState]:
        """What `items` hold now of what the bridge manages (see `bridge.connector.Connector`)."""

    def refuse(self, write: FieldWrite) -> None:
        """Raise `WriteRefused` when this tracker cannot take `write` as given (a value its field cannot
        hold, an item that is not one of its kind). Called after the config checks."""

    @abstractmethod
    def send(self, writes: Sequence[tuple[int, FieldWrite]], outcomes: Outcomes) -> None:
        """Make `writes` (each with its index in the push), grouped as the API allows, settling each one
        in `outcomes`. A `WriteRefused` raised from here fails every write not settled yet (an
        `OutcomeUnknown` leaves them unknown, to be read back)."""

    def read_back(self, writes: Sequence[tuple[int, FieldWrite]]) -> dict[int, bool]:
        """Whether the tracker holds each of `writes` (by index), whose requests got no answer.

        By default one `read_state` of their items (and of the items a move goes next to), which each
        vendor batches, then `holds`; comments by `comment_found`, each on its own (one that cannot be
        read back stays failed). A vendor may read more cheaply; an error raised leaves them failed.
        """
        comments = [(index, write) for index, write in writes if write.kind is WriteKind.COMMENT]
        held: dict[int, bool] = {}
        for index, write in comments:
            try:
                held[index] = self.comment_found(write) is (write.value is not None)
            except WriteRefused:
                continue  # counts as failed: the next cycle looks for the marker again
        rest = [(index, write) for index, write in writes if write.kind is not WriteKind.COMMENT]
        return held | (self._read_back_state(rest) if rest else {})

    def comment_found(self, write: FieldWrite) -> bool:
        """Whether the item carries a comment with `write`'s marker; raises `WriteRefused` when it cannot
        tell. A vendor that posts comments fills this in."""
        raise WriteRefused(f"{self.name}: comments cannot be read back here")

    def _read_back_state(self, writes: Sequence[tuple[int, FieldWrite]]) -> dict[int, bool]:
        items: list[Ref] = []
        linked: set[Ref] = set()
        for _, write in writes:
            items.append(write.item)
            if write.kind is WriteKind.LINK:
                linked.add(write.item)
            if write.kind is WriteKind.ORDER and isinstance(write.value, tuple | list):
                items.extend(ref for ref in write.value if isinstance(ref, Ref))
        states = self.read_state(list(dict.fromkeys(items)), links=linked)
        return {index: self.holds(write, states) for index, write in writes}

    def holds(self, write: FieldWrite, states: Mapping[Ref, ItemState]) -> bool:
        """Whether `states` (as read back) show `write` made; see `holds`."""
        return holds(write, states)

    def cost(self, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost:
        """What `writes` would cost, without sending anything; `watchers` is each item's watch count as
        the pull last saw it. By default one request per item for its field and label writes together,
        one per link and one per move, and no email; a vendor says how it groups them."""
        return WriteCost(
            edits=len(writes), items=len({w.item for w in writes}), requests=self.requests_for(writes)
        )

    def requests_for(self, writes: Sequence[FieldWrite]) -> int:
        """The write requests `writes` take (see `cost`)."""
        edited = {w.item for w in writes if w.kind in EDIT_KINDS}
        return len(edited) + sum(1 for w in writes if w.kind not in EDIT_KINDS)

    def push(self, writes: Iterable[FieldWrite]) -> list[WriteOutcome]:
        """Apply `writes`; one outcome per write, in order (see the module's docstring)."""
        outcomes = Outcomes(self.name, list(writes))
        self.breaker.reset()
        accepted: list[tuple[int, FieldWrite]] = []
        for index, write in enumerate(outcomes.writes):
            problem = config_refusal(self.name, self.config, write)
            try:
                if problem is not None:
                    raise WriteRefused(problem)
                self.refuse(write)
            except WriteRefused as exc:
                outcomes.fail(index, exc)
            else:
                accepted.append((index, write))
        if accepted:
            try:
                self.send(accepted, outcomes)
            except WriteRefused as exc:
                for index, _ in accepted:
                    if not outcomes.settled(index):
                        outcomes.fail(index, exc)
        self._confirm(outcomes)
        result = outcomes.result()
        failed = [o for o in result if not o.ok]
        for outcome in failed:
            write = outcome.write
            log.warning("%s: write %s %s on %s failed: %s", self.name, write.kind, write.field,
                        write.item.remote_id, outcome.error)  # fmt: skip
        read_back = sum(1 for o in result if o.read_back)
        log.info("%s: pushed %d writes, %d failed, %d read back after a lost answer", self.name,
                 len(result) - len(failed), len(failed), read_back)  # fmt: skip
        return result

    def _confirm(self, outcomes: Outcomes) -> None:
        """Read back the writes left unknown and settle them as the tracker holds them."""
        unknown = outcomes.unknowns()
        if not unknown:
            return
        try:
            applied = self.read_back(unknown)
        except AuthError:
            raise
        except BridgeError as exc:
            log.warning("%s: reading back %d writes whose answer was lost failed: %s", self.name,
                        len(unknown), redact(str(exc)))  # fmt: skip
            return
        for index, _ in unknown:
            outcomes.confirm(index, applied.get(index, False))
        found = sum(1 for index, _ in unknown if applied.get(index, False))
        log.info("%s: %d writes got no answer; read back, %d were made and %d were not", self.name,
                 len(unknown), found, len(unknown) - found)  # fmt: skip


def _comment_refusal(write: FieldWrite, allowed: bool) -> str | None:
    """Why a comment write cannot go: comments switched off (deleting stays allowed), a marker that is
    not the bridge's, a value that is not text."""
    if not write.field.startswith(COMMENT_MARKER_PREFIX):
        return f"comment marker {write.field!r} is not the bridge's"
    if write.value is None:
        return None
    if not allowed:
        return "comments are not posted here (write.comments is off)"
    return None if isinstance(write.value, str) and write.value.strip() else "a comment needs its text"


def holds(write: FieldWrite, states: Mapping[Ref, ItemState]) -> bool:
    """Whether the items' `states` show `write` made: the field holds the value, the label is on (or off),
    the link is there with that URL (or gone), the item sits on the anchor's side in its container."""
    state = states.get(write.item)
    if state is None:
        return False
    if write.kind is WriteKind.FIELD:
        return same_value(state.fields.get(write.field), write.value)
    if write.kind is WriteKind.LABEL_ADD:
        return write.field in state.labels
    if write.kind is WriteKind.LABEL_REMOVE:
        return write.field not in state.labels
    if write.kind is WriteKind.COMMENT:
        return False  # comments are not part of an item's state: a vendor reads them back itself
    if write.kind is WriteKind.LINK:
        found = state.links.get(write.field)
        if not isinstance(write.value, LinkTarget):
            return found is None
        return found is not None and found.url == write.value.url
    return _placed(state, write.value, states)


def _placed(state: ItemState, value: object, states: Mapping[Ref, ItemState]) -> bool:
    """An `order` write's item is in its anchor's container, after the one it goes after (or before
    the one it goes before)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        return False
    after, before = value
    anchor_ref = after if isinstance(after, Ref) else before
    anchor = states.get(anchor_ref) if isinstance(anchor_ref, Ref) else None
    if anchor is None or state.container is None or anchor.container != state.container:
        return False
    if state.position is None or anchor.position is None:
        return False
    if isinstance(after, Ref):
        return bool(anchor.position < state.position)
    return bool(state.position < anchor.position)


def same_value(a: object, b: object) -> bool:
    """Equal as a tracker shows a field: 3, 3.0 and "3" are one number; None and "" are both empty."""
    if a in (None, "") or b in (None, ""):
        return a in (None, "") and b in (None, "")
    if isinstance(a, int | float | str) and isinstance(b, int | float | str) and not isinstance(a, bool):
        try:
            return float(a) == float(b)
        except ValueError:
            pass
    return bool(canonical(a) == canonical(b))
