"""The dashboard on the HAProxy data plane: the agent answers its paths behind HAProxy.

HAProxy's admin frontend has checked the token (header, cookie or the page's `?token=`) or
that the client is on loopback before a request reaches the agent, and passes the client's
address in `X-Forwarded-For`. The 15-minute history is sampled from HAProxy's counters (rate
and error rate; HAProxy keeps no latency percentiles, so those charts stay empty); a reload
starts HAProxy's counters from zero under a new pid, which the ring takes as a new worker.
Actions call `strangler.control.web_actions` in the agent's own process; a rollout's verbs
and states are `strangler.rollout.web_actions`'s, run as a process (the rollout package sits
beside this one, not below it). HAProxy refuses a route with a rollout, so there are only
states a rollout on the embedded proxy left behind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol

from strangler.control import web_actions
from strangler.control.shift import default_audit_path
from strangler.haproxy import status_doc
from strangler.proxy import admin, dashboard, history, metrics
from strangler.proxy.dashboard_server import (
    ROLLOUT_TOOLKIT,
    AdminRequest,
    Rollouts,
    Toolkit,
    answer,
)


class AgentPlane(Protocol):
    """What the dashboard reads of `agent.HAProxyPlane`."""

    state_dir: Path
    watcher: Any  # its TableWatcher: `.path` is the routes file

    def status(self) -> dict: ...


class Ring:
    """The history ring of the HAProxy data plane, one sample every `history.STEP` seconds."""

    def __init__(self, state_dir: Path) -> None:
        self.ring = history.History(state_dir / history.FILE, time.time())
        self.next_at = time.monotonic() + history.STEP

    def sample(
        self, rows: list[Mapping[str, str]], names: Iterable[str], pid_of: Callable[[], int]
    ) -> None:
        """Sample the counters of our backends `names` (not the agent's own server)."""
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + history.STEP
        pid, wanted = pid_of(), set(names)
        empty = [0] * (len(metrics.BOUNDS) + 1)  # no percentiles from HAProxy
        totals = {
            name: {"requests": t.requests, "errors": t.errors, "buckets": empty}
            for name, t in status_doc.totals(rows).items()
            if name in wanted
        }
        self.ring.sample([{"pid": pid, "metrics": {"totals": totals}}], time.time())


class AgentSide:
    """The dashboard's view of the agent's plane."""

    def __init__(self, plane: AgentPlane, token: str | None) -> None:
        self.plane, self.token = plane, token
        self.states = Rollouts(Toolkit(ROLLOUT_TOOLKIT))
        self.lock = threading.Lock()  # each request runs a loop of its own in a thread of its own

    def other(self, req: AdminRequest, lookup) -> admin.Reply:
        refusal = admin.authorize(lookup, req.client_ip, self.token)
        if refusal is not None:
            return refusal
        if req.path == admin.PREFIX + "status" and req.method in ("GET", "HEAD"):
            return dashboard.ok(self.plane.status())
        return dashboard.error(404, "not_found", f"no admin endpoint {req.path}")

    def history(self, since: float | None) -> dict:
        return history.read(self.plane.state_dir / history.FILE, since)

    async def audit_path(self) -> Path | None:
        return default_audit_path()

    async def act(self, request: dict) -> tuple[int, dict]:
        request = {**request, "routes": str(self.plane.watcher.path)}
        if request["verb"] not in dashboard.ROLLOUT_VERBS:
            return web_actions.answer(request)
        try:
            return await self.states.toolkit.call(request)
        finally:
            self.states.forget()

    async def rollouts(self) -> tuple[int, dict]:
        with self.lock:
            return await self.states.get()


def client_of(handler: BaseHTTPRequestHandler) -> str:
    """The client's address: HAProxy's `X-Forwarded-For` when HAProxy (loopback) relayed it."""
    peer = handler.client_address[0]
    forwarded = handler.headers.get("x-forwarded-for")
    if forwarded and ipaddress.ip_address(peer).is_loopback:
        return forwarded.split(",")[-1].strip()
    return peer


def respond(handler: BaseHTTPRequestHandler, side: AgentSide) -> None:
    """Answer one request of HAProxy's admin frontend (any method) and write the reply."""
    length = int(handler.headers.get("content-length") or 0)
    too_large = length > dashboard.MAX_BODY
    body = b"" if too_large else handler.rfile.read(length)
    request = AdminRequest(
        method=handler.command,
        path=handler.path.partition("?")[0],
        query=dashboard.query_of(handler.path),
        lookup=lambda name: handler.headers.get(name),
        client_ip=client_of(handler),
        body=body,
        too_large=too_large,
    )
    reply = asyncio.run(answer(side, request))
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.send_header("X-Strangler-Backend", "proxy")
    for name, value in reply.headers:
        handler.send_header(name, value)
    if too_large:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(reply.body)
