"""What the bridge tells people when something worth celebrating happens: a milestone reached, a key
result's target met. One value, rendered as a tracker comment (plain text with the bridge's marker) and,
with `[announce]` configured, as a chat message (Slack, Microsoft Teams or a generic JSON POST).

Pure values, no I/O. The text inside comes from trackers and is untrusted: each renderer escapes it for
its medium (a chat renderer for its markup; a comment is plain text the tracker escapes itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge.domain import Ref


class AnnouncementKind(StrEnum):
    MILESTONE_REACHED = "milestone_reached"
    KEY_RESULT_MET = "key_result_met"


@dataclass(frozen=True, slots=True)
class Announcement:
    """One thing to announce, once.

    `key` is stable and unique for this occurrence (`reached:<source>:<id>:<n>`, `kr-met:<source>:<id>:<n>`):
    the chat sender records it before sending (at most once) and the comment's marker is built from the
    same parts (`bridge.written.comment_marker`), so a crash or a second replica never tells it twice.
    """

    kind: AnnouncementKind
    key: str
    subject: Ref
    """The milestone or key result announced."""
    headline: str
    """One line a person reads first: "Milestone reached: PAY-3 Card payments"."""
    facts: tuple[tuple[str, str], ...] = ()
    """What follows, as (label, text) lines: what was delivered, the key results it moves and their
    progress before and after, how long it took against its first and last forecast, the team."""
    url: str | None = None
    """The item's page in its tracker, when known."""
    occurrence: int = 1
    """1 the first time; 2 and more when the item was re-opened and reached again."""

    def text(self) -> str:
        """Plain text: the headline, then one `label: text` line per fact."""
        lines = [self.headline, ""]
        lines.extend(f"{label}: {text}" for label, text in self.facts)
        if self.url:
            lines.append(f"Link: {self.url}")
        return "\n".join(lines).rstrip()
