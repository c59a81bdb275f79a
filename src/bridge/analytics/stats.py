"""Small statistics: percentiles, a rank test and a bootstrap interval of medians.

The bootstrap and the Monte Carlo forecasts draw hundreds of thousands of random numbers an analysis;
they draw them with numpy in bulk, from a generator seeded by the caller's `random.Random`, so the same
seed gives the same figures (with the same numpy release: its streams may change between releases).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.random  # loaded with this module, not lazily by the first analysis (0.07 s of CPU)
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The `pct`th percentile of sorted values, interpolating linearly between closest ranks.

    Position `(n - 1) * pct / 100` in the sorted values: the usual spreadsheet and numpy default.
    """
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def median(ordered: Sequence[float]) -> float:
    return percentile(ordered, 50.0)


def average_ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Ranks (1-based, ties share their average rank) in input order, and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        shared = (i + j + 2) / 2.0
        for k in range(i, j + 1):
            ranks[order[k]] = shared
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def mann_whitney_greater(sample: Sequence[float], other: Sequence[float]) -> float:
    """One-sided p-value that `sample` tends to be larger than `other` (Mann-Whitney U).

    Normal approximation with tie correction and a continuity correction of one half.
    """
    n1, n2 = len(sample), len(other)
    if n1 == 0 or n2 == 0:
        return 1.0
    ranks, ties = average_ranks([*sample, *other])
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = sum(t * t * t - t for t in ties) / (n * (n - 1))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal: no evidence either way
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def generator(rng: random.Random) -> np.random.Generator:
    """A numpy generator seeded from `rng`: the same seeded `rng` gives the same stream."""
    return np.random.default_rng(rng.getrandbits(128))


def bootstrap_medians(ordered: Sequence[float], runs: int, draws: np.random.Generator) -> Floats:
    """The medians of `runs` bootstrap resamples of sorted values, each drawn in constant time.

    A resample's k-th smallest value is the empirical quantile at the k-th smallest of n uniform draws,
    which follows Beta(k, n - k + 1); the next one up is the smallest of the n - k draws above it.
    Drawing those two order statistics gives exactly the resample median without resampling n values.
    """
    values = np.asarray(ordered, dtype=np.float64)
    n = len(values)
    if n == 1:
        return np.full(runs, values[0])
    k = (n + 1) // 2
    u = draws.beta(k, n - k + 1, size=runs)
    low = values[np.minimum((u * n).astype(np.int64), n - 1)]
    if n % 2:
        return low
    above = 1.0 - draws.random(runs) ** (1.0 / (n - k))
    u_next = u + (1.0 - u) * above
    high = values[np.minimum((u_next * n).astype(np.int64), n - 1)]
    result: Floats = (low + high) / 2.0
    return result


def ratio(slow: float, fast: float) -> float:
    """`slow / fast` for durations; zero over zero is no difference, anything over zero is unbounded."""
    if fast > 0:
        return slow / fast
    return 1.0 if slow <= 0 else math.inf


def bootstrap_ratio_lower(
    sample: Sequence[float], other: Sequence[float], confidence: float, runs: int, rng: random.Random
) -> float:
    """Lower bound of a one-sided percentile-bootstrap interval for median(sample) / median(other).

    Both inputs must be sorted.
    """
    draws = generator(rng)
    slow = bootstrap_medians(sample, runs, draws)
    fast = bootstrap_medians(other, runs, draws)
    # `ratio` element-wise: zero over zero is no difference, anything else over zero is unbounded
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(fast > 0, slow / np.where(fast > 0, fast, 1.0), np.where(slow <= 0, 1.0, math.inf))
    ratios.sort()
    return float(ratios[min(int((1.0 - confidence) * runs), runs - 1)])


def adjusted_rand_index(truth: Sequence[object], found: Sequence[object]) -> float:
    """How well two labellings of the same items agree, corrected for chance (Hubert and Arabie 1985):
    1 for the same partition, about 0 for a random one. Labels are compared only for equality."""
    if len(truth) != len(found):
        raise ValueError("both labellings must label the same items")
    pairs: dict[tuple[object, object], int] = {}
    rows: dict[object, int] = {}
    columns: dict[object, int] = {}
    for a, b in zip(truth, found, strict=True):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
        rows[a] = rows.get(a, 0) + 1
        columns[b] = columns.get(b, 0) + 1

    def together(counts: Iterable[int]) -> float:
        return float(sum(n * (n - 1) // 2 for n in counts))

    index = together(pairs.values())
    row_sum, column_sum = together(rows.values()), together(columns.values())
    total = len(truth) * (len(truth) - 1) / 2
    if total == 0:
        return 1.0
    expected = row_sum * column_sum / total
    best = (row_sum + column_sum) / 2
    if best == expected:
        return 1.0
    return (index - expected) / (best - expected)
