"""Same placement everywhere: real HAProxy and `strangler.routing` put every key alike.

Fresh random keys of every sticky kind (phones, e-mail addresses with case and spaces,
unicode raw and escaped, cookies, query parameters) go through the exported HAProxy at
several splits, flipped live through its runtime API; each answer's `X-Strangler-Backend`
must be the backend our own selection computes for the same request.
"""

from __future__ import annotations

import http.client
import json
import random
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from strangler.routing.dispatch import match_route
from strangler.routing.keys import extract_key
from strangler.routing.placement import select_backend
from strangler.routing.table import load_table, parse_text
from strangler.stack.running import write_routes
from tests.integration.haproxy.support import answering_upstream, needs_haproxy, running_plane

pytestmark = [needs_haproxy, pytest.mark.live, pytest.mark.slow]

SPLITS = (10, 37, 50, 63, 90)
KEYS_PER_SPLIT = 4_000  # 20,000 keys in all

TABLE = """
backends:
  old: {{url: "http://127.0.0.1:{old}", health: /}}
  new: {{url: "http://127.0.0.1:{new}", health: /}}
default_backend: old
routes:
  - name: json
    match: {{prefix: /json/, methods: [POST]}}
    split: {{old: 100, new: 0}}
    sticky: {{key: "json:to", ttl: 600, normalize: [strip, lower]}}
    fallback: old
  - name: header
    match: {{prefix: /header/}}
    split: {{old: 100, new: 0}}
    sticky: {{key: "header:X-User", ttl: 600}}
    fallback: old
  - name: cookie
    match: {{prefix: /cookie/}}
    split: {{old: 100, new: 0}}
    sticky: {{key: "cookie:sid", ttl: 600, normalize: [lower]}}
    fallback: old
  - name: query
    match: {{prefix: /query/}}
    split: {{old: 100, new: 0}}
    sticky: {{key: "query:u", ttl: 600, normalize: [strip]}}
    fallback: old
"""
UNICODE = "éÉüÜßøÆ日本語дмитрий😀 \u00a0"


def random_request(rng: random.Random) -> tuple[str, str, dict[str, str], bytes]:
    """(method, target, headers, body) with a key nobody used before."""
    word = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(3, 12)))
    kind = rng.choice(["phone", "email", "unicode", "escaped", "header", "cookie", "query"])
    if kind == "phone":
        body = json.dumps({"to": f"+1555{rng.randrange(10**7):07d}", "channel": "sms"})
        return "POST", "/json/send", {"Content-Type": "application/json"}, body.encode()
    if kind in ("email", "unicode", "escaped"):
        address = f"{word}@{rng.choice(['B.example', 'b.EXAMPLE', 'x.test'])}"
        if kind != "email":
            address = "".join(rng.choices(UNICODE, k=3)) + address
        padded = rng.choice(["", " ", "\t", "  "]) + address + rng.choice(["", " ", "\n"])
        body = json.dumps({"to": padded, "channel": "email"}, ensure_ascii=kind == "escaped")
        return "POST", "/json/send", {"Content-Type": "application/json"}, body.encode()
    if kind == "header":
        return "GET", "/header/x", {"X-User": f"user-{word}"}, b""
    if kind == "cookie":
        return "GET", "/cookie/x", {"Cookie": f"a=1; sid=S-{word}; b=2"}, b""
    escaped = "".join(f"%{b:02X}" for b in f"é {word}".encode())
    return "GET", f"/query/x?other=1&u={escaped}&u=second", {}, b""


def expected_backend(table, method: str, target: str, headers: dict, body: bytes) -> str:
    path, _, query = target.partition("?")
    route = match_route(table, method, path)
    lower = {k.lower(): v for k, v in headers.items()}
    key = extract_key(route.sticky, headers=lower.get, query=query.encode(), body=body or None)
    assert key is not None
    return select_backend(route, key)


def send_all(port: int, requests: list) -> list[tuple[int, str]]:
    def worker(chunk: list) -> list[tuple[int, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        out = []
        for method, target, headers, body in chunk:
            conn.request(method, target, body=body or None, headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((resp.status, resp.getheader("X-Strangler-Backend")))
        conn.close()
        return out

    chunks = [requests[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, chunks))
    # put the answers back in request order
    ordered: list = [None] * len(requests)
    for i, chunk in enumerate(results):
        for j, answer in enumerate(chunk):
            ordered[i + 8 * j] = answer
    return ordered


def test_haproxy_places_twenty_thousand_keys_like_the_routing_model(tmp_path: Path) -> None:
    rng = random.Random(20261203)
    mismatches, compared = [], 0
    with answering_upstream(tmp_path, ["old", "new"]) as ports:
        routes = tmp_path / "routes.yaml"
        routes.write_text(TABLE.format(old=ports["old"], new=ports["new"]))
        with running_plane(routes, tmp_path / "haproxy") as plane:
            for percent in SPLITS:
                for name in ("json", "header", "cookie", "query"):
                    write_routes(routes, routes, percent, route=name)
                table = load_table(routes)
                generation = plane.generation
                plane.apply(table)  # map-only: flipped through the runtime API, no reload
                assert plane.generation == generation + 1 and plane.last_error is None
                batch = [random_request(rng) for _ in range(KEYS_PER_SPLIT)]
                answers = send_all(plane.settings.bind[1], batch)
                for request, (status, backend) in zip(batch, answers, strict=True):
                    assert status == 200
                    want = expected_backend(table, *request)
                    compared += 1
                    if backend != want:
                        mismatches.append((percent, request, backend, want))
    assert compared == len(SPLITS) * KEYS_PER_SPLIT
    assert mismatches == [], f"{len(mismatches)} of {compared} keys placed differently"


def test_the_split_really_moved_between_flips(tmp_path: Path) -> None:
    """The equality above is not vacuous: at 10 % and 90 % the backends' shares differ."""
    rng = random.Random(7)
    table = parse_text(TABLE.format(old=1, new=2), "t.yaml")
    shares = {}
    for percent in (10, 90):
        text = tmp_path / "t.yaml"
        text.write_text(TABLE.format(old=1, new=2))
        write_routes(text, text, percent, route="json")
        table = load_table(text)
        picks = [expected_backend(table, *random_request(rng)) for _ in range(2000)]
        shares[percent] = picks.count("new") / len(picks)
    assert shares[10] < 0.5 < shares[90]
