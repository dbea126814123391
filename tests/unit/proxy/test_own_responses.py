"""The proxy's own answers: complete responses with JSON errors."""

from __future__ import annotations

import json
import re

import pytest

from strangler.proxy import own_responses as replies


def test_error_responses_are_json_and_complete():
    raw = replies.error_response(502, "bad_gateway", "the backend could not be reached")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "error": "bad_gateway",
        "message": "the backend could not be reached",
    }


def fields(raw: bytes) -> dict[bytes, bytes]:
    lines = raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return {name.lower(): value for name, _, value in (line.partition(b": ") for line in lines)}


def test_the_proxys_own_errors_name_it_and_keep_the_request_id():
    raw = replies.error_response(504, "gateway_timeout", "late", request_id=b"req-7")
    assert fields(raw)[b"x-strangler-backend"] == b"proxy"
    assert fields(raw)[b"x-request-id"] == b"req-7"


def test_an_error_without_a_request_id_gets_a_fresh_one():
    first = fields(replies.error_response(400, "bad_request", "malformed HTTP", close=True))
    second = fields(replies.error_response(400, "bad_request", "malformed HTTP", close=True))
    assert re.fullmatch(rb"[0-9a-f]{32}", first[b"x-request-id"])
    assert first[b"x-request-id"] != second[b"x-request-id"]
    assert first[b"x-strangler-backend"] == b"proxy" and first[b"connection"] == b"close"


def test_a_head_answer_keeps_the_length_but_not_the_body():
    raw = replies.own_response(200, b"text/plain", b"hello", head_only=True)
    assert raw.endswith(b"\r\n\r\n") and fields(raw)[b"content-length"] == b"5"


@pytest.mark.parametrize(
    ("count", "text"),
    [(1 << 20, "1 MiB"), (3 << 20, "3 MiB"), (64 << 10, "64 KiB"), (1000, "1000 bytes")],
)
def test_byte_size_words_the_limit_like_the_backends(count: int, text: str) -> None:
    assert replies.byte_size(count) == text
