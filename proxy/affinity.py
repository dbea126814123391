"""Flows survive flips: remember which backend served a sticky key, recall it only after a flip.

Every answered request on a sticky route is remembered in a shared store (fire and forget).
The store is consulted only when the route's split changed less than `ttl` seconds ago and
the key's backend under an earlier split differs from the one under the current split; at
any other time the pure hash gives the same answer, so affinity costs nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Protocol

from proxy.routing import Route, RoutingTable
from proxy.selection import select_backend

KEY_PREFIX = "strangler:aff:"


class AffinityStore(Protocol):
    """Where affinities live, shared by every worker and proxy instance (Redis in production)."""

    @property
    def healthy(self) -> bool: ...

    def remember(self, key: str, backend: str, ttl: int) -> None:
        """Store key -> backend for ttl seconds without waiting for the store."""

    async def recall(self, key: str) -> str | None:
        """The backend stored for the key; None when absent or the store cannot answer."""


def store_key(route_name: str, key: str) -> str:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f"{KEY_PREFIX}{route_name}:{digest}"


class Affinity:
    """One worker's view: the store plus the route versions replaced within their ttl."""

    def __init__(self, store: AffinityStore | None, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.clock = clock
        self.replaced: dict[str, list[tuple[Route, float]]] = {}  # route -> [(old, until)]

    @property
    def state(self) -> str:
        if self.store is None:
            return "disabled"
        return "ok" if self.store.healthy else "degraded"

    def table_changed(self, old: RoutingTable | None, new: RoutingTable) -> None:
        """Keep each sticky route's previous version for its ttl when its selection changed."""
        if old is None:
            return
        now = self.clock()
        previous = {r.name: r for r in old.routes}
        for route in new.routes:
            before = previous.get(route.name)
            if route.sticky is None or before is None or _same_selection(before, route):
                continue
            history = [(r, until) for r, until in self.replaced.get(route.name, []) if until > now]
            history.append((before, now + route.sticky.ttl))
            self.replaced[route.name] = history

    def needs_recall(self, route: Route, key: str, chosen: str) -> bool:
        """True when an earlier split within the ttl would have sent this key elsewhere."""
        history = self.replaced.get(route.name)
        if not history or self.store is None:
            return False
        now = self.clock()
        live = [(r, until) for r, until in history if until > now]
        if len(live) != len(history):
            self.replaced[route.name] = live
        return any(select_backend(old, key) != chosen for old, _ in live)

    def remember(self, route: Route, key: str, backend: str) -> None:
        if self.store is not None and route.sticky is not None:
            self.store.remember(store_key(route.name, key), backend, route.sticky.ttl)

    async def recall(self, route: Route, key: str) -> str | None:
        if self.store is None:
            return None
        return await self.store.recall(store_key(route.name, key))


def _same_selection(a: Route, b: Route) -> bool:
    return a.split == b.split and a.fallback == b.fallback
