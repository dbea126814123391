"""Flows survive flips: when the shared store is consulted, and what it is told."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from strangler.proxy.affinity import Affinity, store_key
from strangler.proxy.diversions import Diversions
from strangler.proxy.metrics import RecentCounts
from strangler.proxy.placements import MISSES, STALLED, Placements, Recalled
from strangler.routing.placement import select_backend
from tests.unit.fake_clock import FakeClock
from tests.unit.proxy.fake_store import FakeStore
from tests.unit.routing.tables import table


def with_store(
    store: FakeStore | None = None,
    clock: FakeClock | None = None,
    history: Path | None = None,
    diversions: Diversions | None = None,
) -> Affinity:
    """An Affinity over `store` (a fresh answering FakeStore by default)."""
    clock = clock or FakeClock(now=0.0)
    events = RecentCounts(clock)
    placements = Placements(store or FakeStore(), events, clock=clock)
    return Affinity(
        placements, events, diversions=diversions or Diversions(None, clock), clock=clock,
        history=history,
    )  # fmt: skip


def keys_moved(old, new, count=2000):
    """Keys whose backend differs between two versions of the route."""
    return [
        k for k in (f"+1555{i:07d}" for i in range(count))
        if select_backend(old, k) != select_backend(new, k)
    ]  # fmt: skip


def test_no_flip_no_lookup():
    affinity = with_store()
    route = table(50).routes[0]
    assert not any(
        affinity.needs_recall(route, k, select_backend(route, k)) for k in ("a", "b", "c", "d")
    )


def test_after_a_flip_only_moved_keys_are_looked_up_within_the_ttl():
    clock = FakeClock(now=0.0)
    affinity = with_store(clock=clock)
    before, after = table(0, ttl=600), table(50, ttl=600)
    affinity.table_changed(before, after)
    route = after.routes[0]
    moved = keys_moved(before.routes[0], route)
    assert moved  # half the keys move at 0 -> 50
    stayed = next(k for k in (f"+1555{i:07d}" for i in range(2000)) if k not in moved)
    assert affinity.needs_recall(route, moved[0], select_backend(route, moved[0]))
    assert not affinity.needs_recall(route, stayed, select_backend(route, stayed))
    clock.now = 600.0
    assert not affinity.needs_recall(route, moved[0], select_backend(route, moved[0]))


def test_every_split_within_the_ttl_counts():
    clock = FakeClock(now=0.0)
    affinity = with_store(clock=clock)
    t0, t25, t100 = table(0), table(25), table(100)
    affinity.table_changed(t0, t25)
    clock.now = 10
    affinity.table_changed(t25, t100)
    route = t100.routes[0]
    # every key is on verification at 100 %; each was on the monolith at 0 %
    assert all(affinity.needs_recall(route, k, "verification") for k in ("a", "b", "c"))


def test_a_reload_that_does_not_change_the_split_is_not_a_flip():
    affinity = with_store()
    affinity.table_changed(table(50, ttl=600), table(50, ttl=300))
    route = table(50).routes[0]
    assert not affinity.needs_recall(route, "k", select_backend(route, "k"))


def test_remember_and_recall_use_the_route_ttl_and_a_hashed_key():
    store = FakeStore()
    affinity = with_store(store)
    route = table(50, ttl=120).routes[0]
    affinity.remember(route, "+15551234567", "monolith")
    store.answer()
    key = store_key("verification", "+15551234567")
    assert store.data == {key: ("monolith", 120_000)}
    assert "+1555" not in key and key.startswith("strangler:aff:verification:")

    async def recall() -> Recalled:
        task = asyncio.create_task(affinity.recall(route, "+15551234567"))
        await asyncio.sleep(0)
        store.answer()
        return await task

    assert asyncio.run(recall()) == Recalled(True, "monolith")


def test_a_response_waits_for_its_placement_unless_writes_are_queued():
    route = table(50).routes[0]
    confirmed = with_store()
    assert confirmed.remember(route, "k", "monolith", hold=lambda stored: None) is True
    queued = with_store()
    queued.confirm = False
    assert queued.remember(route, "k", "monolith", hold=lambda stored: None) is False


def test_state_is_ok_only_while_the_store_answers_and_no_flow_was_placed_blind():
    clock = FakeClock(now=0.0)
    store = FakeStore()
    affinity = with_store(store, clock)
    assert affinity.state == "ok"
    store.state = STALLED
    assert affinity.state == "degraded"
    store.state = "answering"
    route = table(100).routes[0]
    store.state = STALLED
    assert asyncio.run(affinity.recall(route, "k")).answered is False  # past the deadline
    store.state = "answering"
    assert affinity.events.totals[MISSES] == 1 and affinity.state == "degraded"
    clock.advance(75)  # a minute without a miss
    assert affinity.state == "ok"
    assert Affinity(None).state == "disabled"
    disabled = Affinity(None)
    disabled.table_changed(table(0), table(100))
    assert not disabled.needs_recall(table(100).routes[0], "k", "verification")


def test_the_deadline_is_the_routes_or_the_default():
    affinity = with_store()
    affinity.store_timeout = 1.5
    assert affinity.timeout(table(50).routes[0]) == 1.5
    route = table(50).routes[0]
    waits = dataclasses.replace(route, sticky=dataclasses.replace(route.sticky, store_timeout=4.0))
    assert affinity.timeout(waits) == 4.0


def test_a_diversion_makes_the_keys_of_the_backend_it_left_looked_up_for_the_ttl():
    clock = FakeClock(now=0.0)
    affinity = with_store(clock=clock)
    route = table(50, ttl=600).routes[0]
    assert not affinity.needs_recall(route, "k", "verification")
    affinity.divert(route, "verification")  # a request placed there was served elsewhere
    assert affinity.needs_recall(route, "k", "verification")
    assert not affinity.needs_recall(route, "k", "monolith")  # keys placed elsewhere: the hash
    clock.advance(601)
    assert not affinity.needs_recall(route, "k", "verification")


def test_a_worker_started_after_a_flip_takes_over_the_earlier_split(tmp_path):
    history = tmp_path / "split-history.json"
    clock = FakeClock(now=0.0)
    before, after = table(0, ttl=600), table(50, ttl=600)
    running = with_store(clock=clock, history=history)
    running.table_changed(before, after)
    route = after.routes[0]
    moved = keys_moved(before.routes[0], route)
    stayed = next(k for k in (f"+1555{i:07d}" for i in range(2000)) if k not in moved)

    clock.now = 100.0  # a worker restarted since: it starts on the new table only
    restarted = with_store(clock=clock, history=history)
    restarted.load_history(after)
    assert restarted.needs_recall(route, moved[0], select_backend(route, moved[0]))
    assert not restarted.needs_recall(route, stayed, select_backend(route, stayed))

    clock.now = 600.0  # the ttl of the flip is over: a worker starting now has nothing to do
    late = with_store(clock=clock, history=history)
    late.load_history(after)
    assert not late.needs_recall(route, moved[0], select_backend(route, moved[0]))


def test_a_missing_or_damaged_history_means_no_earlier_split(tmp_path):
    route = table(50).routes[0]
    key = "+15550000000"
    for text in (None, "not json", '{"routes": {"verification": [{"split": 5}]}}'):
        path = tmp_path / "split-history.json"
        if text is not None:
            path.write_text(text)
        affinity = with_store(clock=FakeClock(now=0.0), history=path)
        affinity.load_history(table(50))
        assert not affinity.needs_recall(route, key, "verification")
        assert not affinity.needs_recall(route, key, "monolith")
