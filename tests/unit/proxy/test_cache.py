"""The response cache: what is stored, for how long, for which requests, within its bound."""

from __future__ import annotations

import pytest

from strangler.proxy.cache import Entry, ResponseCache, freshness, kept_lines, request_may_use
from tests.unit.fake_clock import FakeClock


def h(*pairs: str) -> list[tuple[bytes, bytes]]:
    return [tuple(p.encode().split(b": ", 1)) for p in pairs]  # type: ignore[misc]


FRESHNESS = [
    ("max-age", h("Cache-Control: max-age=60"), 0, (60, 0, [])),
    ("s-maxage wins", h("Cache-Control: max-age=60, s-maxage=10"), 0, (10, 0, [])),
    ("route ttl without max-age", h("Content-Type: text/plain"), 30, (30, 0, [])),
    ("nothing said, no ttl", h("Content-Type: text/plain"), 0, None),
    ("age counts", h("Cache-Control: max-age=60", "Age: 50"), 0, (10, 50, [])),
    ("already stale", h("Cache-Control: max-age=60", "Age: 60"), 0, None),
    ("no-store", h("Cache-Control: no-store, max-age=60"), 30, None),
    ("private", h("Cache-Control: private, max-age=60"), 30, None),
    ("no-cache", h("cache-control: No-Cache"), 30, None),
    ("set-cookie", h("Cache-Control: max-age=60", "Set-Cookie: sid=1"), 30, None),
    ("vary star", h("Cache-Control: max-age=60", "Vary: *"), 30, None),
    ("vary names", h("Cache-Control: max-age=60", "Vary: Accept, Accept-Language"), 0,
     (60, 0, ["accept", "accept-language"])),
    ("max-age=0", h("Cache-Control: max-age=0"), 30, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"), [c[1:] for c in FRESHNESS], ids=[c[0] for c in FRESHNESS]
)
def test_what_is_stored_and_for_how_long(headers, ttl, expected) -> None:
    assert freshness(headers, ttl) == expected


@pytest.mark.parametrize(
    ("headers", "may"),
    [
        ({}, True),
        ({"authorization": "Bearer x"}, False),
        ({"cache-control": "no-cache"}, False),
        ({"cache-control": "max-age=0, no-store"}, False),
        ({"pragma": "no-cache"}, False),
        ({"cache-control": "max-age=10"}, True),
    ],
)
def test_a_request_asking_for_a_fresh_answer_or_carrying_credentials_skips_the_cache(
    headers, may
) -> None:
    assert request_may_use(headers.get) is may


def entry(clock: FakeClock, body: bytes = b"x", fresh: float = 60, vary=()) -> Entry:
    now = clock()
    return Entry(b"OK", b"Content-Type: text/plain\r\n", body, b"a", now, now + fresh, 0, vary)


def test_an_answer_is_given_while_fresh_then_forgotten() -> None:
    clock = FakeClock()
    cache = ResponseCache(1 << 20, clock)
    cache.put("r", b"/x", entry(clock, fresh=10))
    assert cache.get("r", b"/x", {}.get).body == b"x"
    assert cache.get("r", b"/y", {}.get) is None  # another target
    assert cache.get("other", b"/x", {}.get) is None  # another route
    clock.advance(10)
    assert cache.get("r", b"/x", {}.get) is None
    assert cache.snapshot()["entries"] == 0 and cache.size == 0


def test_vary_keeps_one_answer_per_value_of_the_varying_header() -> None:
    clock = FakeClock()
    cache = ResponseCache(1 << 20, clock)
    cache.put("r", b"/x", entry(clock, b"english", vary=(("accept-language", "en"),)))
    cache.put("r", b"/x", entry(clock, b"german", vary=(("accept-language", "de"),)))
    assert cache.get("r", b"/x", {"accept-language": "de"}.get).body == b"german"
    assert cache.get("r", b"/x", {"accept-language": "en"}.get).body == b"english"
    assert cache.get("r", b"/x", {}.get) is None  # no value is another value
    assert (cache.hits, cache.misses) == (2, 1)


def test_the_bound_evicts_the_least_recently_used_first() -> None:
    clock = FakeClock()
    one = entry(clock, b"x" * 1000)
    cache = ResponseCache(3 * one.size, clock)
    for target in (b"/1", b"/2", b"/3"):
        cache.put("r", target, entry(clock, b"x" * 1000))
    assert cache.get("r", b"/1", {}.get) is not None  # /1 used: /2 is now the oldest
    cache.put("r", b"/4", entry(clock, b"x" * 1000))
    assert cache.get("r", b"/2", {}.get) is None
    assert cache.get("r", b"/1", {}.get) is not None and cache.get("r", b"/4", {}.get)
    assert cache.size <= cache.max_bytes and cache.evicted == 1
    cache.put("r", b"/big", entry(clock, b"x" * 10_000))  # bigger than the bound: not kept
    assert cache.get("r", b"/big", {}.get) is None


def test_a_reload_forgets_the_routes_that_no_longer_cache() -> None:
    clock = FakeClock()
    cache = ResponseCache(1 << 20, clock)
    cache.put("kept", b"/x", entry(clock))
    cache.put("gone", b"/x", entry(clock))
    cache.clear_route({"kept"})
    assert cache.get("gone", b"/x", {}.get) is None and cache.get("kept", b"/x", {}.get)


def test_a_stored_copy_keeps_its_date_and_drops_its_age_and_cookies() -> None:
    kept = b"Content-Type: a\r\nAge: 5\r\nDate: Thu\r\nSet-Cookie: s=1\r\nETag: x\r\n"
    assert kept_lines(kept) == b"Content-Type: a\r\nDate: Thu\r\nETag: x\r\n"
