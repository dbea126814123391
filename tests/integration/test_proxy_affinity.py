"""Flows survive flips: a key keeps the backend that served it for the ttl (shared in Redis)."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import redis

from strangler.proxy.affinity import store_key
from strangler.stack.specs import StackConfig, proxy_spec, redis_spec
from strangler.stack.supervisor import free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, admin_status, echo_spec, routes_text, served_by
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.redis]


def start(tmp_path, supervisor, redis_url: str, ttl: int, store_timeout: float | None = None):
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=0, ttl=ttl, store_timeout=store_timeout))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN},
        workers=2,
    )
    supervisor.start(echo_spec("a", a))
    supervisor.start(echo_spec("b", b))
    supervisor.start(proxy_spec(cfg, routes))
    return cfg, routes, backends


def flip_to_b(cfg, routes, backends, ttl, store_timeout: float | None = None):
    write(routes, routes_text(backends, percent=100, ttl=ttl, store_timeout=store_timeout))
    fresh = iter(range(10**6))
    wait_for(
        lambda: all(
            served_by(cfg.proxy_url, f"new-{next(fresh)}@x.example") == "b" for _ in "12345678"
        ),
        what="the flip in every worker",
    )


def test_a_flow_started_on_a_stays_on_a_after_the_flip(tmp_path, supervisor, redis_url):
    cfg, routes, backends = start(tmp_path, supervisor, redis_url, ttl=600)
    wait_for(lambda: admin_status(cfg.admin_url)["affinity"] == "ok", what="affinity connected")
    assert served_by(cfg.proxy_url, "+15557654321") == "a"
    flip_to_b(cfg, routes, backends, ttl=600)
    assert [served_by(cfg.proxy_url, "+15557654321") for _ in range(8)] == ["a"] * 8
    assert served_by(cfg.proxy_url, "+15550000000") == "b"


def test_the_affinity_ends_with_its_ttl(tmp_path, supervisor, redis_url):
    cfg, routes, backends = start(tmp_path, supervisor, redis_url, ttl=2)
    wait_for(lambda: admin_status(cfg.admin_url)["affinity"] == "ok", what="affinity connected")
    assert served_by(cfg.proxy_url, "+15551112222") == "a"
    flip_to_b(cfg, routes, backends, ttl=2)
    wait_for(lambda: served_by(cfg.proxy_url, "+15551112222") == "b", what="the ttl to pass")


def test_without_redis_a_lookup_waits_its_deadline_then_the_hash_decides_and_says_so(
    tmp_path, supervisor
):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    cfg, routes, backends = start(tmp_path, supervisor, dead_redis, ttl=600, store_timeout=0.2)
    assert admin_status(cfg.admin_url)["affinity"] == "degraded"
    flip_to_b(cfg, routes, backends, ttl=600, store_timeout=0.2)
    # A key never served: every key moved at 0 -> 100 %, so it is looked up, and with no
    # store to answer it is placed by the hash once its 0.2 s are over: an affinity miss.
    assert served_by(cfg.proxy_url, "+15550001111") == "b"
    status = wait_for(
        lambda: (s := admin_status(cfg.admin_url))["affinity_last_minute"]["misses"] >= 1 and s,
        what="the miss in the status",
    )
    assert status["affinity"] == "degraded" and status["affinity_store"] == "unreachable"


def test_a_paused_redis_is_waited_for_up_to_the_deadline_and_a_miss_past_it_is_counted(
    tmp_path, supervisor
):
    """A stall shorter than the route's deadline costs the request time, not its flow; one
    longer than the deadline is an affinity miss, and the status says so."""
    redis_cfg = StackConfig.on_free_ports(tmp_path / "redis")
    redis = supervisor.start(redis_spec(redis_cfg, persist=False))
    url = redis_cfg.effective_redis_url
    cfg, routes, backends = start(tmp_path, supervisor, url, ttl=600, store_timeout=30)

    def status() -> dict:
        return admin_status(cfg.admin_url)

    wait_for(lambda: status()["affinity"] == "ok", what="affinity connected")
    assert served_by(cfg.proxy_url, "+15557654321") == "a"
    flip_to_b(cfg, routes, backends, ttl=600, store_timeout=30)  # that key is now looked up

    with ThreadPoolExecutor(1) as pool:
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            answer = pool.submit(served_by, cfg.proxy_url, "+15557654321", 60)
            wait_for(lambda: status()["affinity_store"] == "stalled", what="the stall noticed")
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        assert answer.result() == "a"  # asked during the pause, answered after it: its flow
    assert status()["affinity_last_minute"]["misses"] == 0

    # The same table with a deadline shorter than the next pause (not a flip: same split).
    write(routes, routes_text(backends, percent=100, ttl=600, store_timeout=0.3))

    def reloaded() -> bool:  # in every worker: the status shows the newest worker's routes
        now = status()
        return now["converged"] and now["routes"][0]["sticky"]["store_timeout"] == 0.3

    wait_for(reloaded, what="the reload in every worker")
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        assert served_by(cfg.proxy_url, "+15557654321", timeout=30) == "b"  # the hash, blind
        wait_for(lambda: status()["affinity_last_minute"]["misses"] >= 1, what="the miss")
        assert status()["affinity"] == "degraded"
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    wait_for(lambda: status()["affinity_store"] == "answering", what="Redis answering again")
    # b answered it blind, so b holds its flow now: that is the placement it keeps.
    assert [served_by(cfg.proxy_url, "+15557654321") for _ in range(4)] == ["b"] * 4


def test_an_answer_goes_out_only_once_redis_has_its_placement(tmp_path, supervisor):
    """Confirmed placements: while Redis is paused the answer waits (within the deadline), so
    the user's next request, at whichever worker, finds the placement."""
    redis_cfg = StackConfig.on_free_ports(tmp_path / "redis")
    redis_server = supervisor.start(redis_spec(redis_cfg, persist=False))
    url = redis_cfg.effective_redis_url
    cfg, _, _ = start(tmp_path, supervisor, url, ttl=600, store_timeout=30)
    wait_for(lambda: admin_status(cfg.admin_url)["affinity"] == "ok", what="affinity connected")
    client = redis.Redis.from_url(url, decode_responses=True)
    with ThreadPoolExecutor(1) as pool:
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            answer = pool.submit(served_by, cfg.proxy_url, "+15553334444", 60)
            wait_for(
                lambda: admin_status(cfg.admin_url)["affinity_backlog"] >= 1,
                what="the placement waiting for Redis",
            )
            assert not answer.done()  # held: the client has nothing yet
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        assert answer.result() == "a"
    assert client.get(store_key("verification", "+15553334444")) == "a"  # stored first
    client.close()
