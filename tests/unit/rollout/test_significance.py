"""The chi-square test written out: p-values match the textbook table, rare outcomes pooled."""

from __future__ import annotations

import pytest

from strangler.rollout.significance import homogeneity, upper_gamma_q


@pytest.mark.parametrize(
    ("df", "critical", "p"),
    [(1, 3.841, 0.05), (1, 6.635, 0.01), (2, 5.991, 0.05), (5, 11.070, 0.05), (10, 23.209, 0.01),
     (30, 50.892, 0.01)],
)  # fmt: skip
def test_p_values_at_the_table_s_critical_values(df: int, critical: float, p: float) -> None:
    assert upper_gamma_q(df / 2, critical / 2) == pytest.approx(p, rel=2e-3)


def test_a_two_by_two_table_as_computed_by_hand() -> None:
    # 90/10 against 80/20: chi-square 3.92 with one degree of freedom, p 0.048
    test = homogeneity({"ok": 90, "bad": 10}, {"ok": 80, "bad": 20})
    assert (test.df, round(test.statistic, 2), round(test.p_value, 3)) == (1, 3.92, 0.048)


def test_the_same_shares_are_not_significant() -> None:
    assert homogeneity({"a": 500, "b": 500}, {"a": 50, "b": 50}).p_value == pytest.approx(1.0)


def test_rare_outcomes_are_pooled_so_the_test_stays_valid() -> None:
    test = homogeneity({"a": 500, "b": 500, "x": 1, "y": 1}, {"a": 50, "b": 50, "z": 1})
    assert test.df == 2  # a, b and the pooled rare ones


def test_an_empty_side_says_nothing() -> None:
    assert homogeneity({}, {"a": 5}).p_value == 1.0
