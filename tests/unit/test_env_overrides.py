"""`BRIDGE_<SECTION>__<KEY>` variables override every scalar setting outside the tracker tables, over the
file; a bad one is reported like a bad key in the file (by dotted path), naming the variable."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, get_origin

import pytest

from bridge.config import OVERRIDABLE, OVERRIDE_VARIABLE, BridgeConfig, Section, _unwrap, parse_config
from bridge.connector import ConnectorRegistry
from bridge.errors import ConfigError
from tests.conftest import CliResult
from tests.unit.test_config_errors import BASE


def _parse(text: str, environ: dict[str, str]) -> BridgeConfig:
    return parse_config(text, ConnectorRegistry.default(), environ=environ)


def _problems(text: str, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _parse(text, environ)
    return [str(problem) for problem in caught.value.problems]


def test_variables_take_precedence_over_the_file_and_are_typed_like_it() -> None:
    text = BASE + '\n[daemon]\nhttp_host = "127.0.0.1"\nhttp_port = 1234\n'
    cfg = _parse(
        text,
        {
            "BRIDGE_DAEMON__HTTP_HOST": "0.0.0.0",
            "BRIDGE_DAEMON__HTTP_PORT": "9999",
            "BRIDGE_DAEMON__LOG_FORMAT": "json",
            "BRIDGE_ANALYTICS__WINDOW": "30d",
            "BRIDGE_ANALYTICS__PERCENTILE": "90.5",
            "BRIDGE_PUSH__ENABLED": "false",
            "BRIDGE_SCHEDULE__CRON": "*/10 * * * *",
            "BRIDGE_STORE__AUTO_UPGRADE": "false",
        },
    )
    assert (cfg.daemon.http_host, cfg.daemon.http_port, cfg.daemon.log_format) == ("0.0.0.0", 9999, "json")
    assert cfg.analytics.window == timedelta(days=30) and cfg.analytics.percentile == 90.5
    assert cfg.push.enabled is False and cfg.store.auto_upgrade is False
    assert cfg.schedule.cron == "*/10 * * * *"
    assert {o.path: o.variable for o in cfg.overrides}["daemon.http_port"] == "BRIDGE_DAEMON__HTTP_PORT"
    assert _parse(text, {}).daemon.http_port == 1234, "without the variable the file decides"


def test_every_scalar_setting_outside_the_trackers_has_a_variable() -> None:
    """A setting added to one of these sections is overridable by construction; this fails if one is a
    table or an array (which a variable could not express) without being excluded on purpose."""
    for section, model in OVERRIDABLE.items():
        for key, field in model.model_fields.items():
            annotation = _unwrap(field.annotation)
            assert not (isinstance(annotation, type) and issubclass(annotation, Section)), f"{section}.{key}"
            assert get_origin(annotation) not in (list, dict), f"{section}.{key}"
            variable = f"BRIDGE_{section.upper()}__{key.upper()}"
            assert OVERRIDE_VARIABLE.match(variable)


def test_bad_values_and_unknown_names_are_reported_by_dotted_path_with_the_variable() -> None:
    problems = _problems(
        BASE,
        {
            "BRIDGE_DAEMON__HTTP_PORT": "abc",
            "BRIDGE_DAEMON__HTTP_HOTS": "0.0.0.0",
            "BRIDGE_DEAMON__HTTP_HOST": "0.0.0.0",
        },
    )
    joined = "\n".join(problems)
    assert (
        "daemon.http_port: must be a valid integer" in joined
        and "(set by BRIDGE_DAEMON__HTTP_PORT)" in joined
    )
    assert (
        "daemon.http_hots (BRIDGE_DAEMON__HTTP_HOTS): unknown key 'http_hots' (did you mean 'http_host'?)"
        in joined
    )
    assert (
        "BRIDGE_DEAMON__HTTP_HOST: 'deamon' is not a section" in joined and "did you mean 'daemon'" in joined
    )
    assert len(problems) == 3, problems


@pytest.mark.parametrize("name", ["BRIDGE_STORE__URL", "BRIDGE_STORE__URL_ENV"])
def test_the_store_url_keeps_url_env_and_is_not_overridden(name: str) -> None:
    problems = _problems(BASE, {name: "sqlite:///elsewhere.db"})
    assert len(problems) == 1 and "url_env" in problems[0] and name in problems[0]


def test_tracker_tables_and_okrs_are_not_overridden() -> None:
    for name in ("BRIDGE_TRACKERS__URL", "BRIDGE_OKRS__OBJECTIVES"):
        problems = _problems(BASE, {name: "x"})
        assert len(problems) == 1 and "not a section that variables override" in problems[0], problems


def test_other_bridge_variables_and_empty_ones_are_not_overrides() -> None:
    cfg = _parse(
        BASE,
        {
            "BRIDGE_CONFIG": "/etc/bridge.toml",
            "BRIDGE_DEMO_JIRA_TOKEN": "x",
            "BRIDGE_TEST_PG_URL": "postgresql://x",
            "BRIDGE_DAEMON__HTTP_HOST": "",
            "bridge_daemon__http_host": "0.0.0.0",
        },
    )
    assert cfg.overrides == () and cfg.daemon.http_host == "127.0.0.1"


def test_the_config_cannot_name_an_override_for_a_secret() -> None:
    text = BASE.replace('token_env = "JIRA_TOKEN"', 'token_env = "BRIDGE_DAEMON__TOKEN"')
    assert text != BASE
    problems = _problems(text, {})
    assert any("trackers.acme-jira.token_env" in p and "form of a setting's override" in p for p in problems)


def test_check_shows_the_overrides(run_cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(BASE)
    config.chmod(0o600)
    monkeypatch.setenv("BRIDGE_DAEMON__LOG_FORMAT", "json")
    result: CliResult = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    assert "daemon.log_format = json (from BRIDGE_DAEMON__LOG_FORMAT)" in result.stdout
    document: dict[str, Any] = json.loads(run_cli("check", "--json", "--config", str(config)).stdout)  # type: ignore[operator]
    assert document["overrides"] == [
        {"path": "daemon.log_format", "variable": "BRIDGE_DAEMON__LOG_FORMAT", "value": "json"}
    ]
    monkeypatch.setenv("BRIDGE_DAEMON__LOG_FORMAT", "xml")
    bad: CliResult = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert bad.exit_code == 2
    assert (
        "daemon.log_format: 'xml' is not one of text, json (set by BRIDGE_DAEMON__LOG_FORMAT)" in bad.stderr
    )


def test_a_check_across_settings_names_the_variable_that_broke_it() -> None:
    problems = _problems(BASE, {"BRIDGE_DAEMON__HEARTBEAT": "5m"})
    assert problems == [
        "daemon.heartbeat: must be shorter than lease_ttl, or a lease expires while its holder lives "
        "(set by BRIDGE_DAEMON__HEARTBEAT)"
    ]
