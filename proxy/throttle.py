"""Throttling: token buckets per key, shared through Redis, with a per-worker fallback.

Every limit a request meets (the route's, and its backend's) is decided by one EVALSHA: the
script refills each bucket from Redis's own clock, takes a token from every one only when
all have one, and answers per bucket. So a request costs one round trip at most, every
worker and proxy instance on that Redis shares the buckets, and a request over any limit
takes nothing from the others.

When Redis does not answer (unreachable, stalled, refusing, or later than
DECIDE_TIMEOUT), the request is decided by this worker's own buckets, each given its share
of the rate and burst (1 / workers) so one proxy instance stays near the limit; that is
counted (`throttle_local`) and the status says `degraded`. A throttle never fails a request
because its store is down.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strangler.proxy.placements import ANSWERING
from strangler.proxy.redis_client import RedisError, command

if TYPE_CHECKING:
    import asyncio

    from strangler.proxy.metrics import RecentCounts
    from strangler.proxy.redis_client import RedisAffinityStore
    from strangler.routing.gateway import Limit

DECIDE_TIMEOUT = 0.25  # seconds a request waits on Redis before its worker decides alone
LOCAL_KEYS = 100_000  # buckets a worker keeps for the fallback, the least recent dropped
LOCAL = "throttle_local"  # the event counted when a request was decided without Redis
KEY_PREFIX = b"strangler:limit:"

# KEYS: one bucket per limit. ARGV: per bucket, tokens per millisecond and burst.
# Answer: {allowed (0/1), then per bucket: tokens left, ms until a token, ms until full}.
SCRIPT = b"""
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tokens, ok = {}, 1
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local have, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
  have = math.min(burst, have + math.max(0, now - at) * rate)
  tokens[i] = have
  if have < 1 then ok = 0 end
end
local answer = {ok}
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local have = tokens[i]
  if ok == 1 then have = have - 1 end
  redis.call('HSET', key, 'tokens', tostring(have), 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
  local wait = 0
  if have < 1 then wait = math.ceil((1 - have) / rate) end
  answer[#answer + 1] = math.floor(have)
  answer[#answer + 1] = wait
  answer[#answer + 1] = math.ceil((burst - have) / rate)
end
return answer
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT).hexdigest().encode()  # noqa: S324 (Redis names scripts so)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the tightest of a request's limits says, for the answer's RateLimit-* headers."""

    allowed: bool
    limit: int  # that bucket's burst
    remaining: int  # whole tokens left in it
    retry_after: float  # seconds until it has a token (0 when it has one)
    reset: float  # seconds until it is full again
    local: bool  # decided by this worker alone (Redis did not answer)


Checked = Sequence[tuple[str, "Limit", bytes]]  # (scope, limit, key) per limit of a request


class LocalBuckets:
    """This worker's buckets, for when Redis cannot decide: a share of each limit."""

    def __init__(self, clock: Callable[[], float], workers: int) -> None:
        self.clock = clock
        self.workers = max(1, workers)
        self.buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # tokens, at

    def decide(self, checked: Checked) -> Verdict:
        now = self.clock()
        states = []
        for scope, limit, key in checked:
            rate, burst = self._share(limit)
            name = _bucket_name(scope, key)
            tokens, at = self.buckets.pop(name, (burst, now))
            states.append((name, min(burst, tokens + (now - at) * rate), rate, burst))
        allowed = all(tokens >= 1 for _, tokens, _, _ in states)
        answers = []
        for name, tokens, rate, burst in states:
            tokens -= 1 if allowed else 0
            self.buckets[name] = (tokens, now)
            answers.append(_figures(int(burst), tokens, rate))
        while len(self.buckets) > LOCAL_KEYS:
            self.buckets.popitem(last=False)
        return _tightest(allowed, answers, local=True)

    def _share(self, limit: Limit) -> tuple[float, float]:
        return limit.per_second / self.workers, max(1.0, math.ceil(limit.burst / self.workers))


def _figures(burst: int, tokens: float, rate: float) -> tuple[int, int, float, float]:
    wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
    return burst, int(tokens), wait, (burst - tokens) / rate


def _tightest(allowed: bool, answers: list, local: bool) -> Verdict:
    burst, remaining, wait, reset = min(answers, key=lambda a: (a[1], -a[2]))
    if not allowed:
        burst, remaining, wait, reset = max(answers, key=lambda a: a[2])
    return Verdict(allowed, burst, remaining, wait, reset, local)


def _ignore(value: object) -> None:
    return None


def _bucket_name(scope: str, key: bytes) -> bytes:
    return KEY_PREFIX + scope.encode() + b":" + key


class _Waiting:
    """A request's limits sent to Redis, until its answer or its deadline decides them."""

    __slots__ = ("checked", "deadline", "decided", "done")

    def __init__(self, checked: Checked, done: Callable[[Verdict], None], deadline: float):
        self.checked, self.done, self.deadline, self.decided = checked, done, deadline, False


class Throttle:
    """Decides a request's limits: Redis when it answers in time, else this worker alone."""

    def __init__(
        self,
        store: RedisAffinityStore | None,
        loop: asyncio.AbstractEventLoop,
        events: RecentCounts,
        workers: int,
    ) -> None:
        self.store = store
        self.loop = loop
        self.events = events
        self.local = LocalBuckets(loop.time, workers)
        self.waiting: deque[_Waiting] = deque()  # sent to Redis, oldest first
        self.sweeping = False
        self.rate_args: dict[Limit, tuple[bytes, bytes]] = {}
        if store is not None:
            store.setup_commands.append(command(b"SCRIPT", b"LOAD", SCRIPT))

    @property
    def state(self) -> str:
        """`shared` (Redis decides), `local` (no Redis configured), or Redis's state."""
        if self.store is None:
            return "local"
        state = self.store.state
        return "shared" if state == ANSWERING else state

    def decide(self, checked: Checked, done: Callable[[Verdict], None]) -> None:
        """`done` gets the verdict: at once without Redis, else on its answer or the deadline."""
        store = self.store
        if store is None:
            done(self.local.decide(checked))
            return
        if store.state != ANSWERING:
            self._alone(checked, done)
            return
        args: list[bytes | str | int] = [b"EVALSHA", SCRIPT_SHA, len(checked)]
        args += [_bucket_name(scope, key) for scope, _, key in checked]
        for _, limit, _ in checked:
            args += self._rate_args(limit)
        waiting = _Waiting(checked, done, self.loop.time() + DECIDE_TIMEOUT)
        if not store.call(command(*args), lambda value: self._answered(waiting, value)):
            self._answered(waiting, None)
            return
        self.waiting.append(waiting)
        if not self.sweeping:
            self.sweeping = True
            self.loop.call_later(DECIDE_TIMEOUT, self._sweep)

    def _rate_args(self, limit: Limit) -> tuple[bytes, bytes]:
        args = self.rate_args.get(limit)
        if args is None:  # the same few limits on every request: encoded once
            args = self.rate_args[limit] = (
                repr(limit.per_second / 1000).encode(), str(limit.burst).encode(),
            )  # fmt: skip
        return args

    def _answered(self, waiting: _Waiting, value: object) -> None:
        if waiting.decided:
            return  # its deadline passed: decided locally already
        waiting.decided = True
        if isinstance(value, RedisError) and "NOSCRIPT" in str(value):
            self.store.call(command(b"SCRIPT", b"LOAD", SCRIPT), _ignore)  # a flushed script
        verdict = _from_reply(value, waiting.checked)
        if verdict is None:
            self._alone(waiting.checked, waiting.done)
        else:
            waiting.done(verdict)

    def _sweep(self) -> None:
        """Requests Redis has not answered by their deadline are decided by this worker (one
        timer for all of them: answered ones are only dropped from the front)."""
        now, waiting = self.loop.time(), self.waiting
        while waiting and (waiting[0].decided or waiting[0].deadline <= now):
            late = waiting.popleft()
            if not late.decided:
                late.decided = True
                self._alone(late.checked, late.done)
        if waiting:
            self.loop.call_later(max(waiting[0].deadline - now, 0.01), self._sweep)
        else:
            self.sweeping = False

    def _alone(self, checked: Checked, done: Callable[[Verdict], None]) -> None:
        self.events.count(LOCAL)
        done(self.local.decide(checked))


def _from_reply(value: object, checked: Checked) -> Verdict | None:
    """The script's answer as a verdict; None for anything else (an error, NOSCRIPT, LOST)."""
    if not isinstance(value, list) or len(value) != 1 + 3 * len(checked):
        return None
    try:
        numbers = [int(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(checked) == 1:  # one limit, the usual case: its figures are the verdict
        allowed, left, wait, full = numbers
        burst = checked[0][1].burst
        return Verdict(allowed == 1, burst, left, wait / 1000, full / 1000, False)
    answers = [
        (limit.burst, numbers[1 + 3 * i], numbers[2 + 3 * i] / 1000, numbers[3 + 3 * i] / 1000)
        for i, (_, limit, _) in enumerate(checked)
    ]
    return _tightest(numbers[0] == 1, answers, local=False)


def rate_limit_lines(verdict: Verdict) -> bytes:
    """The RateLimit-* header lines (IETF httpapi draft) of an answer; Retry-After on a 429."""
    lines = b"RateLimit-Limit: %d\r\nRateLimit-Remaining: %d\r\nRateLimit-Reset: %d\r\n" % (
        verdict.limit,
        max(verdict.remaining, 0),
        math.ceil(verdict.reset),
    )
    if not verdict.allowed:
        lines += b"Retry-After: %d\r\n" % max(1, math.ceil(verdict.retry_after))
    return lines
