"""Header rewriting between client and backend."""

from __future__ import annotations

import pytest

from strangler.proxy import forwarding


def parse(head: bytes) -> list[tuple[bytes, bytes]]:
    """The header pairs of a serialised head, after its request or status line."""
    assert head.endswith(b"\r\n\r\n")
    lines = head[: -len(b"\r\n\r\n")].split(b"\r\n")[1:]
    return [tuple(line.split(b": ", 1)) for line in lines]


def names(headers):
    return [name.lower() for name, _ in headers]


def value(headers, name):
    return forwarding.header_value(headers, name.lower())


def upstream(headers, *, internal_token=b"secret", request_id=b"rid-1", body_framing=b""):
    head = forwarding.upstream_head(
        b"GET",
        b"/x?y=1",
        forwarding.scan_request(headers),
        client_ip=b"203.0.113.9",
        request_id=request_id,
        fixed=forwarding.fixed_upstream_lines("http", internal_token),
        body_framing=body_framing,
    )
    assert head.startswith(b"GET /x?y=1 HTTP/1.1\r\n")
    return parse(head)


def client(headers, *, backend=b"verification", request_id=b"rid", framing=b"", close=False):
    head = forwarding.client_head(
        200,
        b"OK",
        forwarding.scan_response(headers).kept,
        backend=backend,
        request_id=request_id,
        body_framing=framing,
        close=close,
    )
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    return parse(head)


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    out = upstream(
        [
            (b"Host", b"shop.example"),
            (b"Connection", b"keep-alive, X-Private"),
            (b"X-Private", b"1"),
            (b"Keep-Alive", b"timeout=5"),
            (b"TE", b"trailers"),
            (b"Upgrade", b"websocket"),
            (b"Proxy-Authorization", b"Basic x"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Accept", b"*/*"),
        ]
    )
    assert set(names(out)).isdisjoint(
        {b"connection", b"x-private", b"keep-alive", b"te", b"upgrade", b"proxy-authorization"}
    )
    assert b"transfer-encoding" not in names(out)
    assert value(out, b"Accept") == b"*/*"


def test_client_strangler_headers_are_stripped_and_the_internal_token_added():
    out = upstream(
        [
            (b"X-Strangler-Shadow", b"1"),
            (b"x-strangler-internal-token", b"guess"),
            (b"X-STRANGLER-FORCE-BACKEND", b"verification"),
        ]
    )
    strangler = [(n, v) for n, v in out if n.lower().startswith(b"x-strangler-")]
    assert strangler == [(b"X-Strangler-Internal-Token", b"secret")]


@pytest.mark.parametrize(
    "name", [b"X_Strangler_Shadow", b"x_strangler_internal_token", b"X-Strangler_Shadow"]
)
def test_underscore_spellings_of_strangler_headers_are_stripped_too(name: bytes) -> None:
    # Servers that map "_" to "-" would otherwise hand a backend a client-made shadow flag.
    out = upstream([(name, b"1"), (b"Accept", b"*/*")])
    assert [n.lower().replace(b"_", b"-") for n, _ in out if b"strangler" in n.lower()] == [
        b"x-strangler-internal-token"
    ]
    assert value(out, b"Accept") == b"*/*"


def test_no_internal_token_configured_means_none_is_sent():
    out = upstream([(b"X-Strangler-Internal-Token", b"guess")], internal_token=None)
    assert not [n for n in names(out) if n.startswith(b"x-strangler-")]


def test_forwarded_headers_append_the_client_and_name_the_original_host():
    out = upstream(
        [
            (b"Host", b"shop.example"),
            (b"X-Forwarded-For", b"198.51.100.1"),
            (b"X-Forwarded-Proto", b"https"),
            (b"X-Forwarded-Host", b"evil.example"),
        ]
    )
    assert value(out, b"x-forwarded-for") == b"198.51.100.1, 203.0.113.9"
    assert value(out, b"x-forwarded-proto") == b"http"
    assert value(out, b"x-forwarded-host") == b"shop.example"
    assert names(out).count(b"x-forwarded-host") == 1
    assert value(out, b"host") == b"shop.example"


def test_request_id_is_propagated_when_sane_and_created_otherwise():
    sent = forwarding.scan_request([(b"X-Request-Id", b"abc-123")]).request_id
    assert forwarding.request_id_of(sent) == b"abc-123"
    created = forwarding.request_id_of(None)
    assert len(created) == 32 and created != forwarding.request_id_of(None)
    hostile = forwarding.request_id_of(b"a\r\nSet-Cookie: x")
    assert hostile != b"a\r\nSet-Cookie: x" and len(hostile) == 32
    out = upstream([(b"X-Request-Id", b"old")], request_id=b"new")
    assert [v for n, v in out if n.lower() == b"x-request-id"] == [b"new"]


def test_the_body_framing_of_this_hop_replaces_the_clients():
    out = upstream(
        [(b"Content-Length", b"10"), (b"Expect", b"100-continue")],
        body_framing=b"Transfer-Encoding: chunked\r\n",
    )
    assert b"content-length" not in names(out) and b"expect" not in names(out)
    assert value(out, b"transfer-encoding") == b"chunked"


def test_request_scan_reads_framing_and_sets_aside_strangler_headers():
    head = forwarding.scan_request(
        [
            (b"Host", b"shop.example"),
            (b"Content-Length", b"12"),
            (b"Expect", b"100-continue"),
            (b"X-Strangler-Force-Backend", b"verification"),
            (b"x-strangler-force-backend", b"monolith"),
        ]
    )
    assert (head.content_length, head.expect, head.transfer_encoding) == (
        b"12",
        b"100-continue",
        None,
    )
    assert head.strangler == {"x-strangler-force-backend": "verification"}
    assert head.kept == b"Host: shop.example\r\n"


def test_response_headers_name_the_backend_and_drop_hop_by_hop():
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Connection", b"close, X-Hop"),
        (b"X-Hop", b"1"),
        (b"Content-Length", b"99"),
        (b"X-Strangler-Backend", b"spoofed"),
        (b"X-Request-Id", b"backend-rid"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    out = client(headers, framing=b"Content-Length: 99\r\n")
    assert [v for n, v in out if n.lower() == b"x-strangler-backend"] == [b"verification"]
    assert [v for n, v in out if n.lower() == b"x-request-id"] == [b"rid"]
    assert b"x-hop" not in names(out) and b"connection" not in names(out)
    assert [v for n, v in out if n == b"Set-Cookie"] == [b"a=1", b"b=2"]
    assert names(out).count(b"content-length") == 1
    scanned = forwarding.scan_response(headers)
    assert (scanned.content_length, scanned.chunked) == (b"99", False)


def test_response_scan_sees_chunked_bodies():
    scanned = forwarding.scan_response([(b"Transfer-Encoding", b"gzip, Chunked")])
    assert scanned.chunked and scanned.content_length is None and scanned.kept == b""


def test_closing_responses_say_so():
    assert value(client([], close=True), b"connection") == b"close"
    assert b"connection" not in names(client([], close=False))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/api/verification/send", "/api/verification/send"),
        (b"/api/%76erification/send", "/api/verification/send"),
        (b"/api/x/../verification/send", "/api/verification/send"),
        (b"/api//verification/./send", "/api/verification/send"),
        (b"/api/verification/", "/api/verification/"),
        (b"/a/b/..", "/a/"),
        (b"/../..", "/"),
        (b"/", "/"),
        (b"http://internal:8001/x", None),
        (b"*", None),
    ],
)
def test_routing_path_normalises_what_routes_match(target, expected):
    assert forwarding.routing_path(target) == expected


def test_chunk_encoding():
    assert forwarding.chunk(b"hello world, 17 b") == b"11\r\nhello world, 17 b\r\n"
    assert forwarding.LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("target", "routed", "forwarded"),
    [
        (b"/api/verification/send", "/api/verification/send", b"/api/verification/send"),
        (b"/api/%76erification/send", "/api/verification/send", b"/api/verification/send"),
        (b"/api%2Fverification", "/api/verification", b"/api/verification"),
        (b"/a/%2e%2e/b", "/b", b"/b"),
        (b"/a//b/./c/", "/a/b/c/", b"/a/b/c/"),
        (b"/a%3Fb", "/a?b", b"/a%3Fb"),
        (b"/a%25b", "/a%b", b"/a%25b"),
        (b"/a%20b", "/a b", b"/a%20b"),
        (b"/caf%C3%A9", "/caf\u00e9", b"/caf%C3%A9"),
        (b"/bad%FF", "/bad\udcff", b"/bad%FF"),
        (b"/a%00", None, None),
        (b"/a%0Ab", None, None),
        (b"*", None, None),
    ],
)
def test_normalised_target_forwards_the_path_it_routed_on(target, routed, forwarded):
    normal = forwarding.normalised_target(target)
    assert normal == (None if routed is None else (routed, forwarded))
    if normal is not None:  # the forwarded path routes to the same place again
        assert forwarding.routing_path(normal[1]) == routed
