"""Redis stopped, hung and restarted under a running service: fast 503s, then recovery."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from strangler.stack.sink import WebhookSink
from strangler.stack.specs import StackConfig, redis_spec, service_spec
from strangler.stack.supervisor import Child, Supervisor, http_ready
from tests.integration.polling import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.live, pytest.mark.slow]

# The contract's bound for an answer while Redis is down. The service gives up on Redis
# after 0.5 s (connect/read timeouts, no retries), so 2 s leaves room for a loaded machine;
# the client waits longer than that, so a hang shows up as a failed bound, not a timeout.
UNAVAILABLE_WITHIN = 2.0
CLIENT_TIMEOUT = 5.0
PHONE = "+15551239999"


@pytest.fixture
def stack(tmp_path: Path, sink: WebhookSink) -> StackConfig:
    """A stack with a redis-server of its own: these tests stop it."""
    cfg = StackConfig.on_free_ports(tmp_path / "var", workers=1)
    return replace(cfg, env={"VERIFICATION_WEBHOOK_URL": sink.url})


def start(supervisor: Supervisor, stack: StackConfig) -> tuple[Child, Child]:
    """(redis, service)"""
    return supervisor.start(redis_spec(stack)), supervisor.start(service_spec(stack))


def assert_unavailable_fast(url: str) -> None:
    calls = [
        ("post", "/api/verification/send", {"to": PHONE, "channel": "sms"}),
        ("post", "/api/verification/check", {"to": PHONE, "code": "123456"}),
        ("get", "/healthz", None),
    ]
    for method, path, body in calls:
        started = time.monotonic()
        resp = requests.request(method, url + path, json=body, timeout=CLIENT_TIMEOUT)
        elapsed = time.monotonic() - started
        assert resp.status_code == 503, path
        assert resp.json()["error"] == "unavailable"
        assert "Traceback" not in resp.text
        assert elapsed < UNAVAILABLE_WITHIN, f"{path} took {elapsed:.2f}s"


def wait_healthy(url: str, timeout: float = 15.0) -> None:
    wait_for(http_ready(url + "/healthz"), "the service to recover", timeout=timeout)


def test_redis_stopped_gives_503_and_the_service_recovers_without_restart(
    supervisor: Supervisor, stack: StackConfig, sink: WebhookSink
):
    redis_child, service = start(supervisor, stack)
    url = stack.service_url
    assert (
        requests.post(
            url + "/api/verification/send",
            json={"to": PHONE, "channel": "sms"},
            timeout=CLIENT_TIMEOUT,
        ).status_code
        == 201
    )
    code = sink.latest_code(PHONE)
    service_pid = service.process.pid

    supervisor.stop(redis_child)
    assert_unavailable_fast(url)

    supervisor.start(redis_spec(stack))  # same port, same data directory
    wait_healthy(url)
    checked = requests.post(
        url + "/api/verification/check", json={"to": PHONE, "code": code}, timeout=CLIENT_TIMEOUT
    )
    assert checked.json()["status"] == "approved"  # the code survived in Redis's AOF
    assert service.alive()
    assert service.process.pid == service_pid


def test_hung_redis_gives_503_fast_instead_of_hanging(supervisor: Supervisor, stack: StackConfig):
    redis_child, _ = start(supervisor, stack)
    url = stack.service_url
    wait_healthy(url)
    # A stopped process still accepts TCP connections (the kernel queues them) but never
    # answers: only the service's read timeout saves it.
    os.kill(redis_child.process.pid, signal.SIGSTOP)
    try:
        assert_unavailable_fast(url)
    finally:
        os.kill(redis_child.process.pid, signal.SIGCONT)
    wait_healthy(url)
    resp = requests.post(
        url + "/api/verification/send", json={"to": PHONE, "channel": "sms"}, timeout=CLIENT_TIMEOUT
    )
    assert resp.status_code == 201
