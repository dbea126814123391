"""No placement is lost to a slow or absent store, and no recall waits past its deadline."""

from __future__ import annotations

import asyncio

from strangler.proxy.metrics import RecentCounts
from strangler.proxy.placements import (
    FAILED_RECALLS,
    LOST,
    QUEUED,
    STALLED,
    UNREACHABLE,
    Placements,
    Recalled,
)
from tests.unit.fake_clock import FakeClock
from tests.unit.proxy.fake_store import FakeStore


def placements(store: FakeStore, limit: int = 100) -> tuple[Placements, RecentCounts, FakeClock]:
    clock = FakeClock(now=100.0)
    events = RecentCounts(clock)
    return Placements(store, events, limit, clock), events, clock


def test_a_placement_goes_to_the_store_at_once_while_it_answers() -> None:
    store = FakeStore()
    queue, events, _ = placements(store)
    assert queue.remember("k", "a", 600) is False  # nothing to wait for without a hold
    assert store.written() == [("k", "a")] and queue.backlog == 1
    store.answer()
    assert store.data == {"k": ("a", 600_000)} and queue.backlog == 0
    assert events.totals == {}


def test_placements_made_while_the_store_is_away_are_written_in_order_when_it_is_back() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, events, _ = placements(store)
    for key, backend in [("k1", "a"), ("k2", "b"), ("k3", "a")]:
        queue.remember(key, backend, 600)
    assert store.sent == [] and queue.backlog == 3
    assert events.totals == {QUEUED: 3}  # each released to its client before it was stored
    store.come_back()
    assert store.written() == [("k1", "a"), ("k2", "b"), ("k3", "a")]
    store.answer()
    assert sorted(store.data) == ["k1", "k2", "k3"] and queue.backlog == 0


def test_a_stalled_store_gets_nothing_more_until_it_answers_again() -> None:
    store = FakeStore()
    queue, _, _ = placements(store)
    queue.remember("k1", "a", 600)
    store.state = STALLED  # the first write's reply is overdue
    queue.remember("k2", "b", 600)
    assert store.written() == [("k1", "a")]
    store.state = "answering"
    store.answer()  # the late reply: the store answers again
    assert store.written() == [("k1", "a"), ("k2", "b")]


def test_only_the_newest_placement_of_a_key_is_written_after_an_outage() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, _, _ = placements(store)
    queue.remember("k", "a", 600)
    queue.remember("other", "a", 600)
    queue.remember("k", "b", 600)  # the same user again, placed elsewhere since
    store.come_back()
    assert store.written() == [("other", "a"), ("k", "b")]


def test_writes_lost_with_the_connection_are_written_again_first() -> None:
    store = FakeStore()
    queue, _, _ = placements(store)
    queue.remember("k1", "a", 600)
    queue.remember("k2", "b", 600)
    store.drop()  # Redis killed: neither reply came
    queue.remember("k3", "a", 600)
    store.come_back()
    assert store.written()[2:] == [("k1", "a"), ("k2", "b"), ("k3", "a")]
    store.answer()
    assert sorted(store.data) == ["k1", "k2", "k3"]


def test_a_write_refused_while_the_store_loads_its_data_is_written_again() -> None:
    store = FakeStore()
    queue, _, _ = placements(store)
    queue.remember("k", "a", 600)
    store.refuse()  # -LOADING
    assert store.data == {} and queue.backlog == 1
    store.come_back()
    store.answer()
    assert store.data["k"][0] == "a" and queue.backlog == 0


def test_a_refused_write_replaced_by_a_newer_one_is_not_written_again() -> None:
    store = FakeStore()
    queue, _, _ = placements(store)
    queue.remember("k", "a", 600)
    queue.remember("k", "b", 600)
    *_, done = store.pending.pop(0)
    done(False)  # the older one refused, the newer one still on its way
    store.answer()
    store.come_back()
    assert store.written() == [("k", "a"), ("k", "b")] and store.data["k"][0] == "b"


def test_a_placement_that_waited_is_written_with_what_is_left_of_its_ttl() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, _, clock = placements(store)
    queue.remember("k", "a", 10)
    queue.remember("gone", "a", 2)
    clock.advance(4)
    store.come_back()
    store.answer()
    assert store.data == {"k": ("a", 6000)}  # the expired one is not written at all


def test_past_its_bound_the_queue_drops_the_oldest_and_counts_each_as_lost() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, events, _ = placements(store, limit=3)
    for n in range(5):
        queue.remember(f"k{n}", "a", 600)
    assert events.totals[LOST] == 2 and queue.backlog == 3
    store.come_back()
    assert store.written() == [("k2", "a"), ("k3", "a"), ("k4", "a")]


def test_a_held_response_is_released_once_its_placement_is_stored() -> None:
    store = FakeStore()
    queue, events, _ = placements(store)
    released: list[bool] = []
    assert queue.remember("k", "a", 600, released.append, timeout=1.0) is True
    assert released == []  # the client has nothing yet
    store.answer()
    assert released == [True] and events.totals == {}


def test_past_the_deadline_the_response_goes_and_the_placement_stays_queued() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, events, clock = placements(store)
    released: list[bool] = []
    queue.remember("k", "a", 600, released.append, timeout=1.0)
    clock.advance(0.9)
    queue.expire()
    assert released == []  # within the deadline: still waiting
    clock.advance(0.2)
    queue.expire()
    assert released == [False] and events.totals == {QUEUED: 1}
    store.come_back()
    store.answer()
    assert store.data["k"][0] == "a"  # not lost: written once the store answered


def test_once_the_store_is_away_longer_than_a_deadline_responses_no_longer_wait() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, events, clock = placements(store)
    released: list[bool] = []
    assert queue.remember("k1", "a", 600, released.append, timeout=1.0) is True  # may be a pause
    clock.advance(1.1)
    queue.expire()
    assert queue.remember("k2", "b", 600, released.append, timeout=1.0) is False  # it is down
    assert released == [False] and events.totals == {QUEUED: 2}
    store.come_back()
    store.answer()
    assert {k: v[0] for k, v in store.data.items()} == {"k1": "a", "k2": "b"}  # none lost
    store.state = STALLED  # a pause, however long, is worth waiting for
    clock.advance(5)
    assert queue.remember("k3", "a", 600, released.append, timeout=1.0) is True
    clock.advance(1.1)
    assert queue.remember("k4", "a", 600, released.append, timeout=1.0) is True


def test_a_recall_answers_from_this_workers_placement_the_store_does_not_have_yet() -> None:
    store = FakeStore(state=UNREACHABLE)
    queue, _, _ = placements(store)
    queue.remember("k", "b", 600)
    assert asyncio.run(queue.recall("k", timeout=1.0)) == Recalled(True, "b")
    assert store.sent == []


def test_a_recall_waits_for_a_store_that_comes_back_within_the_deadline() -> None:
    store = FakeStore(state=UNREACHABLE)
    store.data["k"] = ("a", 600_000)
    queue, events, _ = placements(store)

    async def scenario() -> Recalled:
        recall = asyncio.create_task(queue.recall("k", timeout=5.0))
        await asyncio.sleep(0)
        assert store.sent == []  # nothing to ask yet
        store.come_back()
        await asyncio.sleep(0)
        store.refuse()  # still loading its data: ask again
        store.come_back()
        await asyncio.sleep(0)
        store.answer()
        return await recall

    assert asyncio.run(scenario()) == Recalled(True, "a")
    assert store.sent == [("GET", "k"), ("GET", "k")] and events.totals == {}


def test_an_absent_key_is_an_answer() -> None:
    store = FakeStore()
    queue, _, _ = placements(store)

    async def scenario() -> Recalled:
        recall = asyncio.create_task(queue.recall("k", timeout=5.0))
        await asyncio.sleep(0)
        store.answer()
        return await recall

    assert asyncio.run(scenario()) == Recalled(True, None)


def test_past_the_deadline_a_recall_has_no_answer_and_is_counted() -> None:
    store = FakeStore(state=STALLED)
    queue, events, _ = placements(store)
    assert asyncio.run(queue.recall("k", timeout=0.01)) == Recalled(False, None)
    assert events.totals == {FAILED_RECALLS: 1}
