"""The write side's template: validate, group, send, and one outcome per write.

`Writer.push` is the same for every tracker:
1. each write is checked: against the tracker (an item of another tracker), against the tracker's
   `write` config (a kind of write switched off, a field the bridge does not manage: every connector
   refuses those alike), then by the vendor's own `refuse` hook (a value its field cannot hold);
2. the writes that pass go to the vendor's `send` hook, which groups them as its API allows (one edit per
   issue, ten to a batch, fifty moves a call), sends them and settles each one in the `Outcomes`;
3. the outcomes come back in the order of the writes.

A refusal is `WriteRefused`, the one error a vendor raises for "this write, not the others". A request
that still fails after every retry fails its writes too, until `RetryBreaker.limit` such requests in a
row say the tracker is down: then `push` raises, as it does when the credentials are refused.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from bridge.config import TrackerConfig
from bridge.domain import FieldWrite, ItemState, Ref, WriteKind, WriteOutcome
from bridge.errors import RetriableAPIError, WriteRefused
from bridge.http import redact

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=TrackerConfig, covariant=True)
"""Covariant: a writer for one kind of tracker table is a `Writer[TrackerConfig]` to the connector kit."""
T = TypeVar("T")

MANAGED_FIELDS = {"rank": "rank_field", "okr": "okr_field"}
"""Logical field -> the `[trackers.X.write]` key naming the tracker field it is written to."""


class Outcomes:
    """The outcome of each write of one push, settled by index as the vendor's requests come back."""

    def __init__(self, tracker: str, writes: Sequence[FieldWrite]) -> None:
        self.tracker = tracker
        self.writes = list(writes)
        self._errors: dict[int, str | None] = {}
        self._at: dict[int, datetime] = {}

    def ok(self, index: int) -> None:
        """Write `index` was made (or was already so)."""
        self._settle(index, None)

    def fail(self, index: int, error: str | BaseException) -> None:
        """Write `index` failed; `error` is redacted and names the tracker."""
        text = redact(str(error))
        if not text.startswith(f"{self.tracker}: "):
            text = f"{self.tracker}: {text}"
        self._settle(index, text)

    def settle(self, index: int, error: str | BaseException | None) -> None:
        """`ok` when `error` is None, else `fail`."""
        if error is None:
            self.ok(index)
        else:
            self.fail(index, error)

    def settled(self, index: int) -> bool:
        return index in self._errors

    def _settle(self, index: int, error: str | None) -> None:
        if index not in self._errors:  # the first word on a write stands
            self._errors[index] = error
            self._at[index] = datetime.now(UTC)

    def result(self) -> list[WriteOutcome]:
        """One outcome per write, in order; a write nothing settled failed (it was never sent)."""
        outcomes = []
        for index, write in enumerate(self.writes):
            if index not in self._errors:
                self.fail(index, "the write was not sent")
            outcomes.append(
                WriteOutcome(
                    write, ok=self._errors[index] is None, at=self._at[index], error=self._errors[index]
                )
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
            log.warning("%s: %s failed after every retry; its writes are reported failed", self.tracker, what)
            raise WriteRefused(redact(str(exc))) from exc
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
    if write.kind is WriteKind.FIELD:
        key = MANAGED_FIELDS.get(write.field)
        if key is None:
            known = " and ".join(repr(name) for name in MANAGED_FIELDS)
            return f"field {write.field!r} is not one the bridge writes (only {known})"
        if getattr(settings, key) is None:
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
        in `outcomes`. A `WriteRefused` raised from here fails every write not settled yet."""

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
        result = outcomes.result()
        failed = [o for o in result if not o.ok]
        for outcome in failed:
            write = outcome.write
            log.warning("%s: write %s %s on %s failed: %s", self.name, write.kind, write.field,
                        write.item.remote_id, outcome.error)  # fmt: skip
        log.info("%s: pushed %d writes, %d failed", self.name, len(result) - len(failed), len(failed))
        return result
