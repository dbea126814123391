"""The proxy's own answers: complete responses with JSON errors."""

from __future__ import annotations

import json

import pytest

from proxy import replies


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


@pytest.mark.parametrize(
    ("count", "text"),
    [(1 << 20, "1 MiB"), (3 << 20, "3 MiB"), (64 << 10, "64 KiB"), (1000, "1000 bytes")],
)
def test_byte_size_words_the_limit_like_the_backends(count: int, text: str) -> None:
    assert replies.byte_size(count) == text
