"""When a key result counts as met, and how its figures read."""

from __future__ import annotations

import pytest

from bridge.announce.key_results import figure, is_met
from bridge.domain import KeyResult


@pytest.mark.parametrize(
    ("start", "target", "current", "met"),
    [
        (10.0, 40.0, 39.9, False),
        (10.0, 40.0, 40.0, True),
        (10.0, 40.0, 55.0, True),
        (5.0, 2.0, 2.5, False),  # lower is better: churn from 5 % to 2 %
        (5.0, 2.0, 2.0, True),
        (5.0, 2.0, 1.0, True),
    ],
)
def test_a_target_is_met_in_the_direction_from_start_to_target(
    start: float, target: float, current: float, met: bool
) -> None:
    assert is_met(KeyResult("config", "KR1", "O1", "x", target=target, current=current, start=start)) is met


def test_a_key_result_without_a_target_or_a_current_value_is_never_met() -> None:
    assert is_met(KeyResult("config", "KR1", "O1", "x", target=40.0)) is None
    assert is_met(KeyResult("config", "KR1", "O1", "x", current=40.0)) is None


def test_figures_read_with_their_unit() -> None:
    assert figure(40.0, "%") == "40%"
    assert figure(1200.0, "customers") == "1,200 customers"
    assert figure(4.65, None) == "4.65"
    assert figure(0.4, "percentage") == "40%"
