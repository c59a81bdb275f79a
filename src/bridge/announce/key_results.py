"""Key results whose target is met: the first cycle that sees one met announces it, once.

A key result is met when its current value has reached its target in the direction from its start to
its target (a target below its start, "cut churn to 2 %", is met at or below it). The store keeps, per
key result, whether it was met when a cycle last looked and how many times it has been met, so:

- the first time a key result is seen (a tracker's first cycle, a key result just added to `[okrs]`) is
  a silent baseline: a target already met before the bridge watched is counted, not announced;
- met after not being met: announced as occurrence `n` (`kr-met:<source>:<id>:<n>`), saying "again"
  from the second time on; falling back below the target is only noted, and the next meeting is `n + 1`.

The state is committed before the announcements are sent (at most once: a crash in between loses them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from bridge.analytics.okr import catalogue
from bridge.announcement import Announcement, AnnouncementKind
from bridge.config import BridgeConfig
from bridge.domain import (
    KeyResult,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    Snapshot,
    StatusCategory,
    display_name,
)
from bridge.store import Store
from bridge.store.announced import MetState, met_states, save_met_states
from bridge.store.snapshot import read_key_results, read_objectives

log = logging.getLogger(__name__)

MAX_MILESTONES_NAMED = 10
"""The milestones that moved a key result named in its announcement; more are counted."""


def is_met(key_result: KeyResult) -> bool | None:
    """Whether the key result's current value has reached its target (from its start towards it); None
    when it has no target or no current value."""
    target, current = key_result.target, key_result.current
    if target is None or current is None or target == key_result.start:
        return None
    return current >= target if target > key_result.start else current <= target


def figure(value: float, unit: str | None) -> str:
    """`85 %`, `12 customers`, `0.5`: a number as a person reads it, with its unit."""
    if unit == "percentage":  # Asana's percentage metrics hold fractions: 0.4 is 40 %
        return figure(value * 100, "%")
    number = f"{value:,.2f}".rstrip("0").rstrip(".")
    if not unit:
        return number
    return f"{number}{unit}" if unit in ("%", "‰") else f"{number} {unit}"


def key_result_met(
    key_result: KeyResult,
    occurrence: int,
    objective: Objective | None,
    milestones: Iterable[Milestone],
) -> Announcement:
    """The announcement of `key_result` meeting its target for the `occurrence`-th time."""
    again = " again" if occurrence > 1 else ""
    headline = f"Key result met{again}: {key_result.title}"
    facts: list[tuple[str, str]] = []
    if objective is not None:
        facts.append(("Objective", objective.title))
    assert key_result.current is not None and key_result.target is not None
    reached = figure(key_result.current, key_result.unit)
    facts.append(
        (
            "Reached",
            f"{reached} against a target of {figure(key_result.target, key_result.unit)} "
            f"(from {figure(key_result.start, key_result.unit)})",
        )
    )
    names = sorted(display_name(m.key, m.title) for m in milestones)
    if names:
        shown = ", ".join(names[:MAX_MILESTONES_NAMED])
        more = len(names) - MAX_MILESTONES_NAMED
        facts.append(("Milestones that moved it", shown + (f" and {more} more" if more > 0 else "")))
    if occurrence > 1:
        facts.append(("Times met", f"{occurrence} (it had fallen below its target since)"))
    subject = Ref(key_result.source, key_result.remote_id)
    return Announcement(
        kind=AnnouncementKind.KEY_RESULT_MET,
        key=f"kr-met:{key_result.source}:{key_result.remote_id}:{occurrence}",
        subject=subject,
        headline=headline,
        facts=tuple(facts),
        url=key_result.url,
        occurrence=occurrence,
    )


def met_key_results(
    store: Store,
    config: BridgeConfig,
    snapshot: Snapshot | Callable[[], Snapshot],
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    *,
    now: datetime,
    dry_run: bool = False,
) -> list[Announcement]:
    """The key results (the config's and the trackers') that this cycle first sees met, as announcements;
    their state is stored unless `dry_run` (a dry run reports what a real cycle would announce now).
    `snapshot` may be a loader: the key results are then read from the store (a few rows), and the
    contents are loaded only when one is newly met (for the milestones that moved it)."""
    if isinstance(snapshot, Snapshot):
        objectives, key_results = snapshot.objectives, snapshot.key_results
    else:
        with store.read() as conn:
            objectives, key_results = read_objectives(conn), read_key_results(conn)
    okrs = catalogue(objectives, key_results, config.okrs)
    with store.read() as conn:
        before = met_states(conn)
    states: dict[Ref, MetState] = {}
    found: list[Announcement] = []
    done: dict[Ref, Milestone] | None = None
    for ref, key_result in sorted(okrs.key_results.items(), key=lambda item: str(item[0])):
        met = is_met(key_result)
        if met is None:
            continue
        known = before.get(ref)
        if known is None:
            states[ref] = MetState(met, 1 if met else 0)  # the baseline: met before the bridge watched
            continue
        if met == known.met:
            continue
        times = known.times + 1 if met else known.times
        states[ref] = MetState(met, times)
        if not met:
            log.info("key result %s fell below its target", key_result.title)
            continue
        if done is None:
            loaded = snapshot if isinstance(snapshot, Snapshot) else snapshot()
            done = {
                Ref(m.source, m.remote_id): m
                for m in loaded.milestones
                if m.category is StatusCategory.DONE and not m.deleted
            }
        moved = [done[m] for m, targets in links.items() if ref in targets and m in done]
        objective = okrs.objectives.get(okrs.objective_of(key_result))
        found.append(key_result_met(key_result, times, objective, moved))
    if states and not dry_run:
        with store.write() as conn:
            save_met_states(conn, states, now=now)
    return found
