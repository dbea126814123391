"""Placement: a key's stable bucket for a route, and the split's percentage ranges over buckets."""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable
from typing import Protocol

import xxhash

BUCKETS = 10_000  # a key lands in one of these; 1 % of traffic is 100 buckets
_PERCENT = BUCKETS // 100


class Rng(Protocol):
    def randrange(self, stop: int, /) -> int: ...


class Placed(Protocol):
    """What placement reads of a route (`records.Route` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def ranges(self) -> tuple[tuple[int, str], ...]: ...


@functools.lru_cache(maxsize=256)
def route_seed(route_name: str) -> int:
    """The route's salt: two routes keyed on the same value split independently."""
    return xxhash.xxh32_intdigest(route_name.encode())


def bucket(route_name: str, key: str | bytes) -> int:
    """The key's bucket in [0, BUCKETS) for this route, identical in every process and run.

    XXH32 of the key's bytes seeded with the route's salt, modulo BUCKETS: a function HAProxy
    computes natively (`xxh32(SEED),mod(10000)`), so both data planes place a key alike.
    """
    data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    return xxhash.xxh32_intdigest(data, route_seed(route_name)) % BUCKETS


def bucket_ranges(
    split: Iterable[tuple[str, int]], fallback: str | None
) -> tuple[tuple[int, str], ...]:
    """Cumulative (upper bound, backend) ranges: the split's backends in file order, fallback last.

    With two backends the new one owns [0, p*100) and the fallback the rest, so raising
    p only moves keys from the fallback to the new backend and lowering p only moves
    them back. Backends at 0 % own no range.
    """
    return tuple((upper, name) for name, upper, width in split_bounds(split, fallback) if width)


def split_bounds(
    split: Iterable[tuple[str, int]], fallback: str | None
) -> list[tuple[str, int, int]]:
    """(backend, upper bucket, width) for every backend of a split, in placement order.

    The order is the split's file order with the fallback moved last; a backend at 0 % has
    width 0. The HAProxy export writes these uppers into its map, so both planes agree.
    """
    items = list(split)
    ordered = [item for item in items if item[0] != fallback]
    ordered += [item for item in items if item[0] == fallback]
    bounds, upper = [], 0
    for name, percent in ordered:
        upper += percent * _PERCENT
        bounds.append((name, upper, percent * _PERCENT))
    return bounds


def backend_for_bucket(route: Placed, value: int) -> str:
    """The backend whose range holds `value` (a bucket in [0, BUCKETS))."""
    for upper, name in route.ranges:
        if value < upper:
            return name
    return route.ranges[-1][1]


def select_backend(route: Placed, key: str | bytes | None, rng: Rng = random) -> str:
    """The backend for a request: by the key's bucket, or at random at the split's odds."""
    if len(route.ranges) == 1:  # one backend takes it all (before, after or rolled back)
        return route.ranges[0][1]
    value = rng.randrange(BUCKETS) if key is None else bucket(route.name, key)
    return backend_for_bucket(route, value)
