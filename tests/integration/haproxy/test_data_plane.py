"""The HAProxy data plane under its agent: live flips, seamless reloads, refusals, failover.

Real HAProxy (as `strangler up --data-plane haproxy` runs it) in front of the echo backends
under gunicorn, driven only by edits of the routes file, as an engineer's `shift` drives it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from strangler.haproxy.runtime import RuntimeAPI
from strangler.stack.specs import StackConfig, haproxy_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.haproxy.support import needs_haproxy
from tests.integration.polling import wait_for
from tests.integration.proxy_support import (
    ADMIN_TOKEN,
    INTERNAL_TOKEN,
    Load,
    admin_status,
    echo_spec,
    routes_text,
    served_by,
)
from tests.integration.proxy_support import write_atomically as write

pytestmark = [needs_haproxy, pytest.mark.live, pytest.mark.slow]


@dataclass
class Plane:
    cfg: StackConfig
    routes: Path
    backends: dict[str, str]
    supervisor: Supervisor
    api: RuntimeAPI

    @property
    def url(self) -> str:
        return self.cfg.proxy_url

    def worker_pid(self) -> str:
        return self.api.info()["Pid"]


@pytest.fixture
def plane(tmp_path: Path, supervisor: Supervisor) -> Iterator[Plane]:
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=0))
    env = {
        "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRANGLER_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "STRANGLER_CIRCUIT_COOLDOWN": "0.2",
    }
    cfg = replace(StackConfig.on_free_ports(tmp_path / "var"), env=env, workers=2)
    supervisor.start(echo_spec("a", a, "gthread"))
    supervisor.start(echo_spec("b", b, "gthread"))
    supervisor.start(haproxy_spec(cfg, routes))
    api = RuntimeAPI(cfg.var_dir.resolve() / "haproxy" / "haproxy.sock")
    yield Plane(cfg, routes, backends, supervisor, api)


def fresh() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def keyed_send(url: str):
    def request(session: requests.Session, i: int) -> requests.Response:
        body = json.dumps({"to": fresh()})
        headers = {"Content-Type": "application/json"}
        return session.post(url + "/api/verification/send", data=body, headers=headers, timeout=10)

    return request


def routes_to(url: str, backend: str, samples: int = 6) -> bool:
    return all(served_by(url, fresh()) == backend for _ in range(samples))


def test_twenty_flips_under_load_go_through_the_runtime_api_and_drop_nothing(plane) -> None:
    pid = plane.worker_pid()
    with Load(keyed_send(plane.url), threads=4) as load:
        for change in range(20):
            percent = 100 if change % 2 == 0 else 0
            write(plane.routes, routes_text(plane.backends, percent=percent))
            target = "b" if percent else "a"
            wait_for(lambda t=target: routes_to(plane.url, t), what=f"split -> {target}")
    assert load.total() > 100
    assert load.failures == []
    assert set(load.statuses) == {200}
    assert load.backends["a"] and load.backends["b"]
    status = admin_status(plane.cfg.admin_url)
    assert (status["generation"], status["converged"], status["data_plane"]) == (
        21,
        True,
        "haproxy",
    )
    assert plane.worker_pid() == pid  # every flip was a `set map`: no reload, no new process


def test_a_change_the_map_cannot_carry_reloads_seamlessly_and_keeps_every_flow(plane) -> None:
    pinned = [fresh() for _ in range(20)]
    assert {served_by(plane.url, to) for to in pinned} == {"a"}  # remembered at 0 %
    pid = plane.worker_pid()
    extra = "  - name: extra\n    match: {prefix: /extra/}\n    split: {b: 100}\n"
    with Load(keyed_send(plane.url), threads=4) as load:
        wait_for(lambda: load.total() > 50, what="load")
        write(plane.routes, routes_text(plane.backends, percent=100, extra_routes=extra))
        wait_for(lambda: plane.worker_pid() != pid, what="a new HAProxy worker")
        wait_for(lambda: load.total() > 200, what="load after the reload")
    assert load.failures == [] and set(load.statuses) == {200}
    assert requests.get(plane.url + "/extra/x", timeout=5).headers["X-Strangler-Backend"] == "b"
    # The stick table passed to the new process: flows sent at 0 % still go to `a` at 100 %.
    assert {served_by(plane.url, to) for to in pinned} == {"a"}
    assert routes_to(plane.url, "b")


def test_an_invalid_file_is_refused_whole_and_the_running_table_stays(plane) -> None:
    write(plane.routes, routes_text(plane.backends, percent=100))
    wait_for(lambda: routes_to(plane.url, "b"), what="100 % to b")
    write(plane.routes, routes_text(plane.backends, percent=100).replace("b: 100", "b: 90"))

    def refused() -> str | None:
        return admin_status(plane.cfg.admin_url)["last_reload_error"]

    error = wait_for(refused, what="the refusal in the status")
    assert str(plane.routes) in error and "routes[0] (verification).split" in error
    assert routes_to(plane.url, "b")
    write(plane.routes, routes_text(plane.backends, percent=0))
    wait_for(lambda: refused() is None and routes_to(plane.url, "a"), what="the fixed file")


def test_killing_the_new_backend_under_load_costs_no_new_request(plane) -> None:
    write(plane.routes, routes_text(plane.backends, percent=100))
    wait_for(lambda: routes_to(plane.url, "b"), what="100 % to b")
    service = next(c for c in plane.supervisor.children if c.name == "echo-b")
    with Load(keyed_send(plane.url), threads=4) as load:
        wait_for(lambda: load.backends["b"] > 20, what="traffic on b")
        plane.supervisor.kill(service)
        served_by_a = load.backends["a"]
        wait_for(lambda: load.backends["a"] > served_by_a + 50, what="traffic failing over to a")
        circuit = admin_status(plane.cfg.admin_url)["backends"]["b"]["circuit"]
        assert circuit in ("open", "half_open")
        plane.supervisor.start(echo_spec("b", int(plane.backends["b"].rsplit(":", 1)[1])))
        served_by_b = load.backends["b"]
        wait_for(lambda: load.backends["b"] > served_by_b + 50, timeout=20, what="b back")
    # Only a request already written to b when it died may fail, never replayed (it may
    # have acted): HAProxy answers 502, closes a kept-alive client connection as the server
    # did, or cuts an answer the server was sending (IncompleteRead). That is one in flight per
    # client thread, plus one per thread in the milliseconds the kernel takes to tear down the
    # killed processes' sockets.
    cut = ("RemoteDisconnected", "IncompleteRead")
    in_flight = [f for f in load.failures if f.startswith("502 ") or any(c in f for c in cut)]
    assert in_flight == load.failures
    assert len(load.failures) <= 2 * 4, load.failures


def test_requests_reach_backends_as_the_embedded_proxy_sends_them(plane) -> None:
    headers = {
        "X-Strangler-Shadow": "1",
        "x-strangler-force-backend": "b",
        "X_Strangler_Internal_Token": "forged",
        "X-Forwarded-Proto": "https",
        "X-Request-Id": "client-id-1",
    }
    resp = requests.get(plane.url + "/api/threads", headers=headers, timeout=5)
    echoed = resp.json()["headers"]
    assert resp.headers["X-Strangler-Backend"] == "a"  # no token: the override is ignored
    assert resp.headers["X-Request-Id"] == "client-id-1" == echoed["x-request-id"]
    assert "x-strangler-shadow" not in echoed and "x-strangler-force-backend" not in echoed
    assert echoed["x-strangler-internal-token"] == INTERNAL_TOKEN  # ours, never the client's
    assert echoed["x-forwarded-proto"] == "http" and "127.0.0.1" in echoed["x-forwarded-for"]
    fresh_id = requests.get(plane.url + "/x", headers={"X-Request-Id": "bad id!"}, timeout=5)
    assert fresh_id.headers["X-Request-Id"] not in ("", "bad id!")

    forced = dict(headers, **{"X-Strangler-Admin-Token": ADMIN_TOKEN})
    assert (
        requests.get(plane.url + "/x", headers=forced, timeout=5).headers["X-Strangler-Backend"]
        == "b"
    )

    own = requests.get(plane.url + "/_strangler/status", timeout=5)
    assert own.status_code == 404 and own.json()["error"] == "not_found"
    assert own.headers["X-Strangler-Backend"] == "proxy"
    big = requests.post(
        plane.url + "/api/verification/send", data=b"x" * (1024 * 1024 + 1), timeout=10
    )
    assert (big.status_code, big.json()["error"]) == (413, "payload_too_large")


def test_the_admin_side_needs_its_token_and_serves_metrics(plane) -> None:
    admin = plane.cfg.admin_url
    assert requests.get(admin + "/_strangler/status", timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert requests.get(admin + "/_strangler/status", headers=bearer, timeout=5).ok
    metrics = requests.get(
        admin + "/_strangler/metrics", headers={"X-Strangler-Admin-Token": ADMIN_TOKEN}, timeout=5
    )
    assert metrics.ok and "haproxy_backend_http_responses_total" in metrics.text
    wrong = requests.get(
        admin + "/_strangler/status", headers={"X-Strangler-Admin-Token": "nope"}, timeout=5
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"


def test_a_flow_on_a_backend_that_is_down_is_told_to_retry_not_sent_elsewhere(plane) -> None:
    write(plane.routes, routes_text(plane.backends, percent=100))
    wait_for(lambda: routes_to(plane.url, "b"), what="100 % to b")
    pinned = fresh()
    assert served_by(plane.url, pinned) == "b"
    write(plane.routes, routes_text(plane.backends, percent=0))
    wait_for(lambda: routes_to(plane.url, "a"), what="0 %: new users on a")
    assert served_by(plane.url, pinned) == "b"  # its flow stays where it started
    plane.supervisor.kill(next(c for c in plane.supervisor.children if c.name == "echo-b"))
    wait_for(
        lambda: admin_status(plane.cfg.admin_url)["backends"]["b"]["circuit"] == "open",
        what="b's circuit open",
    )
    body = json.dumps({"to": pinned})
    answer = requests.post(
        plane.url + "/api/verification/send", data=body, timeout=10,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert (answer.status_code, answer.json().get("error")) == (503, "unavailable"), answer.text
    assert answer.headers["Retry-After"] == "1"
    assert served_by(plane.url, fresh()) == "a"  # a new user is not held back
