"""The routing table: typed records parsed and validated from `routes.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StickyKind = Literal["header", "cookie", "query", "json", "client_ip"]


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


@dataclass(frozen=True, slots=True)
class Sticky:
    kind: StickyKind
    name: str | None  # header/cookie/query/json field name; None for client_ip
    ttl: int  # seconds a served key keeps its backend after a split change


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    prefix: str
    methods: frozenset[str] | None  # None: every method
    split: tuple[tuple[str, int], ...]  # (backend, percent) in file order, sums to 100
    sticky: Sticky | None
    fallback: str | None

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
