"""The per-route rules of the exported HAProxy config: match, sticky key, split and affinity.

Each function returns config lines for one route; together they make HAProxy place a request
exactly as `strangler.routing` does: the same key bytes (`keys.py`), the same bucket
(`placement.bucket`: XXH32 seeded with the route's salt, modulo 10,000), the same ranges
(`placement.split_bounds`, whose uppers live in the map file so `set map` flips them live),
and a flow kept on the backend that served it for the route's ttl (a stick table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from strangler.routing.keys import ASCII_SPACE
from strangler.routing.placement import BUCKETS, route_seed, split_bounds
from strangler.routing.records import Route, RoutingConfigError, RoutingTable

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")  # names HAProxy takes verbatim in an expression
SAFE_LITERAL = re.compile(r"[^\s'\\]+\Z")  # text that can sit inside single quotes
TRIM = "".join(f"\\x{c:02x}" for c in ASCII_SPACE)  # ltrim/rtrim take escapes in double quotes


def route_where(table: RoutingTable, route: Route) -> str:
    index = table.routes.index(route)
    return f"routes[{index}] ({route.name})"


def literal(table: RoutingTable, where: str, value: str) -> str:
    """`value` single-quoted for the config, or a refusal naming the field."""
    if not SAFE_LITERAL.match(value):
        raise RoutingConfigError(
            table.source, where, f"{value!r} cannot be exported to HAProxy (quote or space)"
        )
    return f"'{value}'"


def route_backend(route: Route, backend: str) -> str:
    """The HAProxy backend that serves `route` when it picks `backend` (':' is not in names)."""
    return f"r:{route.name}:{backend}"


def stick_table(route: Route) -> str:
    return f"st:{route.name}"


def map_key(route: Route, position: int) -> str:
    """The splits map's key of the upper bound of the route's `position`-th range."""
    return f"{route.name}/{position}"


def map_entries(table: RoutingTable) -> list[tuple[str, int]]:
    """Every (key, upper bound) the splits map holds for the table (last ranges are implied)."""
    entries = []
    for route in table.routes:
        for position, (_, upper, _) in enumerate(split_bounds(route.split, route.fallback)[:-1]):
            entries.append((map_key(route, position), upper))
    return entries


def positions(route: Route) -> list[str]:
    """The route's backends in placement order; a backend's server id is its position + 1."""
    return [name for name, _, _ in split_bounds(route.split, route.fallback)]


def key_fetch(table: RoutingTable, route: Route) -> str:
    """The sample expression of the route's sticky key, normalised (see `keys.py`)."""
    sticky = route.sticky
    where = f"{route_where(table, route)}.sticky.key"
    if sticky is None:
        raise ValueError("no sticky key")
    name = sticky.name or ""
    if sticky.kind != "client_ip" and not SAFE_NAME.match(name):
        raise RoutingConfigError(
            table.source, where, f"{name!r}: HAProxy takes names of letters, digits, '_.-' only"
        )
    fetch = {
        "header": f"req.fhdr({name},1)",
        "cookie": f"req.cook({name})",
        "query": f"urlp({name}),url_dec(1)",
        "json": f"req.body,lua.strangler_json_key({name})",
        "client_ip": "var(txn.client_ip)",
    }[sticky.kind]
    for step in sticky.normalize:
        fetch += f',ltrim("{TRIM}"),rtrim("{TRIM}")' if step == "strip" else ",lower"
    return fetch


def match_lines(table: RoutingTable) -> Iterator[str]:
    """Set `txn.route` to the route a request belongs to: the longest prefix, then methods."""
    ordered = sorted(table.routes, key=lambda r: len(r.prefix), reverse=True)
    for route in ordered:
        where = f"{route_where(table, route)}.match.prefix"
        condition = f"!has_route {{ var(txn.path) -m beg {literal(table, where, route.prefix)} }}"
        if route.methods:
            condition += f" {{ method {' '.join(sorted(route.methods))} }}"
        yield f"http-request set-var(txn.route) str({route.name}) if {condition}"


def placement_lines(table: RoutingTable, route: Route, splits_map: str) -> Iterator[str]:
    """Choose the route's backend position in `txn.pick` (1-based) as the routing model does."""
    on = f"{{ var(txn.route) -m str {route.name} }}"
    if route.sticky is not None:
        if route.sticky.kind == "json":
            yield f"http-request wait-for-body time 1s at-least 16k if {on}"
        yield f"http-request set-var(txn.key) {key_fetch(table, route)} if {on}"
        seed = route_seed(route.name)
        bucket = f"var(txn.key),xxh32({seed}),mod({BUCKETS})"
        yield f"http-request set-var(txn.bucket) {bucket} if {on} has_key"
    yield f"http-request set-var(txn.bucket) rand({BUCKETS}) if {on} !has_bucket"
    order = positions(route)
    for position in range(len(order) - 1):
        key = map_key(route, position)
        upper = f"str({key}),map_str_int({splits_map},0)"
        yield f"http-request set-var(txn.upper) {upper} if {on} !has_pick"
        yield (
            f"http-request set-var(txn.pick) int({position + 1}) if {on} !has_pick "
            "{ var(txn.bucket),sub(txn.upper) lt 0 }"
        )
    yield f"http-request set-var(txn.pick) int({len(order)}) if {on} !has_pick"
    if route.sticky is not None:
        yield from _affinity_lines(route, on)


def _affinity_lines(route: Route, on: str) -> Iterator[str]:
    """A key served before keeps its backend while that backend is up (the flip survives)."""
    yield f"http-request set-var(txn.skey) var(txn.key),xxh64 if {on} has_key"
    yield f"http-request track-sc0 var(txn.skey) table {stick_table(route)} if {on} has_key"
    yield f"http-request set-var(txn.pinned) sc_get_gpt0(0) if {on} has_key"
    for position, name in enumerate(positions(route), start=1):
        up = f"{{ srv_is_up({route_backend(route, name)}/{name}) }}"
        yield (
            f"http-request set-var(txn.pick) int({position}) if {on} "
            f"{{ var(txn.pinned) -m int {position} }} {up}"
        )


def use_backend_lines(route: Route) -> Iterator[str]:
    on = f"{{ var(txn.route) -m str {route.name} }}"
    for position, name in enumerate(positions(route), start=1):
        picked = f"{{ var(txn.pick) -m int {position} }}"
        yield f"use_backend {route_backend(route, name)} if {on} {picked}"


def remember_lines(route: Route) -> Iterator[str]:
    """On an answer below 500, store the position of the server that gave it (not forced)."""
    if route.sticky is None:
        return
    on = f"{{ var(txn.route) -m str {route.name} }}"
    yield f"http-response sc-set-gpt0(0) srv_id if {on} has_skey !forced {{ status lt 500 }}"


def route_backend_blocks(table: RoutingTable, route: Route, server_line) -> Iterator[str]:
    """One HAProxy backend per (route, chosen backend): the chosen one, the fallback as backup.

    A refused connect is retried and, once the server is marked down (after as many errors
    as the embedded proxy's circuit threshold), redispatched to the backup: the fallback.
    """
    order = positions(route)
    for name in order:
        yield f"backend {route_backend(route, name)}"
        yield from server_line(table.backends[name], order.index(name) + 1, backup=False)
        if route.fallback is not None and route.fallback != name:
            fallback = table.backends[route.fallback]
            yield from server_line(fallback, order.index(route.fallback) + 1, backup=True)
        yield ""
    if route.sticky is not None:
        yield f"backend {stick_table(route)}"
        yield (
            f"    stick-table type integer size 1m expire {route.sticky.ttl}s "
            "store gpt0 peers strangler"
        )
        yield ""
