"""The proxy's processes: a dead worker is replaced, SIGTERM lets requests under way finish."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, admin_status, echo_spec, routes_text
from .proxy_support import write_atomically as write

pytestmark = pytest.mark.live


def start(tmp_path, supervisor):
    a = free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{a}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var"),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN},
        workers=2,
    )
    supervisor.start(echo_spec("a", a, "gthread"))
    return cfg, supervisor.start(proxy_spec(cfg, routes))


def test_a_killed_worker_is_replaced(tmp_path, supervisor):
    cfg, proxy = start(tmp_path, supervisor)
    pids = {w["pid"] for w in admin_status(cfg.admin_url)["workers"]}
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        try:
            workers = admin_status(cfg.admin_url)["workers"]
        except requests.ConnectionError:
            # the admin request may reach the killed worker in its last moment
            return False
        current = {w["pid"] for w in workers}
        return len(workers) == 2 and victim not in current and not any(w["stale"] for w in workers)

    wait_for(replaced, what="a new worker in the dead one's place")
    assert proxy.alive()
    assert all(requests.get(cfg.proxy_url + "/x", timeout=10).ok for _ in range(10))


def test_sigterm_drains_requests_under_way(tmp_path, supervisor):
    cfg, proxy = start(tmp_path, supervisor)
    answers: list[int] = []

    def slow() -> None:
        answers.append(requests.get(cfg.proxy_url + "/slow?seconds=3", timeout=10).status_code)

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: admin_status(cfg.admin_url)["in_flight"] >= 4,
        what="the slow requests inside the proxy",
    )
    os.kill(proxy.process.pid, signal.SIGTERM)
    for thread in threads:
        thread.join(15)
    assert answers == [200, 200, 200, 200]
    assert proxy.process.wait(15) == 0
