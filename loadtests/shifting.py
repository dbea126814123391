"""Shift a route with the real `strangler shift` code, then wait until the proxy applied it."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from proxy.control import ShiftResult, shift
from proxy.routing import load_table

APPLY_TIMEOUT = 5.0  # seconds; DESIGN.md promises a changed table is live within 1 s


class NotApplied(RuntimeError):
    """The proxy did not report the new routing table in time."""


def shift_route(routes: Path, route: str, percent: int, reason: str) -> ShiftResult:
    """`strangler shift ROUTE PERCENT --reason REASON` on `routes` (validated, atomic, audited).

    The audit line goes next to that routes file, not into the repository's var/audit.log.
    """
    return shift(routes, route, percent, reason=reason, audit_path=routes.with_name("audit.log"))


def old_and_new(routes: Path, route: str) -> tuple[str, str]:
    """The route's fallback (where traffic comes from) and its new backend."""
    found = next((r for r in load_table(routes).routes if r.name == route), None)
    if found is None or found.fallback is None or found.new_backend is None:
        raise ValueError(f"{routes}: no shiftable route {route!r}")
    return found.fallback, found.new_backend


def table_digest(routes: Path) -> str:
    """What the proxy's status reports as `digest` once it runs this file."""
    return hashlib.sha256(routes.read_bytes()).hexdigest()


def proxy_status(admin_url: str) -> dict:
    """The admin status; with the admin token when the environment (and so the proxy) has one."""
    request = urllib.request.Request(f"{admin_url}/_strangler/status")  # noqa: S310 (loopback)
    token = os.environ.get("STRANGLER_ADMIN_TOKEN")
    if token:
        request.add_header("X-Strangler-Admin-Token", token)
    with urllib.request.urlopen(request, timeout=2) as resp:  # noqa: S310
        return json.loads(resp.read())


def wait_applied(admin_url: str, routes: Path, timeout: float = APPLY_TIMEOUT) -> float:
    """Poll the admin status until every worker runs `routes`; the time.monotonic() it did."""
    digest = table_digest(routes)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = proxy_status(admin_url)
        except (OSError, ValueError):
            status = {}
        if status.get("digest") == digest and status.get("converged"):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise NotApplied(
                f"the proxy at {admin_url} still runs generation {status.get('generation')} "
                f"{timeout:.0f}s after {routes} changed (last error: "
                f"{status.get('last_reload_error')})"
            )
        time.sleep(0.05)


def shift_and_wait(admin_url: str, routes: Path, route: str, percent: int, reason: str) -> float:
    """Shift, then wait for the proxy; the time.monotonic() the new split was live."""
    shift_route(routes, route, percent, reason)
    return wait_applied(admin_url, routes)
