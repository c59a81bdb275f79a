"""Chat renderers: each vendor's documented payload shape, tracker text escaped for its medium (no
markup, links or mentions smuggled in through a title), and Slack's block limits kept."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.announce.render import (
    SLACK_HEADER_LIMIT,
    SLACK_SECTION_LIMIT,
    TEAMS_CONTENT_TYPE,
    generic_message,
    markdown_escape,
    slack_escape,
    slack_message,
    teams_message,
)
from bridge.announcement import Announcement, AnnouncementKind
from bridge.domain import Ref

HOSTILE = "<!channel> & <https://evil.example|click> @here **bold** [x](https://evil.example) \x1b[2J"


def announcement(headline: str = "Key result met: Activation above 40%", **facts: str) -> Announcement:
    return Announcement(
        kind=AnnouncementKind.KEY_RESULT_MET,
        key="kr-met:config:KR1:1",
        subject=Ref("config", "KR1"),
        headline=headline,
        facts=tuple(facts.items()) or (("Objective", "Grow"), ("Reached", "42% against a target of 40%")),
        url="https://app.asana.com/0/goal/701",
    )


def test_slack_message_is_block_kit_with_a_text_fallback() -> None:
    message = slack_message(announcement())
    header, *sections, link = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Key result met: Activation above 40%", "emoji": False},
    }
    assert [s["text"]["text"] for s in sections] == [
        "*Objective:* Grow",
        "*Reached:* 42% against a target of 40%",
    ]
    assert all(s["type"] == "section" and s["text"]["type"] == "mrkdwn" for s in sections)
    assert link["text"]["text"] == "<https://app.asana.com/0/goal/701|Open in its tracker>"
    assert message["text"].startswith("Key result met: Activation above 40%\nObjective: Grow")


def test_slack_escapes_markup_and_mentions_from_tracker_text() -> None:
    message = slack_message(announcement(HOSTILE, Objective=HOSTILE))
    section = message["blocks"][1]["text"]["text"]
    for text in (section, message["text"]):
        assert "<!channel>" not in text and "<https://evil" not in text
        assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text
        assert "@here" not in text, "an @here typed in a title pings no one"
        assert "\x1b" not in text
    assert "\x1b" not in message["blocks"][0]["text"]["text"]


def test_slack_blocks_stay_within_slacks_limits() -> None:
    long = "&" * 5000
    message = slack_message(announcement("A" * 400, Delivered=long, Team="x" * 4000))
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= SLACK_HEADER_LIMIT and header.endswith("…")
    for block in message["blocks"][1:]:
        text = block["text"]["text"]
        assert len(text) <= SLACK_SECTION_LIMIT
        assert not text.rstrip("…").endswith(("&", "&a", "&am", "&amp")), "no entity cut in two"
    assert len(message["text"]) <= 3000
    many = slack_message(announcement(**{f"fact {i}": "x" for i in range(80)}))
    assert len(many["blocks"]) <= 50


def test_teams_message_is_an_adaptive_card_attachment() -> None:
    message = teams_message(announcement())
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == TEAMS_CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["$schema"].startswith("http://adaptivecards.io/")
    title, facts = card["body"]
    assert title["type"] == "TextBlock" and title["weight"] == "Bolder" and title["wrap"] is True
    assert title["text"] == r"Key result met: Activation above 40%"
    assert facts["type"] == "FactSet"
    assert facts["facts"][0] == {"title": "Objective", "value": "Grow"}
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in its tracker", "url": "https://app.asana.com/0/goal/701"}
    ]


def test_teams_escapes_markdown_from_tracker_text() -> None:
    card = teams_message(announcement(HOSTILE, Objective=HOSTILE))["attachments"][0]["content"]
    for text in (card["body"][0]["text"], card["body"][1]["facts"][0]["value"]):
        assert r"\*\*bold\*\*" in text and r"\[x\]\(https://evil\.example\)" in text
        assert "**" not in text.replace(r"\*", "") and "\x1b" not in text
    assert markdown_escape("a_b") == r"a\_b"


def test_a_link_that_is_not_a_plain_url_is_left_out() -> None:
    hostile = Announcement(
        AnnouncementKind.MILESTONE_REACHED, "reached:t:1:1", Ref("t", "1"), "Milestone reached: X",
        url="https://x.example|<!channel>",
    )  # fmt: skip
    assert all("channel" not in b["text"]["text"] for b in slack_message(hostile)["blocks"][1:])
    assert "actions" not in teams_message(hostile)["attachments"][0]["content"]


def test_generic_message_carries_the_announcement_as_data() -> None:
    message = generic_message(announcement())
    assert message == {
        "kind": "key_result_met",
        "key": "kr-met:config:KR1:1",
        "subject": {"source": "config", "id": "KR1"},
        "headline": "Key result met: Activation above 40%",
        "facts": [
            {"label": "Objective", "text": "Grow"},
            {"label": "Reached", "text": "42% against a target of 40%"},
        ],
        "url": "https://app.asana.com/0/goal/701",
        "occurrence": 1,
        "text": announcement().text(),
    }
    json.dumps(generic_message(announcement(HOSTILE)))  # JSON escapes the rest itself


def test_slack_escape_keeps_plain_text_readable() -> None:
    assert slack_escape("Ship A & B to <Acme>") == "Ship A &amp; B to &lt;Acme&gt;"


@given(st.text(max_size=400), st.text(max_size=400))
@settings(max_examples=200, deadline=None)
def test_no_tracker_text_becomes_markup_in_any_medium(title: str, fact: str) -> None:
    hostile = Announcement(
        AnnouncementKind.KEY_RESULT_MET, "kr-met:t:1:1", Ref("t", "1"), title, facts=(("Delivered", fact),)
    )
    slack = slack_message(hostile)
    assert len(slack["blocks"][0]["text"]["text"]) <= SLACK_HEADER_LIMIT
    for text in [slack["text"], *(b["text"]["text"] for b in slack["blocks"][1:])]:
        assert "<" not in text and ">" not in text and len(text) <= SLACK_SECTION_LIMIT
        assert re.search(r"@\w", text) is None and "\x1b" not in text
    card = teams_message(hostile)["attachments"][0]["content"]
    for text in (card["body"][0]["text"], card["body"][1]["facts"][0]["value"]):
        assert re.search(r"(?<!\\)[*_\[\]()<>`#]", text.replace("\\\\", "")) is None
