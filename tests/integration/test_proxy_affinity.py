"""Flows survive flips: a key keeps the backend that served it for the ttl (shared in Redis)."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from strangler.stack.specs import StackConfig, proxy_spec, redis_spec
from strangler.stack.supervisor import free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, admin_status, echo_spec, routes_text, served_by
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.redis]


def start(tmp_path, supervisor, redis_url: str, ttl: int):
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=0, ttl=ttl))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN},
        workers=2,
    )
    supervisor.start(echo_spec("a", a))
    supervisor.start(echo_spec("b", b))
    supervisor.start(proxy_spec(cfg, routes))
    return cfg, routes, backends


def flip_to_b(cfg, routes, backends, ttl):
    write(routes, routes_text(backends, percent=100, ttl=ttl))
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


def test_without_redis_the_proxy_routes_on_the_hash_and_says_degraded(tmp_path, supervisor):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    cfg, routes, backends = start(tmp_path, supervisor, dead_redis, ttl=600)
    assert admin_status(cfg.admin_url)["affinity"] == "degraded"
    assert served_by(cfg.proxy_url, "+15557654321") == "a"
    flip_to_b(cfg, routes, backends, ttl=600)
    assert served_by(cfg.proxy_url, "+15557654321") == "b"


def test_a_hung_redis_is_reported_degraded_and_recovers(tmp_path, supervisor):
    """A Redis that accepts connections but never answers (stopped) is no affinity store."""
    redis_cfg = StackConfig.on_free_ports(tmp_path / "redis")
    redis = supervisor.start(redis_spec(redis_cfg, persist=False))
    cfg, routes, backends = start(tmp_path, supervisor, redis_cfg.effective_redis_url, ttl=600)

    def status() -> dict:
        return admin_status(cfg.admin_url)

    wait_for(lambda: status()["affinity"] == "ok", what="affinity connected")
    assert served_by(cfg.proxy_url, "+15557654321") == "a"
    flip_to_b(cfg, routes, backends, ttl=600)  # from now on that key needs a lookup

    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: status()["affinity"] == "degraded", what="the hang in the status")
        # The hash decides, without waiting on the hung Redis: a hang would time out.
        assert served_by(cfg.proxy_url, "+15557654321", timeout=5) == "b"
        wait_for(lambda: status()["affinity_failed_recalls"] >= 1, what="the failed lookup")
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    wait_for(lambda: status()["affinity"] == "ok", what="affinity back once Redis answers")
    assert [served_by(cfg.proxy_url, "+15557654321") for _ in range(4)] == ["a"] * 4
