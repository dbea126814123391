"""The routing table's typed records, its error and constants, shared by parsing and routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from strangler.routing.gateway import BackendRules, Cache, Limit, Mock
from strangler.routing.placement import bucket_ranges
from strangler.routing.rollout import Rollout

StickyKind = Literal["header", "cookie", "query", "json", "client_ip"]
STICKY_KINDS: tuple[str, ...] = ("header", "cookie", "query", "json", "client_ip")
NORMALIZERS: tuple[str, ...] = ("strip", "lower")  # sticky key steps, applied in order
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"})
DEFAULT_HEALTH = "/healthz"
DEFAULT_TTL = 600  # the lifetime of a verification code: a flow started before a flip ends there
MAX_STORE_TIMEOUT = 60.0  # seconds; a request waiting longer on the affinity store is lost anyway


class RoutingConfigError(ValueError):
    """An invalid routing table; the message names the file, the route and the bad value."""

    def __init__(self, source: str, where: str, message: str) -> None:
        self.source = source
        self.where = where  # e.g. "routes[0] (verification).split" or "backends.monolith.url"
        self.detail = message
        super().__init__(f"{source}: {where}: {message}")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    url: str  # scheme://host:port, no path
    scheme: str
    host: str
    port: int
    health: str  # path probed to close a circuit, e.g. "/healthz"
    mock: Mock | None = None  # canned answers instead of a server (`url` is then mock://NAME)


@dataclass(frozen=True, slots=True)
class Sticky:
    kind: StickyKind
    name: str | None  # header (lower-cased)/cookie/query/json field name; None for client_ip
    ttl: int  # seconds a served key keeps its backend after a split change
    # Applied to the key before hashing, so that values a backend treats as one
    # destination (" A@B.example" and "a@b.example") land on one backend.
    normalize: tuple[str, ...] = ()
    # Seconds a request may wait on the affinity store (a recall, or its placement being
    # stored) before the hash decides or the response goes out; None: the data plane's default.
    store_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A backend's answer that means "I did nothing": such a request may go to the fallback.

    Only an answer with this status whose JSON body has this `error` qualifies, and only
    for a request that has no affinity to the backend that gave it.
    """

    status: int  # 500-599
    error: str  # the machine code in the JSON body's `error` field, e.g. "unavailable"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    prefix: str
    methods: frozenset[str] | None  # None: every method
    split: tuple[tuple[str, int], ...]  # (backend, percent) in file order, sums to 100
    sticky: Sticky | None
    fallback: str | None
    retry: Retry | None = None
    # The API-gateway duties (strangler/routing/gateway.py); every one is optional.
    match_headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value): all must hold
    limit: Limit | None = None  # throttling of the whole route
    backend_rules: tuple[tuple[str, BackendRules], ...] = ()  # per backend of the split
    cache: Cache | None = None
    rollout: Rollout | None = None
    # Derived for the hot path: cumulative (upper bucket, backend), see selection.bucket_ranges.
    ranges: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)
    # Derived for the hot path: the data plane counts this route's outcomes (strangler.rollout)
    # only while it has a rollout and both its backends get traffic.
    analysed: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", bucket_ranges(self.split, self.fallback))
        shares = [p for name, p in self.split if name != self.fallback]
        analysed = self.rollout is not None and len(shares) == 1 and 0 < shares[0] < 100
        object.__setattr__(self, "analysed", analysed)

    @property
    def json_keyed(self) -> bool:
        """True when a key of the route (sticky, or a limit's) is read from the JSON body."""
        limits = [self.limit, *(rules.limit for _, rules in self.backend_rules)]
        kinds = [self.sticky.kind if self.sticky else None]
        kinds += [limit.kind for limit in limits if limit is not None]
        return "json" in kinds

    def rules_for(self, backend: str) -> BackendRules | None:
        """The route's rewrite and limit for one of its backends, if it declares any."""
        for name, rules in self.backend_rules:
            if name == backend:
                return rules
        return None

    @property
    def new_backend(self) -> str | None:
        """The backend the route migrates to: the split's backend that is not the fallback."""
        others = [name for name, _ in self.split if name != self.fallback]
        return others[0] if len(others) == 1 else None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    backends: dict[str, Backend]
    default_backend: str
    routes: tuple[Route, ...]
    source: str  # the file it came from
    digest: str  # sha256 of the file's bytes: same text, same table
    # Derived for match_route: per method, the routes that accept it, longest prefix first.
    by_method: dict[str, tuple[tuple[str, Route], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # A route that also matches on headers is asked before one on the same prefix without.
        ordered = sorted(
            self.routes, key=lambda r: (len(r.prefix), len(r.match_headers)), reverse=True
        )
        index = {
            method: tuple(
                (r.prefix, r) for r in ordered if r.methods is None or method in r.methods
            )
            for method in ["*", *sorted(METHODS)]
        }
        object.__setattr__(self, "by_method", index)

    def route(self, name: str) -> Route | None:
        """The route called `name`, if any."""
        return next((r for r in self.routes if r.name == name), None)
