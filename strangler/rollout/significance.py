"""Pearson's chi-square test of homogeneity for two samples' category counts, written out.

Used by the outcome drift check: are the new backend's outcomes drawn from the same
distribution as the old one's? No scipy: the p-value is the regularised upper incomplete
gamma function Q(df/2, x/2), by its series below a + 1 and its continued fraction above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MIN_EXPECTED = 5.0  # categories expected fewer times are pooled: the test needs it
RARE = "(rare)"


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    df: int
    p_value: float


def homogeneity(old: Mapping[str, int], new: Mapping[str, int]) -> ChiSquare:
    """The 2 x k test over the categories of both samples (rare ones pooled)."""
    n_old, n_new = sum(old.values()), sum(new.values())
    total = n_old + n_new
    if not n_old or not n_new:
        return ChiSquare(0.0, 0, 1.0)
    cells = _pooled(old, new, n_old, n_new, total)
    if len(cells) < 2:
        return ChiSquare(0.0, 0, 1.0)
    statistic = 0.0
    for a, b in cells:
        column = a + b
        for observed, row in ((a, n_old), (b, n_new)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    df = len(cells) - 1
    return ChiSquare(statistic, df, upper_gamma_q(df / 2, statistic / 2))


def _pooled(
    old: Mapping[str, int], new: Mapping[str, int], n_old: int, n_new: int, total: int
) -> list[tuple[int, int]]:
    smaller = min(n_old, n_new)
    cells: list[tuple[int, int]] = []
    rare = [0, 0]
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, 0), new.get(name, 0)
        if (a + b) * smaller / total < MIN_EXPECTED:
            rare[0] += a
            rare[1] += b
        else:
            cells.append((a, b))
    if sum(rare):
        cells.append((rare[0], rare[1]))
    return cells


def upper_gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the chi-square survival function at 2x for df 2a."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        n = a
        for _ in range(500):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Lentz's continued fraction for Q
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)
