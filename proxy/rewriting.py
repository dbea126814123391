"""A route's rewrite for one backend: the path it is sent and the headers set or removed."""

from __future__ import annotations

from urllib.parse import quote

from strangler.routing.gateway import Rewrite


def rewritten_target(target: bytes, route_prefix: str, rewrite: Rewrite, matched: str) -> bytes:
    """`target` with the route's prefix replaced by the rewrite's (the query kept).

    The route matched `matched` (the normalised path); when the raw path starts with the
    prefix as written, only that part changes (the rest is forwarded byte for byte),
    otherwise the normalised path is the one rewritten and re-encoded.
    """
    if rewrite.prefix is None:
        return target
    path, mark, query = target.partition(b"?")
    prefix = route_prefix.encode()
    if path.startswith(prefix):
        rest = path[len(prefix) :]
    else:
        tail = matched[len(route_prefix) :].encode("utf-8", "surrogateescape")
        rest = quote(tail, safe="/:@!$&'()*+,;=-._~").encode()
    return rewrite.prefix.encode() + rest + mark + query


def edit_lines(
    kept: bytes, remove: frozenset[str], set_headers: tuple[tuple[str, str], ...]
) -> bytes:
    """Header lines (`Name: value\\r\\n`...) without the removed or set names, then the set ones."""
    if not remove and not set_headers:
        return kept
    dropped = remove | {name.lower() for name, _ in set_headers}
    out = [
        line + b"\r\n"
        for line in kept.split(b"\r\n")
        if line and line.split(b":", 1)[0].strip().lower().decode("latin-1") not in dropped
    ]
    out += [f"{name}: {value}\r\n".encode("latin-1") for name, value in set_headers]
    return b"".join(out)
