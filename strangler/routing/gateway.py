"""The API-gateway duties a route may declare: throttling, rewriting, mocks, caching (records).

They are parsed by `gateway_validation.py` and applied by the embedded proxy; each is either
exported to HAProxy or refused there (`strangler/haproxy/rules.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Headers the proxy itself owns on either side: a rewrite may not set or remove them, or it
# could break the framing, forge the visibility headers or smuggle the internal token.
RESERVED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "content-length", "host", "x-request-id", "x-forwarded-for",
        "x-forwarded-host", "x-forwarded-proto",
    }
)  # fmt: skip
PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}  # `rate: 20/s`, `100/m`, `1000/h`
MAX_MOCK_BODY = 64 * 1024  # a canned answer is small; bigger belongs in a real backend


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket per key: `burst` tokens, refilled at `per_second`; one per request.

    A request without the key (no such header, no body field) is counted under one shared
    empty key, so leaving the key out never escapes the limit.
    """

    kind: str  # how the key is read: the rules of a sticky key (`keys.extract_key`)
    name: str | None
    per_second: float
    burst: int
    rate: str  # as written, for the status: "20/s"
    normalize: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.kind if self.name is None else f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What a backend of a route sees instead of the client's request, and what it answers."""

    prefix: str | None  # the route's prefix becomes this one in the path sent to the backend
    set_headers: tuple[tuple[str, str], ...] = ()  # (name as written, value), request side
    remove_headers: frozenset[str] = frozenset()  # lower-case names, request side
    set_response_headers: tuple[tuple[str, str], ...] = ()
    remove_response_headers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BackendRules:
    """A route's duties for one of its backends: shield a new service more tightly, say."""

    rewrite: Rewrite | None = None
    limit: Limit | None = None


@dataclass(frozen=True, slots=True)
class MockAnswer:
    """One canned answer; `method`/`path` None match any (`path` ending in `*`: a prefix)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass(frozen=True, slots=True)
class Mock:
    """A backend that is not there yet: the first answer matching the request is given."""

    answers: tuple[MockAnswer, ...]

    def answer_for(self, method: str, path: str) -> MockAnswer | None:
        return next((a for a in self.answers if a.matches(method, path)), None)


@dataclass(frozen=True, slots=True)
class Cache:
    """GET/HEAD answers of the route kept per worker, as a shared HTTP cache would.

    `ttl` is the freshness of an answer that gives none (no `max-age`/`s-maxage`); 0 caches
    only answers that say how long they stay fresh.
    """

    ttl: int = 0
    max_entry: int = 262_144  # bytes of body; a bigger answer is passed on, not kept
