"""Pushing one tracker: take what the items hold, plan, apply through the connector, record outcomes.

Only items whose wish differs from what the bridge last wrote, or which changed in the tracker since,
are planned for (`plan.candidates`). What they hold comes from the store, as the pull stored it
(`current_states`); the tracker is read only for what no page showed. After the push every item planned
for is recorded as holding what it now holds (`written`, and the `held` state its writes left), so the
next cycle neither reads nor writes it again unless something changes. A failed write is recorded in
the result and logged; its `written` row stays as it was, so the next cycle plans it again. A write whose
request got no answer was read back by the connector (`bridge.kit.Writer`): the tracker holding it, it
is done and recorded like any other; not holding it, it failed (`PushResult.read_back` counts both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from bridge.analytics.report import Report
from bridge.config import BridgeConfig, ForecastFields
from bridge.connector import Connector
from bridge.domain import (
    FieldWrite,
    ItemState,
    LinkTarget,
    Milestone,
    Ref,
    Snapshot,
    Task,
    WriteCost,
    WriteKind,
    WriteOutcome,
)
from bridge.http import redact
from bridge.store import Store, forecast_history
from bridge.store.held import forget_held, load_held, save_held
from bridge.store.snapshot import item_names
from bridge.store.written import Record, load_written, record_written
from bridge.sync.desired import Labels, desired_state
from bridge.sync.plan import Desired, Plan, bridge_labels, candidates, holding_items, plan, same
from bridge.written import (
    COMMENT_MARKER_PREFIX,
    LABELS_FIELD,
    LINK_PREFIX,
    STATUS_UPDATE_FIELD,
    Written,
    native_link,
)

if TYPE_CHECKING:
    from bridge.progress import Progress

log = logging.getLogger(__name__)

PUSH_CHUNK = 50
"""With a progress observer, writes go to the connector in chunks of about this many (see `_send`)."""


@dataclass
class PushResult:
    tracker: str
    plan: Plan
    read: int = 0
    """Items whose state was read from the tracker."""
    done: int = 0
    failed: int = 0
    read_back: int = 0
    """Writes whose request got no answer, settled (among `done` or `failed`) by reading the item back."""
    read_back_applied: int = 0
    """Of those, the ones the tracker turned out to hold (counted in `done`)."""
    failures: list[str] = field(default_factory=list)
    left_in_place: int = 0
    """For `bridge purge`: the key results' status updates the bridge posted, which it leaves in place
    (a goal's status updates are its history)."""
    dry_run: bool = False
    keys: dict[Ref, str] = field(default_factory=dict)
    """Item -> its key in the tracker, for messages and the dry-run table."""
    cost: WriteCost | None = None
    """With `dry_run`, what the planned writes would cost: edits, items, requests, emails."""


def push_tracker(
    store: Store,
    config: BridgeConfig,
    name: str,
    connector: Connector,
    report: Report,
    snapshot: Snapshot,
    *,
    dry_run: bool = False,
    force: bool = False,
    generation: int = 0,
    guard: Callable[[Connection], None] | None = None,
    progress: Progress | None = None,
    slipping: Mapping[Ref, str] | None = None,
    comments: Mapping[Ref, Mapping[str, str]] | None = None,
    now: datetime | None = None,
) -> PushResult:
    """Plan and (unless `dry_run`) apply the writes that make tracker `name` hold the analysis.

    `generation` stamps what is recorded; an item a newer generation has written to already is left to
    it (two replicas' analyses never flip a value back and forth). `guard(conn)` runs in a transaction
    just before the writes go out and in the one recording them (the daemon's lease check).
    `progress`, when given, hears how many of the writes have been applied as they go (`_send`).
    `slipping` are the milestones to label as slipping, with why (`forecast_history.slipping`);
    `comments` the comments milestones should carry, by marker (`bridge.reached.reached_comments`).
    `now` is the cycle's time: forecast dates are written at most once a UTC day per item
    (`desired.forecast_dates`); None means the clock's.
    """
    now = now or datetime.now(UTC)
    with store.read() as conn:
        written = load_written(conn, name)
        dated = config.tracker(name).write.forecast_fields != ForecastFields()
        moves = _forecast_moves(conn) if dated else {}
    desired = desired_state(
        report, snapshot, name, config, slipping, comments, written=written, now=now, moves=moves
    )
    updated = _updated(snapshot, name)
    newer = written.newer_than(generation)
    with store.read() as conn:
        planned = candidates(desired, written, updated) + held_key_results(conn, name, desired, updated)
    refs = [ref for ref in sorted(set(planned), key=lambda r: r.remote_id) if ref not in newer]
    linked = {ref for ref in refs if desired[ref].links or written.links(ref)}
    ordered = {ref for ref in refs if desired[ref].order is not None}
    current = current_states(store, connector, name, refs, (linked, ordered), updated, guard)
    states = current.states
    labels = Labels.of(config)
    the_plan = plan(
        name,
        {ref: desired[ref] for ref in refs},
        states,
        written,
        managed_labels=labels.managed,
        opt_out_label=config.push.opt_out_label,
        label_colours=labels.colours,
        items_total=len(desired),
        items_held=len(holding_items(desired, written)),
        budget=config.push.write_budget,
        max_change_share=config.push.max_change_share,
        force=force,
    )
    result = PushResult(name, the_plan, read=current.read, dry_run=dry_run)
    result.keys = {ref: desired[ref].name or desired[ref].key for ref in refs}
    for write in the_plan.restores:
        log.info("%s: %s: restoring %s (%s)", name, _key(desired, write.item), write.field, write.reason)
    if dry_run:
        result.cost = write_cost(connector, the_plan.writes, _watchers(snapshot, name))
        return result
    if guard is not None:
        with store.write() as conn:
            guard(conn)
    outcomes = _send(connector, name, the_plan.writes, progress)
    _count(result, outcomes, lambda ref: _key(desired, ref))
    for message in result.failures:
        log.warning("%s: write failed: %s", name, message, extra={"tracker": name, "error": message})
    if progress is not None:
        progress.push_finished(name, result.done, result.failed)
    records = _records(
        desired, states, written, the_plan, outcomes, config.push.opt_out_label, labels.managed
    )
    with store.write() as conn:
        if guard is not None:
            guard(conn)
        record_written(conn, name, records, at=datetime.now(UTC), generation=generation)
        record_held(conn, name, current, outcomes, at=datetime.now(UTC))
    if the_plan.deferred:
        log.info("%s: %d writes wait for the next cycle (write budget)", name, len(the_plan.deferred))
    return result


def held_key_results(
    conn: Connection, name: str, desired: Mapping[Ref, Desired], updated: Mapping[Ref, datetime | None]
) -> list[Ref]:
    """The key-result items (Jira issues, Trello cards) whose state a pull page stored: always planned for.

    A key result carries no `updated` time, so `candidates` would plan for one only when its wish
    changes, and a status label a user removed would stay off while the status held. Planned against the
    state its pull page stored (`bridge.store.held`), it reads nothing from the tracker, and a label
    taken off is put back by the next cycle, like any other managed value. An Asana goal's status update
    is left to `candidates`: it is posted only when the status changes, never in answer to a user's own.
    """
    wishes = [
        ref
        for ref, wish in desired.items()
        if ref not in updated and STATUS_UPDATE_FIELD not in wish.fields and (wish.labels or wish.fields)
    ]
    return sorted(load_held(conn, name, wishes).states, key=lambda r: r.remote_id)


def _forecast_moves(conn: Connection) -> dict[Ref, str]:
    """Why each milestone's forecast last moved, as its history keeps it (a first forecast says nothing
    more than the forecast's own explanation, so it is left out)."""
    return {
        ref: point.reason
        for ref, point in forecast_history.latest(conn).items()
        if point.reason not in ("first forecast", forecast_history.REACHED)
    }


@dataclass
class Current:
    """What the items to plan for hold now (`current_states`)."""

    states: dict[Ref, ItemState] = field(default_factory=dict)
    read: int = 0
    """Items read from the tracker (the others' states came from the store)."""
    unknown_links: set[Ref] = field(default_factory=set)
    """Items whose states do not carry their links (nobody needed them)."""
    fresh: set[Ref] = field(default_factory=set)
    """Items read from the tracker this cycle: their places are stored as unknown (a place read is only
    known to compare with others read at the same time, like an Asana task's index in its section)."""


def current_states(
    store: Store,
    connector: Connector,
    name: str,
    refs: Sequence[Ref],
    needs: tuple[Collection[Ref], Collection[Ref]],
    updated: Mapping[Ref, datetime | None],
    guard: Callable[[Connection], None] | None = None,
) -> Current:
    """What `refs` hold now (`Current`).

    `needs` names the items whose links matter and those whose place matters (native order). From the
    store (`bridge.store.held`: what the pull showed and the bridge's writes left), reading from the
    tracker only what no page showed: items without a stored state or changed in the tracker since it
    was stored (`updated`, as the pull saw it), the links of the linked items that no page showed since
    the item last changed, and the place of ordered items no page showed since (moved by the bridge, or
    read from the tracker). What was read is stored, so it is not read again while the tracker does not
    change it (in a transaction `guard` checks first, when given).
    """
    linked, ordered = needs
    if not refs:
        return Current()
    with store.read() as conn:
        held = load_held(conn, name, refs)
    stale_links = {ref for ref in held.states if not held.links_hold(ref, updated.get(ref))}
    unread = [
        ref
        for ref in refs
        if held.stale(ref, updated.get(ref))
        or (ref in ordered and ref in held.unplaced)
        or (ref in linked and ref in stale_links)
    ]
    current = Current({ref: held.states[ref] for ref in refs if ref in held.states}, len(unread))
    current.unknown_links = stale_links - set(linked)
    if not unread:
        return current
    for ref in unread:
        current.states.pop(ref, None)
    fresh = connector.read_state(unread, links=[ref for ref in unread if ref in linked])
    current.states.update(fresh)
    current.unknown_links |= {ref for ref in fresh if ref not in linked}
    current.fresh = set(fresh)
    with store.write() as conn:
        if guard is not None:
            guard(conn)
        save_held(conn, name, fresh.values(), at=datetime.now(UTC), links_known=linked, unplaced=fresh)
        forget_held(conn, name, [ref.remote_id for ref in unread if ref not in fresh])
    return current


def record_held(
    conn: Connection,
    name: str,
    current: Current,
    outcomes: Sequence[WriteOutcome],
    *,
    at: datetime,
) -> None:
    """Store what the items written to hold after the writes that succeeded (a moved item's place is
    left unknown: the tracker tells it), so the bridge's own writes are not read back next cycle.

    An item with a failed write is forgotten: what it holds is read again before it is planned for
    next (it may be gone from the tracker, or hold what the bridge did not expect)."""
    states = current.states
    applied: dict[Ref, list[FieldWrite]] = {}
    failed = {outcome.write.item.remote_id for outcome in outcomes if not outcome.ok}
    for outcome in outcomes:
        if outcome.ok and outcome.write.item in states and outcome.write.item.remote_id not in failed:
            applied.setdefault(outcome.write.item, []).append(outcome.write)
    forget_held(conn, name, failed)
    if not applied:
        return
    after = [_after(states[ref], writes) for ref, writes in applied.items()]
    moved = {ref for ref, writes in applied.items() if any(w.kind is WriteKind.ORDER for w in writes)}
    moved |= current.fresh
    with_links = {ref for ref in applied if ref not in current.unknown_links}
    save_held(conn, name, after, at=at, links_known=with_links, unplaced=moved)


def _after(state: ItemState, writes: Sequence[FieldWrite]) -> ItemState:
    """`state` with `writes` applied."""
    fields = dict(state.fields)
    labels = set(state.labels)
    links = dict(state.links)
    duplicates = set(state.duplicates)
    for write in writes:
        if write.kind is WriteKind.FIELD:
            fields[write.field] = write.value
        elif write.kind is WriteKind.LABEL_ADD:
            labels.add(write.field)
        elif write.kind is WriteKind.LABEL_REMOVE:
            labels.discard(write.field)
        elif write.kind is WriteKind.LINK:
            duplicates.discard(write.field)
            if isinstance(write.value, LinkTarget):
                links[write.field] = write.value
            else:
                links.pop(write.field, None)
    return replace(
        state, fields=fields, labels=frozenset(labels), links=links, duplicates=frozenset(duplicates)
    )


def _send(
    connector: Connector, name: str, writes: Sequence[FieldWrite], progress: Progress | None
) -> list[WriteOutcome]:
    """The connector's outcomes of `writes`, in order.

    Without `progress` the connector gets every write in one call. With it, the writes go in chunks
    (`_chunks`) so that progress can be told after each; a chunk keeps an item's writes together, so a
    connector still sends them in one request, and the moves that follow one another stay in one chunk
    up to its size.
    """
    if progress is None:
        return connector.push(writes) if writes else []
    progress.push_started(name, len(writes))
    outcomes: list[WriteOutcome] = []
    for chunk in _chunks(writes, PUSH_CHUNK):
        sent = connector.push(chunk)
        outcomes.extend(sent)
        progress.pushed(name, len(outcomes), len(writes))
        progress.sent(name, sent)
    return outcomes


def _count(
    result: PushResult, outcomes: Sequence[WriteOutcome], key: Callable[[Ref], str]
) -> list[WriteOutcome]:
    """Count `outcomes` into `result` (done, failed, read back), noting each failure by the item's `key`;
    the failed outcomes."""
    failed: list[WriteOutcome] = []
    for outcome in outcomes:
        if outcome.read_back:
            result.read_back += 1
            result.read_back_applied += int(outcome.ok)
        if outcome.ok:
            result.done += 1
            continue
        result.failed += 1
        result.failures.append(
            f"{key(outcome.write.item)} {outcome.write.field}: {redact(outcome.error or '')}"
        )
        failed.append(outcome)
    return failed


def _chunks(writes: Sequence[FieldWrite], size: int) -> list[list[FieldWrite]]:
    """`writes` in order, cut into runs of at least `size` (the last may be shorter).

    A cut never falls between two writes to the same item, nor between two moves in one container
    unless the run already holds `size` moves (a connector groups at most a few dozen moves per
    request anyway).
    """
    chunks: list[list[FieldWrite]] = []
    current: list[FieldWrite] = []
    for write in writes:
        if len(current) >= size and _may_cut(current[-1], write, current, size):
            chunks.append(current)
            current = []
        current.append(write)
    if current:
        chunks.append(current)
    return chunks


def _may_cut(last: FieldWrite, write: FieldWrite, current: Sequence[FieldWrite], size: int) -> bool:
    if last.item == write.item:
        return False
    if last.kind is WriteKind.ORDER and write.kind is WriteKind.ORDER and last.field == write.field:
        moves = sum(1 for w in current if w.kind is WriteKind.ORDER and w.field == write.field)
        return moves >= size
    return True


def write_cost(connector: Connector, writes: Sequence[FieldWrite], watchers: Mapping[Ref, int]) -> WriteCost:
    """What `writes` would cost, as the connector groups them (`cost`); a connector that cannot say
    counts a request per write and no email."""
    estimate = getattr(connector, "cost", None)
    if callable(estimate):
        found = estimate(writes, watchers)
        if isinstance(found, WriteCost):
            return found
    return WriteCost(edits=len(writes), items=len({w.item for w in writes}), requests=len(writes))


def _watchers(snapshot: Snapshot, source: str) -> dict[Ref, int]:
    """Each item's watch count as the pull last saw it (items without one left out)."""
    items: list[Milestone | Task] = [*snapshot.milestones, *snapshot.tasks]
    return {Ref(source, i.remote_id): i.watchers for i in items if i.source == source and i.watchers}


def _updated(snapshot: Snapshot, source: str) -> dict[Ref, datetime | None]:
    found: dict[Ref, datetime | None] = {}
    for milestone in snapshot.milestones:
        if milestone.source == source:
            found[Ref(source, milestone.remote_id)] = milestone.updated
    for task in snapshot.tasks:
        if task.source == source:
            found[Ref(source, task.remote_id)] = task.updated
    return found


def _key(desired: dict[Ref, Desired], ref: Ref) -> str:
    wish = desired.get(ref)
    return (wish.name or wish.key) if wish is not None else str(ref)


def _records(
    desired: dict[Ref, Desired],
    states: dict[Ref, ItemState],
    written: Written,
    the_plan: Plan,
    outcomes: Sequence[WriteOutcome],
    opt_out_label: str,
    managed_labels: frozenset[str],
) -> list[Record]:
    """What each item read now holds of what the bridge manages, after the writes that succeeded.

    Of the item's labels only the bridge's are recorded (`bridge_labels`: its names and those it recorded
    adding), so a user's label sharing the prefix never becomes the bridge's to remove.

    A failed or deferred write leaves its field's row untouched, so the next cycle plans it again.
    """
    failed: set[tuple[Ref, str]] = set()
    for outcome in outcomes:
        if not outcome.ok:
            failed.add((outcome.write.item, _row_of(outcome.write)))
    for write in the_plan.deferred:
        failed.add((write.item, _row_of(write)))
    applied: dict[Ref, list[FieldWrite]] = {}
    for outcome in outcomes:
        if outcome.ok:
            applied.setdefault(outcome.write.item, []).append(outcome.write)
    records: list[Record] = []
    for ref, state in states.items():
        wish = desired.get(ref)
        if wish is None or opt_out_label in state.labels:
            continue
        after = _after(state, applied.get(ref, ()))
        holds = after.fields
        added = {w.field for w in applied.get(ref, ()) if w.kind is WriteKind.LABEL_ADD}
        labels = after.labels & (bridge_labels(managed_labels, written, ref) | added)
        for name in wish.fields:
            if (ref, name) not in failed:
                held = holds.get(name)
                if name in wish.clear_own_only and wish.fields[name] is None:
                    held = None  # what is left there is a user's, not the bridge's to take back later
                records.append(Record(ref, name, held))
        if (ref, LABELS_FIELD) not in failed:
            records.append(Record(ref, LABELS_FIELD, sorted(labels)))
        # Only links the bridge wants are recorded as its own; one it took back is forgotten. A link the
        # item has that the bridge never wrote may be a user's, and is never adopted: a native link (to a
        # key result of this tracker) counts as the bridge's only once the bridge has made it itself.
        # A comment posted (or found posted) is recorded by its marker, so it is never posted again.
        for write in applied.get(ref, ()):
            if write.kind is WriteKind.COMMENT and write.value is not None:
                records.append(Record(ref, write.field, write.value))
        made = {w.field for w in applied.get(ref, ()) if w.kind is WriteKind.LINK}
        for gid in set(wish.links) | written.links(ref):
            if (ref, LINK_PREFIX + gid) in failed:
                continue
            if native_link(ref.source, gid) and gid not in made and gid not in written.links(ref):
                continue
            if gid in wish.links:
                records.append(Record(ref, LINK_PREFIX + gid, wish.links[gid]))
            else:
                records.append(Record(ref, LINK_PREFIX + gid, forget=True))
    return records


def _row_of(write: FieldWrite) -> str:
    if write.kind in (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE):
        return LABELS_FIELD
    if write.kind is WriteKind.LINK:
        return LINK_PREFIX + write.field
    return write.field


def purge_tracker(
    store: Store, name: str, connector: Connector, *, dry_run: bool = False, progress: Progress | None = None
) -> PushResult:
    """Take back everything the bridge ever wrote into tracker `name`, as the `written` table records it.

    Managed fields it wrote are cleared (only where they still hold what it wrote: a value a user typed
    since is theirs), its labels and its links removed, its comments deleted (by their markers). Rows
    whose writes succeed are forgotten; a failed write keeps its row, so running purge again finishes
    the job. `progress`, when given, hears how many of the removals have been applied as they go.
    """
    with store.read() as conn:
        written = load_written(conn, name)
    refs = sorted({ref for ref, _ in written.rows}, key=lambda r: r.remote_id)
    states = connector.read_state(refs) if refs else {}
    writes: list[FieldWrite] = []
    forget: list[Record] = []
    left_in_place = 0
    for ref in refs:
        state = states.get(ref)
        names = [field_name for (r, field_name) in written.rows if r == ref]
        if state is None:  # gone from the tracker: nothing left to take back
            forget.extend(Record(ref, n, forget=True) for n in names)
            continue
        for field_name in sorted(names):
            value = written.value(ref, field_name)
            if field_name == STATUS_UPDATE_FIELD:
                left_in_place += 1  # a status update is the goal's history: it stays, only the row goes
            elif field_name == LABELS_FIELD:
                for label in sorted(set(value or ()) & state.labels):
                    writes.append(
                        FieldWrite(
                            ref, label, None, previous=label, kind=WriteKind.LABEL_REMOVE, reason="purge"
                        )
                    )
            elif field_name.startswith(LINK_PREFIX):
                gid = field_name[len(LINK_PREFIX) :]
                if gid in state.links:
                    writes.append(
                        FieldWrite(
                            ref, gid, None, previous=state.links[gid], kind=WriteKind.LINK, reason="purge"
                        )
                    )
            elif field_name.startswith(COMMENT_MARKER_PREFIX):
                writes.append(
                    FieldWrite(ref, field_name, None, previous=value, kind=WriteKind.COMMENT, reason="purge")
                )
            elif value is not None and same(state.fields.get(field_name), value):
                writes.append(
                    FieldWrite(ref, field_name, None, previous=value, kind=WriteKind.FIELD, reason="purge")
                )
            forget.append(Record(ref, field_name, forget=True))
    the_plan = Plan(source=name, writes=writes, items_total=len(refs))
    result = PushResult(name, the_plan, read=len(states), dry_run=dry_run, left_in_place=left_in_place)
    with store.read() as conn:
        people_read = item_names(conn, name)
    result.keys = {ref: people_read.get(ref.remote_id, state.key) for ref, state in states.items()}
    if dry_run:
        return result
    outcomes = _send(connector, name, writes, progress)
    kept = set()
    for outcome in _count(result, outcomes, lambda ref: result.keys.get(ref, str(ref))):
        kept.add((outcome.write.item, _row_of(outcome.write)))
    if progress is not None:
        progress.push_finished(name, result.done, result.failed)
    with store.write() as conn:
        record_written(conn, name, [r for r in forget if (r.item, r.field) not in kept], at=datetime.now(UTC))
        forget_held(conn, name, [ref.remote_id for ref in refs])  # what they hold now is read again
    return result
