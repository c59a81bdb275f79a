"""What the rank field holds (`write.rank_value`): a score that moves only with its own milestone, a
position, or a band; and `bridge check`'s suggestion when the config does not say."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.analytics.ranks import rank_milestones
from bridge.config import WriteConfig
from bridge.domain import FieldWrite, Milestone, Ref
from bridge.sync.desired import rank_value
from bridge.sync.plan import within_budget
from tests.analytics.build import milestone


def portfolio(count: int = 12) -> list[Milestone]:
    return [milestone(f"M-{n}", value=float(10 * n + 5), effort=float(n % 4 + 1)) for n in range(count)]


def field_values(milestones: list[Milestone], write: WriteConfig) -> dict[str, object]:
    ranks = rank_milestones(milestones, strategy="wsjf")
    return {r.key: rank_value(r, write) for r in ranks}


def raise_one(milestones: list[Milestone], key: str) -> list[Milestone]:
    return [replace(m, value=10_000.0, effort=1.0) if m.key == key else m for m in milestones]


def test_with_scores_one_milestones_change_rewrites_no_other_rank_field() -> None:
    write = WriteConfig(rank_field="Rank", rank_value="score")
    before = field_values(portfolio(), write)
    after = field_values(raise_one(portfolio(), "M-0"), write)
    assert [key for key in before if before[key] != after[key]] == ["M-0"]
    assert after["M-0"] == 10_000.0 and before["M-3"] == pytest.approx(35 / 4)


def test_with_positions_every_milestone_above_the_raised_one_moves_down() -> None:
    write = WriteConfig(rank_field="Rank")
    assert write.rank_mode == "position"
    before = field_values(portfolio(), write)
    after = field_values(raise_one(portfolio(), "M-0"), write)
    changed = [key for key in before if before[key] != after[key]]
    assert len(changed) == len(before) and after["M-0"] == 1


def test_scores_keep_four_significant_digits() -> None:
    write = WriteConfig(rank_field="Rank", rank_value="score")
    values = field_values([milestone("A", value=8.0, effort=3.0)], write)
    assert values == {"A": 2.667}


def test_bands_name_the_first_cut_off_a_position_is_within() -> None:
    milestones = portfolio(12)
    default = field_values(milestones, WriteConfig(rank_field="Rank", rank_value="band"))
    positions = field_values(milestones, WriteConfig(rank_field="Rank"))
    by_position = {positions[key]: default[key] for key in default}
    assert [by_position[p] for p in (1, 5, 6, 10, 11, 12)] == [
        "top 5",
        "top 5",
        "top 10",
        "top 10",
        "later",
        "later",
    ]
    three = field_values(milestones, WriteConfig(rank_field="Rank", rank_value="band", rank_bands=[3]))
    assert sorted(three.values()).count("top 3") == 3


def test_an_unscored_or_unranked_milestone_holds_nothing() -> None:
    write = WriteConfig(rank_field="Rank", rank_value="score")
    assert field_values([milestone("A", value=None)], write) == {"A": None}
    assert rank_value(None, write) is None


def test_check_suggests_scores_only_when_the_config_does_not_say() -> None:
    suggestion = WriteConfig(rank_field="Rank").rank_value_suggestion()
    assert suggestion is not None and suggestion.startswith('write.rank_value = "score"')
    assert "every milestone below" in suggestion
    assert WriteConfig(rank_field="Rank", rank_value="position").rank_value_suggestion() is None
    assert WriteConfig().rank_value_suggestion() is None, "no rank field, nothing to suggest"


def test_the_write_budget_counts_items_changed_not_writes() -> None:
    refs = [Ref("t", str(n)) for n in range(4)]
    writes = [FieldWrite(ref, name, 1) for ref in refs for name in ("rank", "okr", "mb-x")]
    kept, deferred = within_budget(writes, 2)
    assert {w.item for w in kept} == set(refs[:2]) and len(kept) == 6
    assert {w.item for w in deferred} == set(refs[2:]) and len(deferred) == 6
