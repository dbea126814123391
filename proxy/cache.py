"""The response cache of a worker: GET answers of the routes that ask for it, memory-bound.

It acts as a shared HTTP cache would (RFC 9111), kept simple: only a complete 200 answer is
stored, never one with `Set-Cookie`, `Cache-Control: no-store`, `private` or `no-cache`,
`Vary: *`, or to a request with `Authorization`; its freshness is `s-maxage`, else
`max-age`, else the route's `cache.ttl` (0: not stored). `Vary` is honoured: a stored
answer is given only to a request whose varying headers are the same. A request saying
`Cache-Control: no-cache` (or `no-store`) is sent to the backend. Answers are evicted least
recently used first once the worker's bound (STRANGLER_CACHE_BYTES) is reached. Each worker
has its own: a backend sees at most one request per worker per freshness lifetime.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from strangler.proxy.forwarding import Headers

ENTRY_OVERHEAD = 256  # bytes counted per entry on top of its head and body
_DIRECTIVE = re.compile(r"\s*([A-Za-z-]+)\s*(?:=\s*\"?([^,\"]*)\"?)?\s*(?:,|$)")
UNSTORED = frozenset({"set-cookie", "age"})  # not kept: Age is made anew (from Date on)


@dataclass(slots=True)
class Entry:
    """A stored answer: its status line's reason, kept header lines, body and lifetime."""

    reason: bytes
    kept: bytes  # header lines as the client gets them, without framing or Age
    body: bytes
    backend: bytes
    stored_at: float
    fresh_until: float
    age_at_store: int  # the backend's own Age, if it sent one
    vary: tuple[tuple[str, str | None], ...]  # (lower-case name, the request's value)

    @property
    def size(self) -> int:
        return len(self.kept) + len(self.body) + ENTRY_OVERHEAD


Lookup = Callable[[str], str | None]


def directives(value: str | None) -> dict[str, str | None]:
    """`Cache-Control` directives, lower-case names: `max-age=60, private` -> {...}."""
    found: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(value or ""):
        if match.group(1):
            found.setdefault(match.group(1).lower(), match.group(2))
    return found


def request_may_use(lookup: Lookup) -> bool:
    """False when the request must go to the backend: it asks so, or it carries credentials."""
    if lookup("authorization") is not None:
        return False
    asked = directives(lookup("cache-control"))
    return "no-cache" not in asked and "no-store" not in asked and lookup("pragma") is None


def freshness(headers: Headers, default_ttl: int) -> tuple[float, int, list[str]] | None:
    """(seconds fresh, backend's Age, Vary names) of a storable 200 answer's headers, else None."""
    control = vary = age = None
    for name, value in headers:
        lower = name.lower()
        if lower == b"set-cookie":
            return None
        if lower == b"cache-control":
            control = value.decode("latin-1") if control is None else f"{control},{value}"
        elif lower == b"vary":
            vary = value.decode("latin-1") if vary is None else f"{vary},{value.decode()}"
        elif lower == b"age" and value.strip().isdigit():
            age = int(value)
    told = directives(control)
    if {"no-store", "private", "no-cache"} & told.keys():
        return None
    names = [v.strip().lower() for v in (vary or "").split(",") if v.strip()]
    if "*" in names:
        return None
    lifetime: float | None = None
    for directive in ("s-maxage", "max-age"):
        raw = told.get(directive)
        if raw is not None and raw.isdigit():
            lifetime = int(raw)
            break
    if lifetime is None:
        lifetime = default_ttl
    fresh = lifetime - (age or 0)
    return (fresh, age or 0, names) if fresh > 0 else None


class ResponseCache:
    """Stored answers by (route, request target), least recently used evicted first."""

    def __init__(self, max_bytes: int, clock: Callable[[], float]) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.entries: OrderedDict[tuple[str, bytes], list[Entry]] = OrderedDict()
        self.size = 0
        self.hits = self.misses = self.stored = self.evicted = 0

    def get(self, route: str, target: bytes, lookup: Lookup) -> Entry | None:
        variants = self.entries.get((route, target))
        now = self.clock()
        if variants:
            for entry in list(variants):
                if entry.fresh_until <= now:
                    self._drop((route, target), entry)
                elif all(lookup(name) == value for name, value in entry.vary):
                    self.entries.move_to_end((route, target))
                    self.hits += 1
                    return entry
        self.misses += 1
        return None

    def put(self, route: str, target: bytes, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        key = (route, target)
        variants = self.entries.setdefault(key, [])
        for old in [e for e in variants if e.vary == entry.vary]:
            self._drop(key, old)
        self.entries.setdefault(key, []).append(entry)
        self.entries.move_to_end(key)
        self.size += entry.size
        self.stored += 1
        while self.size > self.max_bytes and self.entries:
            oldest_key, oldest = next(iter(self.entries.items()))
            self._drop(oldest_key, oldest[0])
            self.evicted += 1

    def _drop(self, key: tuple[str, bytes], entry: Entry) -> None:
        variants = self.entries.get(key)
        if variants and entry in variants:
            variants.remove(entry)
            self.size -= entry.size
            if not variants:
                del self.entries[key]

    def clear_route(self, keep: set[str]) -> None:
        """Forget the answers of routes that are gone or no longer cache (a reload)."""
        for key in [k for k in self.entries if k[0] not in keep]:
            for entry in list(self.entries[key]):
                self._drop(key, entry)

    def snapshot(self) -> dict[str, int]:
        return {
            "hits": self.hits, "misses": self.misses, "stored": self.stored,
            "evicted": self.evicted, "bytes": self.size, "max_bytes": self.max_bytes,
            "entries": sum(len(v) for v in self.entries.values()),
        }  # fmt: skip


def kept_lines(kept: bytes) -> bytes:
    """A response's kept header lines without those a stored copy must not repeat."""
    out = []
    for line in kept.split(b"\r\n"):
        if line and line.split(b":", 1)[0].strip().lower().decode("latin-1") not in UNSTORED:
            out.append(line + b"\r\n")
    return b"".join(out)
