"""Percentiles, shares, ratios and locust CSV totals."""

from __future__ import annotations

import math

import pytest

from strangler.loadtests.stats import (
    LatencySummary,
    format_table,
    locust_totals,
    percentile,
    ratio,
    shares,
    within_failure_ratio,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([4.0, 3.0, 2.0, 1.0], 50, 2.0),  # order of arrival does not matter
        ([1.0, 2.0, 3.0, 4.0], 75, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        (list(map(float, range(1, 101))), 99, 99.0),
        (list(map(float, range(1, 101))), 95, 95.0),
        (list(map(float, range(1, 1001))), 99, 990.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("q", [0, -1, 101])
def test_percentile_refuses_a_rank_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile([1.0], q)


def test_latency_summary_reports_milliseconds() -> None:
    summary = LatencySummary.of([0.001 * n for n in range(1, 101)])
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.0)
    assert summary.p95 == pytest.approx(95.0)
    assert summary.p99 == pytest.approx(99.0)


def test_shares_compare_served_requests_with_the_configured_split() -> None:
    served = ["monolith"] * 45 + ["verification"] * 55
    got = {s.backend: s for s in shares(served, {"monolith": 50, "verification": 50})}
    assert got["monolith"].requests == 45
    assert got["monolith"].observed_pct == pytest.approx(45.0)
    assert got["monolith"].deviation == pytest.approx(-5.0)
    assert got["verification"].observed_pct == pytest.approx(55.0)
    assert got["verification"].configured_pct == 50


def test_shares_list_a_configured_backend_that_served_nothing() -> None:
    got = shares(["monolith"] * 3, {"monolith": 90, "verification": 10})
    assert [(s.backend, s.requests, s.observed_pct) for s in got] == [
        ("monolith", 3, 100.0),
        ("verification", 0, 0.0),
    ]


def test_shares_list_a_backend_that_served_without_being_configured() -> None:
    got = shares(["monolith", "stray"], {"monolith": 100})
    assert [(s.backend, s.requests, s.configured_pct) for s in got] == [
        ("monolith", 1, 100.0),
        ("stray", 1, 0.0),
    ]


def test_shares_of_no_requests_are_zero_not_a_division_error() -> None:
    assert [s.observed_pct for s in shares([], {"monolith": 100})] == [0.0]


@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [(50.0, 100.0, 0.5), (3.0, 2.0, 1.5), (1.0, 0.0, math.nan), (1.0, math.nan, math.nan)],
)
def test_ratio(value: float, baseline: float, expected: float) -> None:
    got = ratio(value, baseline)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


LOCUST_CSV = """Type,Name,Request Count,Failure Count,Median Response Time
GET,/api/threads,90,1,4
POST,/api/verification/send,10,2,8
,Aggregated,100,3,5
"""


def test_locust_totals_come_from_the_aggregated_row() -> None:
    totals = locust_totals(LOCUST_CSV)
    assert (totals.requests, totals.failures) == (100, 3)
    assert totals.failure_ratio == pytest.approx(0.03)


def test_locust_totals_without_requests_have_no_failure_ratio() -> None:
    totals = locust_totals("Type,Name,Request Count,Failure Count\n,Aggregated,0,0\n")
    assert totals.failure_ratio == 0.0


def test_locust_totals_need_the_aggregated_row() -> None:
    with pytest.raises(ValueError, match="Aggregated"):
        locust_totals("Type,Name,Request Count,Failure Count\nGET,/x,1,0\n")


def test_format_table_aligns_columns_and_shows_missing_figures_as_a_dash() -> None:
    table = format_table(("name", "n", "p50"), [("a", 1, 2.345), ("longer", 100, math.nan)])
    assert table.splitlines() == [
        "name      n  p50",
        "a         1  2.3",
        "longer  100    -",
    ]


@pytest.mark.parametrize(
    ("requests", "fail_ratio", "limit", "passes"),
    [
        (100, 0.0, 0.01, True),
        (100, 0.01, 0.01, True),
        (100, 0.05, 0.01, False),
        (0, 0.0, 0.01, False),  # nothing measured is no pass
    ],
)
def test_the_failure_ratio_verdict(
    requests: int, fail_ratio: float, limit: float, passes: bool
) -> None:
    assert within_failure_ratio(requests, fail_ratio, limit) is passes
