"""Placements on their way to the affinity store: written in order, never dropped because the
store is slow or away, and confirmed to the responses that wait for them.

What this promises, whatever the store does (paused, restarting, loading its data):
- A placement (key -> backend for the route's ttl) is sent at once while the store answers;
  otherwise it waits here, in order, and is written as soon as the store answers again. A
  write the store did not take (an error reply, a lost connection) is written again, unless
  a newer placement of the same key replaced it. Only more than `limit` placements waiting
  at once drop the oldest, and each is counted as lost.
- A response may wait for its placement (`hold`): it goes out once the store has it, or at
  its deadline, when the placement stays queued and counts as a queued write. Once the store
  has been unreachable or refusing for longer than a deadline (down or loading, not pausing),
  responses no longer wait: an outage costs one deadline, not one per response.
- A recall answers from this worker's newest placement of the key if the store does not
  have it yet; otherwise it waits for the store as long as the deadline allows, asking again
  after an error or a reconnection. Past the deadline it reports no answer (a failed recall).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import NamedTuple, Protocol

from strangler.proxy.metrics import RecentCounts

ANSWERING = "answering"  # replies come back in time
STALLED = "stalled"  # connected, but a reply is overdue (a paused or hung Redis)
REFUSING = "refusing"  # it answers with errors (a Redis still loading its data)
UNREACHABLE = "unreachable"  # no connection (down, restarting, not started yet)
EXPIRE_EVERY = 0.05  # seconds between looks at the responses waiting for their placements
DEFAULT_LIMIT = 50_000  # placements waiting at once, per worker (about 200 bytes each)
# What RecentCounts counts here and in affinity.py.
MISSES, QUEUED, FAILED_RECALLS, LOST = "misses", "queued_writes", "failed_recalls", "lost_writes"


class AffinityStore(Protocol):
    """The shared store's transport (Redis in production); replies come by callback, never
    from within the call that sent the command."""

    @property
    def state(self) -> str:
        """ANSWERING, STALLED, REFUSING or UNREACHABLE."""
        ...

    def listen(self, on_answer: Callable[[], None]) -> None:
        """Call `on_answer` each time the store answered: replies came, or it connected."""

    def write(self, key: str, backend: str, ttl_ms: int, done: Callable[[bool], None]) -> bool:
        """Send key -> backend, expiring in ttl_ms; False when it cannot be sent now.

        `done(True)` once stored; `done(False)` when it was not (an error, a lost connection).
        """
        ...

    def read(self, key: str, done: Callable[[bool, str | None], None]) -> bool:
        """Ask for the key's backend; False when it cannot be asked now.

        `done(True, backend or None)` with the answer; `done(False, None)` without one.
        """
        ...


class Recalled(NamedTuple):
    answered: bool  # False: the store gave no answer within the deadline
    backend: str | None  # the placement's backend; None when there is none (or no answer)


Hold = Callable[[bool], None]  # a response waiting for its placement; True: stored


class Write:
    """One placement until the store has it."""

    __slots__ = ("backend", "deadline", "expires", "hold", "key")

    def __init__(
        self, key: str, backend: str, expires: float, hold: Hold | None, deadline: float
    ) -> None:
        self.key, self.backend, self.expires = key, backend, expires
        self.hold, self.deadline = hold, deadline


class Placements:
    """One worker's placements not yet stored, and its recalls."""

    def __init__(
        self,
        store: AffinityStore,
        events: RecentCounts,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.limit = limit
        self.clock = clock
        self.call_later = call_later  # without it, the owner calls expire() itself
        self.queue: deque[Write] = deque()  # not sent yet, oldest first
        self.failed: list[Write] = []  # sent but not taken: written again before the queue
        self.newest: dict[str, Write] = {}  # per key, its newest placement not yet stored
        self.holds: list[Write] = []  # placements a response waits for
        self.waiting: list[asyncio.Future] = []  # recalls waiting for the store to answer
        self.timer_armed = False
        self.away_since: float | None = None  # first seen not answering, since it last did
        store.listen(self._answered)

    @property
    def backlog(self) -> int:
        """Keys whose newest placement the store does not have yet."""
        return len(self.newest)

    def remember(
        self, key: str, backend: str, ttl: float, hold: Hold | None = None, timeout: float = 1.0
    ) -> bool:
        """Store key -> backend for `ttl` s; True when `hold` will be called (see the module)."""
        now = self.clock()
        write = Write(key, backend, now + ttl, hold, now + timeout)
        self.newest[key] = write
        queued = bool(self.queue or self.failed) or not self._send(write, now)
        if queued:
            self._enqueue(write)
            if hold is None:
                self.events.count(QUEUED)  # the response is out before the store has it
        if hold is None:
            return False
        if queued and self._away_longer_than(timeout, now):
            write.hold = None  # the store is down, not pausing: waiting would only add latency
            self.events.count(QUEUED)
            return False
        self.holds.append(write)
        self._arm()
        return True

    def _away_longer_than(self, timeout: float, now: float) -> bool:
        if self.store.state not in (UNREACHABLE, REFUSING):
            return False  # answering, or stalled: a paused store is worth waiting for
        if self.away_since is None:
            self.away_since = now
        return now - self.away_since > timeout

    def _send(self, write: Write, now: float) -> bool:
        if self.store.state != ANSWERING:
            return False
        ttl_ms = max(1, int((write.expires - now) * 1000))
        return self.store.write(write.key, write.backend, ttl_ms, partial(self._written, write))

    def _written(self, write: Write, stored: bool) -> None:
        newest = self.newest.get(write.key) is write
        if stored or not newest:  # stored, or replaced by a newer placement of the key
            if stored and newest:
                del self.newest[write.key]
            self._release(write, True)
        else:
            self.failed.append(write)  # written again once the store answers

    def _enqueue(self, write: Write) -> None:
        if len(self.queue) >= self.limit:
            oldest = self.queue.popleft()
            if self.newest.get(oldest.key) is oldest:
                del self.newest[oldest.key]
                self.events.count(LOST)
            self._release(oldest, False)
        self.queue.append(write)

    def _release(self, write: Write, stored: bool) -> None:
        hold = write.hold
        if hold is not None:
            write.hold = None
            if not stored:
                self.events.count(QUEUED)
            hold(stored)

    def flush(self) -> None:
        """Write what waits, in order, while the store answers."""
        now = self.clock()
        if self.failed:
            self.queue.extendleft(reversed(self.failed))
            self.failed = []
        queue = self.queue
        while queue:
            write = queue[0]
            if self.newest.get(write.key) is not write or write.expires <= now:
                queue.popleft()  # replaced by a newer placement, or its ttl is over anyway
                if self.newest.get(write.key) is write:
                    del self.newest[write.key]
                self._release(write, True)
            elif self._send(write, now):
                queue.popleft()
            else:
                return  # the store stopped answering: the rest waits for it

    def expire(self) -> None:
        """Release the responses whose placement was not stored by their deadline."""
        now = self.clock()
        live = []
        for write in self.holds:
            if write.hold is None:
                continue
            if write.deadline <= now:
                self._release(write, False)
            else:
                live.append(write)
        self.holds = live

    def _arm(self) -> None:
        if not self.timer_armed and self.call_later is not None:
            self.timer_armed = True
            self.call_later(EXPIRE_EVERY, self._tick)

    def _tick(self) -> None:
        self.timer_armed = False
        self.expire()
        if self.holds:
            self._arm()

    def _answered(self) -> None:
        self.away_since = None
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
        if (self.queue or self.failed) and self.store.state == ANSWERING:
            self.flush()

    async def recall(self, key: str, timeout: float) -> Recalled:
        """The key's backend, waiting for the store up to `timeout` s (see the module)."""
        mine = self.newest.get(key)
        if mine is not None:
            return Recalled(True, mine.backend)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.store.state == ANSWERING:
                        reply = loop.create_future()
                        if self.store.read(key, partial(_settle, reply)):
                            answered, backend = await reply
                            if answered:
                                return Recalled(True, backend)
                            continue  # an error or a lost connection changed the state
                    waiter = loop.create_future()  # ask once the store answers again
                    self.waiting.append(waiter)
                    await waiter
        except TimeoutError:
            self.events.count(FAILED_RECALLS)
            return Recalled(False, None)


def _settle(future: asyncio.Future, answered: bool, backend: str | None) -> None:
    if not future.done():
        future.set_result((answered, backend))
