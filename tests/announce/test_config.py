"""`[announce]`: every problem named by its dotted path (exit 2); `bridge check` says when a channel's URL
variable is unset, empty or holds no URL, naming the variable and never showing its value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import ConfigError
from tests.announce.conftest import TRACKER, channel, config_with

SECRET_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/xoxsecretpath"


def test_a_channel_hears_both_events_by_default() -> None:
    config = config_with(channel("delivery", "slack", "SLACK_WEBHOOK_URL"))
    (found,) = config.announce.channels
    assert (found.name, found.kind, found.url_env) == ("delivery", "slack", "SLACK_WEBHOOK_URL")
    assert found.events == ["milestone_reached", "key_result_met"]
    assert config_with().announce.channels == []


def test_every_problem_is_named_by_its_dotted_path() -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(
            channel("delivery", "irc", "SLACK_WEBHOOK_URL"),
            channel("leads", "teams", "https://hooks.example/x"),
            channel("feed", "generic", "FEED_URL", events='["milestone_reached", "deploys"]'),
            channel("other", "generic", "FEED_URL", events="[]"),
        )
    problems = {p.path: p.message for p in raised.value.problems}
    assert set(problems) == {
        "announce.channels[0].kind",
        "announce.channels[1].url_env",
        "announce.channels[2].events[1]",
        "announce.channels[3].events",
    }, problems
    assert "never the secret itself" in problems["announce.channels[1].url_env"]


def test_two_channels_may_not_share_a_name() -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(channel("feed", "generic", "FEED_URL"), channel("feed", "slack", "SLACK_URL"))
    (problem,) = raised.value.problems
    assert problem.path == "announce.channels[1].name"
    assert problem.message == "'feed' is already used by announce.channels[0]"


@pytest.mark.parametrize(
    ("value", "note"),
    [
        (None, "environment variable SLACK_WEBHOOK_URL is not set"),
        ("", "environment variable SLACK_WEBHOOK_URL is empty"),
        ("hooks.slack.com/T0SECRET", "environment variable SLACK_WEBHOOK_URL does not hold an http(s) URL"),
        (SECRET_URL, None),
    ],
)
def test_bridge_check_names_an_unusable_url_variable_and_never_its_value(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, value: str | None, note: str | None
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(TRACKER + channel("delivery", "slack", "SLACK_WEBHOOK_URL"))
    path.chmod(0o600)
    if value is None:
        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    else:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", value)
    shown = run_cli("check", "--config", str(path))
    assert shown.exit_code == 0, shown.stderr
    assert "announce delivery: slack webhook from $SLACK_WEBHOOK_URL" in shown.stdout
    if note is None:
        assert "note" not in shown.stdout.split("announce delivery")[1].split("\n  ")[0]
    else:
        assert f"note: {note}; nothing will be announced in delivery until it is set" in shown.stdout
    as_json = run_cli("check", "--json", "--config", str(path))
    (described,) = json.loads(as_json.stdout)["announce"]
    assert described == {"name": "delivery", "kind": "slack", "url_env": "SLACK_WEBHOOK_URL",
                         "events": ["milestone_reached", "key_result_met"], "note": note}  # fmt: skip
    for output in (shown.stdout + shown.stderr, as_json.stdout + as_json.stderr):
        assert "T0SECRET" not in output


def test_a_broken_announce_table_fails_bridge_check_with_exit_2(tmp_path: Path, run_cli: Any) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(TRACKER + channel("delivery", "slack", "SLACK_WEBHOOK_URL", events='["everything"]'))
    shown = run_cli("check", "--config", str(path))
    assert shown.exit_code == 2
    assert "announce.channels[0].events[0]" in shown.stderr
