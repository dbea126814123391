"""`strangler up --data-plane haproxy`: the README's session on real HAProxy, shifted and back."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from strangler.stack.sink import WebhookSink
from tests.integration.haproxy.support import needs_haproxy
from tests.integration.polling import wait_for
from tests.integration.test_strangler_up import alive, descendants, up_environment

pytestmark = [needs_haproxy, pytest.mark.live, pytest.mark.redis, pytest.mark.slow]


def strangler(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "strangler", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_up_on_haproxy_serves_a_flow_and_shifts_live(tmp_path: Path, sink: WebhookSink) -> None:
    env, ports, routes = up_environment(tmp_path, sink)
    env.update(STRANGLER_ROUTES=str(routes), STRANGLER_DATA_PLANE="haproxy")
    public = f"http://127.0.0.1:{ports['proxy']}"
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "strangler", "up", "--workers", "1"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: f"public URL    {public}" in log_path.read_text(), "the banner", 90)
        assert "consumer, haproxy running" in log_path.read_text()
        user = requests.post(
            public + "/api/users", json={"name": "Ann", "phone": "+15551230001"}, timeout=30
        )
        assert user.status_code == 201
        sent = requests.post(
            public + "/api/verification/send",
            json={"to": "+15551230001", "channel": "sms"},
            timeout=30,
        )
        assert (sent.status_code, sent.headers["X-Strangler-Backend"]) == (201, "monolith")

        shifted = strangler(env, "shift", "verification", "100", "--reason", "all in")
        assert shifted.returncode == 0, shifted.stderr
        assert "live: HAProxy at" in shifted.stdout and "serves generation 2" in shifted.stdout
        status = strangler(env, "status")
        assert status.stdout.startswith("haproxy: generation 2"), status.stdout
        assert "monolith 0% / verification 100%" in status.stdout

        # The flow started at 0 % is checked by the backend that sent its code.
        code = sink.latest_code("+15551230001")
        check = {"to": "+15551230001", "code": code}
        checked = requests.post(public + "/api/verification/check", json=check, timeout=30)
        assert checked.json()["status"] == "approved"
        assert checked.headers["X-Strangler-Backend"] == "monolith"
        fresh = requests.post(
            public + "/api/verification/send",
            json={"to": "+15551230003", "channel": "sms"},
            timeout=30,
        )
        assert fresh.headers["X-Strangler-Backend"] == "verification"
        wait_for(
            lambda: requests.get(public + "/api/users/1", timeout=30).json()["phone_verified"],
            "verified",
        )

        back = strangler(env, "rollback", "verification", "--reason", "done for today")
        assert back.returncode == 0 and "serves generation 3" in back.stdout, back.stderr
        tree = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        wait_for(lambda: not any(alive(pid) for pid in tree), "every child, haproxy too")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
