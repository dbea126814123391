"""Flows survive flips: when the shared store is consulted, and what it is told."""

from __future__ import annotations

import asyncio

from strangler.proxy.affinity import Affinity, store_key
from strangler.routing.placement import select_backend
from tests.unit.fake_clock import FakeClock
from tests.unit.routing.tables import table


class FakeStore:
    """An in-memory AffinityStore with the real interface."""

    def __init__(self, healthy: bool = True) -> None:
        self.data: dict[str, tuple[str, int]] = {}
        self.healthy = healthy
        self.failed_recalls = 0

    def remember(self, key: str, backend: str, ttl: int) -> None:
        self.data[key] = (backend, ttl)

    async def recall(self, key: str) -> str | None:
        entry = self.data.get(key)
        return entry[0] if entry else None


def keys_moved(old, new, count=2000):
    """Keys whose backend differs between two versions of the route."""
    return [
        k for k in (f"+1555{i:07d}" for i in range(count))
        if select_backend(old, k) != select_backend(new, k)
    ]  # fmt: skip


def test_no_flip_no_lookup():
    affinity = Affinity(FakeStore(), FakeClock(now=0.0))
    route = table(50).routes[0]
    assert not any(
        affinity.needs_recall(route, k, select_backend(route, k)) for k in ("a", "b", "c", "d")
    )


def test_after_a_flip_only_moved_keys_are_looked_up_within_the_ttl():
    clock = FakeClock(now=0.0)
    affinity = Affinity(FakeStore(), clock)
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
    affinity = Affinity(FakeStore(), clock)
    t0, t25, t100 = table(0), table(25), table(100)
    affinity.table_changed(t0, t25)
    clock.now = 10
    affinity.table_changed(t25, t100)
    route = t100.routes[0]
    # every key is on verification at 100 %; each was on the monolith at 0 %
    assert all(affinity.needs_recall(route, k, "verification") for k in ("a", "b", "c"))


def test_a_reload_that_does_not_change_the_split_is_not_a_flip():
    affinity = Affinity(FakeStore(), FakeClock(now=0.0))
    affinity.table_changed(table(50, ttl=600), table(50, ttl=300))
    route = table(50).routes[0]
    assert not affinity.needs_recall(route, "k", select_backend(route, "k"))


def test_remember_and_recall_use_the_route_ttl_and_a_hashed_key():
    store = FakeStore()
    affinity = Affinity(store)
    route = table(50, ttl=120).routes[0]
    affinity.remember(route, "+15551234567", "monolith")
    key = store_key("verification", "+15551234567")
    assert store.data == {key: ("monolith", 120)}
    assert "+1555" not in key and key.startswith("strangler:aff:verification:")
    assert asyncio.run(affinity.recall(route, "+15551234567")) == "monolith"


def test_state_reports_degradation_and_absence():
    assert Affinity(FakeStore(healthy=True)).state == "ok"
    assert Affinity(FakeStore(healthy=False)).state == "degraded"
    assert Affinity(None).state == "disabled"
    affinity = Affinity(None)
    affinity.table_changed(table(0), table(100))
    assert not affinity.needs_recall(table(100).routes[0], "k", "verification")


def test_a_worker_started_after_a_flip_takes_over_the_earlier_split(tmp_path):
    history = tmp_path / "split-history.json"
    clock = FakeClock(now=0.0)
    before, after = table(0, ttl=600), table(50, ttl=600)
    running = Affinity(FakeStore(), clock, history=history)
    running.table_changed(before, after)
    route = after.routes[0]
    moved = keys_moved(before.routes[0], route)
    stayed = next(k for k in (f"+1555{i:07d}" for i in range(2000)) if k not in moved)

    clock.now = 100.0  # a worker restarted since: it starts on the new table only
    restarted = Affinity(FakeStore(), clock, history=history)
    restarted.load_history(after)
    assert restarted.needs_recall(route, moved[0], select_backend(route, moved[0]))
    assert not restarted.needs_recall(route, stayed, select_backend(route, stayed))

    clock.now = 600.0  # the ttl of the flip is over: a worker starting now has nothing to do
    late = Affinity(FakeStore(), clock, history=history)
    late.load_history(after)
    assert not late.needs_recall(route, moved[0], select_backend(route, moved[0]))


def test_a_missing_or_damaged_history_means_no_earlier_split(tmp_path):
    route = table(50).routes[0]
    key = "+15550000000"
    for text in (None, "not json", '{"routes": {"verification": [{"split": 5}]}}'):
        path = tmp_path / "split-history.json"
        if text is not None:
            path.write_text(text)
        affinity = Affinity(FakeStore(), FakeClock(now=0.0), history=path)
        affinity.load_history(table(50))
        assert not affinity.needs_recall(route, key, "verification")
        assert not affinity.needs_recall(route, key, "monolith")
