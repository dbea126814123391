"""The proxy's own complete responses: its JSON errors and the admin listener's replies."""

from __future__ import annotations

import json

from proxy.forwarding import Headers

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    413: b"Content Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def byte_size(count: int) -> str:
    """A size as the backends word it in their 413 message: "1 MiB", "64 KiB", "1000 bytes"."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def response_head(status: int, reason: bytes, headers: Headers, version: bytes = b"1.1") -> bytes:
    lines = [b"HTTP/", version, b" ", str(status).encode(), b" ", reason, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def json_response(
    status: int,
    body: object,
    *,
    request_id: bytes | None = None,
    close: bool = False,
    extra: Headers | None = None,
) -> bytes:
    """A complete HTTP/1.1 response with a JSON body."""
    data = json.dumps(body, separators=(",", ":")).encode()
    headers: Headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(data)).encode()),
    ]
    if request_id is not None:
        headers.append((b"X-Request-Id", request_id))
    headers += extra or []
    if close:
        headers.append((b"Connection", b"close"))
    return response_head(status, REASONS.get(status, b"Unknown"), headers) + data


def error_response(
    status: int, error: str, message: str, *, request_id: bytes | None = None, close: bool = False
) -> bytes:
    """The proxy's own errors: JSON `{"error", "message"}`, never naming an internal address."""
    body = {"error": error, "message": message}
    return json_response(status, body, request_id=request_id, close=close)
