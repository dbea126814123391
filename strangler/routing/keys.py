"""Sticky keys: the bytes of a request that identify its user, read and normalised (pure).

Every rule here is one HAProxy applies natively too (see strangler/haproxy/), so that a key
is the same bytes, and lands on the same backend, whichever data plane reads it:
- `header:NAME`: the first `NAME` header line, whole (commas included), spaces around it
  removed;
- `cookie:NAME`: the last `NAME` cookie of the `Cookie` header, as sent (quotes kept);
- `query:NAME`: the first `NAME=` parameter (the name as sent), `+` and `%XX` decoded; a
  value with a malformed escape is no key;
- `json:NAME`: the first top-level `NAME` of a JSON object body (RFC 8259, UTF-8): a string
  as UTF-8 (escapes decoded), an integer as its digits; no key for any other value, or for
  a body that is not JSON;
- `client_ip`: the peer's address as text.
`normalize` steps are ASCII: `strip` removes spaces, tabs, CR, LF, VT and FF at both ends,
`lower` lower-cases A-Z. An empty key is no key: an empty string identifies nobody.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from strangler.routing.records import Sticky

HeaderLookup = Mapping[str, str] | Callable[[str], str | None]
ASCII_SPACE = b" \t\n\r\x0b\x0c"
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")


def extract_key(
    sticky: Sticky | None,
    *,
    headers: HeaderLookup,
    query: str | bytes = b"",
    body: bytes | None = None,
    client_ip: str | None = None,
) -> bytes | None:
    """The request's sticky key, or None when the route has none or the request lacks it.

    `headers` is a mapping with lower-case names or a callable taking a lower-case name;
    its values are the header bytes decoded as latin-1 (so they round-trip). `body` is the
    (bounded) request body, needed only for `json:` keys.
    """
    if sticky is None:
        return None
    key = _raw_key(sticky, headers, query, body, client_ip)
    if not key or not sticky.normalize:
        return key or None
    for step in sticky.normalize:
        key = key.strip(ASCII_SPACE) if step == "strip" else key.lower()
    return key or None


def _raw_key(
    sticky: Sticky,
    headers: HeaderLookup,
    query: str | bytes,
    body: bytes | None,
    client_ip: str | None,
) -> bytes | None:
    kind, name = sticky.kind, sticky.name or ""
    if kind == "client_ip":
        return client_ip.encode() if client_ip else None
    if kind == "query":
        return query_value(query, name)
    if kind == "json":
        return json_field(body, name) if body else None
    lookup = headers if callable(headers) else headers.get
    if kind == "header":
        value = lookup(name)  # without the whitespace around it (RFC 9110 5.5), as HAProxy
        return value.encode("latin-1").strip(b" \t") if value else None
    cookie = lookup("cookie")
    return cookie_value(cookie.encode("latin-1"), name) if cookie else None


def cookie_value(cookie_header: bytes | str, name: str) -> bytes | None:
    """The value of the last cookie `name` in a `Cookie:` header, spaces around it removed."""
    if isinstance(cookie_header, str):
        cookie_header = cookie_header.encode("latin-1")
    wanted, found = name.encode("latin-1"), None
    for part in cookie_header.split(b";"):
        key, sep, value = part.partition(b"=")
        if sep and key.strip(b" \t") == wanted:
            found = value.strip(b" \t")
    return found or None


def query_value(query: str | bytes, name: str) -> bytes | None:
    """The first value of parameter `name` in a query string (without `?`), decoded."""
    if isinstance(query, str):
        query = query.encode("latin-1")
    wanted = name.encode("latin-1")
    for part in query.split(b"&"):
        key, sep, value = part.partition(b"=")
        if key == wanted and sep:
            return url_decoded(value.replace(b"+", b" ")) or None
    return None


def url_decoded(value: bytes) -> bytes | None:
    """`%XX` escapes decoded; None when a `%` starts no valid escape (as HAProxy's url_dec)."""
    if b"%" not in value:
        return value
    if value.count(b"%") != len(_ESCAPE.findall(value)):
        return None
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value)


def json_field(body: bytes | str, name: str) -> bytes | None:
    """The first top-level `name` of a JSON object body: a string (UTF-8) or an integer."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        document = json.loads(text, object_pairs_hook=_first_wins, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    value = document.get(name) if isinstance(document, dict) else None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass") or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return None


def _first_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        document.setdefault(key, value)
    return document


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")
