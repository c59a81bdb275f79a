"""Announcements in chat: milestones reached and key results met, sent to the `[announce]` channels by
incoming webhook (Slack, Microsoft Teams, a generic JSON POST), at most once each.

`send` is the one entry point for any announcement; `met_key_results` finds the key results a cycle
first sees met; `announce_cycle` does both for a sync cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from bridge.announce.key_results import met_key_results
from bridge.announce.sending import AnnounceResult, Preview, send
from bridge.announcement import Announcement
from bridge.config import BridgeConfig
from bridge.domain import LinkOrigin, Ref, Snapshot
from bridge.store import Store

__all__ = ["AnnounceResult", "Preview", "announce_cycle", "met_key_results", "send"]


def announce_cycle(
    store: Store,
    config: BridgeConfig,
    snapshot: Snapshot | Callable[[], Snapshot],
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    *,
    now: datetime,
    dry_run: bool,
    others: Sequence[Announcement] = (),
) -> AnnounceResult:
    """After a cycle's push: the key results it first sees met, with `others` (milestones reached),
    sent to the chat channels (with `dry_run`, only shown). `snapshot` may be a loader, called only
    when a key result is newly met."""
    met = met_key_results(store, config, snapshot, links, now=now, dry_run=dry_run)
    return send(store, config, [*others, *met], now=now, dry_run=dry_run)
