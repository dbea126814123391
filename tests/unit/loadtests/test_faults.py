"""The fault injector: every fault it starts it ends, on its schedule, and says what failed."""

from __future__ import annotations

import threading

from strangler.loadtests.faults import FAULTS, Fault, Injector, PlaneCounters, Schedule
from tests.integration.polling import wait_for


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def inject(self, running: object, plane: object) -> None:
        with self.lock:
            self.calls.append("inject")

    def restore(self, running: object, plane: object) -> None:
        with self.lock:
            self.calls.append("restore")


def test_each_injection_is_ended_before_the_next_and_stop_ends_the_one_under_way() -> None:
    recorder = Recorder()
    fault = Fault("test", Schedule(0, 0.01, 0), recorder.inject, recorder.restore, "test")
    injector = Injector(fault, Schedule(0.0, 0.01, 30.0), None, None)  # type: ignore[arg-type]
    injector.start()
    wait_for(lambda: recorder.calls == ["inject"], what="the first injection")
    events = injector.stop()  # the 30 s fault is cut short, and ended
    assert recorder.calls == ["inject", "restore"]
    assert len(events) == 1 and events[0].restored >= events[0].injected


def test_a_fault_that_cannot_be_injected_is_reported_and_stops_the_schedule() -> None:
    def refuse(running: object, plane: object) -> None:
        raise ProcessLookupError("no such process")

    recorder = Recorder()
    fault = Fault("test", Schedule(0, 0.01, 0), refuse, recorder.restore, "test")
    injector = Injector(fault, fault.schedule, None, None)  # type: ignore[arg-type]
    injector.start()
    wait_for(lambda: injector.errors, what="the refused injection")
    assert injector.stop() == []
    assert "no such process" in injector.errors[0]


def test_no_fault_injects_nothing() -> None:
    injector = Injector(FAULTS["none"], FAULTS["none"].schedule, None, None)  # type: ignore[arg-type]
    assert injector.start().stop() == []


def test_counters_are_taken_over_the_run_and_unreported_ones_stay_unknown() -> None:
    run = PlaneCounters(misses=5, queued_writes=3, failed_recalls=9).minus(
        PlaneCounters(misses=1, queued_writes=0, failed_recalls=None)
    )
    assert run == PlaneCounters(misses=4, queued_writes=3, failed_recalls=9, retries=None)
