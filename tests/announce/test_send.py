"""Sending to chat channels over real HTTP (the sandbox's webhook receivers): at most once per channel,
recorded before the POST; a POST that may have arrived is never repeated; one channel down does not stop
the others; a dry run sends and records nothing; the URL (a secret) appears in no result or log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bridge.announce import send
from bridge.announce import sending as send_module
from bridge.http import RedactingFilter
from bridge.store import Store
from bridge.store.announced import announced
from tests.announce.conftest import Receiver, channel, closed_port_url, config_with, kr_met, reached

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_an_announcement_is_sent_once_however_often_it_is_sent(
    store: Store, receivers: dict[str, Receiver]
) -> None:
    slack = receivers["slack"]
    config = config_with(channel("delivery", "slack", "CHAT_URL"))
    env = {"CHAT_URL": slack.url}
    first = send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env)
    again = send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env)
    assert (first.sent, first.failed, again.sent, again.already) == (1, 0, 0, 1)
    (message,) = slack.messages()
    assert message["body"]["blocks"][0]["text"]["text"] == "Key result met: Activation above 40%"
    with store.read() as conn:
        (row,) = announced(conn)
    assert (row.key, row.channel, row.outcome, row.status) == ("kr-met:config:KR1:1", "delivery", "sent", 200)
    assert first.line() == "announcements: 1 sent, 0 failed"


def test_a_crash_after_recording_and_before_sending_loses_the_message_and_never_doubles_it(
    store: Store, receivers: dict[str, Receiver]
) -> None:
    slack = receivers["slack"]
    config = config_with(channel("delivery", "slack", "CHAT_URL"))
    env = {"CHAT_URL": slack.url}

    def crash(url: str, body: dict[str, Any], timeout: float) -> requests.Response:
        raise KeyboardInterrupt  # the process dies here: recorded, not sent

    with pytest.raises(KeyboardInterrupt):
        send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env, post=crash)
    after = send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env)
    assert after.already == 1 and slack.messages() == [], "zero messages: the documented trade-off"
    with store.read() as conn:
        assert [r.outcome for r in announced(conn)] == ["sending"]


def test_a_refusal_is_recorded_with_its_status_and_not_sent_again(
    store: Store, receivers: dict[str, Receiver]
) -> None:
    slack = receivers["slack"]
    slack.control.faults({"kind": "5xx", "status": 500})
    config = config_with(channel("delivery", "slack", "CHAT_URL"))
    env = {"CHAT_URL": slack.url}
    result = send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env)
    assert (result.sent, result.failed) == (0, 1)
    assert result.failures == ["delivery: Key result met: Activation above 40%: HTTP 500: {\"ok\":false,"
                               "\"error\":\"Service unavailable\"}"]  # fmt: skip
    assert slack.requests() == 1, "no retry of a POST the server received"
    with store.read() as conn:
        (row,) = announced(conn)
    assert (row.outcome, row.status) == ("failed", 500)
    slack.control.send("DELETE", "faults")
    assert send(store, config, [kr_met()], now=NOW, dry_run=False, environ=env).already == 1


def test_a_lost_answer_is_not_sent_again(store: Store, receivers: dict[str, Receiver]) -> None:
    slack = receivers["slack"]
    slack.control.faults({"kind": "lose"})
    config = config_with(channel("delivery", "slack", "CHAT_URL"))
    result = send(store, config, [kr_met()], now=NOW, dry_run=False, environ={"CHAT_URL": slack.url})
    assert result.failed == 1 and "it may have arrived, not sent again" in result.failures[0]
    assert len(slack.messages()) == 1 and slack.requests() == 1


def test_one_channel_down_does_not_stop_the_others_and_no_url_is_told(
    store: Store,
    receivers: dict[str, Receiver],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(send_module, "REFUSED_PAUSE", 0.01)
    down = closed_port_url()
    config = config_with(
        channel("down", "slack", "DOWN_URL"),
        channel("unset", "generic", "UNSET_URL"),
        channel("leads", "teams", "TEAMS_URL"),
        channel("feed", "generic", "FEED_URL"),
    )
    env = {"DOWN_URL": down, "TEAMS_URL": receivers["teams"].url, "FEED_URL": receivers["generic"].url}
    caplog.handler.addFilter(RedactingFilter())  # as every handler of the bridge's processes has
    with caplog.at_level(logging.DEBUG):
        result = send(store, config, [kr_met(), reached()], now=NOW, dry_run=False, environ=env)
    assert (result.sent, result.failed) == (4, 4)
    assert result.failures == [
        "down: Key result met: Activation above 40%: connection refused (3 attempts); not sent",
        "down: Milestone reached: PAY-3 Card payments: connection refused (3 attempts); not sent",
        "unset: environment variable UNSET_URL is not set; 2 messages not sent",
    ]
    (card, _) = [m["body"] for m in receivers["teams"].messages()]
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    generic = [m["body"] for m in receivers["generic"].messages()]
    assert [g["kind"] for g in generic] == ["key_result_met", "milestone_reached"]
    told = "\n".join([*result.failures, caplog.text, str(result.summary())])
    for url in env.values():
        assert url not in told and "SECRET" not in told


def test_a_channel_hears_only_the_events_it_names(store: Store, receivers: dict[str, Receiver]) -> None:
    config = config_with(channel("delivery", "slack", "CHAT_URL", events='["milestone_reached"]'))
    result = send(store, config, [kr_met(), reached()], now=NOW, dry_run=False,
                  environ={"CHAT_URL": receivers["slack"].url})  # fmt: skip
    assert result.sent == 1
    (message,) = receivers["slack"].messages()
    assert message["body"]["text"].startswith("Milestone reached: PAY-3 Card payments")


def test_a_dry_run_shows_the_messages_and_sends_and_records_nothing(
    store: Store, receivers: dict[str, Receiver]
) -> None:
    config = config_with(channel("delivery", "slack", "CHAT_URL"))
    result = send(
        store, config, [kr_met()], now=NOW, dry_run=True, environ={"CHAT_URL": receivers["slack"].url}
    )
    (preview,) = result.previews
    assert preview.channel == "delivery" and preview.text().startswith("Key result met: Activation above 40%")
    assert receivers["slack"].requests() == 0
    with store.read() as conn:
        assert announced(conn) == []
    assert result.summary()["would_send"][0]["key"] == "kr-met:config:KR1:1"


def test_the_daemons_metrics_count_messages_by_channel_and_outcome(
    store: Store, receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.daemon.metrics import DaemonMetrics

    monkeypatch.setattr(send_module, "REFUSED_PAUSE", 0.01)
    config = config_with(channel("delivery", "slack", "CHAT_URL"), channel("down", "generic", "DOWN_URL"))
    metrics = DaemonMetrics()
    undo = metrics.listen()
    try:
        env = {"CHAT_URL": receivers["slack"].url, "DOWN_URL": closed_port_url()}
        send(store, config, [kr_met(), reached()], now=NOW, dry_run=False, environ=env)
    finally:
        undo()

    def count(channel_name: str, outcome: str) -> float | None:
        labels = {"channel": channel_name, "outcome": outcome}
        return metrics.registry.get_sample_value("bridge_announcements_total", labels)

    assert (count("delivery", "sent"), count("down", "failed")) == (2.0, 2.0)


def test_of_two_processes_racing_for_one_message_exactly_one_may_send_it(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from bridge.store.announced import claim

    start = Barrier(4)

    def race(_: int) -> bool:
        start.wait()
        with store.write() as conn:
            return claim(
                conn, "kr-met:config:KR1:1", "delivery", kind="key_result_met", headline="x", now=NOW
            )

    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(race, range(4)))
    assert sorted(won) == [False, False, False, True]
