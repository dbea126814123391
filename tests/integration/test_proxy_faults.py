"""Flows survive their store's faults: real Redis paused and restarted, the service killed,
under load through the whole stack, while the verification route flips."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from strangler.loadtests.faults import FAULTS, EmbeddedPlane, Fault, Injector, Schedule
from strangler.loadtests.flows import Flow
from strangler.loadtests.migration import Plan, run_steps
from strangler.proxy.affinity import store_key
from strangler.stack.running import RunningStack, running_stack
from tests.integration.proxy_support import accepts

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.redis]
DEADLINE = 2.5  # seconds a request may wait on the affinity store (STRANGLER_STORE_TIMEOUT)


def broken(flows: list[Flow]) -> list[tuple[str, str | None]]:
    return [(f.to, f.error) for f in flows if f.broken or f.unfinished]


def run(running: RunningStack, plan: Plan, fault: Fault, schedule: Schedule):
    injector = Injector(fault, schedule, running, EmbeddedPlane(running))
    _, flows = run_steps(running, plan, injector)
    assert injector.errors == []
    return injector.events, flows


def test_redis_paused_again_and_again_during_flips_and_once_for_long_breaks_no_flow(
    tmp_path: Path,
) -> None:
    """A pause shorter than the deadline costs requests time, never their flow: no miss.

    (Past the deadline the hash decides and each such request counts as a miss:
    test_proxy_affinity.py shows that with a pause longer than a short deadline.)
    """
    env = {"STRANGLER_STORE_TIMEOUT": str(DEADLINE)}
    with running_stack(tmp_path / "var", workers=2, env=env) as running:
        plane = EmbeddedPlane(running)
        flips = Plan(steps=[0, 100] * 11, users=8, step_seconds=0.5, think=0.5)
        pauses, during_flips = run(
            running, flips, FAULTS["redis-pause"], Schedule(first=0.3, every=1.0, length=0.2)
        )
        once = Plan(steps=[0, 100, 0], users=8, step_seconds=1.5, think=0.5)
        long_pause, after = run(
            running, once, FAULTS["redis-pause"], Schedule(first=0.5, every=60.0, length=1.5)
        )
        counted = plane.counters()
    assert len(flips.steps) - 1 >= 20 and len(pauses) >= 8 and len(long_pause) == 1
    assert len(during_flips) > 50 and len(after) > 10
    assert broken(during_flips) == [] and broken(after) == []
    assert counted.misses == 0  # 1.5 s < the 2.5 s deadline: every lookup got its answer


def test_redis_restarted_on_its_data_breaks_no_flow_it_had_stored(tmp_path: Path) -> None:
    env = {"STRANGLER_STORE_TIMEOUT": str(DEADLINE)}
    with running_stack(tmp_path / "var", workers=2, env=env, persist_redis=True) as running:
        plan = Plan(steps=[50, 100, 0, 50], users=8, step_seconds=1.5, think=1.0)
        events, flows = run(
            running, plan, FAULTS["redis-restart"], Schedule(first=2.0, every=60.0, length=0.5)
        )
        (restart,) = events
        client = redis.Redis.from_url(running.cfg.effective_redis_url, decode_responses=True)
        stored = {f.to for f in flows if client.get(store_key("verification", f.to))}
        client.close()
    before = [f for f in flows if f.sent and f.send.ended < restart.injected and f.to in stored]
    assert len(before) > 10  # their sends answered, and their placements in Redis, before
    assert [f for f in before if f.check and f.check.started > restart.injected]  # checked after
    assert broken(before) == []


def test_new_flows_never_see_the_new_service_die(tmp_path: Path) -> None:
    """Killed under load (the retry rule on, as shipped): a flow started once the service
    was gone runs on the monolith without a single error, before and after it is back."""
    gone: list[float] = []
    kill, restart = FAULTS["service-kill"].inject, FAULTS["service-kill"].restore

    def kill_and_note(running: RunningStack, plane: object) -> None:
        kill(running, plane)
        port = running.cfg.service_port
        while accepts(port):  # its sockets go with the processes, a moment after the kill
            time.sleep(0.01)
        gone.append(time.monotonic())

    fault = Fault("service-kill", Schedule(0, 0, 0), kill_and_note, restart, "")
    with running_stack(tmp_path / "var", workers=2) as running:
        plan = Plan(steps=[50, 100, 50], users=8, step_seconds=2.0, think=1.0)
        events, flows = run(running, plan, fault, Schedule(first=1.5, every=60.0, length=1.0))
    (event,) = events
    new = [f for f in flows if f.send.started > gone[0]]
    assert len(new) > 10 and [f for f in new if f.send.started < event.restored]
    assert [(f.to, f.error) for f in new if f.errors or not f.approved] == []
    # Flows the service had started were answered 503 while it was down, and tried again.
    assert [(f.to, f.error) for f in flows if f.broken] == []
