"""Milestones reached: the cycle's completion tracking, the announcements it produces and the comments
they become in each milestone's own tracker.

Each cycle, after the pull and before the push, `record_completions` runs the completion rule
(`bridge.completion`) over every milestone of the trackers pulled, in one transaction. The milestones
whose last completion is to be announced and was seen within `RECENT` are this cycle's announcements
(`pending_announcements`): each tracker's push wishes one comment per announcement on its milestone
(`reached_comments`), posted once (its marker is looked for first) and recorded in `written`; a chat
sender gets the same values and tells each once by its key.

Milestones that cannot take a comment (a Jira fix version, a Trello label milestone, an Asana section)
are skipped, and so are the trackers with `write.comments = false`; `skip_reason` says why, for the
dry run and the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.analytics.okr import catalogue
from bridge.analytics.report import Report
from bridge.analytics.snapshot import key_of, milestone_teams, parent_key
from bridge.announcement import Announcement
from bridge.completion import Completion, observe
from bridge.config import BridgeConfig, TrackerConfig
from bridge.domain import Milestone, Ref, Snapshot, StatusCategory, Task
from bridge.reached_message import key_result_moves, reached_announcement
from bridge.store import Store, completions, forecast_history
from bridge.store.snapshot import read_milestones
from bridge.written import comment_marker

log = logging.getLogger(__name__)

RECENT = timedelta(days=28)
"""A completion is announced (and listed by the report) while it is at most this old: a comment the
bridge could not post for longer than that (comments off, the tracker unreachable) is not posted late."""

REACHED = "reached"
"""The `what` of the reached comments' markers (`bridge.written.comment_marker`)."""


def record_completions(
    store: Store, sources: Collection[str], now: datetime, *, dry_run: bool = False
) -> dict[Ref, Completion]:
    """Run the completion rule over the live milestones of trackers `sources`, in one transaction;
    returns their completions as they now stand. A dry run records nothing (and sees what it would)."""
    found: dict[Ref, Completion] = {}
    if not sources:
        return found
    with store.write() as conn:
        by_source: dict[str, list[Milestone]] = {source: [] for source in sources}
        for milestone in read_milestones(conn):
            if milestone.source in by_source:
                by_source[milestone.source].append(milestone)
        for source, milestones in sorted(by_source.items()):
            previous = completions.load(conn, source)
            since = completions.watched_since(conn, source)
            changed = observe(previous, milestones, watched_since=since, now=now)
            if not dry_run:
                completions.save(conn, source, changed, now=now)
            found.update(previous)
            found.update((c.milestone, c) for c in changed)
            reached = [c for c in changed if c.announced and c.done_at == now]
            for completion in reached:
                log.info("%s: milestone %s reached (completion %d)", source, completion.name,
                         completion.completions)  # fmt: skip
            if since is None and not dry_run:
                log.info("%s: the bridge watches its %d milestones for completions from now on "
                         "(those done already are not announced)", source, len(milestones))  # fmt: skip
    return found


def pending_announcements(
    store: Store,
    config: BridgeConfig,
    snapshot: Snapshot | Callable[[], Snapshot],
    report: Report,
    now: datetime,
    seen: Mapping[Ref, Completion] | None = None,
) -> list[Announcement]:
    """The milestones reached whose announcement is due: done, seen being completed (not done before the
    bridge watched) within `RECENT` before `now`, one `Announcement` each (its key says which completion),
    ordered by milestone name. `snapshot` and `report` are the cycle's analysis (for the tasks, the key
    results and the team); `seen` are completions as this cycle saw them, over the stored ones (a dry
    run's, which are not stored). A sender tells each key once; the comments are planned from these too.
    `snapshot` may be a loader, called only when an announcement is due: a quiet cycle on a large store
    that reuses a stored analysis then loads no contents at all.
    """
    start = now - RECENT
    with store.read() as conn:
        stored = {c.milestone: c for c in completions.recent(conn, start, announced=True)}
        stored.update(
            (ref, c) for ref, c in (seen or {}).items() if c.done_at is not None and c.done_at >= start
        )
        due = sorted(
            (c for c in stored.values() if c.announced and c.done),
            key=lambda c: (c.name, str(c.milestone)),
        )
        histories = {c.milestone: forecast_history.history(conn, c.milestone) for c in due}
    if not due:
        return []
    if not isinstance(snapshot, Snapshot):
        snapshot = snapshot()
    milestones = {Ref(m.source, m.remote_id): m for m in snapshot.milestones if not m.deleted}
    tasks: dict[Ref, list[Task]] = {}
    for task in snapshot.tasks:
        if task.milestone_id is not None and not task.deleted:
            tasks.setdefault(Ref(task.source, task.milestone_id), []).append(task)
    finished = _finished({c.milestone for c in due}, snapshot)
    key_results = catalogue(snapshot.objectives, snapshot.key_results, config.okrs).key_results
    teams = _teams(snapshot)
    found: list[Announcement] = []
    for completion in due:
        ref = completion.milestone
        milestone = milestones.get(ref)
        if milestone is None or completion.done_at is None:
            continue  # no longer in the store's analysis window: nothing to tell it from
        found.append(
            reached_announcement(
                milestone,
                completion.completions,
                done_at=finished.get(ref, completion.done_at),
                tasks=tasks.get(ref, ()),
                key_results=key_result_moves(ref, report.links, key_results, milestones),
                forecasts=histories.get(ref, ()),
                team=teams.get(ref),
            )
        )
    return found


def _finished(refs: Collection[Ref], snapshot: Snapshot) -> dict[Ref, datetime]:
    """When each of `refs` last moved into a done status, where its history shows it (else the bridge's
    own sighting stands)."""
    found: dict[Ref, datetime] = {}
    for change in snapshot.status_changes:
        if change.to_category is not StatusCategory.DONE:
            continue
        ref = Ref(change.source, change.item_id)
        if ref in refs and (ref not in found or change.at > found[ref]):
            found[ref] = change.at
    return found


def _teams(snapshot: Snapshot) -> dict[Ref, str]:
    """Each milestone's team as the analysis reckons it (its own, else most of its tasks')."""
    live = {key_of(m): m for m in snapshot.milestones if not m.deleted}
    tasks_of: dict[tuple[str, str], list[Task]] = {}
    for task in snapshot.tasks:
        parent = parent_key(task)
        if parent is not None and parent in live and not task.deleted:
            tasks_of.setdefault(parent, []).append(task)
    return {Ref(*key): team for key, team in milestone_teams(live, tasks_of).items()}


def skip_reason(tracker: TrackerConfig, ref: Ref, milestone: Milestone | None = None) -> str | None:
    """Why the reached comment cannot go on milestone `ref` of `tracker` (as the store holds it, when
    given), or None when it can."""
    kind = tracker.kind
    if kind == "jira" and not ref.remote_id.isdigit():
        return "a fix version takes no comment"
    # A label milestone takes its list from its own card: without a list, it has none.
    cardless = milestone is not None and milestone.raw_status is None
    if kind == "trello" and ref.remote_id.startswith("label:") and cardless:
        return "a Trello label milestone without a card takes no comment"
    if kind == "asana" and getattr(getattr(tracker, "milestones", None), "source", None) == "section":
        return "an Asana section takes no comment"
    if not tracker.write.comments:
        return "comments are off here (write.comments = false)"
    return None


@dataclass(frozen=True, slots=True)
class ReachedComments:
    """The reached comments one tracker's milestones should carry, and the announcements skipped."""

    wished: Mapping[Ref, Mapping[str, str]]
    """Milestone -> marker -> the comment's text (the connector adds the marker line)."""
    skipped: Sequence[tuple[Announcement, str]]
    """Announcements of this tracker that get no comment, with why."""


def reached_comments(
    announcements: Sequence[Announcement],
    config: BridgeConfig,
    source: str,
    milestones: Mapping[Ref, Milestone] | None = None,
) -> ReachedComments:
    """The comments of tracker `source`'s `announcements`: one per announcement, marked with its
    completion; those its milestone (in `milestones`, when given) cannot take (`skip_reason`) are
    listed apart."""
    tracker = config.tracker(source)
    wished: dict[Ref, dict[str, str]] = {}
    skipped: list[tuple[Announcement, str]] = []
    for announcement in announcements:
        ref = announcement.subject
        if ref.source != source:
            continue
        why = skip_reason(tracker, ref, (milestones or {}).get(ref))
        if why is not None:
            skipped.append((announcement, why))
            continue
        marker = comment_marker(REACHED, ref, announcement.occurrence)
        wished.setdefault(ref, {})[marker] = announcement.text()
    return ReachedComments(wished, skipped)
