"""Flows survive flips: remember which backend served a sticky key, recall it only after a flip.

Every answered request on a sticky route is remembered in a shared store (fire and forget).
The store is consulted only when the route's split changed less than `ttl` seconds ago and
the key's backend under an earlier split differs from the one under the current split; at
any other time the pure hash gives the same answer, so affinity costs nothing.

The earlier splits are also written to a small JSON file in the run directory, so that a
worker started after a flip (a restart) still knows which keys it must look up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from strangler.proxy.metrics import write_snapshot
from strangler.routing.placement import backend_for_bucket, bucket
from strangler.routing.records import Route, RoutingTable

log = logging.getLogger("strangler.proxy")
KEY_PREFIX = "strangler:aff:"
HISTORY_FILE = "split-history.json"


class AffinityStore(Protocol):
    """Where affinities live, shared by every worker and proxy instance (Redis in production)."""

    @property
    def healthy(self) -> bool:
        """False when a lookup now would get no answer in time (down, hung or slow)."""
        ...

    @property
    def failed_recalls(self) -> int:
        """Lookups so far that got no answer, so fell back to the hash."""
        ...

    def remember(self, key: str, backend: str, ttl: int) -> None:
        """Store key -> backend for ttl seconds without waiting for the store."""

    async def recall(self, key: str) -> str | None:
        """The backend stored for the key; None when absent or the store cannot answer."""


def store_key(route_name: str, key: str | bytes) -> str:
    data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    digest = hashlib.blake2b(data, digest_size=12).hexdigest()
    return f"{KEY_PREFIX}{route_name}:{digest}"


class Affinity:
    """One worker's view: the store plus the route versions replaced within their ttl.

    Times are wall-clock seconds (the default clock), because workers share them through
    `history`, the JSON file of earlier splits that a starting worker reads.
    """

    def __init__(
        self,
        store: AffinityStore | None,
        clock: Callable[[], float] = time.time,
        history: Path | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.history = history
        self.replaced: dict[str, list[tuple[Route, float]]] = {}  # route -> [(old, until)]

    @property
    def state(self) -> str:
        if self.store is None:
            return "disabled"
        return "ok" if self.store.healthy else "degraded"

    @property
    def failed_recalls(self) -> int:
        return 0 if self.store is None else self.store.failed_recalls

    def table_changed(self, old: RoutingTable | None, new: RoutingTable) -> None:
        """Keep each sticky route's previous version for its ttl when its selection changed."""
        if old is None:
            return
        now = self.clock()
        changed = False
        previous = {r.name: r for r in old.routes}
        for route in new.routes:
            before = previous.get(route.name)
            if route.sticky is None or before is None or _same_selection(before, route):
                continue
            history = [(r, until) for r, until in self.replaced.get(route.name, []) if until > now]
            history.append((before, now + route.sticky.ttl))
            self.replaced[route.name] = history
            changed = True
        if changed:
            self._save(now)

    def _save(self, now: float) -> None:
        if self.history is None:
            return
        routes = {
            name: [
                {"split": r.split, "fallback": r.fallback, "until": until}
                for r, until in history
                if until > now
            ]
            for name, history in self.replaced.items()
        }
        try:
            write_snapshot(self.history, {"routes": routes})
        except OSError as exc:
            log.warning("cannot keep the split history for restarted workers: %s", exc)

    def load_history(self, table: RoutingTable) -> None:
        """Take over the earlier splits still within their ttl, as other workers saw them.

        A missing or unreadable file means no history (a proxy's first start); entries of
        routes that are gone or no longer sticky are skipped.
        """
        if self.history is None:
            return
        try:
            saved = json.loads(self.history.read_text())["routes"]
            now = self.clock()
            for route in table.routes:
                entries = saved.get(route.name) if route.sticky is not None else None
                live = [
                    (_earlier(route, entry), float(entry["until"]))
                    for entry in entries or []
                    if float(entry["until"]) > now
                ]
                if live:
                    self.replaced[route.name] = live
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("split history %s ignored: %s", self.history, exc)

    def needs_recall(self, route: Route, key: bytes, chosen: str) -> bool:
        """True when an earlier split within the ttl would have sent this key elsewhere."""
        history = self.replaced.get(route.name)
        if not history or self.store is None:
            return False
        now = self.clock()
        if any(until <= now for _, until in history):
            history = self.replaced[route.name] = [(r, u) for r, u in history if u > now]
        # Earlier splits keep the route's name, so the key's bucket is the same for all.
        value = bucket(route.name, key)
        return any(backend_for_bucket(old, value) != chosen for old, _ in history)

    def remember(self, route: Route, key: bytes, backend: str) -> None:
        if self.store is not None and route.sticky is not None:
            self.store.remember(store_key(route.name, key), backend, route.sticky.ttl)

    async def recall(self, route: Route, key: bytes) -> str | None:
        if self.store is None:
            return None
        return await self.store.recall(store_key(route.name, key))


def _earlier(route: Route, entry: dict) -> Route:
    """The route as it was under a saved split (the hash depends on its name, split, fallback)."""
    split = tuple((str(name), int(percent)) for name, percent in entry["split"])
    if sum(percent for _, percent in split) != 100:
        raise ValueError(f"route {route.name}: a saved split does not sum to 100")
    fallback = entry["fallback"]
    return dataclasses.replace(
        route, split=split, fallback=None if fallback is None else str(fallback)
    )


def _same_selection(a: Route, b: Route) -> bool:
    return a.split == b.split and a.fallback == b.fallback
