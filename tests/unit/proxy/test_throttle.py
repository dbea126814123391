"""Throttling decided by a worker alone (its share of each limit), and Redis's answers read."""

from __future__ import annotations

from strangler.proxy.redis_client import RedisError, parse_reply
from strangler.proxy.throttle import LocalBuckets, Verdict, _from_reply, rate_limit_lines
from strangler.routing.gateway import Limit
from tests.unit.fake_clock import FakeClock

FIVE = Limit("client_ip", None, 1.0, 5, "1/s")  # 5 at once, then one a second


def test_a_worker_alone_grants_its_share_of_the_burst_then_refills_at_its_share_of_the_rate():
    clock = FakeClock()
    local = LocalBuckets(clock, workers=1)
    verdicts = [local.decide([("r", FIVE, b"ip")]) for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    assert verdicts[4].remaining == 0 and verdicts[5].retry_after == 1.0
    assert local.decide([("r", FIVE, b"other")]).allowed  # another key, another bucket
    clock.advance(1.0)
    assert local.decide([("r", FIVE, b"ip")]).allowed
    shared = LocalBuckets(clock, workers=2)  # two workers: each 3 of the 5, at 0.5/s
    assert [shared.decide([("r", FIVE, b"k")]).allowed for _ in range(4)] == [True] * 3 + [False]
    clock.advance(1.0)
    assert not shared.decide([("r", FIVE, b"k")]).allowed
    clock.advance(1.0)
    assert shared.decide([("r", FIVE, b"k")]).allowed


def test_a_request_over_one_limit_takes_nothing_from_the_other():
    clock = FakeClock()
    local = LocalBuckets(clock, workers=1)
    one = Limit("client_ip", None, 1.0, 1, "1/s")
    assert local.decide([("route", FIVE, b"k"), ("route/b", one, b"k")]).allowed
    refused = local.decide([("route", FIVE, b"k"), ("route/b", one, b"k")])
    assert not refused.allowed and refused.limit == 1  # the tightest limit speaks
    assert local.decide([("route", FIVE, b"k")]).remaining == 3  # 5 - 1 - 1: the 429 took none


def test_the_scripts_answer_is_read_and_anything_else_means_decide_locally():
    checked = [("r", FIVE, b"k")]
    complete, value, _ = parse_reply(bytearray(b"*4\r\n:0\r\n:0\r\n:250\r\n:5000\r\n"))
    assert complete and value == [b"0", b"0", b"250", b"5000"]
    assert _from_reply(value, checked) == Verdict(False, 5, 0, 0.25, 5.0, local=False)
    assert _from_reply(RedisError("NOSCRIPT No matching script"), checked) is None
    assert _from_reply([b"1"], checked) is None
    assert parse_reply(bytearray(b"*2\r\n:1\r\n"))[0] is False  # not all of it yet


def test_the_answer_carries_ratelimit_headers_and_a_429_retry_after():
    assert rate_limit_lines(Verdict(True, 40, 39, 0, 0.05, False)) == (
        b"RateLimit-Limit: 40\r\nRateLimit-Remaining: 39\r\nRateLimit-Reset: 1\r\n"
    )
    assert rate_limit_lines(Verdict(False, 40, 0, 0.2, 2.0, False)).endswith(
        b"RateLimit-Reset: 2\r\nRetry-After: 1\r\n"
    )
