"""The gateway duties through the real proxy: limits shared over workers in a real Redis (and
kept when it is paused), mocks replaced by a split, versions by header, the response cache."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec, redis_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, admin_status, echo_spec
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.redis]


@dataclass
class Gateway:
    cfg: StackConfig
    routes: Path
    redis_pid: int

    @property
    def url(self) -> str:
        return self.cfg.proxy_url

    def status(self) -> dict:
        return admin_status(self.cfg.admin_url)

    def apply(self, text: str) -> None:
        """A new routing table, waited for until every worker runs it."""
        before = self.status()["generation"]
        write(self.routes, text)
        wait_for(
            lambda: (s := self.status())["generation"] > before and s["converged"],
            what="the new table in every worker",
        )


def table(backends: dict[str, str], routes: str) -> str:
    lines = ["backends:", *(f'  {n}: {{url: "{u}"}}' for n, u in backends.items())]
    return "\n".join([*lines, "  stub: {mock: {status: 200, body: {mocked: true}}}",
                      "default_backend: a", "routes:", routes]) + "\n"  # fmt: skip


@pytest.fixture
def gateway(tmp_path: Path, supervisor: Supervisor) -> Iterator[Callable[[str], Gateway]]:
    """Start echo backends a and b, a Redis of the test's own, and a 2-worker proxy."""
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    supervisor.start(echo_spec("a", a, "gthread"))
    supervisor.start(echo_spec("b", b, "gthread"))
    cfg = StackConfig.on_free_ports(tmp_path / "var")
    redis = supervisor.start(redis_spec(cfg, persist=False, quiet=True))
    paused: list[int] = []

    def start(routes: str) -> Gateway:
        path = tmp_path / "routes.yaml"
        write(path, table(backends, routes))
        proxy_cfg = replace(cfg, env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN}, workers=2)
        supervisor.start(proxy_spec(proxy_cfg, path))
        pid = redis.process.pid
        paused.append(pid)
        return Gateway(proxy_cfg, path, pid)

    yield start
    for pid in paused:  # never leave a paused Redis behind a failed test
        os.kill(pid, signal.SIGCONT)


LIMITED = """
  - name: limited
    match: {prefix: /api/limited/}
    split: {a: 100}
    limit: {key: "header:X-User", rate: 1/m, burst: 5}
"""


def get(url: str, path: str, **headers: str) -> requests.Response:
    """A request on a new connection: over a run, every worker takes some."""
    return requests.get(url + path, headers={"Connection": "close", **headers}, timeout=10)


def test_a_limit_is_one_bucket_for_every_worker_and_refuses_with_a_json_429(gateway) -> None:
    gw = gateway(LIMITED)
    wait_for(lambda: gw.status()["gateway"]["throttle"] == "shared", what="Redis connected")
    answers = [get(gw.url, "/api/limited/x", **{"X-User": "ann"}) for _ in range(12)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 7  # 5 in all, not per worker
    assert [r.headers["RateLimit-Remaining"] for r in answers[:5]] == ["4", "3", "2", "1", "0"]
    refused = answers[5]
    assert refused.json() == {
        "error": "rate_limited", "message": refused.json()["message"],
    }  # fmt: skip
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["RateLimit-Limit"] == "5"
    assert refused.headers["X-Strangler-Backend"] == "proxy"
    assert get(gw.url, "/api/limited/x", **{"X-User": "bob"}).status_code == 200  # own bucket
    status = wait_for(
        lambda: (s := gw.status())["gateway"]["limited"]["total"] == 7 and s, what="counts"
    )
    assert status["gateway"]["limited"]["by_route"] == [["limited", "a", 7]]
    assert status["routes"][0]["gateway"]["limit"] == {"key": "header:x-user", "rate": "1/m",
                                                        "burst": 5}  # fmt: skip
    metrics = requests.get(
        gw.cfg.admin_url + "/_strangler/metrics",
        headers={"X-Strangler-Admin-Token": ADMIN_TOKEN},
        timeout=10,
    ).text
    assert 'strangler_limited_total{route="limited",backend="a"} 7' in metrics


def test_a_paused_redis_degrades_the_throttle_but_fails_no_request(gateway) -> None:
    gw = gateway(LIMITED.replace("rate: 1/m, burst: 5", "rate: 1000/s, burst: 1000"))
    wait_for(lambda: gw.status()["gateway"]["throttle"] == "shared", what="Redis connected")
    os.kill(gw.redis_pid, signal.SIGSTOP)
    try:
        statuses = Counter(get(gw.url, "/api/limited/x", **{"X-User": "u"}).status_code
                           for _ in range(10))  # fmt: skip
        assert statuses == {200: 10}  # decided by each worker alone: within its share
        status = wait_for(
            lambda: (s := gw.status())["gateway"]["throttle"] == "degraded" and s, what="degraded"
        )
        assert status["gateway"]["throttle_local"]["total"] >= 1
    finally:
        os.kill(gw.redis_pid, signal.SIGCONT)
    wait_for(lambda: gw.status()["affinity_store"] == "answering", what="Redis answering again")
    local = gw.status()["gateway"]["throttle_local"]["total"]
    wait_for(
        lambda: (
            get(gw.url, "/api/limited/x", **{"X-User": "u"}).status_code == 200
            and gw.status()["gateway"]["throttle_local"]["total"] == local
        ),
        what="limits decided by Redis again",
    )


def test_a_mock_answers_until_a_split_moves_its_traffic_to_a_real_backend(gateway) -> None:
    mocked = """
  - name: orders
    match: {prefix: /api/orders/}
    split: {stub: 100, b: 0}
    fallback: stub
"""
    gw = gateway(mocked)
    answer = get(gw.url, "/api/orders/1")
    assert (answer.status_code, answer.json()) == (200, {"mocked": True})
    assert answer.headers["X-Strangler-Backend"] == "stub" and answer.headers["X-Request-Id"]
    gw.apply(gw.routes.read_text().replace("{stub: 100, b: 0}", "{stub: 0, b: 100}"))
    answer = get(gw.url, "/api/orders/1")
    assert answer.headers["X-Strangler-Backend"] == "b" and answer.json()["path"] == "/api/orders/1"


def test_a_version_header_sends_v2_to_the_new_backend_and_the_rest_to_the_old(gateway) -> None:
    versions = """
  - name: v1
    match: {prefix: /api/verification/}
    split: {a: 100}
  - name: v2
    match: {prefix: /api/verification/, header: {Accept-Version: "2"}}
    split: {b: 100}
"""
    gw = gateway(versions)
    by = {
        version: get(gw.url, "/api/verification/x", **({"Accept-Version": version} if version
                     else {})).headers["X-Strangler-Backend"]
        for version in ("2", "1", "")
    }  # fmt: skip
    assert by == {"2": "b", "1": "a", "": "a"}


def served_again(answer: requests.Response) -> bool:
    """True when the backend answered this request (its echo names this request's id)."""
    return answer.json()["headers"]["x-request-id"] == answer.headers["X-Request-Id"]


def test_a_cached_answer_is_given_with_its_age_and_never_an_error_or_a_cookie(gateway) -> None:
    cached = """
  - name: reads
    match: {prefix: /, methods: [GET]}
    split: {a: 100}
    cache: {ttl: 0}
"""
    gw = gateway(cached)
    path = "/api/threads?set=Cache-Control:max-age=60"
    with requests.Session() as session:  # one connection: one worker, one cache
        first, second = (session.get(gw.url + path, timeout=10) for _ in range(2))
        assert first.headers["X-Strangler-Cache"] == "miss" and served_again(first)
        assert second.headers["X-Strangler-Cache"] == "hit" and not served_again(second)
        assert second.json() == first.json() and int(second.headers["Age"]) >= 0
        assert second.headers["X-Strangler-Backend"] == "a"
        for uncachable in (
            "/status/500?set=Cache-Control:max-age=60",
            "/api/threads?set=Cache-Control:max-age=60&set=Set-Cookie:sid=1",
            "/api/threads?set=Cache-Control:private,max-age=60",
            "/api/threads?x=no-max-age",
        ):
            answers = [session.get(gw.url + uncachable, timeout=10) for _ in range(2)]
            assert all(a.headers["X-Strangler-Cache"] == "miss" for a in answers), uncachable
        fresh = session.get(gw.url + path, headers={"Cache-Control": "no-cache"}, timeout=10)
        assert fresh.headers["X-Strangler-Cache"] == "miss" and served_again(fresh)
        vary = "/api/threads?set=Cache-Control:max-age=60&set=Vary:Accept-Language"
        de = [session.get(gw.url + vary, headers={"Accept-Language": "de"}, timeout=10)
              for _ in range(2)]  # fmt: skip
        en = session.get(gw.url + vary, headers={"Accept-Language": "en"}, timeout=10)
        assert [a.headers["X-Strangler-Cache"] for a in (*de, en)] == ["miss", "hit", "miss"]
        assert json.loads(en.content)["headers"]["accept-language"] == "en"
    cache = wait_for(lambda: (c := gw.status()["gateway"]["cache"])["hits"] >= 2 and c, "hits")
    assert cache["entries"] >= 2 and 0 < cache["bytes"] <= cache["max_bytes"]
