"""`strangler up`: the whole stack from one command, and nothing left behind when it stops."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from strangler.control import dataplane
from strangler.stack.sink import WebhookSink
from strangler.stack.supervisor import free_port, http_ready
from tests.integration.polling import wait_for
from tests.integration.processes import alive, descendants
from tests.repository import REPO

pytestmark = [pytest.mark.live, pytest.mark.redis]

PHONE = "+15557654321"


def banner(public_url: str) -> str:
    return f"public URL    {public_url}"


def up_environment(tmp_path: Path, sink: WebhookSink) -> tuple[dict, dict[str, int], Path]:
    """The environment of a `strangler up` on free ports with its own Redis and var dir, the
    ports, and a copy of the shipped routes.yaml."""
    ports = {name: free_port() for name in ("proxy", "admin", "monolith", "service", "redis")}
    routes = tmp_path / "routes.yaml"
    shutil.copy(REPO / "proxy" / "routes.yaml", routes)
    env = {
        **os.environ,
        "STRANGLER_PROXY_BIND": f"127.0.0.1:{ports['proxy']}",
        "STRANGLER_ADMIN_BIND": f"127.0.0.1:{ports['admin']}",
        "MONOLITH_BIND": f"127.0.0.1:{ports['monolith']}",
        "VERIFICATION_BIND": f"127.0.0.1:{ports['service']}",
        "STRANGLER_REDIS_BIND": f"127.0.0.1:{ports['redis']}",
        "STRANGLER_VAR": str(tmp_path / "var"),
        "VERIFICATION_WEBHOOK_URL": sink.url,
    }
    env.pop("REDIS_URL", None)
    return env, ports, routes


@pytest.fixture
def stack(tmp_path: Path, sink: WebhookSink) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    env, ports, routes = up_environment(tmp_path, sink)
    argv = [sys.executable, "-m", "strangler.cli", "up", "--workers", "1", "--routes", str(routes)]
    log = (tmp_path / "up.log").open("wb")  # a file, not a pipe nobody drains while it runs
    process = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    env["PUBLIC_URL"] = f"http://127.0.0.1:{ports['proxy']}"
    env["ADMIN_URL"] = f"http://127.0.0.1:{ports['admin']}"
    env["UP_LOG"] = log.name
    try:
        yield process, env
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        log.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_a_flow_on_one_url_and_stops_every_process(stack, sink, signum) -> None:
    process, env = stack
    public = env["PUBLIC_URL"]
    log = Path(env["UP_LOG"])
    # `up` prints its banner once every child is ready: that, not a port, is its readiness.
    wait_for(lambda: banner(public) in log.read_text(), "the banner", timeout=90)
    assert http_ready(env["ADMIN_URL"] + "/_strangler/status")()
    assert http_ready(public + "/healthz")()
    # redis, monolith (master + worker), service (master + worker), consumer, proxy + worker
    tree = descendants(process.pid)
    assert len(tree) >= 8, tree
    # Recorded before the banner, so `shift` and `status` find it with no port given.
    var = Path(env["STRANGLER_VAR"])
    plane = dataplane.load(var)
    assert plane is not None and plane.pid == process.pid
    assert (plane.kind, plane.admin_url) == ("embedded", env["ADMIN_URL"])

    send = {"to": PHONE, "channel": "sms"}
    sent = requests.post(public + "/api/verification/send", json=send, timeout=30)
    assert sent.status_code == 201, sent.text
    assert sent.headers["X-Strangler-Backend"] == "monolith"
    code = sink.latest_code(PHONE)
    check = {"to": PHONE, "code": code}
    checked = requests.post(public + "/api/verification/check", json=check, timeout=30)
    assert checked.json()["status"] == "approved"

    process.send_signal(signum)
    assert process.wait(60) == 0
    assert "every process stopped" in log.read_text()
    assert not dataplane.path(var).exists()
    wait_for(lambda: not any(alive(pid) for pid in tree), "every child to exit")
