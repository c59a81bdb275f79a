"""Loading valid configurations: the example, defaults, secrets by environment variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bridge.config import BridgeConfig, default_config_path, load_config, parse_config
from bridge.connector import ConnectorRegistry
from bridge.domain import StatusCategory
from bridge.durations import format_duration, parse_duration
from bridge.errors import ConfigError, UserError
from tests.conftest import EXAMPLE_CONFIG
from tests.unit.test_config_errors import BASE


def test_example_config_loads_with_all_three_trackers() -> None:
    cfg = load_config(EXAMPLE_CONFIG, ConnectorRegistry.default())
    assert {t.kind for t in cfg.trackers.values()} == {"jira", "trello", "asana"}
    jira = cfg.trackers["acme-jira"]
    assert list(jira.status_map) == ["10000", "3", "Code Review", "Blocked", "Waiting for QA", "10001"], (
        "stage order is the order of the file"
    )
    assert jira.status_map["Blocked"] is StatusCategory.WAITING
    assert cfg.schedule_for("acme-jira").interval == timedelta(minutes=10)
    assert cfg.schedule_for("design-trello").interval == timedelta(minutes=15)
    assert cfg.schedule_for("growth-asana").cron == "*/20 * * * *"
    assert cfg.okrs.key_result_ids() == ["KR1.1", "KR1.2", "KR2.1"]
    assert cfg.okrs.objectives[0].key_results[0].url == "https://okr.example.com/key-results/KR1.1"


def test_example_documents_every_option() -> None:
    """Each key of every table model appears in the example, so admins can find it."""
    from bridge.config import (
        AnalyticsConfig,
        DaemonConfig,
        KeyResultConfig,
        ObjectiveConfig,
        PushConfig,
        ScheduleConfig,
        StoreConfig,
        ValueFields,
        WriteConfig,
    )
    from bridge_asana import AsanaTrackerConfig
    from bridge_jira import JiraTrackerConfig
    from bridge_trello import TrelloTrackerConfig

    text = EXAMPLE_CONFIG.read_text()
    models = [
        StoreConfig, ScheduleConfig, DaemonConfig, AnalyticsConfig, PushConfig, ObjectiveConfig,
        KeyResultConfig, ValueFields, WriteConfig, JiraTrackerConfig, TrelloTrackerConfig, AsanaTrackerConfig,
    ]  # fmt: skip
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"{name} =" not in text and f"{name}]" not in text and f"[{name}" not in text
    ]
    assert missing == []


def test_defaults_fill_what_the_file_leaves_out() -> None:
    cfg = parse_config(BASE, ConnectorRegistry.default())
    assert cfg.analytics.bottleneck_ratio == 1.5
    assert cfg.analytics.bottleneck_min_sample == 5
    assert cfg.schedule.effective_interval == timedelta(minutes=15)
    assert cfg.push.label_prefix == "mb-"
    assert cfg.daemon.shutdown_timeout == timedelta(seconds=30)


def test_relative_sqlite_path_is_read_from_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "bridge.toml"
    config.parent.mkdir()
    config.write_text(BASE + '\n[store]\nurl = "sqlite:///data/bridge.db"\n')
    cfg = load_config(config, ConnectorRegistry.default())
    assert cfg.store_url() == f"sqlite:///{tmp_path / 'conf' / 'data' / 'bridge.db'}"
    default = load_config(_write(tmp_path / "b.toml", BASE), ConnectorRegistry.default())
    assert default.store_url() == f"sqlite:///{tmp_path / 'bridge.db'}"


def test_store_url_from_environment_only_when_needed(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path / "b.toml", BASE + '\n[store]\nurl_env = "BRIDGE_DB"\n'), ConnectorRegistry.default()
    )
    with pytest.raises(ConfigError, match="environment variable BRIDGE_DB is not set") as caught:
        cfg.store_url(environ={})
    assert caught.value.problems[0].path == "store.url_env"
    url = "postgresql+psycopg://bridge:pw@db:5432/bridge"
    assert cfg.store_url(environ={"BRIDGE_DB": url}) == url


def test_secrets_are_read_only_on_demand_and_every_missing_one_is_named() -> None:
    cfg = parse_config(BASE, ConnectorRegistry.default())  # loads although no variable is set
    with pytest.raises(ConfigError) as caught:
        cfg.require_secrets("acme-jira", environ={"JIRA_EMAIL": "me@example.com"})
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("trackers.acme-jira.token_env", "environment variable JIRA_TOKEN is not set")
    ]
    secrets = cfg.require_secrets("cards", environ={"TRELLO_KEY": "k", "TRELLO_TOKEN": "t"})
    assert secrets == {"api_key_env": "k", "token_env": "t"}


def test_unknown_tracker_name_suggests_the_closest() -> None:
    cfg = parse_config(BASE, ConnectorRegistry.default())
    with pytest.raises(UserError, match="did you mean 'acme-jira'"):
        cfg.tracker("acme-jria")


def test_config_path_precedence(tmp_path: Path) -> None:
    assert default_config_path("x.toml", environ={"BRIDGE_CONFIG": "y.toml"}) == Path("x.toml")
    assert default_config_path(None, environ={"BRIDGE_CONFIG": "y.toml"}) == Path("y.toml")
    assert default_config_path(None, environ={}) == Path("bridge.toml")


def test_cli_reads_bridge_config_then_local_file(
    run_cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _write(tmp_path / "bridge.toml", BASE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    result = run_cli("check")  # type: ignore[operator]
    assert result.exit_code == 0 and str(local.resolve()) in result.stdout
    monkeypatch.setenv("BRIDGE_CONFIG", str(EXAMPLE_CONFIG))
    result = run_cli("check")  # type: ignore[operator]
    assert result.exit_code == 0 and "growth-asana" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["99999999999999999999d", 10**30])
def test_a_duration_past_any_calendar_is_a_problem_not_a_crash(text: object) -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration(text)


def test_config_is_immutable() -> None:
    cfg = parse_config(BASE, ConnectorRegistry.default())
    assert isinstance(cfg, BridgeConfig)
    with pytest.raises(ValueError, match="frozen"):
        cfg.analytics.bottleneck_ratio = 2.0  # type: ignore[misc]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
