"""Which backend serves a request: route match, sticky key, split, override, circuits (pure)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from strangler.routing.circuit import Circuits
from strangler.routing.keys import extract_key
from strangler.routing.placement import select_backend
from strangler.routing.records import Backend, Route, RoutingTable
from strangler.routing.table import match_route

DEFAULT_ROUTE = "(default)"  # the metrics label of requests no route matched
FORCE_HEADER = "x-strangler-force-backend"
ADMIN_TOKEN_HEADER = "x-strangler-admin-token"  # noqa: S105 (a header name)

HeaderLookup = Callable[[str], str | None]


@dataclass(slots=True)
class Decision:
    route: Route | None
    backend: str  # where the request goes (a failover or retry changes it)
    key: bytes | None  # the sticky key (see keys.extract_key)
    forced: bool = False
    placed: str | None = None  # where the key's placement put it, before circuits and failover

    @property
    def route_name(self) -> str:
        return self.route.name if self.route is not None else DEFAULT_ROUTE


def token_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no configured token means nothing matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(lookup: HeaderLookup) -> str | None:
    """The admin token from `X-Strangler-Admin-Token` or `Authorization: Bearer`."""
    token = lookup(ADMIN_TOKEN_HEADER)
    if token:
        return token
    auth = lookup("authorization") or ""
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class Dispatcher:
    """Decides the backend of each request against the running table and circuits."""

    def __init__(self, table: RoutingTable, circuits: Circuits, admin_token: str | None) -> None:
        self.circuits = circuits
        self.admin_token = admin_token
        self.set_table(table)

    def set_table(self, table: RoutingTable) -> None:
        self.table = table
        self.circuits.sync(table.backends)

    def route_for(self, method: str, path: str, lookup: HeaderLookup | None = None) -> Route | None:
        return match_route(self.table, method, path, lookup)

    @staticmethod
    def needs_body(route: Route | None) -> bool:
        """True when the whole body is read before choosing: the sticky key (or a limit's) is a
        JSON body field, or the route may retry the request (the body is sent a second time)."""
        if route is None:
            return False
        return route.retry is not None or route.json_keyed

    def decide(
        self,
        route: Route | None,
        lookup: HeaderLookup,
        query: bytes,
        client_ip: str,
        body: bytes | None = None,
    ) -> Decision:
        forced = self.forced_backend(lookup)
        if forced is not None:
            return Decision(route, forced, None, forced=True)
        if route is None:
            return Decision(None, self.table.default_backend, None)
        key = extract_key(route.sticky, headers=lookup, query=query, body=body, client_ip=client_ip)
        placed = backend = select_backend(route, key)
        if not self.circuits.available(backend):
            backend = self.alternative(route, backend) or backend
        return Decision(route, backend, key, placed=placed)

    def forced_backend(self, lookup: HeaderLookup) -> str | None:
        """The tester's override, honoured only with the admin token and a configured backend."""
        name = lookup(FORCE_HEADER)
        if not name or name not in self.table.backends:
            return None
        return name if token_matches(lookup(ADMIN_TOKEN_HEADER), self.admin_token) else None

    def alternative(self, route: Route | None, failed: str) -> str | None:
        """Where a request goes when `failed` cannot be reached: the route's healthy fallback."""
        if route is None or route.fallback is None or route.fallback == failed:
            return None
        return route.fallback if self.circuits.available(route.fallback) else None

    def usable_affinity(self, backend: str | None) -> bool:
        """A remembered backend is used only while configured and its circuit is closed."""
        return (
            backend is not None
            and backend in self.table.backends
            and (self.circuits.available(backend))
        )

    def backend(self, name: str) -> Backend:
        return self.table.backends[name]
