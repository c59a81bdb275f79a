"""Chat messages for an `Announcement`: Slack Block Kit, a Microsoft Teams Adaptive Card, a generic JSON
document. Pure functions, no I/O.

Everything in an announcement may come from a tracker, where anyone who can edit an item writes it, so
each renderer escapes it for its medium: Slack's mrkdwn treats `&`, `<` and `>` as markup (`<!channel>`
pings a whole channel, `<http://x|y>` hides a link), Teams' TextBlocks read a subset of Markdown (a
title `[click](http://evil)` would become a link). Mentions never come from tracker text: Slack's need
`<...>` (escaped), and an `@here` typed in a title gets an invisible joiner so it stays plain text.
"""

from __future__ import annotations

import re
from typing import Any

from bridge.announcement import Announcement
from bridge.text import terminal_safe

SLACK_HEADER_LIMIT = 150
"""Slack: a header block's plain_text holds at most 150 characters."""
SLACK_SECTION_LIMIT = 3000
"""Slack: a section block's text holds at most 3000 characters."""
SLACK_MAX_BLOCKS = 50
"""Slack: a message holds at most 50 blocks."""
SLACK_TEXT_LIMIT = 3000
"""The fallback `text` (notifications, clients without blocks): kept as short as a section."""
TEAMS_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
ELLIPSIS = "…"

_MENTION = re.compile(r"@(?=\w)")
_WORD_JOINER = "\u2060"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


def one_line(text: str) -> str:
    """Tracker text as one line without controls (a title cannot start a line of its own)."""
    return " ".join(terminal_safe(text).split())


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def no_mentions(text: str) -> str:
    """`@name` with an invisible word joiner after the `@`: it reads the same and pings no one."""
    return _MENTION.sub("@" + _WORD_JOINER, text)


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn: `&`, `<` and `>` as entities (Slack's documented escaping), no mentions."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return no_mentions(escaped)


def _slack_cut(escaped: str, limit: int) -> str:
    """Escaped mrkdwn cut to `limit` characters without splitting an entity (`&amp;`) in two."""
    if len(escaped) <= limit:
        return escaped
    cut = _ENTITY_TAIL.sub("", escaped[: limit - 1]).rstrip()
    return cut + ELLIPSIS


def _lines(announcement: Announcement) -> list[tuple[str, str]]:
    return [(one_line(label), one_line(text)) for label, text in announcement.facts]


def slack_message(announcement: Announcement) -> dict[str, Any]:
    """An incoming webhook's JSON for Slack: a header block (the headline), one section per fact, a link
    section, and the plain `text` fallback that notifications show."""
    headline = one_line(announcement.headline)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": shorten(no_mentions(headline), SLACK_HEADER_LIMIT),
                "emoji": False,
            },
        }
    ]
    facts = _lines(announcement)
    room = SLACK_MAX_BLOCKS - 1 - (1 if announcement.url else 0)
    for label, text in facts[:room]:
        body = f"*{slack_escape(label)}:* {slack_escape(text)}"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_cut(body, SLACK_SECTION_LIMIT)}}
        )
    if announcement.url:
        link = _safe_url(announcement.url)
        if link is not None:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": _slack_cut(
                            f"<{slack_escape(link)}|Open in its tracker>", SLACK_SECTION_LIMIT
                        ),
                    },
                }
            )
    fallback = "\n".join([headline, *(f"{label}: {text}" for label, text in facts)])
    return {"text": _slack_cut(slack_escape(fallback), SLACK_TEXT_LIMIT), "blocks": blocks}


def markdown_escape(text: str) -> str:
    """Text for a Teams TextBlock or FactSet (a subset of Markdown): every Markdown character backslashed."""
    return _MARKDOWN.sub(r"\\\1", text)


def teams_message(announcement: Announcement) -> dict[str, Any]:
    """An incoming webhook's JSON for Microsoft Teams: a message with one Adaptive Card attachment, the
    headline as a bold TextBlock and the facts as a FactSet (and an Action.OpenUrl to the item)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": markdown_escape(one_line(announcement.headline)),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    facts = _lines(announcement)
    if facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": markdown_escape(label), "value": markdown_escape(text)} for label, text in facts
                ],
            }
        )
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    link = _safe_url(announcement.url) if announcement.url else None
    if link is not None:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in its tracker", "url": link}]
    return {
        "type": "message",
        "attachments": [{"contentType": TEAMS_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def generic_message(announcement: Announcement) -> dict[str, Any]:
    """A plain JSON document for any receiver: the text as it is (JSON escapes it), facts as objects."""
    return {
        "kind": str(announcement.kind),
        "key": announcement.key,
        "subject": {"source": announcement.subject.source, "id": announcement.subject.remote_id},
        "headline": one_line(announcement.headline),
        "facts": [{"label": label, "text": text} for label, text in _lines(announcement)],
        "url": announcement.url,
        "occurrence": announcement.occurrence,
        "text": announcement.text(),
    }


def render(kind: str, announcement: Announcement) -> dict[str, Any]:
    """The JSON body a channel of `kind` (`slack`, `teams`, `generic`) is sent for `announcement`."""
    if kind == "slack":
        return slack_message(announcement)
    if kind == "teams":
        return teams_message(announcement)
    if kind == "generic":
        return generic_message(announcement)
    raise ValueError(f"no chat renderer for {kind!r}")


def preview(announcement: Announcement) -> str:
    """What a dry run prints: the message as a person would read it, without controls."""
    return terminal_safe(announcement.text(), single_line=False)


def _safe_url(url: str) -> str | None:
    """A tracker's link only when it is a plain http(s) URL (no spaces, quotes or markup in it)."""
    url = url.strip()
    if not re.match(r"^https?://[^\s<>|\"'`]+$", url):
        return None
    return url
