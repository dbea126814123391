"""Header rewriting between client and backend."""

from __future__ import annotations

import json

import pytest

from proxy import forwarding


def names(headers):
    return [name.lower() for name, _ in headers]


def value(headers, name):
    return forwarding.header_value(headers, name.lower())


def upstream(headers, **overrides):
    options = {
        "client_ip": "203.0.113.9",
        "proto": "http",
        "request_id": b"rid-1",
        "internal_token": b"secret",
        "body_framing": None,
    }
    return forwarding.upstream_request_headers(headers, **{**options, **overrides})


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
    assert forwarding.request_id_of([(b"X-Request-Id", b"abc-123")]) == b"abc-123"
    created = forwarding.request_id_of([])
    assert len(created) == 32 and created != forwarding.request_id_of([])
    hostile = forwarding.request_id_of([(b"X-Request-Id", b"a\r\nSet-Cookie: x")])
    assert hostile != b"a\r\nSet-Cookie: x" and len(hostile) == 32
    out = upstream([(b"X-Request-Id", b"old")], request_id=b"new")
    assert [v for n, v in out if n.lower() == b"x-request-id"] == [b"new"]


def test_the_body_framing_of_this_hop_replaces_the_clients():
    out = upstream(
        [(b"Content-Length", b"10"), (b"Expect", b"100-continue")],
        body_framing=(b"Transfer-Encoding", b"chunked"),
    )
    assert b"content-length" not in names(out) and b"expect" not in names(out)
    assert value(out, b"transfer-encoding") == b"chunked"


def test_response_headers_name_the_backend_and_drop_hop_by_hop():
    out = forwarding.client_response_headers(
        [
            (b"Content-Type", b"application/json"),
            (b"Connection", b"close, X-Hop"),
            (b"X-Hop", b"1"),
            (b"Content-Length", b"99"),
            (b"X-Strangler-Backend", b"spoofed"),
            (b"Set-Cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ],
        backend="verification",
        request_id=b"rid",
        body_framing=(b"Content-Length", b"99"),
        close=False,
    )
    assert [v for n, v in out if n.lower() == b"x-strangler-backend"] == [b"verification"]
    assert value(out, b"x-request-id") == b"rid"
    assert b"x-hop" not in names(out) and b"connection" not in names(out)
    assert [v for n, v in out if n == b"Set-Cookie"] == [b"a=1", b"b=2"]
    assert names(out).count(b"content-length") == 1


def test_closing_responses_say_so():
    out = forwarding.client_response_headers(
        [], backend="m", request_id=b"r", body_framing=None, close=True
    )
    assert value(out, b"connection") == b"close"


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


def test_error_responses_are_json_and_complete():
    raw = forwarding.error_response(502, "bad_gateway", "the backend could not be reached")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "error": "bad_gateway",
        "message": "the backend could not be reached",
    }


def test_chunk_encoding():
    assert forwarding.chunk(b"hello world, 17 b") == b"11\r\nhello world, 17 b\r\n"
    assert forwarding.LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("count", "text"),
    [(1 << 20, "1 MiB"), (3 << 20, "3 MiB"), (64 << 10, "64 KiB"), (1000, "1000 bytes")],
)
def test_byte_size_words_the_limit_like_the_backends(count: int, text: str) -> None:
    assert forwarding.byte_size(count) == text
