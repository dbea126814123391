"""Failover: a backend killed under load costs no client a connect error, and comes back."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, Load, admin_status, echo_spec, routes_text
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.redis]
# What a backend killed mid-request leaves its client: the proxy's 502 when no byte of the
# answer had come, or a cut-off body (the head was on its way) that the client must not take
# as whole. Both were written to b before it died: they may have acted, so none is replayed.
IN_FLIGHT = ("closed the connection without answering", "ChunkedEncodingError(")


def test_killing_the_new_backend_under_load(tmp_path, supervisor, redis_url):
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=100))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN, "STRANGLER_CIRCUIT_COOLDOWN": "0.2"},
        workers=2,
    )
    supervisor.start(echo_spec("a", a, "sync"))
    service = supervisor.start(echo_spec("b", b, "gthread"))
    supervisor.start(proxy_spec(cfg, routes))
    url = cfg.proxy_url
    users = itertools.count()

    def request(session: requests.Session, i: int) -> requests.Response:
        # A new user each time: a user b had served would be answered 503 while b is down
        # (its flow is nowhere else), not failed over; test_proxy_faults.py shows that.
        body = json.dumps({"to": f"user{next(users)}@example.com"})
        headers = {"Content-Type": "application/json"}
        return session.post(url + "/api/verification/send", data=body, headers=headers, timeout=10)

    with Load(request, threads=4) as load:
        wait_for(lambda: load.backends["b"] > 20, what="traffic on b")
        supervisor.kill(service)
        served_by_a = load.backends["a"]
        wait_for(lambda: load.backends["a"] > served_by_a + 50, what="traffic failing over to a")
        # The worker whose circuit opened published it at once (not up to a second later,
        # which let the status still say `closed` here while the load had moved to a).
        status = admin_status(cfg.admin_url)
        assert status["backends"]["b"]["circuit"] in ("open", "half_open")

        supervisor.start(echo_spec("b", b, "gthread"))
        served_by_b = load.backends["b"]
        wait_for(lambda: load.backends["b"] > served_by_b + 50, timeout=15, what="b back")

    # No client saw a connect error: a backend that cannot be reached gets no request.
    assert [f for f in load.failures if "could not be reached" in f] == []
    # What may fail is only a request that had already been written to b when it died: the
    # one in flight per client thread, plus one more per thread in the few milliseconds the
    # kernel takes to tear down the killed processes' sockets.
    in_flight = [f for f in load.failures if any(mark in f for mark in IN_FLIGHT)]
    assert in_flight == load.failures
    assert len(load.failures) <= 2 * 4, load.failures
    wait_for(
        lambda: admin_status(cfg.admin_url)["backends"]["b"]["circuit"] == "closed",
        what="the circuit closed in every worker",
    )
