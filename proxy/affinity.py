"""Flows survive flips: remember which backend served a sticky key, recall it when needed.

Every answered request on a sticky route leaves a placement in the shared store, through
`placements.Placements` (in order, never dropped because the store is slow or away). The
store is consulted only when the route's split changed less than `ttl` seconds ago and the
key's backend under an earlier split differs from the one under the current split, or when
requests of the route were diverted away from the key's backend less than `ttl` seconds ago
(`diversions`); at any other time the pure hash gives the same answer, so affinity costs no
lookup. A lookup waits for the store up to the route's `store_timeout`; past it the hash
decides and the request counts as an affinity miss.

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

from strangler.proxy.diversions import Diversions
from strangler.proxy.metrics import RecentCounts, write_snapshot
from strangler.proxy.placements import (
    ANSWERING,
    FAILED_RECALLS,
    LOST,
    MISSES,
    QUEUED,
    Hold,
    Placements,
    Recalled,
)
from strangler.routing.placement import backend_for_bucket, bucket
from strangler.routing.records import Route, RoutingTable

log = logging.getLogger("strangler.proxy")
KEY_PREFIX = "strangler:aff:"
HISTORY_FILE = "split-history.json"
DEGRADING = (MISSES, QUEUED, FAILED_RECALLS, LOST)  # any in the last minute: degraded


def store_key(route_name: str, key: str | bytes) -> str:
    data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    digest = hashlib.blake2b(data, digest_size=12).hexdigest()
    return f"{KEY_PREFIX}{route_name}:{digest}"


class Affinity:
    """One worker's view: the placements, the route versions replaced within their ttl, and
    the diversions every worker shares.

    Times are wall-clock seconds (the default clock), because workers share them through
    `history`, the JSON file of earlier splits that a starting worker reads, and `diversions`.
    `confirm`: a response waits for its placement to be stored (up to the deadline).
    """

    def __init__(
        self,
        placements: Placements | None,
        events: RecentCounts | None = None,
        *,
        diversions: Diversions | None = None,
        clock: Callable[[], float] = time.time,
        history: Path | None = None,
        store_timeout: float = 1.0,
        confirm: bool = True,
    ) -> None:
        self.placements = placements
        self.events = events or (placements.events if placements else RecentCounts(clock))
        self.diversions = diversions or Diversions(None, clock)
        self.clock = clock
        self.history = history
        self.store_timeout = store_timeout
        self.confirm = confirm
        self.replaced: dict[str, list[tuple[Route, float]]] = {}  # route -> [(old, until)]

    @property
    def store_state(self) -> str | None:
        return None if self.placements is None else self.placements.store.state

    @property
    def state(self) -> str:
        """`ok` only while the store answers and no flow was placed blind in the last minute."""
        if self.placements is None:
            return "disabled"
        if self.store_state != ANSWERING:
            return "degraded"
        recent = self.events.last_minute()
        return "degraded" if any(recent.get(name) for name in DEGRADING) else "ok"

    @property
    def failed_recalls(self) -> int:
        return self.events.totals.get(FAILED_RECALLS, 0)

    def timeout(self, route: Route) -> float:
        sticky = route.sticky
        if sticky is not None and sticky.store_timeout is not None:
            return sticky.store_timeout
        return self.store_timeout

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

    def keeps(self, route: Route) -> bool:
        """True when the route's placements are kept (a sticky route, with a store)."""
        return self.placements is not None and route.sticky is not None

    def needs_recall(
        self, route: Route, key: bytes, chosen: str, placed: str | None = None
    ) -> bool:
        """True when an earlier split within the ttl would have sent this key elsewhere, when
        the route's requests were diverted away from `chosen` within the ttl, or when the
        key's backend (`placed`) is down and `chosen` replaces it: is the key's flow there?"""
        if self.placements is None:
            return False
        if placed is not None and placed != chosen:
            return True
        history = self.replaced.get(route.name)
        if history:
            now = self.clock()
            if any(until <= now for _, until in history):
                history = self.replaced[route.name] = [(r, u) for r, u in history if u > now]
            # Earlier splits keep the route's name, so the key's bucket is the same for all.
            value = bucket(route.name, key)
            if any(backend_for_bucket(old, value) != chosen for old, _ in history):
                return True
        return self.diversions.until(route.name, chosen) > self.clock()

    def divert(self, route: Route, away_from: str) -> None:
        """Requests of `route` were served elsewhere than `away_from`: look its keys up."""
        if route.sticky is not None:
            self.diversions.mark(route.name, away_from, self.clock() + route.sticky.ttl)

    def remember(self, route: Route, key: bytes, backend: str, hold: Hold | None = None) -> bool:
        """Store the placement; True when `hold` will be called once it is stored (or at the
        route's deadline), False when the response need not wait."""
        if self.placements is None or route.sticky is None:
            return False
        return self.placements.remember(
            store_key(route.name, key),
            backend,
            route.sticky.ttl,
            hold if self.confirm else None,
            self.timeout(route),
        )

    async def recall(self, route: Route, key: bytes) -> Recalled:
        """The key's placement, to place a request: no answer in time is an affinity miss."""
        recalled = await self.consult(route, key)
        if not recalled.answered:
            self.events.count(MISSES)
        return recalled

    async def consult(self, route: Route, key: bytes) -> Recalled:
        """The key's placement, waiting for the store up to the route's deadline."""
        if self.placements is None:
            return Recalled(False, None)
        return await self.placements.recall(store_key(route.name, key), self.timeout(route))


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
