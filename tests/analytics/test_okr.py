"""OKR links, weights, suggestions and key-result progress."""

from __future__ import annotations

import pytest

from bridge.analytics.okr import (
    LinkedMilestone,
    catalogue,
    effective_links,
    metric_progress,
    milestone_progress,
    okr_tree,
    okr_weights,
    rule_links,
    suggest,
    terms,
)
from bridge.config import OkrRule, OkrsConfig
from bridge.domain import KeyResult, KeyResultLink, LinkOrigin, Objective, Ref
from bridge.mapping import Facts
from tests.analytics.build import DONE, SOURCE, milestone

CFG = "config"


def okrs_config() -> OkrsConfig:
    return OkrsConfig.model_validate(
        {
            "objectives": [
                {
                    "id": "O1",
                    "title": "Make checkout effortless",
                    "weight": 2.0,
                    "key_results": [
                        {
                            "id": "KR1.1",
                            "title": "Raise checkout conversion from 61% to 70%",
                            "start": 61.0,
                            "target": 70.0,
                            "current": 64.5,
                            "keywords": ["payment", "cart"],
                        },
                        {"id": "KR1.2", "title": "Cut failed card payments by half", "weight": 3.0},
                    ],
                },
                {
                    "id": "O2",
                    "title": "Ship a mobile experience people love",
                    "key_results": [{"id": "KR2.1", "title": "App store rating of 4.6 or better"}],
                },
            ]
        }
    )


def kr(ident: str) -> Ref:
    return Ref(CFG, ident)


def m(ident: str) -> Ref:
    return Ref(SOURCE, ident)


def test_catalogue_merges_config_and_store() -> None:
    stored = KeyResult(SOURCE, "KR-9", "OBJ-1", "Halve support tickets", weight=2.0)
    found = catalogue([Objective(SOURCE, "OBJ-1", "Support")], [stored], okrs_config())
    assert set(found.key_results) == {kr("KR1.1"), kr("KR1.2"), kr("KR2.1"), Ref(SOURCE, "KR-9")}
    assert found.objective_of(stored) == Ref(SOURCE, "OBJ-1")
    assert found.keywords[kr("KR1.1")] == ("payment", "cart")


def test_confirmed_beats_tracker_beats_rule_and_suggestions_do_not_count() -> None:
    links = effective_links(
        [
            KeyResultLink(m("A"), kr("KR1.1"), LinkOrigin.RULE),
            KeyResultLink(m("A"), kr("KR1.1"), LinkOrigin.TRACKER),
            KeyResultLink(m("A"), kr("KR1.2"), LinkOrigin.CONFIRMED),
            KeyResultLink(m("A"), kr("KR1.2"), LinkOrigin.RULE),
            KeyResultLink(m("B"), kr("KR2.1"), LinkOrigin.SUGGESTED, 0.4),
        ]
    )
    assert links == {m("A"): {kr("KR1.1"): LinkOrigin.TRACKER, kr("KR1.2"): LinkOrigin.CONFIRMED}}


def test_okr_weight_worked_example() -> None:
    okrs = catalogue([], [], okrs_config())
    links = {
        m("A"): {kr("KR1.1"): LinkOrigin.RULE, kr("KR2.1"): LinkOrigin.RULE},
        m("B"): {kr("KR1.2"): LinkOrigin.RULE},
    }
    weights = okr_weights(links, okrs)
    # objectives weigh 2 (O1) and 1 (O2) of 3; in O1, KR1.1 weighs 1 and KR1.2 weighs 3 of 4
    # A: KR1.1 = 1/4 * 2/3 = 0.1667, plus KR2.1 = 1/1 * 1/3 = 0.3333 -> 0.5
    # B: KR1.2 = 3/4 * 2/3 = 0.5
    assert weights[m("A")].score == pytest.approx(0.5)
    assert weights[m("B")].score == pytest.approx(0.5)
    assert weights[m("A")].explanation.startswith("KR1.1 (1 of 4 in objective O1, weighing 2 of 3) = 0.167")


def test_terms_fold_case_drop_stop_words_and_trim_endings() -> None:
    assert terms("Raise the Payments for checking-out carts") == ["payment", "check", "cart"]


def test_suggestions_rank_the_key_result_the_title_speaks_of() -> None:
    okrs = catalogue([], [], okrs_config())
    asked = [
        milestone("PAY-1", title="One-click checkout to lift conversion"),
        milestone("PAY-2", title="Retry failed card payments"),
        milestone("MOB-1", title="Faster app start and store listing refresh"),
        milestone("OPS-1", title="Rotate database credentials"),
    ]
    found = suggest(asked, okrs, min_score=0.1)
    assert found[m("PAY-1")][0].key_result == kr("KR1.1")
    assert found[m("PAY-1")][0].shared_terms == ("checkout", "conversion")
    assert found[m("PAY-2")][0].key_result == kr("KR1.2")
    assert found[m("MOB-1")][0].key_result == kr("KR2.1")
    assert m("OPS-1") not in found  # shares no word with any key result
    for suggestions in found.values():
        assert all(0.1 <= s.score <= 1.0 for s in suggestions)
        assert [s.score for s in suggestions] == sorted((s.score for s in suggestions), reverse=True)
    assert suggest(asked, okrs, min_score=0.99) == {}


def test_identical_text_scores_one() -> None:
    okrs = catalogue(
        [],
        [],
        OkrsConfig.model_validate(
            {
                "objectives": [
                    {"id": "O", "title": "o", "key_results": [{"id": "K", "title": "Mobile onboarding"}]}
                ]
            }
        ),
    )
    found = suggest([milestone("X", title="mobile onboarding")], okrs, min_score=0.5)
    assert found[m("X")][0].score == pytest.approx(1.0)


def test_metric_progress_worked_example() -> None:
    okrs = catalogue([], [], okrs_config())
    # (64.5 - 61) / (70 - 61) = 3.5 / 9
    assert metric_progress(okrs.key_results[kr("KR1.1")]) == pytest.approx(3.5 / 9)
    assert metric_progress(KeyResult(CFG, "K", "O", "t", target=10.0, current=12.0)) == 1.0
    assert metric_progress(okrs.key_results[kr("KR1.2")]) is None


def test_milestone_progress_weighs_unvalued_milestones_at_the_mean() -> None:
    linked = [
        LinkedMilestone(m("A"), "A", "a", LinkOrigin.RULE, True, 30.0),
        LinkedMilestone(m("B"), "B", "b", LinkOrigin.RULE, False, 10.0),
        LinkedMilestone(m("C"), "C", "c", LinkOrigin.RULE, False, None),
    ]
    progress, text = milestone_progress(linked)
    # known values 30 and 10 -> C counts as their mean, 20; done 30 of 30 + 10 + 20 = 60 -> 0.5
    assert progress == pytest.approx(0.5)
    assert (
        text
        == "value 30 of 60 done (1 of 3 linked milestones); 1 without a value counted at the mean value 20"
    )
    unvalued = [dataclass_copy(x, value=None) for x in linked]
    assert milestone_progress(unvalued)[0] == pytest.approx(1 / 3)


def dataclass_copy(item: LinkedMilestone, **changes: object) -> LinkedMilestone:
    import dataclasses

    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


def test_okr_tree_rolls_progress_up() -> None:
    okrs = catalogue([], [], okrs_config())
    milestones = {
        m("A"): milestone("A", value=30.0, category=DONE),
        m("B"): milestone("B", value=10.0),
    }
    links = {m("A"): {kr("KR1.2"): LinkOrigin.RULE}, m("B"): {kr("KR1.2"): LinkOrigin.CONFIRMED}}
    tree = okr_tree(okrs, links, milestones)
    o1 = next(o for o in tree if o.objective == Ref(CFG, "O1"))
    by_kr = {k.key_result: k for k in o1.key_results}
    assert by_kr[kr("KR1.1")].basis == "metric"
    assert by_kr[kr("KR1.2")].basis == "milestones"
    assert by_kr[kr("KR1.2")].progress == pytest.approx(30 / 40)
    # O1: weighted by KR weight, (1 * 3.5/9 + 3 * 0.75) / 4
    assert o1.progress == pytest.approx((3.5 / 9 + 3 * 0.75) / 4)
    o2 = next(o for o in tree if o.objective == Ref(CFG, "O2"))
    assert o2.progress is None and o2.key_results[0].basis == "none"


def test_rules_link_by_label_epic_project_or_section() -> None:
    rules = [
        OkrRule(label="okr-checkout", key_result="KR1.1"),
        OkrRule(project="MOB", section="Launch", key_result="KR2.1"),
        OkrRule(epic="PAY-100", key_result="acme-jira:10500"),
    ]
    facts = Facts()
    facts.add("label", "OKR-Checkout", "ui")
    facts.add("epic", "PAY-100")
    facts.add("project", "MOB")  # no section: the second rule needs both
    found = rule_links(m("PAY-7"), facts, rules)
    assert [(link.key_result, link.origin) for link in found] == [
        (kr("KR1.1"), LinkOrigin.RULE),
        (Ref("acme-jira", "10500"), LinkOrigin.RULE),
    ]
