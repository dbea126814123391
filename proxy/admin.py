"""The admin API under `/_strangler/`: status JSON and Prometheus metrics over every worker."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strangler.proxy import metrics, outcomes
from strangler.proxy.affinity import DEGRADING
from strangler.proxy.gateway_view import duties_view, gateway_families, gateway_status
from strangler.proxy.placements import ANSWERING, REFUSING, STALLED, UNREACHABLE
from strangler.routing.dispatch import HeaderLookup, bearer_token, token_matches
from strangler.routing.records import RoutingTable

PREFIX = "/_strangler/"
STALE_AFTER = 5.0  # seconds without a snapshot: the worker is shown as stale
WORST_FIRST = (UNREACHABLE, REFUSING, STALLED, ANSWERING)  # the store's state over workers


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (the dashboard's)


def _json(status: int, body: object) -> Reply:
    return Reply(status, "application/json", json.dumps(body, indent=1).encode())


def authorize(lookup: HeaderLookup, client_ip: str, token: str | None) -> Reply | None:
    """None when the call may proceed; otherwise the refusal."""
    if token is not None:
        if token_matches(bearer_token(lookup), token):
            return None
        return _json(401, {"error": "unauthorized", "message": "the admin token is required"})
    try:
        loopback = ipaddress.ip_address(client_ip).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return _json(403, {"error": "forbidden", "message": "admin calls only from loopback"})


def handle(
    method: str,
    path: str,
    lookup: HeaderLookup,
    client_ip: str,
    token: str | None,
    snapshots: Callable[[], Sequence[Mapping[str, Any]]],
    now: float,
) -> Reply:
    refusal = authorize(lookup, client_ip, token)
    if refusal is not None:
        return refusal
    if method not in ("GET", "HEAD"):
        return _json(405, {"error": "method_not_allowed", "message": "admin calls are GET"})
    if path == PREFIX + "status":
        return _json(200, status_document(snapshots(), now))
    if path == PREFIX + "metrics":
        return Reply(200, "text/plain; version=0.0.4", metrics_text(snapshots(), now).encode())
    return _json(404, {"error": "not_found", "message": f"no admin endpoint {path}"})


def routes_view(table: RoutingTable) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "prefix": r.prefix,
            "methods": sorted(r.methods) if r.methods else None,
            "split": dict(r.split),
            "sticky": None if r.sticky is None else _sticky(r.sticky),
            "fallback": r.fallback,
            "retry": _retry(r.retry),
            "gateway": duties_view(r),
        }
        for r in table.routes
    ]


def _retry(retry) -> dict[str, Any] | None:
    return None if retry is None else {"status": retry.status, "error": retry.error}


def _sticky(sticky) -> dict[str, Any]:
    key = sticky.kind if sticky.name is None else f"{sticky.kind}:{sticky.name}"
    return {"key": key, "ttl": sticky.ttl, "store_timeout": sticky.store_timeout}


def status_document(snapshots: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """What the proxy is doing, merged over the workers' latest snapshots."""
    if not snapshots:
        return {"workers": [], "routes": [], "backends": {}}
    newest = max(snapshots, key=lambda s: s["table"]["generation"])
    merged = metrics.merge((s["metrics"] for s in snapshots), now)
    figures = metrics.backend_summary(merged)
    backends = {}
    for name, info in newest["backends"].items():
        states = [s["circuits"].get(name, {}).get("state", "closed") for s in snapshots]
        circuit = next((c for c in ("open", "half_open") if c in states), "closed")
        backends[name] = {**info, "circuit": circuit, **figures.get(name, _no_figures())}
    errors = [s["table"] for s in snapshots if s["table"].get("last_reload_error")]
    last_error = max(errors, key=lambda t: t["last_reload_error_at"]) if errors else None
    return {
        "generation": newest["table"]["generation"],
        "digest": newest["table"]["digest"],
        "source": newest["source"],
        "converged": len({s["table"]["digest"] for s in snapshots}) == 1,
        "default_backend": newest["default_backend"],
        "routes": newest["routes"],
        "backends": backends,
        **affinity_view(snapshots, now),
        "gateway": gateway_status(snapshots, now),
        "last_reload_error": last_error and last_error["last_reload_error"],
        "in_flight": sum(s.get("in_flight", 0) for s in snapshots),
        "connections": sum(s.get("connections", 0) for s in snapshots),
        "workers": [_worker_view(s, now) for s in snapshots],
        # Since start, per route under a rollout's analysis and backend (strangler.rollout).
        "analysis": outcomes.merge(s.get("analysis") or [] for s in snapshots),
    }


def affinity_view(snapshots: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """The affinity over every worker: `degraded` while the store does not answer, or when
    any request was placed blind (a miss), a placement released before stored, a recall
    unanswered or a placement lost in the last minute; the counts say which."""
    counts = metrics.merge_counts((s.get("events") or {} for s in snapshots), now)
    recent, totals = counts["last_minute"], counts["totals"]
    states = {s["affinity"] for s in snapshots}
    stores = {s.get("affinity_store") for s in snapshots} - {None}
    if states == {"disabled"}:
        state = "disabled"
    elif "degraded" in states or any(recent.get(name) for name in DEGRADING):
        state = "degraded"
    else:
        state = "ok"
    retries: dict[tuple[str, str, str], int] = {}
    for snap in snapshots:
        for route, away_from, to, n in snap.get("retries") or []:
            retries[(route, away_from, to)] = retries.get((route, away_from, to), 0) + n
    return {
        "affinity": state,
        "affinity_store": next((w for w in WORST_FIRST if w in stores), None),
        "affinity_backlog": sum(s.get("affinity_backlog", 0) for s in snapshots),
        "affinity_last_minute": {name: recent.get(name, 0) for name in DEGRADING},
        "affinity_totals": {name: totals.get(name, 0) for name in DEGRADING},
        "affinity_failed_recalls": totals.get("failed_recalls", 0),
        "retries": {
            "last_minute": recent.get("retries", 0),
            "total": totals.get("retries", 0),
            "by_route": [[r, a, t, n] for (r, a, t), n in sorted(retries.items())],
        },
    }


def _no_figures() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "last_minute": {"requests": 0, "error_rate": 0, "p50_ms": None, "p99_ms": None},
    }


def _worker_view(snap: Mapping[str, Any], now: float) -> dict[str, Any]:
    return {
        "index": snap["index"],
        "pid": snap["pid"],
        "generation": snap["table"]["generation"],
        "digest": snap["table"]["digest"][:12],
        "affinity": snap["affinity"],
        "affinity_store": snap.get("affinity_store"),
        "affinity_backlog": snap.get("affinity_backlog", 0),
        "affinity_failed_recalls": snap["affinity_failed_recalls"],
        "stale": now - snap["written_at"] > STALE_AFTER,
    }


def metrics_text(snapshots: Sequence[Mapping[str, Any]], now: float) -> str:
    merged = metrics.merge((s["metrics"] for s in snapshots), now)
    gauges: dict[str, float] = {"strangler_workers": len(snapshots)}
    families: list[metrics.Family] = []
    if snapshots:
        newest = max(snapshots, key=lambda s: s["table"]["generation"])
        gauges["strangler_table_generation"] = newest["table"]["generation"]
        gauges["strangler_reload_error"] = int(
            any(s["table"].get("last_reload_error") for s in snapshots)
        )
        view = affinity_view(snapshots, now)
        gauges["strangler_affinity_degraded"] = int(view["affinity"] == "degraded")
        gauges["strangler_affinity_failed_recalls"] = view["affinity_failed_recalls"]
        gauges["strangler_affinity_backlog"] = view["affinity_backlog"]
        families += [
            metrics.Family(
                "strangler_affinity_last_minute", "gauge",
                "Affinity events in the last minute: any makes the affinity degraded.",
                [({"event": name}, n) for name, n in view["affinity_last_minute"].items()],
            ),
            metrics.Family(
                "strangler_affinity_events_total", "counter",
                "Affinity misses, placements released before stored, unanswered recalls, "
                "placements lost.",
                [({"event": name}, n) for name, n in view["affinity_totals"].items()],
            ),
            metrics.Family(
                "strangler_retries_total", "counter",
                "Requests retried on the route's fallback after a refusal, by route.",
                [({"route": r, "from": a, "to": t}, n)
                 for r, a, t, n in view["retries"]["by_route"]],
            ),
        ]  # fmt: skip
        gateway = gateway_status(snapshots, now)
        gauges["strangler_throttle_degraded"] = int(gateway["throttle"] == "degraded")
        families += gateway_families(gateway)
    open_circuits = {
        name for s in snapshots for name, c in s["circuits"].items() if c["state"] != "closed"
    }
    gauges["strangler_open_circuits"] = len(open_circuits)
    return metrics.prometheus_text(merged, gauges, families)
