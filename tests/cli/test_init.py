"""`bridge init`: the guessing parts alone, then the command against the sandbox trackers."""

from __future__ import annotations

import io
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.connector import ConnectorRegistry, DiscoveredField, Discovery
from bridge.demo import ENV, Sandbox, start_sandbox
from bridge.domain import StatusCategory
from bridge.errors import UserError
from bridge.init import (
    Answers,
    Container,
    align,
    category_from_name,
    containers,
    guess_fields,
    guess_statuses,
    pick,
    render,
    write_candidates,
)

# ---- the pure parts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("To Do", StatusCategory.TODO),
        ("Backlog", StatusCategory.TODO),
        ("Doing", StatusCategory.IN_PROGRESS),
        ("In progress", StatusCategory.IN_PROGRESS),
        ("Code Review", StatusCategory.IN_PROGRESS),
        ("Blocked", StatusCategory.WAITING),
        ("Waiting for QA", StatusCategory.WAITING),
        ("Done", StatusCategory.DONE),
        ("Complete", StatusCategory.DONE),
        ("Shipped", StatusCategory.DONE),
        ("Key Results", None),
        ("Ideas", None),
    ],
)
def test_status_names_suggest_a_category(name: str, category: StatusCategory | None) -> None:
    assert category_from_name(name) == category


def test_jira_statuses_go_by_category_and_waiting_by_name() -> None:
    found = Discovery(
        statuses=[("1", "Open"), ("3", "In Progress"), ("7", "Blocked"), ("9", "Shipped"), ("12", "Triage")],
        extra={"status_categories": {"1": "new", "3": "indeterminate", "7": "indeterminate", "9": "done"}},
    )
    guess = guess_statuses("jira", found)
    assert {(k, c) for k, c, _ in guess.mapped} == {
        ("1", StatusCategory.TODO),
        ("3", StatusCategory.IN_PROGRESS),
        ("7", StatusCategory.WAITING),
        ("9", StatusCategory.DONE),
    }
    assert guess.unknown == [("12", "Triage")]


def test_trello_lists_by_name_once_per_name_on_the_chosen_boards() -> None:
    found = Discovery(
        containers=[("b1", "Design (short link aa)"), ("b2", "Content (short link bb)")],
        statuses=[
            ("l1", "Design / To Do"),
            ("l2", "Design / Doing"),
            ("l3", "Design / Done"),
            ("l4", "Design / Key Results"),
            ("l5", "Content / To Do"),
            ("l6", "Content / Old (archived list)"),
            ("l7", "Content / Shipped"),
        ],
    )
    boards = containers("trello", found).items
    assert boards == [Container("b1", "Design"), Container("b2", "Content")]
    guess = guess_statuses("trello", found, boards)
    assert [(k, c.value) for k, c, _ in guess.mapped] == [
        ("To Do", "todo"),
        ("Doing", "in_progress"),
        ("Done", "done"),
        ("Shipped", "done"),
    ]
    assert [k for k, _ in guess.unknown] == ["Key Results"]
    only_content = guess_statuses("trello", found, boards[1:])
    assert [k for k, _, _ in only_content.mapped] == ["To Do", "Shipped"] and not only_content.unknown


def test_asana_containers_and_completed() -> None:
    found = Discovery(
        containers=[("1", "workspace: Acme"), ("10", "project: Roadmap"), ("11", "project: Growth")],
        statuses=[("s1", "Roadmap / Backlog"), ("s2", "Growth / Waiting"), ("completed", "any task")],
    )
    listed = containers("asana", found)
    assert listed.workspaces == [Container("1", "Acme")]
    assert listed.items == [Container("10", "Roadmap", "1"), Container("11", "Growth", "1")]
    guess = guess_statuses("asana", found, listed.items)
    assert [(k, c.value) for k, c, _ in guess.mapped] == [
        ("Backlog", "todo"),
        ("Waiting", "waiting"),
        ("completed", "done"),
    ]


def test_value_and_effort_fields_from_names_numbers_first() -> None:
    fields = [
        DiscoveredField("customfield_1", "Value Rank", "number"),
        DiscoveredField("customfield_2", "Business Value", "string"),
        DiscoveredField("customfield_3", "Business value", "number (float)"),
        DiscoveredField("customfield_4", "Story Points", "number (float)"),
        DiscoveredField("customfield_5", "Key result", "string"),
    ]
    guessed = guess_fields(fields)
    assert guessed["value"].id == "customfield_3" and guessed["effort"].id == "customfield_4"
    assert guess_fields([DiscoveredField("x", "Estimate", "number; board A")])["effort"].name == "Estimate"
    assert guess_fields([DiscoveredField("x", "Priority", "enum")]) == {}
    candidates = write_candidates(fields)
    assert [f.id for f in candidates["rank_field"]] == ["customfield_1"]
    assert [f.id for f in candidates["okr_field"]] == ["customfield_5"]


def test_notes_line_up_and_hashes_in_strings_are_kept() -> None:
    value, rank = 'value = "A # B"', '# rank_field = "X"'
    assert align(value + "  # note") == value.ljust(39) + " # note"
    assert align(rank + "  # candidates") == rank.ljust(39) + " # candidates"
    assert align("# just a comment  # here") == "# just a comment  # here"


def test_pick_by_number_id_or_name() -> None:
    options = [Container("PAY", "Payments"), Container("MOB", "Mobile"), Container("OPS", "Ops")]
    assert pick(options, "") == options and pick(options, "all") == options
    assert pick(options, "1, mobile,OPS") == options
    assert pick(options, "2") == [options[1]]
    with pytest.raises(UserError, match="'nope'"):
        pick(options, "nope")


def test_rendered_file_is_valid_and_names_variables_only() -> None:
    found = Discovery(
        containers=[("PAY", "Payments")],
        statuses=[("1", "To Do"), ("2", "Done"), ("5", "Triage")],
        fields=[DiscoveredField("customfield_9", "Story Points", "number (float)")],
        extra={"deployment": "cloud", "status_categories": {"1": "new", "2": "done"}},
    )
    answers = Answers("jira", "https://acme.atlassian.net", "acme", "J_TOKEN", email_env="J_EMAIL")
    text = render(answers, found, chosen=[Container("PAY", "Payments")])
    config = parse_config(text, ConnectorRegistry.default())
    tracker = config.trackers["acme"]
    assert tracker.status_map == {"1": StatusCategory.TODO, "2": StatusCategory.DONE}
    assert tracker.secret_env_names() == {"email_env": "J_EMAIL", "token_env": "J_TOKEN"}
    assert tracker.fields.effort == "customfield_9" and tracker.fields.value is None
    assert tracker.write.rank_field is None and tracker.write.okr_field is None
    assert config.push.enabled is False
    assert re.search(r'^# "5" = "todo \| in_progress \| waiting \| done" +# Triage$', text, re.M)
    assert "# rank_field = " in text and "# okr_field = " in text


# ---- the command against the sandboxes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(seed=5, per_tracker=40)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for var, value in sandbox.secrets.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr("bridge_asana.session.AsanaSession.vendor_rate", 1000.0)
    monkeypatch.setattr("bridge_trello.session.TrelloSession.vendor_rate", 1000.0)
    monkeypatch.setattr("bridge_jira.client.JiraSession.vendor_rate", 1000.0)
    return sandbox


def flags(sandbox: Sandbox, kind: str) -> list[str]:
    given = ["--kind", kind, "--url", sandbox.url(kind)]
    if kind == "jira":
        return [*given, "--token-env", ENV["jira_token"], "--email-env", ENV["jira_email"]]
    if kind == "trello":
        return [*given, "--token-env", ENV["trello_token"], "--api-key-env", ENV["trello_key"]]
    return [*given, "--token-env", ENV["asana_token"]]


def secret_free(sandbox: Sandbox, text: str) -> bool:
    return not any(value in text for value in sandbox.secrets.values() if "@" not in value)


@pytest.mark.parametrize("kind", ["jira", "trello", "asana"])
def test_init_from_flags_checks_and_pulls(run_cli: object, env: Sandbox, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "bridge.toml"
    result = run_cli("init", *flags(env, kind), "--yes", "--out", str(out))  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"wrote {out}: tracker {kind} ({kind})" in result.stdout
    text = out.read_text()
    assert secret_free(env, text + result.stdout + result.stderr)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "[store]" in text and 'url = "sqlite:///bridge.db"' in text
    config = parse_config(text, ConnectorRegistry.default())
    tracker = config.trackers[kind]
    assert tracker.fields.value and tracker.fields.effort, text
    assert "done" in {c.value for c in tracker.status_map.values()}

    checked = run_cli("check", "--config", str(out))  # type: ignore[operator]
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    online = run_cli("check", "--config", str(out), "--online")  # type: ignore[operator]
    assert online.exit_code == 0, online.stdout + online.stderr
    assert f"online:\n  {kind}: ok\n" in online.stdout
    pulled = run_cli("pull", "--config", str(out))  # type: ignore[operator]
    assert pulled.exit_code == 0, pulled.stdout + pulled.stderr
    assert f"{kind}: " in pulled.stdout and ": ok" in pulled.stdout
    assert (tmp_path / "bridge.db").exists()
    assert secret_free(env, online.stdout + online.stderr + pulled.stdout + pulled.stderr)


def test_init_asks_for_what_is_not_given(
    run_cli: object, env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "asked.toml"
    answers = [
        "trello",  # kind
        env.url("trello"),  # URL
        ENV["trello_token"],  # token variable
        ENV["trello_key"],  # API key variable
        "design-boards",  # name
        "Design",  # the boards to read
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    result = run_cli("init", "--out", str(out))  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Tracker kind" in result.stderr and "Boards found:" in result.stderr
    config = parse_config(out.read_text(), ConnectorRegistry.default())
    tracker = config.trackers["design-boards"]
    assert list(getattr(tracker, "boards", [])) == [env.trello_boards["Design"]]
    assert tracker.secret_env_names() == {"api_key_env": ENV["trello_key"], "token_env": ENV["trello_token"]}
    online = run_cli("check", "--config", str(out), "--online")  # type: ignore[operator]
    assert online.exit_code == 0, online.stdout + online.stderr


def test_init_refuses_to_overwrite(run_cli: object, env: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "bridge.toml"
    out.write_text("# mine\n")
    result = run_cli("init", *flags(env, "asana"), "--yes", "--out", str(out))  # type: ignore[operator]
    assert result.exit_code == 2 and "exists; pass --force" in result.stderr
    assert out.read_text() == "# mine\n"
    forced = run_cli("init", *flags(env, "asana"), "--yes", "--out", str(out), "--force")  # type: ignore[operator]
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert "[trackers.asana]" in out.read_text() and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_init_with_yes_needs_the_kind(run_cli: object, tmp_path: Path) -> None:
    result = run_cli("init", "--yes", "--out", str(tmp_path / "x.toml"))  # type: ignore[operator]
    assert result.exit_code == 2 and "--kind is required with --yes" in result.stderr
    assert not (tmp_path / "x.toml").exists()


def test_init_json_says_what_it_wrote(run_cli: object, env: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "bridge.toml"
    result = run_cli("init", *flags(env, "trello"), "--yes", "--out", str(out), "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["path"] == str(out) and out.exists()
    assert (document["tracker"], document["kind"]) == ("trello", "trello")
    assert document["containers"] >= 1 and document["statuses_mapped"] >= 1
    assert document["needs_editing"] is None
    assert secret_free(env, result.stdout)
