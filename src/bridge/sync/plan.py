"""The write-back plan: a pure diff of what each tracker item should hold against what it holds now and
what the bridge last wrote.

Three inputs per item, three questions:
- *desired* (from the analysis): the rank and OKR fields, the bridge's labels, its links, its place;
- *state* (read from the tracker just before planning): what the item holds now;
- *written* (from the store): what the bridge wrote there last time.

Only what differs between desired and state is written. When state differs from what the bridge wrote,
a user edited a managed value: it is restored, and the plan says so. The bridge's labels are the ones it
manages by name (its configured label names) and the ones `written` says it put on the item: a label that
merely shares the bridge's prefix is a user's and never removed. Fields it is not told to manage and links
it did not make are never part of a plan either; a comment it wishes is posted once, when `written` has
no row for its marker, and never edited; an item carrying the opt-out label gets no write at all.
Order is written with the fewest moves: the longest run of items already in the right relative order
stays, the rest move next to a neighbour.

No I/O here: `candidates` says which items need their state read, `plan` turns the three inputs into
writes, and the caller (`bridge.sync.push`) reads, applies and records.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteKind
from bridge.written import LABELS_FIELD, LINK_PREFIX, STATUS_UPDATE_FIELD, Written, canonical, native_link

MIN_GUARDED_ITEMS = 10
"""Plans changing fewer items than this never need `--force`, whatever their share."""


@dataclass(frozen=True, slots=True)
class Desired:
    """What one tracker item should hold, of what the bridge manages, and why."""

    item: Ref
    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Logical field (`rank`, `okr`) -> value; only fields the config tells the bridge to manage."""
    labels: frozenset[str] = frozenset()
    """The bridge's labels the item should carry (each with the bridge's prefix)."""
    links: Mapping[str, LinkTarget] = field(default_factory=dict)
    """The bridge's links the item should carry, by global id."""
    order: tuple[Any, ...] | None = None
    """The sort key within its container when the tracker's native order is managed (lower first)."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Why, by field name / label / link id: shown by `--dry-run` and `bridge explain`."""
    name: str = ""
    """How a person reads the item (`bridge.domain.display_name`), for `--dry-run` and the logs."""
    comments: Mapping[str, str] = field(default_factory=dict)
    """The bridge's comments the item should carry, by marker (`bridge.written.comment_marker`) -> text:
    each posted once, when `written` has no row for its marker (the connector looks for the marker in
    the tracker too, so a lost answer or a second replica never posts it twice)."""
    clear_own_only: frozenset[str] = frozenset()
    """Fields whose empty wish takes back only the bridge's own value (the forecast dates): a value the
    bridge did not write there, or a user changed since, is theirs and stays."""


@dataclass
class Plan:
    """The writes for one tracker, in the order to apply them, and what the plan left out."""

    source: str
    writes: list[FieldWrite] = field(default_factory=list)
    restores: list[FieldWrite] = field(default_factory=list)
    """Writes that put back a managed value a user changed (also in `writes`)."""
    deferred: list[FieldWrite] = field(default_factory=list)
    """Writes past the cycle's write budget: left for the next cycle."""
    opted_out: list[Ref] = field(default_factory=list)
    missing: list[Ref] = field(default_factory=list)
    """Items the tracker no longer has."""
    items_total: int = 0
    items_held: int = 0
    """Items of the tracker holding a value the bridge wrote (see `holding_items`)."""
    items_held_changed: int = 0
    """Of those, the items whose values the plan changes or takes back."""

    @property
    def items_changed(self) -> int:
        return len({w.item for w in self.writes} | {w.item for w in self.deferred})

    @property
    def change_share(self) -> float:
        return self.items_changed / self.items_total if self.items_total else 0.0

    @property
    def held_change_share(self) -> float:
        total = max(self.items_held, self.items_held_changed)
        return self.items_held_changed / total if total else 0.0

    def too_large(self, limit: float) -> bool:
        """The change guard, one rule for every tracker: the plan changes more than `limit` of the
        tracker's items, or more than `limit` of the items holding the bridge's values (at least
        `MIN_GUARDED_ITEMS` either way).

        The second measure is what makes the guard the same on every vendor: a tracker also lists items
        that hold nothing of the bridge's and get nothing (done or unranked items, cards no milestone
        claims), and how many depends on the vendor and on how its items attach to milestones. Against
        every item, clearing the rank of all ranked items was 82 % of a Jira project and 46 % of the same
        work on a Trello board; against the items holding a rank it is all of them on both.
        """
        by_items = self.items_changed >= MIN_GUARDED_ITEMS and self.change_share > limit
        by_held = self.items_held_changed >= MIN_GUARDED_ITEMS and self.held_change_share > limit
        return by_items or by_held


class PlanTooLarge(Exception):
    """A plan would change more of a tracker's items than the configured share allows."""

    def __init__(self, plan: Plan, limit: float) -> None:
        self.plan = plan
        self.limit = limit
        super().__init__(
            f"{plan.source}: the plan would change {plan.items_changed} of {plan.items_total} items "
            f"({plan.change_share:.0%}) and the values of {plan.items_held_changed} of the "
            f"{max(plan.items_held, plan.items_held_changed)} items holding the bridge's values "
            f"({plan.held_change_share:.0%}), more than push.max_change_share ({limit:.0%}) allows; "
            "look at it with --dry-run, then run again with --force"
        )


def same(a: Any, b: Any) -> bool:
    """Equal as the tracker sees it: 3 and 3.0 are one number; '' and None are both empty."""
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    mixed = (isinstance(a, str) and isinstance(b, int | float)) or (
        isinstance(b, str) and isinstance(a, int | float)
    )
    if mixed:
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return bool(canonical(a) == canonical(b))


def candidates(
    desired: Mapping[Ref, Desired], written: Written, updated: Mapping[Ref, datetime | None]
) -> list[Ref]:
    """The items whose state must be read: those where the wish differs from what was last written,
    and those the tracker changed since the bridge last wrote to them (a user may have edited a managed
    value). Everything else already holds what the bridge wants. Items whose native order is managed are
    always read (their neighbours' places matter).
    """
    found = []
    for ref, wish in desired.items():
        if wish.order is not None or _differs_from_written(wish, written):
            found.append(ref)
            continue
        last = written.last_at(ref)
        changed = updated.get(ref)
        if last is not None and changed is not None and changed > last:
            found.append(ref)
    return sorted(found, key=lambda r: (r.source, r.remote_id))


def _differs_from_written(wish: Desired, written: Written) -> bool:
    ref = wish.item
    for name in set(wish.fields) | written.fields(ref):
        if not same(wish.fields.get(name), written.value(ref, name)):
            return True
    if set(wish.labels) != set(written.value(ref, LABELS_FIELD) or ()):
        return True
    if set(wish.links) != written.links(ref):
        return True
    if set(wish.comments) - written.comments(ref):
        return True
    return any(not same(target, written.value(ref, LINK_PREFIX + gid)) for gid, target in wish.links.items())


def holding_items(refs: Iterable[Ref], written: Written) -> set[Ref]:
    """The items of `refs` holding a value the bridge wrote (`written` has a non-empty one): a field
    value, a label or a link. What the change guard weighs changes to what the bridge holds against."""
    return {ref for ref in refs if _holds_a_value(ref, written)}


def _holds_a_value(ref: Ref, written: Written) -> bool:
    names = [*written.fields(ref), LABELS_FIELD, *(LINK_PREFIX + gid for gid in written.links(ref))]
    return any(_non_empty(written.value(ref, name)) for name in names)


def _non_empty(value: Any) -> bool:
    return not same(value, None) and value not in ([], ())


def plan(
    source: str,
    desired: Mapping[Ref, Desired],
    states: Mapping[Ref, ItemState],
    written: Written,
    *,
    managed_labels: Iterable[str],
    opt_out_label: str,
    label_colours: Mapping[str, str] | None = None,
    items_total: int | None = None,
    items_held: int | None = None,
    budget: int | None = None,
    max_change_share: float | None = None,
    force: bool = False,
) -> Plan:
    """Writes that make each item in `states` hold what `desired` says.

    `states` holds the items read from the tracker (see `candidates`); a desired item missing from it is
    gone from the tracker. `managed_labels` are the bridge's label names (prefix included): with the labels
    `written` holds for an item, the only labels a plan may remove from it. Raises `PlanTooLarge` when the
    plan is too large for `max_change_share` (`Plan.too_large`: against `items_total` items, and against
    the `items_held` items holding the bridge's values; by default those of `desired`), unless `force`.
    """
    result = Plan(source=source, items_total=items_total if items_total is not None else len(desired))
    result.items_held = items_held if items_held is not None else len(holding_items(desired, written))
    colours = label_colours or {}
    managed = frozenset(managed_labels)
    ordered: dict[str, list[tuple[tuple[Any, ...], Any, Ref, str]]] = {}
    for ref in sorted(desired, key=lambda r: (desired[r].key, r.remote_id)):
        wish = desired[ref]
        state = states.get(ref)
        if state is None:
            result.missing.append(ref)
            continue
        if opt_out_label in state.labels:
            result.opted_out.append(ref)
            continue
        for write in _field_writes(wish, state, written):
            result.writes.append(write)
            last = written.get(ref, write.field)
            if write.kind == WriteKind.FIELD and last is not None and not same(last.value, write.previous):
                result.restores.append(write)
        result.writes.extend(_label_writes(wish, state, bridge_labels(managed, written, wish.item), colours))
        result.writes.extend(_link_writes(source, wish, state, written))
        result.writes.extend(_comment_writes(wish, written))
        if wish.order is not None and state.container is not None:
            ordered.setdefault(state.container, []).append((wish.order, state.position, ref, wish.key))
    for container, entries in sorted(ordered.items()):
        result.writes.extend(order_writes(container, entries))
    # Moves change no value the bridge holds; any other write to a holding item changes or takes one back.
    changed_held = {w.item for w in result.writes if w.kind != WriteKind.ORDER}
    result.items_held_changed = len(holding_items(changed_held, written))
    if not force and max_change_share is not None and result.too_large(max_change_share):
        raise PlanTooLarge(result, max_change_share)
    if budget is not None:
        result.writes, result.deferred = within_budget(result.writes, budget)
    return result


def within_budget(writes: Sequence[FieldWrite], budget: int) -> tuple[list[FieldWrite], list[FieldWrite]]:
    """The writes to the first `budget` items changed (all of each such item's writes), and the rest.

    The budget counts edits to items, not writes or requests: an item whose rank, labels and place all
    change is one item changed, as a team sees it."""
    items: set[Ref] = set()
    kept: list[FieldWrite] = []
    deferred: list[FieldWrite] = []
    for write in writes:
        if write.item in items or len(items) < budget:
            items.add(write.item)
            kept.append(write)
        else:
            deferred.append(write)
    return kept, deferred


def _field_writes(wish: Desired, state: ItemState, written: Written) -> Iterable[FieldWrite]:
    names = set(wish.fields) | written.fields(wish.item)
    for name in sorted(names):
        value = wish.fields.get(name)
        current = state.fields.get(name)
        if name not in wish.fields and name not in state.fields:
            continue  # the field is no longer managed here and the tracker does not show it
        if name == STATUS_UPDATE_FIELD and value is None:
            continue  # a status update is history: there is nothing to take back
        last = written.get(wish.item, name)
        if value is None and name in wish.clear_own_only and (last is None or not same(last.value, current)):
            continue  # not the bridge's value: left as it is
        if not same(current, value):
            reason = wish.reasons.get(name, "")
            if last is not None and not same(last.value, current):
                reason = f"{reason}; restoring: someone changed it to {current!r}".lstrip("; ")
            yield FieldWrite(wish.item, name, value, previous=current, kind=WriteKind.FIELD, reason=reason)


def bridge_labels(managed: frozenset[str], written: Written, item: Ref) -> frozenset[str]:
    """The labels that are the bridge's on `item`: its configured names and those it recorded adding.

    A prefix is no mark of ownership (users and other tools may use it too, like `okr-KR1.1` under the
    prefix `okr-`), so no label is the bridge's for its prefix alone.
    """
    return managed | frozenset(str(label) for label in written.value(item, LABELS_FIELD) or ())


def _label_writes(
    wish: Desired, state: ItemState, ours: frozenset[str], colours: Mapping[str, str]
) -> Iterable[FieldWrite]:
    mine = state.labels & (ours | wish.labels)
    for label in sorted(wish.labels - mine):
        yield FieldWrite(
            wish.item, label, colours.get(label), kind=WriteKind.LABEL_ADD, reason=wish.reasons.get(label, "")
        )
    for label in sorted(mine - wish.labels):
        yield FieldWrite(
            wish.item, label, None, previous=label, kind=WriteKind.LABEL_REMOVE, reason="no longer applies"
        )


def _link_writes(source: str, wish: Desired, state: ItemState, written: Written) -> Iterable[FieldWrite]:
    """Links are the bridge's only when it wrote them: a tracker may not tell whose a link is (an Asana
    goal relationship records no author), so only links in `written` are ever removed, and a link counts
    as in place when the item has it and the bridge last wrote that same target. A native link (to a key
    result of this same tracker) the item has and the bridge never wrote is a user's: it is in place,
    and the bridge does not claim it (see `native_link`). A link of the bridge's the item carries more than
    once (`ItemState.duplicates`) is written again, which leaves one copy.
    """
    current = dict(state.links)
    for gid, target in sorted(wish.links.items()):
        last = written.get(wish.item, LINK_PREFIX + gid)
        in_place = (last is not None and same(last.value, target)) or (
            last is None and native_link(source, gid)
        )
        if gid in current and in_place and gid not in state.duplicates:
            continue
        reason = wish.reasons.get(gid, "")
        if gid in state.duplicates:
            reason = "the item carries this link more than once: one copy is kept"
        yield FieldWrite(
            wish.item, gid, target, previous=current.get(gid), kind=WriteKind.LINK, reason=reason
        )
    for gid in sorted(written.links(wish.item) - set(wish.links)):
        if gid in current:
            yield FieldWrite(
                wish.item, gid, None, previous=current[gid], kind=WriteKind.LINK, reason="no longer linked"
            )


def _comment_writes(wish: Desired, written: Written) -> Iterable[FieldWrite]:
    """The wished comments not posted yet: a comment once posted (its marker in `written`) is the
    item's history and is neither posted again nor changed; one the item no longer wishes stays."""
    posted = written.comments(wish.item)
    for marker, text in sorted(wish.comments.items()):
        if marker not in posted:
            reason = wish.reasons.get(marker, "")
            yield FieldWrite(wish.item, marker, text, kind=WriteKind.COMMENT, reason=reason)


def longest_increasing_run(values: Sequence[Any]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence of `values` (O(n log n))."""
    tails: list[Any] = []
    tail_index: list[int] = []
    parent = [-1] * len(values)
    for i, value in enumerate(values):
        at = bisect.bisect_left(tails, value)
        if at == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[at] = value
            tail_index[at] = i
        parent[i] = tail_index[at - 1] if at > 0 else -1
    kept: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        kept.add(i)
        i = parent[i]
    return kept


def order_writes(
    container: str, entries: Sequence[tuple[tuple[Any, ...], Any, Ref, str]]
) -> list[FieldWrite]:
    """Moves that put `entries` (sort key, current position, item, key) in sort-key order, fewest first.

    Items keep their current relative order among equal sort keys. Items in the longest run already in
    order stay; each other item moves just after its predecessor in the wanted order (or, when it comes
    first, just before the first item that stays), so the moves applied in order give the wanted order.
    """
    current = sorted(entries, key=lambda e: (_position_key(e[1]), e[3]))
    wanted = sorted(range(len(current)), key=lambda i: (current[i][0], i))
    place = {i: n for n, i in enumerate(wanted)}
    stays = longest_increasing_run([place[i] for i in range(len(current))])
    writes = []
    for n, i in enumerate(wanted):
        if i in stays:
            continue
        ref = current[i][2]
        if n > 0:
            after = current[wanted[n - 1]][2]
            value: tuple[Ref | None, Ref | None] = (after, None)
        else:
            first_staying = next(current[j][2] for j in wanted if j in stays)
            value = (None, first_staying)
        writes.append(
            FieldWrite(
                ref, container, value, previous=current[i][1], kind=WriteKind.ORDER, reason="value rank order"
            )
        )
    return writes


def _position_key(position: Any) -> tuple[int, Any]:
    """Positions sort among their own kind; an item without one sorts last."""
    if position is None:
        return (2, 0)
    if isinstance(position, int | float):
        return (0, position)
    return (1, str(position))
