"""Per-step accounting of a migration under load: broken flows, shares, flows across a shift."""

from __future__ import annotations

import argparse

import pytest

from strangler.loadtests.flows import Exchange, Flow
from strangler.loadtests.migration import parse_steps
from strangler.loadtests.migration_report import StepWindow, migration_figures, passed, render

STEPS = [
    StepWindow(0, 0, started=0.0, applied=0.0, ended=10.0),
    StepWindow(1, 50, started=10.0, applied=10.5, ended=20.0),
]


def flow(
    step: int,
    started: float,
    send_backend: str | None = "monolith",
    check_backend: str | None = None,
    *,
    checked: float | None = None,
    send_status: int = 201,
    approved: bool = True,
) -> Flow:
    send = Exchange(send_status, send_backend, 0.010)
    check = None
    if send_status == 201:
        check = Exchange(200, check_backend or send_backend, 0.020)
    if check is not None and checked is None:
        checked = started + 0.05
    return Flow("+1555", str(step), started, checked, send, check, approved and send_status == 201)


def figures(flows: list[Flow]):
    return migration_figures(STEPS, flows, "monolith", "verification")


def test_flows_are_counted_in_the_step_they_started_in() -> None:
    first, second = figures([flow(0, 1.0), flow(0, 2.0), flow(1, 11.0, "verification")])
    assert (first.flows, first.completed, second.flows, second.completed) == (2, 2, 1, 1)


def test_a_started_flow_whose_check_did_not_approve_is_broken() -> None:
    first, _ = figures([flow(0, 1.0), flow(0, 2.0, approved=False)])
    assert (first.completed, first.broken, first.send_errors) == (1, 1, 0)
    assert not passed([first])


def test_a_refused_send_is_a_send_error_and_fails_the_run() -> None:
    first, _ = figures([flow(0, 1.0, send_status=502)])
    assert (first.broken, first.send_errors) == (0, 1)
    assert not passed([first])


def test_a_clean_run_passes_and_an_empty_one_does_not() -> None:
    assert passed(figures([flow(0, 1.0), flow(1, 11.0)]))
    assert not passed(figures([]))


def test_shares_count_only_sends_after_the_proxy_applied_the_step() -> None:
    flows = [
        flow(1, 10.2, "monolith"),  # before the new table was live: not counted
        flow(1, 11.0, "monolith"),
        flow(1, 12.0, "verification"),
        flow(1, 13.0, "verification"),
        flow(1, 14.0, "verification"),
    ]
    second = figures(flows)[1]
    got = {s.backend: (s.requests, s.observed_pct, s.configured_pct) for s in second.shares}
    assert got == {"monolith": (1, 25.0, 50.0), "verification": (3, 75.0, 50.0)}


def test_flows_checked_once_the_next_table_was_live_are_across_a_shift() -> None:
    # Step 2's table was live at 10.5: checks from then on were routed by it.
    flows = [flow(0, 9.0, checked=10.4), flow(0, 9.5, checked=10.5), flow(0, 9.8, checked=12.0)]
    assert figures(flows)[0].across_shift == 2


def test_a_check_answered_by_another_backend_than_its_send_is_crossed() -> None:
    flows = [flow(1, 11.0, "monolith", "verification", approved=False), flow(1, 12.0)]
    second = figures(flows)[1]
    assert (second.crossed, second.broken) == (1, 1)


def test_latency_covers_both_requests_of_every_flow() -> None:
    first = figures([flow(0, 1.0), flow(0, 2.0)])[0]
    assert first.latency.count == 4
    assert first.latency.p50 == pytest.approx(10.0)
    assert first.latency.p99 == pytest.approx(20.0)


def test_render_shows_each_step_its_shares_and_the_verdict() -> None:
    text = render(figures([flow(0, 1.0), flow(1, 11.0, "verification")]))
    assert "1: 0%" in text and "2: 50%" in text
    assert "verification" in text
    assert text.endswith(
        "flows started 2, completed 2, broken 0, unfinished 0, send errors 0: PASS"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0,10,50,100,0", [0, 10, 50, 100, 0]), ("100", [100]), (" 5, 25", [5, 25])],
)
def test_parse_steps(text: str, expected: list[int]) -> None:
    assert parse_steps(text) == expected


@pytest.mark.parametrize("text", ["", "0,x", "0,101", "-1", "10.5"])
def test_parse_steps_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_steps(text)


def test_a_check_that_failed_is_unfinished_and_fails_the_run() -> None:
    unanswered = Flow(
        "+1555", "0", 1.0, 1.1, Exchange(201, "monolith", 0.01), Exchange(502, None, 0.01), False
    )
    (first,) = migration_figures(STEPS[:1], [unanswered], "monolith", "verification")
    assert (first.broken, first.unfinished) == (0, 1)
    assert not passed([first])
