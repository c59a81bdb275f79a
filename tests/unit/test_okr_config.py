"""Adding an adopted key result to a config file: comments, blank lines and order kept; ids next free."""

from __future__ import annotations

import tomllib

import pytest

from bridge.errors import UserError
from bridge.okr_config import NewKeyResult, add_key_result
from tests.conftest import EXAMPLE_CONFIG

TEXT = EXAMPLE_CONFIG.read_text(encoding="utf-8")


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def test_a_new_objective_and_key_result_keep_every_comment_in_place() -> None:
    adoption = add_key_result(
        TEXT,
        NewKeyResult("Reach 10000 unique visitors", target=10000, unit="visitors", keywords=("blog",)),
        new_objective="Validate market interest",
    )
    assert (adoption.objective_id, adoption.key_result_id, adoption.new_objective) == ("O3", "KR3.1", True)
    assert _comments(adoption.text) == _comments(TEXT)  # every comment, in the same order
    before = adoption.text.partition(adoption.snippet.split("\n\n")[0])[0]
    assert TEXT.startswith(before.rstrip("\n"))  # everything above the new objective unchanged
    data = tomllib.loads(adoption.text)
    objective = data["okrs"]["objectives"][-1]
    assert objective["title"] == "Validate market interest"
    assert objective["key_results"] == [
        {"id": "KR3.1", "title": "Reach 10000 unique visitors", "target": 10000, "unit": "visitors",
         "keywords": ["blog"]}
    ]  # fmt: skip
    # the comment that headed the Jira tracker still heads it
    jira = adoption.text.index("[trackers.acme-jira]")
    assert adoption.text.rindex("# Jira (Cloud or Data Center)", 0, jira) > adoption.text.index(
        'id = "KR3.1"'
    )


def test_an_existing_objective_gets_the_next_free_id() -> None:
    adoption = add_key_result(TEXT, NewKeyResult("Cut refunds"), objective="O1")
    assert (adoption.key_result_id, adoption.new_objective) == ("KR1.3", False)
    results = tomllib.loads(adoption.text)["okrs"]["objectives"][0]["key_results"]
    assert [kr["id"] for kr in results] == ["KR1.1", "KR1.2", "KR1.3"]
    assert _comments(adoption.text) == _comments(TEXT)
    chosen = add_key_result(TEXT, NewKeyResult("Cut refunds", id="REFUNDS"), objective="O2")
    assert chosen.key_result_id == "REFUNDS"


def test_unknown_objectives_and_used_ids_are_refused() -> None:
    with pytest.raises(UserError, match=r"no objective 'O9'.*O1, O2"):
        add_key_result(TEXT, NewKeyResult("x"), objective="O9")
    with pytest.raises(UserError, match=r"already uses id 'KR1\.1'"):
        add_key_result(TEXT, NewKeyResult("x", id="KR1.1"), objective="O1")


def test_a_config_without_okrs_gets_them() -> None:
    text = '# my store\n[store]\nurl = "sqlite:///b.db"  # here\n'
    adoption = add_key_result(text, NewKeyResult("Faster pages"), new_objective="Be fast")
    assert adoption.text.startswith(text)
    assert tomllib.loads(adoption.text)["okrs"]["objectives"] == [
        {"id": "O1", "title": "Be fast", "key_results": [{"id": "KR1.1", "title": "Faster pages"}]}
    ]
