"""Slow and numerous clients: a header-read timeout, a connection cap per worker, both real."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.polling import wait_for

from .proxy_support import ADMIN_TOKEN, admin_status, echo_spec, routes_text, write_atomically
from .raw_http import converse

pytestmark = pytest.mark.live
SLOW_CLIENTS = 500
CAP = 200  # per worker, below the slow crowd: room is made by closing the slowest


@pytest.fixture
def edge(tmp_path) -> Iterator[StackConfig]:
    a = free_port()
    routes = tmp_path / "routes.yaml"
    url = f"http://127.0.0.1:{a}"
    write_atomically(routes, routes_text({"a": url, "b": url}))
    cfg = replace(
        StackConfig.on_free_ports(tmp_path / "var"),
        workers=1,
        env={
            "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
            "STRANGLER_HEADER_TIMEOUT": "2",
            "STRANGLER_MAX_CLIENTS": str(CAP),
        },
    )
    with Supervisor(log_dir=tmp_path / "logs") as sup:
        sup.start(echo_spec("a", a, "gthread"))
        sup.start(proxy_spec(cfg, routes))
        yield cfg


class Slowloris:
    """Clients that open a request head and add a header line now and then, never ending it."""

    def __init__(self, port: int, count: int) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: slow\r\n")
            self.socks.append(sock)
        self.answers: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def _trickle(self) -> None:
        while not self.stop.wait(0.3):  # the attack's own pace, not a wait for the proxy
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    def disconnected(self) -> int:
        """How many the proxy has closed (reading what each got before its end)."""
        closed = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                closed += 1
                continue
            if data:
                self.answers.append(data)
                data = b""
            closed += 1
        return closed

    def __enter__(self) -> Slowloris:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def test_500_slow_clients_do_not_stop_a_normal_client(edge):
    with Slowloris(edge.proxy_port, SLOW_CLIENTS) as crowd:
        statuses = []
        with requests.Session() as session:
            for i in range(20):  # a new connection each time: each must find room
                resp = session.get(
                    f"{edge.proxy_url}/normal/{i}", headers={"Connection": "close"}, timeout=10
                )
                statuses.append(resp.status_code)
                assert resp.json()["path"] == f"/normal/{i}"
        assert statuses == [200] * 20
        # every slow client is let go: the oldest to make room, the rest at the header timeout
        wait_for(lambda: crowd.disconnected() == SLOW_CLIENTS, "every slow client closed", 30)
    timed_out = [a for a in crowd.answers if a.startswith(b"HTTP/1.1 408 ")]
    assert timed_out, "some slow clients were answered 408 at the header timeout"
    assert all(b'"error":"request_timeout"' in a for a in timed_out)
    assert admin_status(edge.admin_url)["connections"] <= 1


def test_beyond_the_cap_with_every_connection_busy_a_new_one_gets_503(edge):
    # Each holds a request under way: a keyed send whose body (the key) has not all come.
    head = b"POST /api/verification/send HTTP/1.1\r\nHost: e\r\nContent-Length: 40\r\n\r\n{"
    busy = []
    for _ in range(CAP):
        sock = socket.create_connection(("127.0.0.1", edge.proxy_port), timeout=10)
        sock.sendall(head)
        busy.append(sock)
    try:
        wait_for(lambda: admin_status(edge.admin_url)["connections"] >= CAP, "the cap reached")
        (answer,), _ = converse(edge.proxy_port, b"")
        assert (answer.status, answer.json()["error"]) == (503, "too_many_connections")
        assert answer.headers["connection"] == "close" and answer.headers["retry-after"] == "1"
    finally:
        for sock in busy:
            sock.close()
    wait_for(
        lambda: requests.get(edge.proxy_url + "/after", timeout=10).status_code == 200,
        "a connection accepted again once the busy ones are gone",
    )
