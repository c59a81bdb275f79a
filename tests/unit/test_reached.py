"""Milestones reached: the completion rule (a tracker's first cycle is silent, open -> done is the first
completion, re-opened and done again the next) and the message a person reads, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.completion import Completion, observe
from bridge.config import BridgeConfig, parse_config
from bridge.connector import ConnectorRegistry
from bridge.domain import KeyResult, LinkOrigin, Milestone, Ref, StatusCategory, Task
from bridge.reached import reached_comments, skip_reason
from bridge.reached_message import KeyResultMove, key_result_moves, reached_announcement
from bridge.store.forecast_history import REACHED, Point
from bridge.written import comment_marker

START = datetime(2026, 10, 1, 9, tzinfo=UTC)
PAY3 = Ref("jira", "10003")


def milestone(category: StatusCategory, *, updated: datetime = START, remote_id: str = "10003") -> Milestone:
    return Milestone(
        "jira",
        remote_id,
        "PAY-3",
        "Card payments",
        category=category,
        updated=updated,
        team="Payments",
        url="https://jira.example.com/browse/PAY-3",
    )


def step(
    rows: dict[Ref, Completion], found: Milestone, now: datetime, since: datetime | None
) -> dict[Ref, Completion]:
    changed = observe(rows, [found], watched_since=since, now=now)
    return rows | {c.milestone: c for c in changed}


def test_the_first_cycle_records_done_milestones_silently() -> None:
    rows = step({}, milestone(StatusCategory.DONE), START, None)
    first = rows[PAY3]
    assert first.done and first.silent and not first.announced
    # nothing changes the next cycles: still silent, never announced
    assert (
        observe(rows, [milestone(StatusCategory.DONE)], watched_since=START, now=START + timedelta(1)) == []
    )


def test_open_then_done_is_the_first_completion_and_reopened_then_done_the_second() -> None:
    rows = step({}, milestone(StatusCategory.IN_PROGRESS), START, None)
    assert not rows[PAY3].done and rows[PAY3].completions == 0
    day2, day3, day4 = (START + timedelta(days=n) for n in (2, 3, 4))
    rows = step(rows, milestone(StatusCategory.DONE), day2, START)
    assert rows[PAY3].announced and rows[PAY3].completions == 1 and not rows[PAY3].again
    assert rows[PAY3].done_at == day2
    rows = step(rows, milestone(StatusCategory.TODO), day3, START)  # re-opened
    assert not rows[PAY3].done and rows[PAY3].completions == 1
    rows = step(rows, milestone(StatusCategory.DONE), day4, START)
    assert rows[PAY3].announced and rows[PAY3].completions == 2 and rows[PAY3].again


def test_a_baseline_done_milestone_reopened_and_done_is_announced_as_reached_again() -> None:
    rows = step({}, milestone(StatusCategory.DONE), START, None)
    rows = step(rows, milestone(StatusCategory.TODO), START + timedelta(1), START)
    rows = step(rows, milestone(StatusCategory.DONE), START + timedelta(2), START)
    assert rows[PAY3].announced and rows[PAY3].completions == 2


def test_a_new_milestone_seen_done_is_announced_only_when_done_after_the_bridge_watched() -> None:
    watched = START
    day = START + timedelta(days=1)
    later = step({}, milestone(StatusCategory.DONE, updated=START + timedelta(hours=2)), day, watched)
    assert later[PAY3].announced
    earlier = step({}, milestone(StatusCategory.DONE, updated=START - timedelta(days=30)), day, watched)
    assert not earlier[PAY3].announced and earlier[PAY3].silent


def _point(at: datetime, p50: datetime | None, p85: datetime | None, reason: str) -> Point:
    return Point(PAY3, at, "PAY-3 Card payments", "Payments", p50, p85, 3, 2.0, reason)


def test_the_message_says_what_was_delivered_the_key_results_the_time_taken_and_the_team() -> None:
    done_at = datetime(2026, 10, 22, 12, tzinfo=UTC)
    tasks = [
        Task(
            "jira",
            str(n),
            f"PAY-{n}",
            "t",
            milestone_id="10003",
            category=StatusCategory.DONE,
            started=datetime(2026, 10, 1 + n, tzinfo=UTC),
        )
        for n in (4, 5, 6)
    ]
    history = [
        _point(
            datetime(2026, 10, 2, tzinfo=UTC),
            datetime(2026, 10, 20, tzinfo=UTC),
            datetime(2026, 10, 27, tzinfo=UTC),
            "first forecast",
        ),
        _point(
            datetime(2026, 10, 12, tzinfo=UTC),
            datetime(2026, 10, 22, tzinfo=UTC),
            datetime(2026, 10, 25, tzinfo=UTC),
            "1 task added",
        ),
        _point(done_at, None, None, REACHED),
    ]
    moves = [
        KeyResultMove(
            "Card payments in ten new countries",
            0.25,
            0.5,
            "share of the value of its 4 linked milestones done",
        )
    ]
    found = reached_announcement(
        milestone(StatusCategory.DONE),
        1,
        done_at=done_at,
        tasks=tasks,
        key_results=moves,
        forecasts=history,
        team="Payments",
    )
    assert found.key == "reached:jira:10003:1" and found.occurrence == 1
    assert found.text() == (
        "Milestone reached: PAY-3 Card payments\n"
        "\n"
        "Delivered: 3 tasks done\n"
        "Key result: Card payments in ten new countries: 25% before, 50% now (share of the value of its 4 "
        "linked milestones done)\n"
        "Took: 17 days, from 2026-10-05 (its first task started) to 2026-10-22\n"
        "First forecast: P50 2026-10-20, P85 2026-10-27 (made 2026-10-02); done 2 days after its P50 and "
        "5 days before its P85\n"
        "Last forecast: P50 2026-10-22, P85 2026-10-25 (made 2026-10-12); done on its P50 and 3 days before "
        "its P85\n"
        "Team: Payments\n"
        "Link: https://jira.example.com/browse/PAY-3"
    )
    assert found.text().count("PAY-3 Card payments") == 1, "named once, in the headline"
    again = reached_announcement(
        milestone(StatusCategory.DONE),
        2,
        done_at=done_at,
        tasks=tasks[:1],
        key_results=[],
        forecasts=[],
        team="Payments",
    )
    assert again.headline == "Milestone reached again: PAY-3 Card payments (the 2nd time; it was re-opened)"
    assert "Forecast: none was made" in again.text()


def test_key_result_progress_counts_the_milestone_open_before_and_done_after() -> None:
    kr = Ref("config", "KR1")
    other = Ref("jira", "10009")
    milestones = {
        PAY3: Milestone("jira", "10003", "PAY-3", "Card payments", value=3.0, category=StatusCategory.DONE),
        other: Milestone("jira", "10009", "PAY-9", "Wallets", value=1.0, category=StatusCategory.DONE),
        Ref("jira", "10010"): Milestone("jira", "10010", "PAY-10", "Refunds", value=4.0),
    }
    links = {ref: {kr: LinkOrigin.RULE} for ref in milestones}
    key_results = {kr: KeyResult("config", "KR1", "O1", "Card payments in ten new countries")}
    (move,) = key_result_moves(PAY3, links, key_results, milestones)
    assert (move.before, move.after) == (0.125, 0.5)  # value 1 of 8 done, then 4 of 8


CONFIG = """
[trackers.j]
kind = "jira"
url = "https://jira.example.com"
email_env = "J_EMAIL"
token_env = "J_TOKEN"
projects = ["PAY"]

[trackers.j.status_map]
"Done" = "done"

[trackers.t]
kind = "trello"
url = "https://trello.example.com"
api_key_env = "T_KEY"
token_env = "T_TOKEN"
boards = ["Design"]

[trackers.t.status_map]
"Done" = "done"

[trackers.t.write]
comments = false
"""


def jira_and_trello() -> BridgeConfig:
    return parse_config(CONFIG, ConnectorRegistry.default())


def test_milestones_that_take_no_comment_are_skipped_and_say_why() -> None:
    from bridge.announcement import Announcement, AnnouncementKind

    def announcement(ref: Ref, n: int = 1) -> Announcement:
        return Announcement(
            AnnouncementKind.MILESTONE_REACHED,
            f"reached:{ref.source}:{ref.remote_id}:{n}",
            ref,
            "Milestone reached: x",
            occurrence=n,
        )

    config = jira_and_trello()
    version, epic, label = Ref("j", "version:7"), Ref("j", "10003"), Ref("t", "label:abc")
    assert skip_reason(config.tracker("j"), version) == "a fix version takes no comment"
    cardless = Milestone("t", "label:abc", "Design", "Design", category=StatusCategory.DONE)
    assert skip_reason(config.tracker("t"), label, cardless) == (
        "a Trello label milestone without a card takes no comment"
    )
    wished = reached_comments([announcement(version), announcement(epic, 2)], config, "j")
    assert wished.wished == {epic: {comment_marker("reached", epic, 2): "Milestone reached: x"}}
    assert [why for _, why in wished.skipped] == ["a fix version takes no comment"]
    card = Ref("t", "5f1c0ffee")
    assert skip_reason(config.tracker("t"), card) == "comments are off here (write.comments = false)"
    assert skip_reason(config.tracker("j"), epic) is None
