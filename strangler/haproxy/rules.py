"""The per-route part of the exported HAProxy config: match, sticky key, split and affinity.

Each route is one HAProxy backend holding a server per backend of its split, so its rules run
only for its own requests. They place a request exactly as `strangler.routing` does: the same
key bytes (`keys.py`), the same bucket (`placement.bucket`: XXH32 seeded with the route's salt,
modulo 10,000), the same ranges (`placement.split_bounds`, whose uppers live in the map file so
`set map` flips them live), and a flow kept on the backend that served it for the route's ttl
(a stick table). `use-server` sends the request to the chosen server; the load balancer,
which only the fallback has weight for, takes it when that server is down or refuses the
connection (a redispatch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from strangler.haproxy import gateway_rules
from strangler.routing.keys import ASCII_SPACE
from strangler.routing.placement import BUCKETS, route_seed, split_bounds
from strangler.routing.records import Backend, Route, RoutingConfigError, RoutingTable

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")  # names HAProxy takes verbatim in an expression
SAFE_LITERAL = re.compile(r"[^\s'\\]+\Z")  # text that can sit inside single quotes
TRIM = "".join(f"\\x{c:02x}" for c in ASCII_SPACE)  # ltrim/rtrim take escapes in double quotes

PINNED_TO_UNAVAILABLE = (
    "status 503 content-type application/json string "
    """'{"error":"unavailable","message":"the backend this request belongs to is unavailable; """
    """try again"}' hdr Retry-After 1 hdr X-Strangler-Backend proxy"""
)
ServerLines = Callable[[Backend, int, bool], Iterator[str]]


def route_where(table: RoutingTable, route: Route) -> str:
    return f"routes[{table.routes.index(route)}] ({route.name})"


def literal(table: RoutingTable, where: str, value: str) -> str:
    """`value` single-quoted for the config, or a refusal naming the field."""
    if not SAFE_LITERAL.match(value):
        raise RoutingConfigError(
            table.source, where, f"{value!r} cannot be exported to HAProxy (quote or space)"
        )
    return f"'{value}'"


def route_backend(route: Route) -> str:
    return f"r:{route.name}"  # ':' is in no name of ours: no clash with a backend's `b:NAME`


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
    if sticky is None:
        raise ValueError(f"route {route.name} has no sticky key")
    name = sticky.name or ""
    if sticky.kind != "client_ip" and not SAFE_NAME.match(name):
        where = f"{route_where(table, route)}.sticky.key"
        raise RoutingConfigError(
            table.source, where, f"{name!r}: HAProxy takes names of letters, digits, '_.-' only"
        )
    fetch = {
        "header": f"req.fhdr({name},1)",
        "cookie": f"req.cook({name})",
        "query": f"urlp({name}),url_dec(1)",
        "json": f"req.body,json_query('$.{name}')",  # see _key_lines: Lua when it would differ
        "client_ip": "var(txn.client_ip)",  # the peer's address as text (set-var-fmt)
    }[sticky.kind]
    for step in sticky.normalize:
        fetch += f',ltrim("{TRIM}"),rtrim("{TRIM}")' if step == "strip" else ",lower"
    return fetch


def use_backend_lines(table: RoutingTable) -> Iterator[str]:
    """A request goes to its route's backend: the longest prefix first, then the methods; on
    one prefix, a route matching on headers (`match.header`: versions) before one without."""
    gateway_rules.refuse_gateway(table, lambda route: route_where(table, route))
    ordered = sorted(
        table.routes, key=lambda r: (len(r.prefix), len(r.match_headers)), reverse=True
    )
    for route in ordered:
        where = f"{route_where(table, route)}.match.prefix"
        condition = f"{{ path_beg {literal(table, where, route.prefix)} }}"
        if route.methods:
            condition += f" {{ method {' '.join(sorted(route.methods))} }}"
        for name, value in route.match_headers:  # the first line, trimmed, as keys.py reads it
            here = f"{route_where(table, route)}.match.header.{name}"
            if not SAFE_NAME.match(name):
                raise RoutingConfigError(
                    table.source,
                    here,
                    f"{name!r}: HAProxy takes names of letters, digits, '_.-' only",
                )
            condition += f" {{ req.fhdr({name},1) -m str {literal(table, here, value)} }}"
        yield f"use_backend {route_backend(route)} if {condition}"


def route_block(
    table: RoutingTable, route: Route, splits_map: str, servers: ServerLines
) -> Iterator[str]:
    """The route's backend: its placement rules, its servers, and affinity on the answer."""
    if route.rollout is not None:
        # The rollout's analysis counts each answer's outcome (its status and JSON fields):
        # the embedded data plane does that; HAProxy's counters have no outcomes to compare.
        raise RoutingConfigError(
            table.source, f"{route_where(table, route)}.rollout",
            "a progressive rollout needs the embedded data plane (it reads each answer's "
            "outcome); serve this file with --data-plane embedded, or remove the block",
        )  # fmt: skip
    order = positions(route)
    yield f"# route {route.name}: {route.prefix} {' '.join(sorted(route.methods or ['*']))}"
    yield f"backend {route_backend(route)}"
    only = table.backends[order[0]] if len(order) == 1 else None
    if only is not None and only.mock is not None:  # its canned answers, no server
        yield from gateway_rules.mock_lines(table, only)
        yield ""
        return
    yield "    balance first"  # only the fallback has weight: it takes what no rule placed
    yield "    acl has_key var(txn.key) -m len gt 0"
    yield "    acl has_skey var(txn.skey) -m found"
    yield "    acl has_bucket var(txn.bucket) -m found"
    yield "    acl has_pick var(txn.pick) -m found"
    yield "    acl forced var(txn.force) -m found"
    if route.retry is not None:
        yield from _retry_lines(route)
    if route.sticky is not None:
        if route.sticky.kind == "json" or route.retry is not None:
            yield "    http-request wait-for-body time 1s at-least 16k"
        if route.sticky.kind == "client_ip":
            yield "    http-request set-var-fmt(txn.client_ip) %[src]"
        yield from _key_lines(table, route)
        bucket = f"var(txn.key),xxh32({route_seed(route.name)}),mod({BUCKETS})"
        yield f"    http-request set-var(txn.bucket) {bucket} if has_key"
    yield f"    http-request set-var(txn.bucket) rand({BUCKETS}) unless has_bucket"
    for position in range(len(order) - 1):
        upper = f"str({map_key(route, position)}),map_str_int({splits_map},0)"
        yield f"    http-request set-var(txn.upper) {upper} unless has_pick"
        yield (
            f"    http-request set-var(txn.pick) int({position + 1}) unless has_pick "
            "|| { var(txn.bucket),sub(txn.upper) ge 0 }"
        )
    yield f"    http-request set-var(txn.pick) int({len(order)}) unless has_pick"
    if route.sticky is not None:
        yield from _affinity_lines(route)
    if route.retry is not None and route.fallback is not None:
        fallback = order.index(route.fallback) + 1
        yield (
            "    http-request disable-l7-retry "
            f"if {{ var(txn.pinned) -m int gt 0 }} || {{ var(txn.pick) -m int {fallback} }}"
        )
    yield from gateway_rules.rewrite_lines(table, route, route_where(table, route))
    for position, name in enumerate(order, start=1):
        yield f"    use-server {name} if {{ var(txn.pick) -m int {position} }}"
    for position, name in enumerate(order, start=1):
        weighted = name == route.fallback or len(order) == 1
        yield from servers(table.backends[name], position, weighted)
    if route.sticky is not None:
        yield "    http-response sc-set-gpt0(0) srv_id if has_skey !forced { status lt 500 }"
    yield ""
    if route.sticky is not None:
        yield f"backend {stick_table(route)}"
        yield (
            f"    stick-table type binary len 8 size 1m expire {route.sticky.ttl}s "
            "store gpt0 peers strangler"
        )
        yield ""


def _key_lines(table: RoutingTable, route: Route) -> Iterator[str]:
    """`txn.key` as `keys.extract_key` reads it.

    For a json key, HAProxy's own json_query is exact for a string without escapes, the
    common case, and costs a fraction of the Lua reader; anything else it could misread
    (an escape in the body, a number, a boolean, no value) goes to the Lua reader, which
    decodes as the embedded proxy does.
    """
    fetch = key_fetch(table, route)
    if route.sticky is None or route.sticky.kind != "json":
        yield f"    http-request set-var(txn.key) {fetch}"
        return
    name = route.sticky.name
    steps = fetch.split(",", 2)[2:]  # the normalize converters after req.body,json_query(...)
    native = f"req.body,json_query('$.{name}')"
    exact = f"req.body,lua.strangler_json_key({name})"
    yield f"    http-request set-var(txn.key) {native} unless {{ req.body -m sub \\\\ }}"
    # No key yet: an escape in the body, or no string value; a digit or '-': a number.
    yield (
        f"    http-request set-var(txn.key) {exact} "
        "if !{ var(txn.key) -m found } || { var(txn.key) -m beg -- - 0 1 2 3 4 5 6 7 8 9 }"
    )
    if steps:
        yield f"    http-request set-var(txn.key) var(txn.key),{steps[0]} if has_key"


def _retry_lines(route: Route) -> Iterator[str]:
    """A refusal of the route's status is tried once more, on the fallback (the load balancer
    of this backend only ever picks the fallback), unless the key is pinned (see above)."""
    retry = route.retry
    assert retry is not None
    yield f"    # HAProxy decides on the status alone: it cannot read {retry.error!r} in the body."
    yield f"    retry-on conn-failure {retry.status}"
    yield "    retries 1"


def _affinity_lines(route: Route) -> Iterator[str]:
    """A key served before keeps its backend while that backend is up (the flip survives)."""
    yield "    http-request set-var(txn.skey) var(txn.key),xxh64 if has_key"
    yield f"    http-request track-sc0 var(txn.skey) table {stick_table(route)} if has_skey"
    yield "    http-request set-var(txn.pinned) sc_get_gpt0(0) if has_skey"
    for position, name in enumerate(positions(route), start=1):
        # The tracked server: srv_is_up is always true on one without checks of its own.
        up = f"{{ srv_is_up(b:{name}/{name}) }}"
        pinned = f"{{ var(txn.pinned) -m int {position} }}"
        yield f"    http-request set-var(txn.pick) int({position}) if {pinned} {up}"
        # Its flow lives on a backend that is down: anywhere else it would not exist.
        yield f"    http-request return {PINNED_TO_UNAVAILABLE} if {pinned} !{up}"
