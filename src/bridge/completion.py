"""Milestone completions: the rule that tells a milestone reached now (to announce, once) from one that
was done before the bridge watched its tracker (never announced).

Pure values, no I/O: `bridge.store.completions` keeps the rows, `bridge.reached` runs the rule each cycle.

The rule, per tracker:
- the tracker's first cycle records every milestone's state silently: one found done then was done
  before the bridge watched, and is never announced;
- afterwards, a milestone seen done that was open is reached: its completion count goes up by one and
  the completion is announced;
- a milestone the bridge meets for the first time already done is reached too when the tracker changed
  it after the bridge started watching (else it was done before, and stays silent);
- re-opened (seen not done) and done again, it is reached again: the next completion, announced again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.domain import Milestone, Ref, StatusCategory, display_name, require_utc


@dataclass(frozen=True, slots=True)
class Completion:
    """What the bridge last saw of one milestone's completions."""

    milestone: Ref
    name: str
    """How a person reads the milestone ("PAY-3 Card payments")."""
    done: bool
    completions: int
    """Completions seen so far (one found done when the bridge started watching counts)."""
    done_at: datetime | None
    """When the bridge saw the last completion."""
    silent: bool
    """The last completion happened before the bridge watched: never announced."""
    seen_at: datetime

    @property
    def announced(self) -> bool:
        """Whether the milestone's last completion is one to announce: done, seen happening."""
        return self.done and not self.silent and self.completions > 0

    @property
    def again(self) -> bool:
        """Whether this completion follows an earlier one (the milestone was re-opened)."""
        return self.completions > 1


def observe(
    previous: Mapping[Ref, Completion],
    milestones: Iterable[Milestone],
    *,
    watched_since: datetime | None,
    now: datetime,
) -> list[Completion]:
    """The completion rows that change when the tracker's live `milestones` are seen at `now`.

    `previous` are the tracker's stored rows; `watched_since` is when the bridge started watching the
    tracker (None: this is its first cycle, so everything is recorded silently). Milestones not seen
    keep their rows as they are.
    """
    now = require_utc(now, "now")
    changed: list[Completion] = []
    for milestone in milestones:
        if milestone.deleted:
            continue
        ref = Ref(milestone.source, milestone.remote_id)
        name = display_name(milestone.key, milestone.title)
        done = milestone.category is StatusCategory.DONE
        before = previous.get(ref)
        if before is None:
            silent = watched_since is None or not _changed_since(milestone, watched_since)
            changed.append(
                Completion(ref, name, done, int(done), now if done else None, done and silent, now)
            )
        elif done and not before.done:
            changed.append(
                replace(before, name=name, done=True, completions=before.completions + 1, done_at=now,
                        silent=False)
            )  # fmt: skip
        elif done != before.done or name != before.name:
            changed.append(replace(before, name=name, done=done))
    return changed


def _changed_since(milestone: Milestone, since: datetime) -> bool:
    """Whether the tracker changed the milestone after `since` (one without a time stamp: not known to)."""
    changed = milestone.updated or milestone.created
    return changed is not None and changed >= since
