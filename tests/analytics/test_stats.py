"""The statistics behind bottleneck verdicts, checked against hand arithmetic and brute force."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from bridge.analytics.stats import (
    average_ranks,
    bootstrap_medians,
    bootstrap_ratio_lower,
    generator,
    mann_whitney_greater,
    median,
    percentile,
    ratio,
)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    # position (5 - 1) * 0.85 = 3.4: 4 + 0.4 * (5 - 4) = 4.4
    assert percentile(values, 85) == pytest.approx(4.4)
    # position 2: the middle value
    assert median(values) == 3.0
    # even count: position (4 - 1) * 0.5 = 1.5 -> 2 + 0.5 * (3 - 2) = 2.5
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_ties_share_their_average_rank() -> None:
    ranks, ties = average_ranks([4.0, 1.0, 4.0, 9.0])
    # sorted 1, 4, 4, 9: the two 4s hold ranks 2 and 3 -> 2.5 each
    assert ranks == [2.5, 1.0, 2.5, 4.0]
    assert sorted(ties) == [1, 1, 2]


def test_mann_whitney_worked_example_with_a_tie() -> None:
    slow = [4.0, 6.0, 7.0, 8.0, 9.0]
    fast = [1.0, 2.0, 3.0, 4.0, 5.0]
    # combined ranks: 1 2 3 | 4 and 4 share 4.5 | 5 -> 6 | 6 7 8 9 -> 7 8 9 10
    # R(slow) = 4.5 + 7 + 8 + 9 + 10 = 38.5; U = 38.5 - 5 * 6 / 2 = 23.5; mean U = 5 * 5 / 2 = 12.5
    # tie correction: one pair, 2^3 - 2 = 6, over n(n - 1) = 90
    # variance = 25 / 12 * (11 - 6 / 90) = 22.7778; z = (23.5 - 12.5 - 0.5) / sqrt(22.7778) = 2.2000
    z = 10.5 / math.sqrt(25 / 12 * (11 - 6 / 90))
    assert z == pytest.approx(2.2, abs=1e-3)
    expected = 0.5 * math.erfc(z / math.sqrt(2))  # 1 - Phi(2.2) = 0.0139
    assert mann_whitney_greater(slow, fast) == pytest.approx(expected)
    assert expected == pytest.approx(0.0139, abs=1e-4)
    # the other way round there is no evidence of being slower
    assert mann_whitney_greater(fast, slow) > 0.9


def test_mann_whitney_with_all_values_equal_is_no_evidence() -> None:
    assert mann_whitney_greater([2.0] * 6, [2.0] * 6) == 1.0


@pytest.mark.parametrize("values", [[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0], [2.0, 7.0, 1.0, 8.0, 2.0, 8.0]])
def test_constant_time_bootstrap_median_matches_resampling(values: list[float]) -> None:
    """The order-statistic draw has the same distribution as the median of n values drawn with
    replacement: compare both over many draws, value by value."""
    ordered = sorted(values)
    slow = random.Random(2)
    draws = 40_000
    quick = bootstrap_medians(ordered, draws, generator(random.Random(1))).tolist()
    brute = [statistics.median(slow.choices(ordered, k=len(ordered))) for _ in range(draws)]
    for level in sorted(set(brute)):
        share_quick = sum(1 for v in quick if v <= level) / draws
        share_brute = sum(1 for v in brute if v <= level) / draws
        assert share_quick == pytest.approx(share_brute, abs=0.015), level


def test_bootstrap_medians_are_seeded() -> None:
    ordered = [1.0, 2.0, 4.0, 8.0]
    first = bootstrap_medians(ordered, 50, generator(random.Random(3))).tolist()
    assert first == bootstrap_medians(ordered, 50, generator(random.Random(3))).tolist()
    assert first != bootstrap_medians(ordered, 50, generator(random.Random(4))).tolist()
    assert bootstrap_medians([5.0], 3, generator(random.Random(3))).tolist() == [5.0, 5.0, 5.0]


def test_bootstrap_bound_is_above_one_only_when_reliably_slower() -> None:
    rng = random.Random(7)
    # disjoint samples: every resample's median ratio is at least 10 / 3
    assert bootstrap_ratio_lower([10.0, 11, 12, 14, 20], [1.0, 2, 2, 3, 3], 0.95, 1000, rng) >= 10 / 3
    same = sorted([1.0, 2, 3, 5, 8, 13, 21])
    assert bootstrap_ratio_lower(same, same, 0.95, 1000, rng) < 1.0


def test_ratio_of_zero_durations() -> None:
    assert ratio(0.0, 0.0) == 1.0
    assert ratio(2.0, 0.0) == math.inf
    assert ratio(3.0, 2.0) == 1.5
