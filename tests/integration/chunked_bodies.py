"""Chunked request bodies at the 1 MiB limit, sent to a live backend over one connection."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

LIMIT = 1_048_576


def in_chunks(body: bytes, size: int = 65536) -> Iterator[bytes]:
    """An iterable body: http.client sends it with `Transfer-Encoding: chunked`, no length."""
    return (body[start : start + size] for start in range(0, len(body), size))


def assert_chunked_limit_holds(base_url: str, to: str) -> None:
    """A send of 1 MiB + 1 byte is 413; one of exactly 1 MiB, on the same connection, 201."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    prefix, suffix = f'{{"to": "{to}", "channel": "sms", "pad": "'.encode(), b'"}'
    exact = prefix + b"x" * (LIMIT - len(prefix) - len(suffix)) + suffix
    try:
        conn.request("POST", "/api/verification/send", body=in_chunks(exact[:-2] + b'x"}'))
        over = conn.getresponse()
        assert (over.status, json.loads(over.read())["error"]) == (413, "payload_too_large")
        conn.request("POST", "/api/verification/send", body=in_chunks(exact))
        taken = conn.getresponse()
        assert (taken.status, json.loads(taken.read())["status"]) == (201, "pending")
    finally:
        conn.close()
