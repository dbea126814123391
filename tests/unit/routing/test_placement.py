"""Backend selection: sticky, monotone under split changes, and at the configured odds."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.routing.keys import cookie_value, extract_key, json_field, query_value
from strangler.routing.placement import BUCKETS, bucket, select_backend
from strangler.routing.records import Route, Sticky

keys = st.one_of(st.text(max_size=40), st.binary(max_size=40))
percents = st.integers(min_value=0, max_value=100)


def route(new_share: int, name: str = "verification") -> Route:
    split = (("monolith", 100 - new_share), ("verification", new_share))
    return Route(name, "/api/verification/", None, split, None, "monolith")


def random_keys(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"+1555{rng.randrange(10**7):07d}" for _ in range(count)]


def test_buckets_are_pinned_so_every_process_and_release_agrees() -> None:
    # Changing the hash would silently move live users between backends: keep these values.
    # (XXH32 seeded with the route's salt, as HAProxy computes it; see test_haproxy_placement.)
    assert bucket("verification", "+15551234567") == 9811
    assert bucket("verification", "a@b.example") == 8595
    assert bucket("other", "+15551234567") == 4105


def test_buckets_do_not_depend_on_the_interpreters_hash_seed() -> None:
    code = (
        "from strangler.routing.placement import bucket; "
        "print(bucket('verification', 'a@b.example'))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[3],
        )
        assert out.stdout.strip() == "8595"


@given(name=st.sampled_from(["verification", "a", "r-1.x"]), key=keys)
def test_a_bucket_is_in_range_and_str_equals_its_utf8_bytes(name: str, key: str | bytes) -> None:
    value = bucket(name, key)
    assert 0 <= value < BUCKETS
    if isinstance(key, str):
        assert bucket(name, key.encode("utf-8", "surrogatepass")) == value


@given(key=keys, share=percents)
def test_the_same_key_always_gets_the_same_backend(key: str | bytes, share: int) -> None:
    first = select_backend(route(share), key)
    assert all(select_backend(route(share), key) == first for _ in range(3))


@given(key=keys, shares=st.lists(percents, min_size=2, max_size=2, unique=True).map(sorted))
def test_raising_the_share_only_moves_keys_to_the_new_backend(
    key: str | bytes, shares: list[int]
) -> None:
    low, high = (select_backend(route(share), key) for share in shares)
    # raising low -> high moves old -> new only; lowering high -> low moves new -> old only
    if low == "verification":
        assert high == "verification"
    if high == "monolith":
        assert low == "monolith"


@pytest.mark.parametrize("share", [0, 1, 5, 25, 50, 75, 99, 100])
def test_over_10000_keys_the_share_is_within_2_points(share: int) -> None:
    chosen = [select_backend(route(share), key) for key in random_keys(10_000, seed=share)]
    observed = 100 * chosen.count("verification") / len(chosen)
    assert abs(observed - share) <= 2


@pytest.mark.parametrize("share", [0, 1, 25, 50, 100])
def test_without_a_key_the_choice_is_random_at_the_configured_odds(share: int) -> None:
    rng = random.Random(share)
    chosen = [select_backend(route(share), None, rng) for _ in range(10_000)]
    assert abs(100 * chosen.count("verification") / len(chosen) - share) <= 2


def test_keyless_choice_uses_the_same_ranges_as_keyed_choice() -> None:
    class Fixed:
        def __init__(self, value: int) -> None:
            self.value = value

        def randrange(self, stop: int) -> int:
            assert stop == BUCKETS
            return self.value

    assert select_backend(route(25), None, Fixed(2499)) == "verification"
    assert select_backend(route(25), None, Fixed(2500)) == "monolith"


def test_three_backends_take_ranges_in_file_order_with_the_fallback_last() -> None:
    split = (("monolith", 50), ("v1", 30), ("v2", 20))
    three = Route("r", "/", None, split, None, "monolith")
    assert three.ranges == ((3000, "v1"), (5000, "v2"), (10000, "monolith"))
    chosen = [select_backend(three, key) for key in random_keys(10_000, seed=3)]
    shares = {name: 100 * chosen.count(name) / len(chosen) for name, _ in split}
    assert all(abs(shares[name] - percent) <= 2 for name, percent in split)
    assert three.new_backend is None  # no single backend to shift to


HEADERS = {"x-user": "u1", "cookie": 'a=1; sid="s-42"; b=2; a=3', "empty": ""}
BODY = b'{"to": "+15551234567", "n": 15551234567, "f": 1.5, "t": true, "o": {}, "e": ""}'


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("header:x-user", b"u1"),
        ("header:x-missing", None),
        ("header:empty", None),
        ("cookie:sid", b'"s-42"'),  # as sent: HAProxy's req.cook keeps the quotes too
        ("cookie:a", b"3"),  # the last one, as HAProxy's req.cook
        ("cookie:missing", None),
        ("query:to", b"a b@c"),
        ("query:x", None),
        ("json:to", b"+15551234567"),
        ("json:n", b"15551234567"),
        ("json:f", None),  # only strings and integers name a user
        ("json:t", None),
        ("json:o", None),
        ("json:e", None),
        ("json:missing", None),
        ("client_ip", b"10.0.0.7"),
    ],
)
def test_extract_key_by_kind(key: str, expected: bytes | None) -> None:
    kind, _, name = key.partition(":")
    sticky = Sticky(kind, name or None, 600)  # type: ignore[arg-type]
    found = extract_key(
        sticky, headers=HEADERS, query=b"to=a+b%40c&to=second", body=BODY, client_ip="10.0.0.7"
    )
    assert found == expected
    assert (
        extract_key(
            sticky, headers=HEADERS.get, query="to=a+b%40c", body=BODY, client_ip="10.0.0.7"
        )
        == expected
    )


def test_extract_key_without_sticky_or_without_the_request_part() -> None:
    assert extract_key(None, headers=HEADERS, body=BODY) is None
    assert extract_key(Sticky("json", "to", 1), headers={}, body=None) is None
    assert extract_key(Sticky("cookie", "sid", 1), headers={}) is None
    assert extract_key(Sticky("client_ip", None, 1), headers={}, client_ip=None) is None


@pytest.mark.parametrize(
    "body", [b"", b"not json", b'["to"]', b'"to"', b"\xff\xfe{", b"[" * 100_000, b'{"to": 1e999}']
)
def test_json_field_is_none_for_unparseable_or_non_object_bodies(body: bytes) -> None:
    assert json_field(body, "to") is None


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_key_parsers_never_raise_on_garbage(data: bytes) -> None:
    text = data.decode("latin-1")
    for result in (json_field(data, "to"), query_value(data, "to"), cookie_value(text, "to")):
        assert result is None or isinstance(result, bytes)


@pytest.mark.parametrize(
    ("normalize", "raw", "expected"),
    [
        ((), "  Ann@B.example ", b"  Ann@B.example "),
        (("strip",), "\t Ann@B.example \r\n", b"Ann@B.example"),
        (("strip", "lower"), "  Ann@B.example ", b"ann@b.example"),
        (("strip", "lower"), "   ", None),
        (("strip", "lower"), "+15551234567", b"+15551234567"),
        # ASCII only, as HAProxy's ltrim/rtrim/lower: the same bytes on both data planes.
        (("strip", "lower"), "\u00a0\u00c9mile@X.example", "\u00a0\u00c9mile@x.example".encode()),
    ],
)
def test_normalized_keys_match_what_the_backends_treat_as_one_destination(
    normalize: tuple[str, ...], raw: str, expected: bytes | None
) -> None:
    sticky = Sticky("json", "to", 600, normalize)
    body = json.dumps({"to": raw}).encode()
    assert extract_key(sticky, headers={}, body=body) == expected


def test_one_user_lands_on_one_backend_whatever_the_spelling_of_the_address() -> None:
    route = Route(
        "verification",
        "/api/",
        None,
        (("monolith", 50), ("verification", 50)),
        Sticky("json", "to", 600, ("strip", "lower")),
        "monolith",
    )
    for i in range(200):
        spellings = [f"ann{i}@b.example", f" Ann{i}@B.Example", f"ANN{i}@B.EXAMPLE  "]
        keys = {
            extract_key(route.sticky, headers={}, body=json.dumps({"to": s}).encode())
            for s in spellings
        }
        assert len(keys) == 1
        assert len({select_backend(route, key) for key in keys}) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"to": "a", "to": "b"}', b"a"),  # the first occurrence, as HAProxy's json_query
        (b'{"o": {"to": "inner"}, "to": "top"}', b"top"),
        (b'{"to": "\\u00e9\\"q\\\\\\/"}', 'é"q\\/'.encode()),
        (b'{"to": "\\ud83d\\ude00"}', "\U0001f600".encode()),
        (b'{"to": "\\ud800"}', b"\xed\xa0\x80"),  # a lone surrogate: its 3-byte form
        (b'{"to": -0}', b"0"),
        (b'{"to": 1e2}', None),
        (b'{"to": null}', None),
        (b'{"to": "a", }', None),  # not JSON: no key
        (b'{"to": "a"} x', None),
        (b'{"to": "a", "x": NaN}', None),
        (b'{"to": "\xc3\xa9"}', "é".encode()),
        (b'{"to": "\xc3"}', None),  # not UTF-8
        (b'\xef\xbb\xbf{"to": "a"}', None),  # a BOM is not JSON text
    ],
)
def test_json_keys_follow_one_rule_both_data_planes_apply(body: bytes, expected) -> None:
    assert json_field(body, "to") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"to=a%40b", b"a@b"),
        (b"to=%C3%A9", "é".encode()),
        (b"to=%zz", None),  # a malformed escape is no key (HAProxy's url_dec fails too)
        (b"to=%4", None),
        (b"t%6f=x&to=y", b"y"),  # the name is compared as sent
        (b"to&to=z", b"z"),
    ],
)
def test_query_keys_are_decoded_bytes(query: bytes, expected) -> None:
    assert query_value(query, "to") == expected
