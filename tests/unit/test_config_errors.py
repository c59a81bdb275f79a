"""Malformed configurations: each problem named by its dotted path, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.connector import ConnectorRegistry
from bridge.errors import ConfigError

BASE = """
[trackers.acme-jira]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "JIRA_EMAIL"
token_env = "JIRA_TOKEN"
projects = ["PAY"]

[trackers.acme-jira.status_map]
"10000" = "todo"
"3" = "in_progress"
"10001" = "done"

[trackers.cards]
kind = "trello"
api_key_env = "TRELLO_KEY"
token_env = "TRELLO_TOKEN"
boards = ["abc123"]
status_map = { "Doing" = "in_progress", "Done" = "done" }

[[okrs.objectives]]
id = "O1"
title = "Make checkout effortless"

[[okrs.objectives.key_results]]
id = "KR1"
title = "Conversion to 70%"
target = 70
"""

# (id, text appended to or replacing BASE, expected path, expected words in the message)
CASES: list[tuple[str, str, str, str]] = [
    ("unknown-top-level-key", BASE + '\n[schedul]\ninterval = "5m"\n', "schedul", "did you mean 'schedule'"),
    (
        "unknown-tracker-key",
        BASE.replace('projects = ["PAY"]', 'projects = ["PAY"]\nprojets = ["X"]'),
        "trackers.acme-jira.projets",
        "did you mean 'projects'",
    ),
    (
        "literal-token",
        BASE.replace('token_env = "JIRA_TOKEN"', 'token_env = "JIRA_TOKEN"\ntoken = "s3cr3t"'),
        "trackers.acme-jira.token",
        "token_env",
    ),
    (
        "secret-in-env-name",
        BASE.replace('token_env = "JIRA_TOKEN"', 'token_env = "ATATT3x-secret-token"'),
        "trackers.acme-jira.token_env",
        "not an environment variable name",
    ),
    (
        "missing-token-env",
        BASE.replace('token_env = "JIRA_TOKEN"\n', "", 1),
        "trackers.acme-jira.token_env",
        "is required",
    ),
    (
        "bad-category",
        BASE.replace('"3" = "in_progress"', '"3" = "in_progres"'),
        "trackers.acme-jira.status_map.3",
        "did you mean 'in_progress'",
    ),
    (
        "status-key-with-space",
        BASE.replace('"3" = "in_progress"', '"In Review" = "reviewing"'),
        'trackers.acme-jira.status_map."In Review"',
        "not one of todo, in_progress, waiting, done",
    ),
    (
        "no-done-status",
        BASE.replace('"10001" = "done"', '"10001" = "waiting"'),
        "trackers.acme-jira.status_map",
        "no status maps to done",
    ),
    (
        "every-status-done",
        BASE.replace('"10000" = "todo"', '"10000" = "done"').replace('"3" = "in_progress"', '"3" = "done"'),
        "trackers.acme-jira.status_map",
        "every status maps to done, so every item would count as finished at once",
    ),
    (
        "every-status-todo",
        BASE.replace('"3" = "in_progress"', '"3" = "todo"').replace('"10001" = "done"', '"10001" = "todo"'),
        "trackers.acme-jira.status_map",
        "no status maps to done, so no item could ever finish",
    ),
    (
        "opt-out-is-the-at-risk-label",
        BASE + '\n[push]\nopt_out_label = "mb-at-risk"\n',
        "push.opt_out_label",
        "is the label the bridge itself adds (at_risk_label with label_prefix)",
    ),
    (
        "opt-out-is-the-bottleneck-label",
        BASE + '\n[push]\nlabel_prefix = "okr-"\nbottleneck_label = "slow"\nopt_out_label = "OKR-Slow"\n',
        "push.opt_out_label",
        "every item it labels would be frozen",
    ),
    (
        "rank-value-misspelt",
        BASE + '\n[trackers.cards.write]\nrank_field = "Rank"\nrank_value = "scores"\n',
        "trackers.cards.write.rank_value",
        "'score'",
    ),
    (
        "rank-bands-not-increasing",
        BASE + '\n[trackers.cards.write]\nrank_field = "Rank"\nrank_value = "band"\nrank_bands = [10, 5]\n',
        "trackers.cards.write.rank_bands",
        "each larger than the one before",
    ),
    (
        "rank-bands-empty",
        BASE + "\n[trackers.cards.write]\nrank_bands = []\n",
        "trackers.cards.write.rank_bands",
        "lists no cut-off",
    ),
    (
        "empty-projects",
        BASE.replace('projects = ["PAY"]', "projects = []"),
        "trackers.acme-jira.projects",
        "at least 1",
    ),
    (
        "unknown-kind",
        BASE.replace('kind = "trello"', 'kind = "trelo"'),
        "trackers.cards.kind",
        "did you mean 'trello'",
    ),
    ("missing-kind", BASE.replace('kind = "trello"\n', ""), "trackers.cards.kind", "is required"),
    ("bad-tracker-name", BASE.replace("[trackers.cards]", "[trackers.Cards]"), "trackers.Cards", "lowercase"),
    (
        "url-not-http",
        BASE.replace('url = "https://acme.atlassian.net"', 'url = "acme.atlassian.net"'),
        "trackers.acme-jira.url",
        "not an http(s) URL",
    ),
    (
        "url-with-credentials",
        BASE.replace("https://acme.atlassian.net", "https://me:pw@acme.atlassian.net"),
        "trackers.acme-jira.url",
        "credentials",
    ),
    (
        "store-password",
        BASE + '\n[store]\nurl = "postgresql+psycopg://bridge:hunter2@db/bridge"\n',
        "store.url",
        "url_env",
    ),
    (
        "store-url-and-env",
        BASE + '\n[store]\nurl = "sqlite:///x.db"\nurl_env = "DB_URL"\n',
        "store.url",
        "not both",
    ),
    ("store-unsupported", BASE + '\n[store]\nurl = "mysql://db/bridge"\n', "store.url", "not supported"),
    (
        "bad-duration",
        BASE + '\n[schedule]\ninterval = "every five minutes"\n',
        "schedule.interval",
        "not a duration",
    ),
    ("interval-too-short", BASE + '\n[schedule]\ninterval = "2s"\n', "schedule.interval", "at least 10s"),
    ("bad-cron", BASE + '\n[schedule]\ncron = "*/5 * * *"\n', "schedule.cron", "not a crontab expression"),
    (
        "interval-and-cron",
        BASE + '\n[schedule]\ninterval = "5m"\ncron = "*/5 * * * *"\n',
        "schedule.cron",
        "not both",
    ),
    (
        "ratio-too-low",
        BASE + "\n[analytics]\nbottleneck_ratio = 0.8\n",
        "analytics.bottleneck_ratio",
        "greater than 1",
    ),
    (
        "bad-strategy",
        BASE + '\n[analytics]\nrank_strategy = "wjsf"\n',
        "analytics.rank_strategy",
        "did you mean 'wsjf'",
    ),
    (
        "wrong-type",
        BASE + '\n[analytics]\nbottleneck_min_sample = "five"\n',
        "analytics.bottleneck_min_sample",
        "'five'",
    ),
    (
        "heartbeat-too-long",
        BASE + '\n[daemon]\nheartbeat = "2m"\nlease_ttl = "1m"\n',
        "daemon.heartbeat",
        "shorter than lease_ttl",
    ),
    ("label-with-space", BASE + '\n[push]\nlabel_prefix = "bridge "\n', "push.label_prefix", "spaces"),
    (
        "duplicate-kr-id",
        BASE + '\n[[okrs.objectives]]\nid = "O2"\ntitle = "t"\n'
        '[[okrs.objectives.key_results]]\nid = "KR1"\ntitle = "again"\n',
        "okrs.objectives[1].key_results[0].id",
        "already used by okrs.objectives[0].key_results[0]",
    ),
    (
        "kr-missing-title",
        BASE + '\n[[okrs.objectives]]\nid = "O2"\ntitle = "t"\n[[okrs.objectives.key_results]]\nid = "KR9"\n',
        "okrs.objectives[1].key_results[0].title",
        "is required",
    ),
    (
        "kr-current-without-target",
        BASE.replace("target = 70", "current = 40"),
        "okrs.objectives[0].key_results[0].target",
        "required when current is set",
    ),
    (
        "objective-without-krs",
        BASE + '\n[[okrs.objectives]]\nid = "O2"\ntitle = "t"\n',
        "okrs.objectives[1].key_results",
        "at least one key result",
    ),
    (
        "rule-key-wrong-kind",
        BASE + '\n[[trackers.cards.teams]]\nname = "design"\ncomponent = "UI"\n',
        "trackers.cards.teams[0].component",
        "trello trackers cannot match on component",
    ),
    (
        "rule-without-matcher",
        BASE + '\n[[trackers.acme-jira.work_types]]\nname = "backend"\n',
        "trackers.acme-jira.work_types[0]",
        "at least one of",
    ),
    (
        "okr-rule-unknown-kr",
        BASE + '\n[[trackers.acme-jira.okr_rules]]\nlabel = "x"\nkey_result = "KR2"\n',
        "trackers.acme-jira.okr_rules[0].key_result",
        "not a key result in [okrs]",
    ),
    (
        "cloud-without-email",
        BASE.replace('email_env = "JIRA_EMAIL"\n', 'flavour = "cloud"\n'),
        "trackers.acme-jira.email_env",
        "Jira Cloud",
    ),
    (
        "milestone-type-missing",
        BASE + '\n[trackers.acme-jira.milestones]\nsource = "issue_type"\n',
        "trackers.acme-jira.milestones.issue_type",
        "required when source is 'issue_type'",
    ),
    (
        "dependency-phrase-twice",
        BASE + '\n[trackers.cards.dependencies]\nphrases = ["Blocked by", "blocked by "]\n',
        "trackers.cards.dependencies.phrases[1]",
        "lists 'blocked by' twice",
    ),
    (
        "dependency-phrase-blank",
        BASE + '\n[trackers.cards.dependencies]\nphrases = ["needs", "  "]\n',
        "trackers.cards.dependencies.phrases[1]",
        "must not be blank",
    ),
    ("no-trackers", '[store]\nurl = "sqlite:///x.db"\n', "trackers", "no tracker configured"),
    ("tracker-not-a-table", BASE + '\n[trackers]\nextra = "jira"\n', "trackers.extra", "must be a table"),
    (
        "missing-ca-bundle",
        BASE.replace('projects = ["PAY"]', 'projects = ["PAY"]\nca_bundle = "/nope/ca.pem"'),
        "trackers.acme-jira.ca_bundle",
        "not a file",
    ),
    (
        "period-end-not-a-date",
        BASE.replace('title = "Make checkout effortless"', 'title = "Checkout"\nperiod_end = "end of Q1"'),
        "okrs.objectives[0].period_end",
        "date",
    ),
    (
        "kr-status-field-is-the-current-field",
        BASE
        + '\n[trackers.acme-jira.okrs]\nkey_result_type = "Key Result"\ncurrent_field = "customfield_10300"\n'
        + '\n[trackers.acme-jira.write]\nkr_status_field = "customfield_10300"\n',
        "trackers.acme-jira.write.kr_status_field",
        "never writes there",
    ),
    (
        "kr-status-field-on-trello",
        BASE + '\n[trackers.cards.write]\nkr_status_field = "Status"\n',
        "trackers.cards.write.kr_status_field",
        "only Jira key-result issues take a status field",
    ),
    (
        "kr-status-label-twice",
        BASE + '\n[push]\nkr_at_risk_label = "at-risk"\n',
        "push.kr_at_risk_label",
        "each label needs a name of its own",
    ),
    (
        "kr-status-label-is-the-opt-out",
        BASE + '\n[push]\nopt_out_label = "mb-kr-on-track"\n',
        "push.opt_out_label",
        "kr_on_track_label",
    ),
]


@pytest.mark.parametrize(("text", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_named_by_its_path(
    run_cli: object, tmp_path: Path, text: str, path: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ConnectorRegistry.default(), source="bad.toml")
    rendered = caught.value.render()
    matching = [p for p in caught.value.problems if p.path == path]
    assert matching, f"no problem at {path}; got:\n{rendered}"
    assert any(words in p.message for p in matching), rendered

    config = tmp_path / "bridge.toml"
    config.write_text(text)
    result = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 2
    assert f"{path}: " in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2" not in result.stderr + result.stdout and "s3cr3t" not in result.stderr + result.stdout


def test_at_least_twenty_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) >= 20


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = (
        BASE.replace('"3" = "in_progress"', '"3" = "doing"').replace('kind = "trello"', 'kind = "trelo"')
        + '\n[analytics]\nrank_strategy = "best"\n[schedule]\ninterval = "soon"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ConnectorRegistry.default())
    paths = {p.path for p in caught.value.problems}
    assert {
        "trackers.acme-jira.status_map.3",
        "trackers.cards.kind",
        "analytics.rank_strategy",
        "schedule.interval",
    } <= paths


def test_syntax_error_is_one_problem_with_line_and_column() -> None:
    text = '[store]\nurl = "sqlite:///x.db"\n[trackers.a\nkind = "jira"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ConnectorRegistry.default())
    assert len(caught.value.problems) == 1
    assert "line 3, column" in caught.value.problems[0].message


def test_missing_file_is_a_user_error(run_cli: object, tmp_path: Path) -> None:
    result = run_cli("check", "--config", str(tmp_path / "absent.toml"))  # type: ignore[operator]
    assert result.exit_code == 2
    assert "file not found" in result.stderr


DEEP = 100_000
NESTED = {
    "arrays": "a = " + "[" * DEEP + "]" * DEEP + "\n",
    "inline-tables": "a = " + "{ b = " * DEEP + "1" + " }" * DEEP + "\n",
    "arrays-in-a-tracker": BASE.replace('projects = ["PAY"]', "projects = " + "[" * DEEP + "]" * DEEP),
}


@pytest.mark.parametrize("text", list(NESTED.values()), ids=list(NESTED))
def test_nesting_too_deep_is_a_config_error_naming_the_file(
    run_cli: object, tmp_path: Path, text: str
) -> None:
    config = tmp_path / "deep.toml"
    config.write_text(text)
    result = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 2, result.stderr
    assert str(config) in result.stderr and "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "RecursionError" not in result.stderr


def test_nesting_too_deep_exits_2_from_a_fresh_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "deep.toml"
    config.write_text(NESTED["arrays"])
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr


def test_long_dotted_keys_are_refused_before_parsing(run_cli: object, tmp_path: Path) -> None:
    # The parser keeps every prefix of a dotted key: 100,000 parts would take minutes and gigabytes.
    config = tmp_path / "deep.toml"
    config.write_text(BASE + "\n" + ".".join(["x"] * DEEP) + " = 1\n")
    result = run_cli("check", "--config", str(config))  # type: ignore[operator]
    assert result.exit_code == 2, result.stderr
    line = (BASE + "\n").count("\n") + 1
    assert "nested too deeply" in result.stderr and f"at line {line}" in result.stderr


def test_ordinary_nesting_strings_and_comments_do_not_count() -> None:
    text = (
        BASE
        + "\n[analytics]\n# [[[[[[[[[[ a comment "
        + "[" * 200
        + "\n"
        + 'work_types = { "a.b.c" = "'
        + "[{" * 200
        + '" }\n'
    )
    try:
        parse_config(text, ConnectorRegistry.default())
    except ConfigError as exc:  # other problems may be found; nesting must not be one of them
        assert not any("nested too deeply" in p.message for p in exc.problems), exc.render()


def test_an_opt_out_label_the_bridge_adds_and_an_all_done_status_map_are_reported_together() -> None:
    text = BASE.replace('"Doing" = "in_progress"', '"Doing" = "done"') + (
        '\n[push]\nopt_out_label = "mb-bottleneck"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ConnectorRegistry.default(), source="bad.toml")
    paths = {p.path for p in caught.value.problems}
    assert {"push.opt_out_label", "trackers.cards.status_map"} <= paths, caught.value.render()


def test_one_status_mapped_to_done_and_an_unprefixed_opt_out_label_stay_valid() -> None:
    """A map naming only its done status is a small but real setup (the rest are skipped as unmapped),
    and `bottleneck` without the prefix is not a label the bridge adds."""
    text = BASE.replace('"Doing" = "in_progress", ', "") + '\n[push]\nopt_out_label = "bottleneck"\n'
    config = parse_config(text, ConnectorRegistry.default(), source="ok.toml")
    assert config.push.opt_out_label == "bottleneck"
