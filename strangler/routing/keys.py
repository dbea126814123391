"""Sticky keys: the value of a request that identifies its user, read and normalised (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from strangler.routing.records import Sticky


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
