"""Shift a route with the real `strangler shift` code, then wait until the proxy applied it."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from strangler.control import status
from strangler.control.shift import ShiftResult, shift
from strangler.routing.table import load_table

APPLY_TIMEOUT = 5.0  # seconds; DESIGN.md promises a changed table is live within 1 s


def shift_route(routes: Path, route: str, percent: int, reason: str) -> ShiftResult:
    """`strangler shift ROUTE PERCENT --reason REASON` on `routes` (validated, atomic, audited).

    The audit line goes next to that routes file, not into the repository's var/audit.log.
    """
    return shift(routes, route, percent, reason=reason, audit_path=routes.with_name("audit.log"))


def old_and_new(routes: Path, route: str) -> tuple[str, str]:
    """The route's fallback (where traffic comes from) and its new backend."""
    found = load_table(routes).route(route)
    if found is None or found.fallback is None or found.new_backend is None:
        raise ValueError(f"{routes}: no shiftable route {route!r}")
    return found.fallback, found.new_backend


def table_digest(routes: Path) -> str:
    """What the proxy's status reports as `digest` once it runs this file."""
    return hashlib.sha256(routes.read_bytes()).hexdigest()


def wait_applied(admin_url: str, routes: Path, timeout: float = APPLY_TIMEOUT) -> float:
    """Poll the admin status until every worker runs `routes`; the time.monotonic() it did."""
    token = os.environ.get("STRANGLER_ADMIN_TOKEN")
    status.wait_applied(admin_url, table_digest(routes), token, timeout)
    return time.monotonic()


def shift_and_wait(admin_url: str, routes: Path, route: str, percent: int, reason: str) -> float:
    """Shift, then wait for the proxy; the time.monotonic() the new split was live."""
    shift_route(routes, route, percent, reason)
    return wait_applied(admin_url, routes)
