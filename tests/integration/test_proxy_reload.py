"""Hot reload under load: every change applies in every worker, no request fails."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, Load, admin_status, echo_spec, routes_text, served_by
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.redis]
FRESH = itertools.count()  # keys no backend served yet: their backend is the split's


@dataclass
class Stack:
    cfg: StackConfig
    routes: Path
    backends: dict[str, str]


@pytest.fixture
def stack(tmp_path: Path, supervisor: Supervisor, redis_url: str) -> Iterator[Stack]:
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=0))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN},
        workers=2,
    )
    supervisor.start(echo_spec("a", a, "gthread"))
    supervisor.start(echo_spec("b", b, "gthread"))
    supervisor.start(proxy_spec(cfg, routes))
    yield Stack(cfg, routes, backends)


def all_workers_route_to(url: str, backend: str, samples: int = 8) -> bool:
    """Fresh connections land on workers at random: several agreeing answers cover both.

    Each probe is a new key: a key served before keeps its backend after a flip (affinity).
    """
    return all(served_by(url, f"+1777{next(FRESH):07d}") == backend for _ in range(samples))


def test_twenty_changes_under_load_drop_no_request(stack):
    url = stack.cfg.proxy_url

    def request(session: requests.Session, i: int) -> requests.Response:
        if i % 2:
            return session.get(url + f"/api/threads?page={i}", timeout=10)
        body = json.dumps({"to": f"+1555{i:07d}"})
        headers = {"Content-Type": "application/json"}
        return session.post(url + "/api/verification/send", data=body, headers=headers, timeout=10)

    with Load(request, threads=4) as load:
        for change in range(20):
            percent = 100 if change % 2 == 0 else 0
            write(stack.routes, routes_text(stack.backends, percent=percent))
            target = "b" if percent else "a"
            wait_for(lambda t=target: all_workers_route_to(url, t), what=f"split -> {target}")
    assert load.total() > 100
    assert load.failures == []
    assert set(load.statuses) == {200}
    assert load.backends["a"] and load.backends["b"]
    status = wait_for(
        lambda: (s := admin_status(stack.cfg.admin_url))["converged"] and s,
        what="every worker reporting the last table",
    )
    assert status["generation"] == 21


def test_an_invalid_file_is_refused_whole_and_reported(stack):
    url, admin = stack.cfg.proxy_url, stack.cfg.admin_url
    write(stack.routes, routes_text(stack.backends, percent=100))
    wait_for(lambda: all_workers_route_to(url, "b"), what="split -> b")
    before = admin_status(admin)
    broken = routes_text(stack.backends, percent=100).replace("fallback: a", "fallback: nobody")
    write(stack.routes, broken)

    def error_reported() -> str | None:
        return admin_status(admin)["last_reload_error"]

    error = wait_for(error_reported, what="the reload error in the status")
    assert str(stack.routes) in error and "nobody" in error
    assert all_workers_route_to(url, "b")
    after = admin_status(admin)
    assert after["generation"] == before["generation"] and after["digest"] == before["digest"]

    write(stack.routes, routes_text(stack.backends, percent=0))
    wait_for(lambda: all_workers_route_to(url, "a"), what="split -> a after the fix")
    wait_for(lambda: admin_status(admin)["last_reload_error"] is None, what="error cleared")


def test_a_restarted_worker_serves_the_file_as_it_is_now(stack):
    url, admin = stack.cfg.proxy_url, stack.cfg.admin_url
    write(stack.routes, routes_text(stack.backends, percent=100))
    shifted = wait_for(
        lambda: (s := admin_status(admin))["converged"] and s["generation"] == 2 and s,
        what="every worker on the shifted table",
    )
    victim, survivor = (w["pid"] for w in shifted["workers"])
    os.kill(victim, signal.SIGKILL)

    def replaced() -> dict | None:
        try:
            status = admin_status(admin)
        except requests.ConnectionError:
            return None  # a connection the dying worker had queued but never accepted
        pids = {w["pid"] for w in status["workers"]}
        return status if len(pids) == 2 and survivor in pids and victim not in pids else None

    status = wait_for(replaced, what="the killed worker's replacement in the status")
    assert {w["digest"] for w in status["workers"]} == {shifted["digest"][:12]}
    assert status["converged"] and status["digest"] == shifted["digest"]
    # fresh connections land on either worker: none of them may route on the start-up table
    served = [served_by(url, f"+1666{i:07d}") for i in range(40)]
    assert served == ["b"] * 40
