"""A refusal that means "I did nothing" is retried once on the fallback, never for a flow
the refusing backend holds, and the flow then stays on the fallback once that backend is back."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, accepts, admin_status, echo_spec, routes_text, served_by
from .proxy_support import write_atomically as write

pytestmark = [pytest.mark.live, pytest.mark.redis]
USERS = itertools.count()


@dataclass
class Stack:
    cfg: StackConfig
    refuse: Path  # while it exists, b answers 503 with the error code it holds
    port_b: int

    def refusing(self, code: str | None) -> None:
        if code is None:
            self.refuse.unlink(missing_ok=True)
        else:
            self.refuse.write_text(code)


@pytest.fixture
def stack(tmp_path: Path, supervisor: Supervisor, redis_url: str) -> Iterator[Stack]:
    a, b = free_port(), free_port()
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    routes = tmp_path / "routes.yaml"
    write(routes, routes_text(backends, percent=100, retry=True))  # every new key goes to b
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url),
        env={"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN},
        workers=2,
    )
    refuse = tmp_path / "b-refuses"
    supervisor.start(echo_spec("a", a))
    supervisor.start(echo_spec("b", b, "gthread", refuse_file=refuse))
    supervisor.start(proxy_spec(cfg, routes))
    wait_for(lambda: admin_status(cfg.admin_url)["affinity"] == "ok", what="affinity connected")
    stack = Stack(cfg, refuse, b)
    yield stack
    stack.refusing(None)


def send(url: str, to: str, padding: int = 0) -> requests.Response:
    body = json.dumps({"to": to, "channel": "sms", "padding": "x" * padding})
    return requests.post(
        url + "/api/verification/send", data=body,
        headers={"Content-Type": "application/json", "Connection": "close"}, timeout=10,
    )  # fmt: skip


def test_a_new_user_refused_by_b_is_answered_by_the_fallback_once_with_the_whole_body(stack):
    stack.refusing("unavailable")
    body = json.dumps({"to": f"new{next(USERS)}@x.example", "channel": "sms", "p": "x" * 200_000})
    resp = requests.post(
        stack.cfg.proxy_url + "/api/verification/send", data=body,
        headers={"Content-Type": "application/json"}, timeout=10,
    )  # fmt: skip
    assert resp.status_code == 200
    assert resp.headers["X-Strangler-Backend"] == "a"  # who really answered
    echo = resp.json()
    assert echo["backend"] == "a"
    assert echo["body_sha256"] == hashlib.sha256(body.encode()).hexdigest()  # sent again whole
    status = wait_for(
        lambda: (s := admin_status(stack.cfg.admin_url))["retries"]["total"] >= 1 and s,
        what="the retry in the status",
    )
    assert status["retries"]["by_route"] == [["verification", "b", "a", 1]]
    metrics = requests.get(
        stack.cfg.admin_url + "/_strangler/metrics",
        headers={"X-Strangler-Admin-Token": ADMIN_TOKEN}, timeout=5,
    ).text  # fmt: skip
    assert 'strangler_retries_total{route="verification",from="b",to="a"} 1' in metrics


def test_a_user_whose_flow_b_holds_is_never_sent_elsewhere(stack):
    user = f"known{next(USERS)}@x.example"
    assert served_by(stack.cfg.proxy_url, user) == "b"  # b sent this user's code
    stack.refusing("unavailable")
    refused = send(stack.cfg.proxy_url, user)
    assert refused.status_code == 503 and refused.headers["X-Strangler-Backend"] == "b"
    assert refused.json()["error"] == "unavailable"  # b's own answer, passed on unchanged
    assert admin_status(stack.cfg.admin_url)["retries"]["total"] == 0


def test_any_other_refusal_is_passed_on(stack):
    stack.refusing("busy")
    refused = send(stack.cfg.proxy_url, f"other{next(USERS)}@x.example")
    assert refused.status_code == 503 and refused.json()["error"] == "busy"
    assert refused.headers["X-Strangler-Backend"] == "b"


def test_once_b_is_back_the_retried_users_flow_stays_on_the_fallback(stack):
    """The send was answered by a; a check by the hash alone would reach b, which never
    sent that code: the retry opened a window in which b's keys are looked up."""
    stack.refusing("unavailable")
    user = f"diverted{next(USERS)}@x.example"
    assert send(stack.cfg.proxy_url, user).headers["X-Strangler-Backend"] == "a"
    stack.refusing(None)
    # New connections land on either worker: each knows, whichever retried the send.
    assert [served_by(stack.cfg.proxy_url, user) for _ in range(8)] == ["a"] * 8
    assert served_by(stack.cfg.proxy_url, f"fresh{next(USERS)}@x.example") == "b"


def test_a_user_whose_backend_is_down_is_told_to_try_again_and_a_new_one_fails_over(
    stack, supervisor
):
    """A backend that cannot be reached gets no request: a new user goes to the fallback,
    but a user that backend served is answered 503 (their flow is nowhere else)."""
    user = f"held{next(USERS)}@x.example"
    assert served_by(stack.cfg.proxy_url, user) == "b"
    supervisor.kill(supervisor.child("echo-b"))
    wait_for(lambda: not accepts(stack.port_b), what="b gone")  # nothing in flight to it
    refused = send(stack.cfg.proxy_url, user)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"] == "unavailable"
    assert served_by(stack.cfg.proxy_url, f"newcomer{next(USERS)}@x.example") == "a"
