"""Helpers for the proxy's integration tests: echo backends, routing files, load."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from strangler.stack.specs import gunicorn_argv
from strangler.stack.supervisor import ChildSpec, http_ready
from tests.repository import REPO

ADMIN_TOKEN = "test-admin-token"
INTERNAL_TOKEN = "test-internal-token"


def echo_spec(
    name: str, port: int, worker_class: str = "sync", refuse_file: Path | None = None
) -> ChildSpec:
    """The echo app under gunicorn; gthread keeps connections alive, sync closes them.

    While `refuse_file` exists, the backend answers 503 with the error code it holds.
    """
    argv = [
        *gunicorn_argv(Path(os.devnull), "tests.integration.echo_app:app")[:1],
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2",
        "--worker-class", worker_class,
        "--threads", "4",
        "--keep-alive", "75",
        "--graceful-timeout", "1",
        "--no-control-socket",
        "tests.integration.echo_app:app",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = {"ECHO_NAME": name, **({"ECHO_REFUSE_FILE": str(refuse_file)} if refuse_file else {})}
    return ChildSpec(
        f"echo-{name}", argv, env=env, ready=http_ready(url + "/healthz"),
        url=url, cwd=str(REPO),
    )  # fmt: skip


def routes_text(
    backends: dict[str, str],
    percent: int = 0,
    ttl: int = 600,
    default: str = "a",
    old: str = "a",
    new: str = "b",
    extra_routes: str = "",
    store_timeout: float | None = None,
    retry: bool = False,
) -> str:
    """A table: `backends` by name -> url, route `verification` split old/new with fallback old.

    `store_timeout`: the route's deadline on the affinity store; `retry`: a 503 `unavailable`
    is retried on the fallback.
    """
    wait = "" if store_timeout is None else f", store_timeout: {store_timeout}"
    lines = ["backends:"]
    lines += [f'  {n}: {{url: "{u}", health: /healthz}}' for n, u in backends.items()]
    lines += [
        f"default_backend: {default}",
        "routes:",
        "  - name: verification",
        "    match: {prefix: /api/verification/, methods: [POST]}",
        f"    split: {{{old}: {100 - percent}, {new}: {percent}}}",
        f'    sticky: {{key: "json:to", ttl: {ttl}{wait}}}',
        f"    fallback: {old}",
        *(["    retry: {status: 503, error: unavailable}"] if retry else []),
    ]
    return "\n".join(lines) + "\n" + extra_routes


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def admin_status(admin_url: str, token: str | None = ADMIN_TOKEN) -> dict:
    headers = {"X-Strangler-Admin-Token": token} if token else {}
    resp = requests.get(admin_url + "/_strangler/status", headers=headers, timeout=5)
    resp.raise_for_status()
    return resp.json()


def served_by(url: str, to: str, timeout: float = 10) -> str:
    """Which backend answered a keyed send (the echo backends answer 200), on a new connection."""
    resp = requests.post(
        url + "/api/verification/send",
        data=json.dumps({"to": to, "channel": "sms"}),
        headers={"Content-Type": "application/json", "Connection": "close"},
        timeout=timeout,
    )
    assert resp.status_code == 200
    return resp.headers["X-Strangler-Backend"]


class Load:
    """Background clients hammering the proxy; every answer is tallied by status and backend."""

    def __init__(self, request: Callable[[requests.Session, int], requests.Response], threads=4):
        self.request = request
        self.statuses: Counter[object] = Counter()
        self.backends: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with requests.Session() as session:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    resp = self.request(session, i)
                    outcome, backend = resp.status_code, resp.headers.get("X-Strangler-Backend")
                    if resp.status_code >= 500:
                        detail = f"{resp.status_code} {resp.text[:200]}"
                        with self._lock:
                            self.failures.append(detail)
                except requests.RequestException as exc:
                    outcome, backend = type(exc).__name__, None
                    with self._lock:
                        self.failures.append(repr(exc))
                with self._lock:
                    self.statuses[outcome] += 1
                    if backend:
                        self.backends[backend] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def accepts(port: int) -> bool:
    """Something still accepts connections on the loopback port (a killed server's processes
    close their sockets a moment after the kill)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
