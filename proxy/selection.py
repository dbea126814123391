"""Backend selection: a stable hash of the sticky key, split into percentage ranges (pure)."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from proxy.routing import Route, Sticky

BUCKETS = 10_000  # a key lands in one of these; 1 % of traffic is 100 buckets
_PERCENT = BUCKETS // 100


class Rng(Protocol):
    def randrange(self, stop: int, /) -> int: ...


def bucket(route_name: str, key: str | bytes) -> int:
    """The key's bucket in [0, BUCKETS) for this route, identical in every process and run.

    The route name salts the hash so that two routes keyed on the same value split
    independently. Route names cannot contain NUL, so the encoding is unambiguous.
    """
    data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    digest = hashlib.blake2b(route_name.encode() + b"\0" + data, digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def bucket_ranges(
    split: Iterable[tuple[str, int]], fallback: str | None
) -> tuple[tuple[int, str], ...]:
    """Cumulative (upper bound, backend) ranges: the split's backends in file order, fallback last.

    With two backends the new one owns [0, p*100) and the fallback the rest, so raising
    p only moves keys from the fallback to the new backend and lowering p only moves
    them back. Backends at 0 % own no range.
    """
    items = list(split)
    ordered = [item for item in items if item[0] != fallback]
    ordered += [item for item in items if item[0] == fallback]
    ranges, upper = [], 0
    for name, percent in ordered:
        if percent:
            upper += percent * _PERCENT
            ranges.append((upper, name))
    return tuple(ranges)


def backend_for_bucket(route: Route, value: int) -> str:
    """The backend whose range holds `value` (a bucket in [0, BUCKETS))."""
    for upper, name in route.ranges:
        if value < upper:
            return name
    return route.ranges[-1][1]


def select_backend(route: Route, key: str | bytes | None, rng: Rng = random) -> str:
    """The backend for a request: by the key's bucket, or at random at the split's odds."""
    if len(route.ranges) == 1:  # one backend takes it all (before, after or rolled back)
        return route.ranges[0][1]
    value = rng.randrange(BUCKETS) if key is None else bucket(route.name, key)
    return backend_for_bucket(route, value)


# --- sticky keys -------------------------------------------------------------------------

HeaderLookup = Mapping[str, str] | Callable[[str], str | None]


def extract_key(
    sticky: Sticky | None,
    *,
    headers: HeaderLookup,
    query: str | bytes = "",
    body: bytes | None = None,
    client_ip: str | None = None,
) -> str | None:
    """The request's sticky key, or None when the route has none or the request lacks it.

    `headers` is a mapping with lower-case names or a callable taking a lower-case name.
    `body` is the (bounded) request body, needed only for `json:` keys. Empty values count
    as absent: an empty string identifies nobody.
    """
    if sticky is None:
        return None
    key = _raw_key(sticky, headers, query, body, client_ip)
    if key is None or not sticky.normalize:
        return key
    for step in sticky.normalize:
        key = key.strip() if step == "strip" else key.lower()
    return key or None


def _raw_key(
    sticky: Sticky,
    headers: HeaderLookup,
    query: str | bytes,
    body: bytes | None,
    client_ip: str | None,
) -> str | None:
    kind, name = sticky.kind, sticky.name or ""
    if kind == "client_ip":
        return client_ip or None
    if kind == "query":
        return query_value(query, name)
    if kind == "json":
        return json_field(body, name) if body else None
    lookup = headers if callable(headers) else headers.get
    if kind == "header":
        return lookup(name) or None
    cookie = lookup("cookie")
    return cookie_value(cookie, name) if cookie else None


def cookie_value(cookie_header: str, name: str) -> str | None:
    """The value of cookie `name` in a `Cookie:` header (first one wins), unquoted."""
    for part in cookie_header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def query_value(query: str | bytes, name: str) -> str | None:
    """The first value of parameter `name` in a query string (without `?`), percent-decoded."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote_plus(key) == name:
            return unquote_plus(value) or None
    return None


def json_field(body: bytes | str, name: str) -> str | None:
    """A top-level string or number field of a JSON object body, as text; None otherwise."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = document.get(name) if isinstance(document, dict) else None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value) if math.isfinite(value) else None
    return None
