"""One analysis: a window is the difference of two readings; each failing check is named."""

from __future__ import annotations

import pytest

from strangler.proxy.metrics import BOUNDS
from strangler.rollout.analysis import FAILED, PASSED, RESET, WAITING, Series, analyse, window
from strangler.routing.rollout import Rollout

RULES = Rollout(min_requests=100, max_error_rate=0.01, max_latency_ratio=1.5,
                max_outcome_drift=0.02)  # fmt: skip
FAST = BOUNDS.index(0.01)  # answers in 5-10 ms
SLOW = BOUNDS.index(0.05)  # answers in 25-50 ms


def series(n: int, slot: int = FAST, errors: int = 0, outcomes: dict | None = None) -> Series:
    buckets = [0] * (len(BOUNDS) + 1)
    buckets[slot] = n
    return Series(n, errors, 0, tuple(buckets), outcomes or {"200 status=approved": n - errors})


def test_a_faithful_window_passes() -> None:
    result = analyse(series(400), series(200), RULES, 2.0)
    assert result.verdict == PASSED and result.reasons == ()


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (series(400), series(200, errors=10, outcomes={"200 status=approved": 190, "500": 10}),
         "error rate 5.0% above max_error_rate 1.0%"),
        (series(400), series(200, SLOW), "above max_latency_ratio 1.5"),
        (series(400), series(200, outcomes={"200 status=approved": 170, "200 status=pending": 30}),
         "is 85.0% of the new backend's answers of its kind against 100.0%"),
        (series(400, outcomes={"200": 400}), series(200, outcomes={"404 error=not_found": 200}),
         "drift 100.0% above max_outcome_drift 2.0%"),
    ],
    ids=["errors", "latency", "valid-false", "404-for-200"],
)  # fmt: skip
def test_each_failing_check_is_named(old: Series, new: Series, fragment: str) -> None:
    result = analyse(old, new, RULES, 2.0)
    assert result.verdict == FAILED
    assert any(fragment in reason for reason in result.reasons), result.reasons


def test_a_small_difference_in_a_small_window_is_not_significant() -> None:
    new = series(100, outcomes={"200 status=approved": 96, "200 status=pending": 4})
    old = series(100, outcomes={"200 status=approved": 99, "200 status=pending": 1})
    result = analyse(old, new, RULES, 2.0)
    assert result.figures["drift"] == 0.03 and result.figures["drift_p"] > 0.01
    assert result.verdict == PASSED


@pytest.mark.parametrize(("old", "new"), [(400, 20), (20, 400), (0, 0)])
def test_too_few_requests_wait_and_never_pass(old: int, new: int) -> None:
    result = analyse(series(old), series(new), RULES, 2.0)
    assert result.verdict == WAITING
    assert any("below min_requests 100" in reason for reason in result.reasons)


def test_a_p99_of_few_answers_is_not_judged_the_window_grows() -> None:
    result = analyse(series(400), series(50, SLOW), Rollout(min_requests=10), 2.0)
    assert result.verdict == WAITING and "a p99 needs 100 answers" in result.reasons[0]


def test_a_window_is_the_difference_of_two_readings() -> None:
    empty = [0] * len(BOUNDS)
    before = {"new": {"requests": 10, "errors": 1, "connect_failures": 0,
                      "buckets": [10, *empty], "outcomes": {"200": 9, "500": 1}}}  # fmt: skip
    after = {"new": {"requests": 30, "errors": 1, "connect_failures": 2,
                     "buckets": [30, *empty], "outcomes": {"200": 29, "500": 1}}}  # fmt: skip
    got = window(before, after, "new")
    assert got is not None
    assert (got.requests, got.errors, got.connect_failures) == (20, 0, 2)
    assert got.outcomes == {"200": 20}
    assert got.error_rate == pytest.approx(2 / 22)  # failed connects count as errors


def test_counters_that_went_back_reset_the_window() -> None:
    before = {"new": {"requests": 30, "buckets": [30] + [0] * len(BOUNDS)}}
    after = {"new": {"requests": 5, "buckets": [5] + [0] * len(BOUNDS)}}
    assert window(before, after, "new") is None
    assert analyse(None, series(5), RULES, 2.0).verdict == RESET


def test_errors_fail_a_window_at_once_even_too_small_for_a_p99() -> None:
    new = series(40, errors=10, outcomes={"200 status=approved": 30, "500": 10})
    result = analyse(series(400), new, Rollout(min_requests=20), 2.0)
    assert result.verdict == FAILED and "max_error_rate" in result.reasons[0]


SEND, CHECK = "POST /api/verification/send -> ", "POST /api/verification/check -> "


def test_a_different_mix_of_requests_is_no_drift_outcomes_are_compared_per_kind() -> None:
    # Right after a shift the new backend has the sends of the users just moved, and few of
    # their checks yet: the mix differs, each kind's outcomes do not.
    old = series(
        400, outcomes={SEND + "201 status=pending": 200, CHECK + "200 status=approved": 200}
    )
    new = series(
        200, outcomes={SEND + "201 status=pending": 160, CHECK + "200 status=approved": 40}
    )
    assert analyse(old, new, RULES, 2.0).verdict == PASSED


def test_drift_within_one_kind_of_request_fails_and_names_it() -> None:
    old = series(
        400, outcomes={SEND + "201 status=pending": 200, CHECK + "200 status=approved": 200}
    )
    new = series(200, outcomes={SEND + "201 status=pending": 100, CHECK + "200 status=approved": 80,
                                CHECK + "200 status=pending": 20})  # fmt: skip
    result = analyse(old, new, RULES, 2.0)
    assert result.verdict == FAILED
    assert result.figures["drift_outcome"].startswith(CHECK)
    assert result.figures["drift"] == 0.2  # 80 of 100 checks approved against 200 of 200
