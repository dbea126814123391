"""A fault rehearsal's figures: broken flows, client-visible errors, and time to recover."""

from __future__ import annotations

import argparse

import pytest

from strangler.loadtests.fault_report import fault_figures, passed, recovery_seconds, render
from strangler.loadtests.faults import FaultEvent, PlaneCounters
from strangler.loadtests.flows import Exchange, Flow
from strangler.loadtests.migration import parse_faults


def ex(started: float, seconds: float = 0.01, status: int = 200) -> Exchange:
    return Exchange(status, "monolith", seconds, None, started)


def flow(started: float, check_status: int = 200, approved: bool = True) -> Flow:
    send, check = ex(started, status=201), ex(started + 0.1, status=check_status)
    return Flow("+1555", "0", started, started + 0.1, send, check, approved)


EVENTS = [FaultEvent("redis-pause", 10.0, 10.2), FaultEvent("redis-pause", 20.0, 20.2)]


def test_without_an_affected_request_recovery_is_immediate() -> None:
    assert recovery_seconds(EVENTS, [ex(10.5), ex(21.0)]) == 0.0


def test_recovery_ends_with_the_last_failed_or_slow_request_after_an_injection() -> None:
    exchanges = [
        ex(9.99, seconds=0.3),  # in flight at the injection, slowed down to its end
        ex(10.1, status=503),  # failed: ends at 10.11
        ex(10.2, seconds=0.9),  # slow: ends at 11.1
        ex(12.0),  # answered normally
        ex(20.5, status=0, seconds=0.5),  # the second injection: 1.0 s
    ]
    assert recovery_seconds(EVENTS, exchanges) == pytest.approx(1.1)
    assert recovery_seconds(EVENTS, exchanges, slow=1.0) == pytest.approx(1.0)


def test_a_request_before_the_first_injection_is_not_the_fault_s() -> None:
    assert recovery_seconds(EVENTS, [ex(5.0, status=502)]) == 0.0
    assert recovery_seconds([], [ex(5.0, status=502)]) is None


def test_a_request_in_flight_at_an_injection_belongs_to_it_not_to_the_one_before() -> None:
    in_flight = ex(19.99, seconds=0.03, status=502)  # written just before the kill at 20.0
    assert recovery_seconds(EVENTS, [in_flight]) == pytest.approx(0.02)


def test_broken_unfinished_and_errors_are_told_apart() -> None:
    flows = [
        flow(1.0),
        flow(2.0, check_status=404, approved=False),  # misrouted: broken
        flow(3.0, check_status=502, approved=False),  # no answer: unfinished
    ]
    figures = fault_figures("service-kill", EVENTS, flows, PlaneCounters(misses=2))
    assert (figures.flows, figures.broken, figures.unfinished, figures.errors) == (3, 1, 1, 1)
    assert not passed([figures])
    assert passed([fault_figures("none", [], flows[::2], PlaneCounters())])


def test_a_fault_that_could_not_be_injected_fails_the_rehearsal() -> None:
    figures = fault_figures("worker-kill", EVENTS, [flow(1.0)], PlaneCounters(), problems=["x"])
    assert not passed([figures])
    assert "fault not as planned: x" in render([figures])


def test_the_table_shows_what_the_data_plane_does_not_report_as_a_dash() -> None:
    figures = fault_figures("redis-pause", EVENTS, [flow(1.0)], PlaneCounters(failed_recalls=7))
    row = next(line for line in render([figures]).splitlines() if line.startswith("redis-"))
    assert row.split() == ["redis-pause", "2", "1", "0", "0", "0", "-", "-", "7", "-", "0.00"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("redis-pause", ["redis-pause"]),
        ("redis-pause, worker-kill", ["redis-pause", "worker-kill"]),
        ("all", ["none", "redis-pause", "redis-restart", "service-kill", "worker-kill", "reload"]),
    ],
)
def test_faults_are_named_one_by_one_or_all(text: str, names: list[str]) -> None:
    assert parse_faults(text) == names


@pytest.mark.parametrize("text", ["", "redis-stop", "redis-pause,nope"])
def test_an_unknown_fault_is_refused_with_the_known_ones(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="known: none, redis-pause"):
        parse_faults(text)
