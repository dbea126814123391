"""The circuit breaker's state machine, driven by a hand-turned clock."""

from __future__ import annotations

import pytest

from strangler.routing.circuit import Circuit, Circuits, State
from tests.unit.fake_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=100.0)


def test_consecutive_failures_open_the_circuit(clock):
    circuit = Circuit(threshold=3, cooldown=1.0, clock=clock)
    assert circuit.record_failure() is False
    assert circuit.record_failure() is False
    assert circuit.available
    assert circuit.record_failure() is True
    assert circuit.state is State.OPEN and not circuit.available


def test_a_success_resets_the_count(clock):
    circuit = Circuit(threshold=2, clock=clock)
    circuit.record_failure()
    circuit.record_success()
    circuit.record_failure()
    assert circuit.state is State.CLOSED


def test_probe_only_after_the_cooldown_and_only_once(clock):
    circuit = Circuit(threshold=1, cooldown=1.0, clock=clock)
    circuit.record_failure()
    clock.now += 0.5
    assert circuit.begin_probe() is False
    clock.now += 0.5
    assert circuit.begin_probe() is True
    assert circuit.state is State.HALF_OPEN and not circuit.available
    assert circuit.begin_probe() is False  # one probe in flight


def test_a_healthy_probe_closes_and_a_failed_one_reopens(clock):
    circuit = Circuit(threshold=1, cooldown=1.0, clock=clock)
    circuit.record_failure()
    clock.now += 1
    circuit.begin_probe()
    circuit.probe_result(False)
    assert circuit.state is State.OPEN
    assert circuit.begin_probe() is False  # the cooldown starts again
    clock.now += 1
    assert circuit.begin_probe() is True
    circuit.probe_result(True)
    assert circuit.state is State.CLOSED and circuit.available and circuit.failures == 0
    assert circuit.opened_count == 2


def test_failures_while_open_do_not_count_again(clock):
    circuit = Circuit(threshold=1, clock=clock)
    assert circuit.record_failure() is True
    assert circuit.record_failure() is False
    assert circuit.opened_count == 1


def test_threshold_must_be_positive():
    with pytest.raises(ValueError, match="threshold"):
        Circuit(threshold=0)


def test_circuits_follow_the_configured_backends(clock):
    circuits = Circuits(threshold=1, cooldown=1.0, clock=clock)
    circuits.sync(["monolith", "verification"])
    circuits["verification"].record_failure()
    circuits.sync(["monolith", "verification", "billing"])
    assert not circuits.available("verification")  # kept across a reload
    assert circuits.available("billing")
    clock.now += 1
    assert circuits.due_probes() == ["verification"]
    circuits.sync(["monolith"])
    assert set(circuits.snapshot()) == {"monolith"}
