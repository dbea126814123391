"""The gateway duties in the admin status and metrics: what each route declares, what they did.

The throttle is `degraded` while a worker cannot reach Redis (its limits are then decided
per worker, see `throttle.py`) or did so in the last minute; `local` when no Redis is
configured (every worker keeps its own share of each limit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strangler.proxy import metrics
from strangler.proxy.throttle import LOCAL
from strangler.routing.records import Route

CACHE_FIGURES = ("hits", "misses", "stored", "evicted", "bytes", "max_bytes", "entries")


def _limit(limit) -> dict[str, Any] | None:
    return None if limit is None else {"key": limit.key, "rate": limit.rate, "burst": limit.burst}


def duties_view(route: Route) -> dict[str, Any]:
    """The route's declared duties, for the status (empty when it declares none)."""
    view: dict[str, Any] = {}
    if route.match_headers:
        view["match_header"] = dict(route.match_headers)
    if route.limit is not None:
        view["limit"] = _limit(route.limit)
    per_backend = {}
    for name, rules in route.backend_rules:
        entry: dict[str, Any] = {}
        if rules.rewrite is not None:
            r = rules.rewrite
            entry["rewrite"] = {
                "prefix": r.prefix, "set_headers": dict(r.set_headers),
                "remove_headers": sorted(r.remove_headers),
                "response": {"set_headers": dict(r.set_response_headers),
                             "remove_headers": sorted(r.remove_response_headers)},
            }  # fmt: skip
        if rules.limit is not None:
            entry["limit"] = _limit(rules.limit)
        per_backend[name] = entry
    if per_backend:
        view["backends"] = per_backend
    if route.cache is not None:
        view["cache"] = {"ttl": route.cache.ttl, "max_entry": route.cache.max_entry}
    return view


def gateway_status(snapshots: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """The throttle's state and refusals, and the caches' figures, over every worker."""
    counts = metrics.merge_counts((s.get("events") or {} for s in snapshots), now)
    states = {s.get("throttle") for s in snapshots} - {None}
    local_recent = counts["last_minute"].get(LOCAL, 0)
    if states - {"shared", "local"} or local_recent:
        state = "degraded"
    elif states == {"local"}:
        state = "local"
    else:
        state = "shared"
    limited: dict[tuple[str, str], int] = {}
    for snap in snapshots:
        for route, backend, n in snap.get("limited") or []:
            limited[(route, backend)] = limited.get((route, backend), 0) + n
    cache = {name: 0 for name in CACHE_FIGURES}
    for snap in snapshots:
        for name in CACHE_FIGURES:
            cache[name] += (snap.get("cache") or {}).get(name, 0)
    return {
        "throttle": state,
        "throttle_local": {
            "last_minute": local_recent, "total": counts["totals"].get(LOCAL, 0),
        },
        "limited": {
            "last_minute": counts["last_minute"].get("limited", 0),
            "total": counts["totals"].get("limited", 0),
            "by_route": [[r, b, n] for (r, b), n in sorted(limited.items())],
        },
        "cache": cache,
    }  # fmt: skip


def gateway_families(view: Mapping[str, Any]) -> list[metrics.Family]:
    """Prometheus families: refusals by route, local decisions, the caches' figures."""
    cache = view["cache"]
    return [
        metrics.Family(
            "strangler_limited_total", "counter",
            "Requests refused 429 by a route's limit, by route and chosen backend.",
            [({"route": r, "backend": b}, n) for r, b, n in view["limited"]["by_route"]],
        ),
        metrics.Family(
            "strangler_throttle_local_total", "counter",
            "Requests whose limits a worker decided alone (Redis did not answer).",
            [({}, view["throttle_local"]["total"])],
        ),
        metrics.Family(
            "strangler_cache_total", "counter", "Response cache lookups and stores, summed.",
            [({"event": name}, cache[name]) for name in ("hits", "misses", "stored", "evicted")],
        ),
        metrics.Family(
            "strangler_cache_bytes", "gauge", "Bytes the response caches of all workers hold.",
            [({}, cache["bytes"])],
        ),
    ]  # fmt: skip
