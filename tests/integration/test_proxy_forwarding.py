"""The proxy forwards requests faithfully to real gunicorn backends, and answers its own errors."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port
from tests.repository import REPO

from .proxy_support import (
    ADMIN_TOKEN,
    INTERNAL_TOKEN,
    echo_spec,
    routes_text,
    write_atomically,
)

pytestmark = pytest.mark.live
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """Backend a (sync: closes connections), b (gthread: keep-alive), a dead one, the proxy."""
    base = tmp_path_factory.mktemp("forwarding")
    cfg = StackConfig.on_free_ports(base / "var")
    a, b, dead = free_port(), free_port(), free_port()
    routes = base / "routes.yaml"
    backends = {
        "a": f"http://127.0.0.1:{a}",
        "b": f"http://127.0.0.1:{b}",
        "dead": f"http://127.0.0.1:{dead}",
    }
    extra = "\n".join(
        [
            "  - name: keepalive",
            "    match: {prefix: /ka/}",
            "    split: {b: 100}",
            "  - name: nowhere",
            "    match: {prefix: /nowhere/}",
            "    split: {dead: 100}",
        ]
    )
    write_atomically(routes, routes_text(backends, percent=0, extra_routes=extra + "\n"))
    env = {
        "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRANGLER_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "STRANGLER_MAX_BODY": str(MAX_BODY),
        "STRANGLER_READ_TIMEOUT": "1",
        "STRANGLER_CONNECT_TIMEOUT": "0.5",
    }
    cfg = replace(cfg, env=env, workers=2)
    with Supervisor(log_dir=base / "logs") as sup:
        sup.start(echo_spec("a", a, "sync"))
        sup.start(echo_spec("b", b, "gthread"))
        sup.start(proxy_spec(cfg, routes))
        yield cfg


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_query_and_body_reach_the_backend(stack, method):
    body = b"" if method in ("GET", "OPTIONS") else b'{"name": "ada"}' * 100
    resp = requests.request(
        method, stack.proxy_url + "/things/7?b=2&a=%20x&a=1", data=body, timeout=10
    )
    assert resp.status_code == 200
    echoed = resp.json()
    assert echoed["method"] == method
    assert echoed["raw_uri"] == "/things/7?b=2&a=%20x&a=1"
    assert echoed["body_length"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert resp.headers["X-Strangler-Backend"] == "a"


def test_head_answers_headers_only(stack):
    resp = requests.head(stack.proxy_url + "/things", timeout=10)
    assert resp.status_code == 200 and resp.content == b""
    assert int(resp.headers["Content-Length"]) > 0
    assert resp.headers["X-Strangler-Backend"] == "a"


def test_chunked_bodies_both_ways(stack):
    parts = [b"x" * 1000, b"y" * 20000, b"z"]
    resp = requests.post(stack.proxy_url + "/ka/upload", data=iter(parts), timeout=10)
    echoed = resp.json()
    assert echoed["body_length"] == 21001
    assert echoed["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert resp.headers["X-Strangler-Backend"] == "b"
    streamed = requests.get(stack.proxy_url + "/stream", timeout=10)
    assert streamed.headers["Transfer-Encoding"] == "chunked"
    assert streamed.text == "".join(f"part {i}\n" for i in range(5))


def test_headers_are_rewritten_for_the_backend(stack):
    resp = requests.get(
        stack.proxy_url + "/h",
        headers={
            "X-Strangler-Shadow": "1",
            "X-Strangler-Internal-Token": "guessed",
            "X-Forwarded-For": "198.51.100.7",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "X-Custom": "kept",
        },
        timeout=10,
    )
    seen = resp.json()["headers"]
    assert "x-strangler-shadow" not in seen
    assert seen["x-strangler-internal-token"] == INTERNAL_TOKEN
    assert seen["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{stack.proxy_port}"
    assert "x-secret-hop" not in seen
    assert seen["x-custom"] == "kept"
    assert resp.headers["X-Strangler-Backend"] == "a"  # not the backend's own claim


def test_request_id_is_propagated_or_created(stack):
    given = requests.get(stack.proxy_url + "/r", headers={"X-Request-Id": "req-42"}, timeout=10)
    assert given.headers["X-Request-Id"] == "req-42"
    assert given.json()["headers"]["x-request-id"] == "req-42"
    created = requests.get(stack.proxy_url + "/r", timeout=10)
    rid = created.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert created.json()["headers"]["x-request-id"] == rid


def test_keep_alive_clients_get_every_answer_in_order_when_pipelining(stack):
    batch = b"".join(
        b"POST /ka/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" % i for i in range(5)
    )
    batch += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", stack.proxy_port), timeout=10) as sock:
        sock.sendall(batch)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    paths = re.findall(rb'"path": "([^"]+)"', data)
    assert paths == [b"/ka/0", b"/ka/1", b"/ka/2", b"/ka/3", b"/ka/4", b"/last"]
    assert data.count(b"HTTP/1.1 200 OK") == 6


def test_bodies_over_the_limit_get_413_json(stack):
    big = b"x" * (MAX_BODY + 1)
    resp = requests.post(stack.proxy_url + "/upload", data=big, timeout=10)
    assert resp.status_code == 413
    assert resp.json()["error"] == "payload_too_large"
    chunked = requests.post(stack.proxy_url + "/upload", data=iter([big]), timeout=10)
    assert chunked.status_code == 413


def test_unreachable_backend_is_502_json_naming_no_address(stack):
    resp = requests.get(stack.proxy_url + "/nowhere/x", timeout=10)
    assert resp.status_code == 502
    body = resp.json()
    assert set(body) == {"error", "message"}
    assert "127.0.0.1" not in resp.text and "dead" not in resp.text


def test_silent_backend_is_504_json(stack):
    resp = requests.get(stack.proxy_url + "/slow?seconds=3", timeout=10)
    assert resp.status_code == 504
    assert resp.json()["error"] == "gateway_timeout"
    assert "127.0.0.1" not in resp.text


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def head_fields(raw: bytes) -> dict[str, str]:
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value for name, _, value in (line.partition(": ") for line in head)}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/_strangler/status", None, 404),
        ("POST", "/upload", b"x" * (MAX_BODY + 1), 413),
        ("GET", "/nowhere/x", None, 502),
        ("GET", "/slow?seconds=3", None, 504),
    ],
)
def test_the_proxys_own_answers_name_it_and_keep_the_request_id(stack, method, path, body, status):
    headers = {"X-Request-Id": f"own-{status}"}
    resp = requests.request(method, stack.proxy_url + path, data=body, headers=headers, timeout=10)
    assert resp.status_code == status
    assert resp.headers["X-Strangler-Backend"] == "proxy"
    assert resp.headers["X-Request-Id"] == f"own-{status}"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["asterisk-form", "malformed"],
)
def test_the_proxys_400s_name_it_and_carry_a_request_id(stack, request_bytes):
    raw = raw_exchange(stack.proxy_port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 ")
    fields = head_fields(raw)
    assert fields["x-strangler-backend"] == "proxy"
    assert re.fullmatch(r"[0-9a-f]{32}", fields["x-request-id"])


def test_admin_is_not_reachable_through_the_public_port(stack):
    for path in ("/_strangler/status", "/_strangler/metrics", "/_strangler/"):
        resp = requests.get(
            stack.proxy_url + path, headers={"X-Strangler-Admin-Token": ADMIN_TOKEN}, timeout=10
        )
        assert resp.status_code == 404
        assert "generation" not in resp.text
        assert resp.headers["X-Strangler-Backend"] == "proxy"  # answered here, not forwarded


def test_admin_needs_the_token(stack):
    for path in ("/_strangler/status", "/_strangler/metrics"):
        assert requests.get(stack.admin_url + path, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(stack.admin_url + path, headers=wrong, timeout=10).status_code == 401
        right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert requests.get(stack.admin_url + path, headers=right, timeout=10).status_code == 200


def test_admin_status_and_metrics_cover_the_traffic(stack):
    for _ in range(6):
        requests.get(stack.proxy_url + "/count", timeout=10)
    headers = {"X-Strangler-Admin-Token": ADMIN_TOKEN}
    status = requests.get(stack.admin_url + "/_strangler/status", headers=headers, timeout=10)
    doc = status.json()
    assert len(doc["workers"]) == 2 and doc["converged"]
    assert doc["backends"]["a"]["requests"] >= 6
    assert doc["routes"][0]["split"] == {"a": 100, "b": 0}
    text = requests.get(stack.admin_url + "/_strangler/metrics", headers=headers, timeout=10).text
    match = re.search(
        r'strangler_requests_total\{route="\(default\)",backend="a",status="200"\} (\d+)', text
    )
    assert match and int(match.group(1)) >= 6


def test_force_backend_header_needs_the_admin_token(stack):
    url = stack.proxy_url + "/api/verification/send"
    body = json.dumps({"to": "+15550001111"})
    force = {"X-Strangler-Force-Backend": "b", "Content-Type": "application/json"}
    plain = requests.post(url, data=body, headers=force, timeout=10)
    assert plain.headers["X-Strangler-Backend"] == "a"
    forced = requests.post(
        url, data=body, headers={**force, "X-Strangler-Admin-Token": ADMIN_TOKEN}, timeout=10
    )
    assert forced.headers["X-Strangler-Backend"] == "b"
    assert not [
        h
        for h in forced.json()["headers"]
        if h.startswith("x-strangler-") and h != ("x-strangler-internal-token")
    ]


def test_an_invalid_table_at_start_stops_the_proxy_with_the_message(tmp_path):
    routes = tmp_path / "routes.yaml"
    text = routes_text({"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2"}, percent=0)
    write_atomically(routes, text.replace("b: 0}", "b: 7}"))
    result = subprocess.run(
        [sys.executable, "-m", "strangler.proxy.server", "--routes", str(routes)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "STRANGLER_PROXY_BIND": f"127.0.0.1:{free_port()}",
            "STRANGLER_ADMIN_BIND": f"127.0.0.1:{free_port()}",
        },
    )
    assert result.returncode == 2
    assert str(routes) in result.stderr
    assert "verification" in result.stderr and "7" in result.stderr


def strangler_status(admin_url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "strangler.cli", "status", "--admin", admin_url],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_strangler_status_prints_the_running_table(stack):
    result = strangler_status(stack.admin_url, {"STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN})
    assert result.returncode == 0, result.stderr
    assert "verification" in result.stdout and "a 100% / b 0%" in result.stdout
    assert "2 workers" in result.stdout
    denied = strangler_status(stack.admin_url, {})
    assert denied.returncode == 1 and "401" in denied.stderr
