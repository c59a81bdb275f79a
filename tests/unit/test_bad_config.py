"""Malformed configurations, property-based: a clear list of problems by dotted path, never a crash.

A valid config is mutated (wrong types, unknown keys, dropped required keys, bad durations and URLs,
duplicate ids, unicode), written back as TOML, and loaded: `load_config` returns a config or raises
`ConfigError` whose every problem names its path; `bridge check` exits 0 or 2 without a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.errors import ConfigError
from tests.conftest import CliResult

EXAMPLES = int(os.environ.get("BAD_INPUT_EXAMPLES", "60"))

BASE = """
[store]
url = "sqlite:///bridge.db"

[schedule]
interval = "15m"
jitter = "30s"

[daemon]
http_port = 9464
lease_ttl = "60s"
heartbeat = "15s"

[analytics]
rank_strategy = "wsjf"
window = "90d"

[push]
label_prefix = "mb-"

[trackers.acme-jira]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "JIRA_EMAIL"
token_env = "JIRA_TOKEN"
projects = ["PAY"]
teams = [{ component = "web", name = "Web" }]
okr_rules = [{ label = "checkout", key_result = "KR1" }]

[trackers.acme-jira.status_map]
"10000" = "todo"
"3" = "in_progress"
"10001" = "done"

[trackers.acme-jira.schedule]
interval = "5m"

[trackers.cards]
kind = "trello"
api_key_env = "TRELLO_KEY"
token_env = "TRELLO_TOKEN"
boards = ["abc123"]
status_map = { "Doing" = "in_progress", "Done" = "done" }

[trackers.tasks]
kind = "asana"
token_env = "ASANA_TOKEN"
workspace = "W1"
projects = ["P1"]
status_map = { "S1" = "todo", "completed" = "done" }

[[okrs.objectives]]
id = "O1"
title = "Make checkout effortless"
url = "https://okr.example.com/O1"

[[okrs.objectives.key_results]]
id = "KR1"
title = "Conversion to 70%"
target = 70
"""
VALID = tomllib.loads(BASE)

# ---- TOML out ---------------------------------------------------------------------------------------


def _string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(data: dict[str, Any]) -> str:
    return "".join(f"{_string(key)} = {toml_value(value)}\n" for key, value in data.items())


def test_the_writer_round_trips_the_valid_config() -> None:
    assert tomllib.loads(to_toml(VALID)) == VALID


# ---- mutations ----------------------------------------------------------------------------------------

BAD_STRINGS = [
    "",
    " ",
    "5x",
    "-1m",
    "0s",
    "1h30",
    "99999999999999999999d",
    "ftp://example.com",
    "http://user:pw@example.com",
    "https://",
    "not a url",
    "Bad Name!",
    "config",
    "done",
    "todo",
    "KR1",
    "O1",
    "acme-jira:KR9",
    "nowhere:KR1",
    "postgresql://u:secret@db/x",
    "mysql://db/x",
    "sqlite:///",
    "*/5 * * *",
    "🚀",
    "\u202eRTL",
    "שלום",
    "a\x00b",
    "x" * 5_000,
]
# TOML strings are Unicode scalar values: lone surrogates cannot be written.
toml_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=16)
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    toml_text,
    st.sampled_from(BAD_STRINGS),
    st.datetimes(),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_text, inner, max_size=3),
    max_leaves=6,
)
KEYS = [
    "url", "url_env", "interval", "cron", "kind", "name", "id", "title", "status_map", "projects",
    "boards", "token", "token_env", "api_key", "password", "timeout", "schedule", "teams", "key_results",
    "ca_bundle", "verify_tls", "page_size", "lag", "weight", "target", "unknown_key", "trakers", "🙂",
]  # fmt: skip


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*here, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*here, index)))
    return found


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated_config(draw: DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from([p for p in _paths(data) if p]))
        parent, last = _at(data, path[:-1]), path[-1]
        target = parent[last]
        operation = draw(st.sampled_from(["drop", "replace", "bad_string", "add_key", "rename", "duplicate"]))
        if operation == "drop":
            del parent[last]
        elif operation == "replace":
            parent[last] = draw(toml_values)
        elif operation == "bad_string":
            parent[last] = draw(st.sampled_from(BAD_STRINGS) | toml_text)
        elif operation == "add_key" and isinstance(target, dict):
            target[draw(st.sampled_from(KEYS) | toml_text)] = draw(toml_values)
        elif operation == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from(KEYS) | toml_text)
            if new not in parent:
                parent[new] = parent.pop(last)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(target))
        elif operation == "duplicate" and isinstance(parent, dict):
            fresh = toml_text.filter(lambda k, taken=frozenset(parent): k not in taken)
            parent[draw(fresh)] = copy.deepcopy(target)
    return data


def _check_outcome(path: Path) -> BridgeConfig | ConfigError:
    try:
        return load_config(path, ConnectorRegistry.default())
    except ConfigError as exc:
        return exc


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=mutated_config())
def test_load_config_succeeds_or_lists_problems_by_path(data: dict[str, Any], tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("cfg") / "bridge.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    outcome = _check_outcome(path)
    if isinstance(outcome, ConfigError):
        assert outcome.problems, "a ConfigError names at least one problem"
        for problem in outcome.problems:
            assert problem.path, f"a problem without a path: {problem}"
            assert problem.message.strip()
            assert "Traceback" not in problem.message
    else:
        assert outcome.trackers


@settings(
    max_examples=max(EXAMPLES // 2, 10),
    deadline=None,
    # run_cli only wraps capsys, which it drains before each call; tmp_path is rewritten each example.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=mutated_config(), syntax=st.sampled_from(["", "", "", "[[[", "a = \n", "x = 1\nx = 2\n"]))
def test_bridge_check_exits_0_or_2_without_a_traceback(
    data: dict[str, Any], syntax: str, run_cli: Any, tmp_path: Path
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(to_toml(data) + syntax, encoding="utf-8")
    path.chmod(0o600)
    result: CliResult = run_cli("check", "--config", str(path))
    output = result.stdout + result.stderr
    assert result.exit_code in (0, 2), output
    assert "Traceback" not in output, output
    if result.exit_code == 2:
        assert "problem" in output or "error" in output.lower(), output


def test_undecodable_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_bytes(BASE.encode() + b'\nname = "\xff\xfe"\n')
    outcome = _check_outcome(path)
    assert isinstance(outcome, ConfigError)
    assert json.dumps([str(p) for p in outcome.problems])
