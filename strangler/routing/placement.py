"""Placement: a key's stable bucket for a route, and the split's percentage ranges over buckets."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Protocol

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
