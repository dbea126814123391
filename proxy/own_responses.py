"""The proxy's own complete responses: its JSON errors and the admin listener's replies."""

from __future__ import annotations

import json

from strangler.proxy.forwarding import Headers, new_request_id

PROXY_BACKEND = b"proxy"  # the X-Strangler-Backend of answers no backend gave

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    413: b"Content Too Large",
    414: b"URI Too Long",
    415: b"Unsupported Media Type",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}


def byte_size(count: int) -> str:
    """A size as the backends word it in their 413 message: "1 MiB", "64 KiB", "1000 bytes"."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def response_head(status: int, reason: bytes, headers: Headers) -> bytes:
    lines = [b"HTTP/1.1 ", str(status).encode(), b" ", reason, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def own_response(
    status: int,
    content_type: bytes,
    body: bytes,
    *,
    request_id: bytes | None = None,
    close: bool = False,
    head_only: bool = False,
    retry_after: int | None = None,
    extra: bytes = b"",
) -> bytes:
    """A complete HTTP/1.1 response the proxy makes itself, no backend involved.

    Like every response it names who answered (`X-Strangler-Backend: proxy`) and carries a
    request id: the request's, or a fresh one when there is none (a malformed request).
    """
    headers: Headers = [
        (b"Content-Type", content_type),
        (b"Content-Length", str(len(body)).encode()),
        (b"X-Strangler-Backend", PROXY_BACKEND),
        (b"X-Request-Id", request_id or new_request_id()),
    ]
    if retry_after is not None:
        headers.append((b"Retry-After", str(retry_after).encode()))
    if close:
        headers.append((b"Connection", b"close"))
    head = response_head(status, REASONS.get(status, b"Unknown"), headers)
    if extra:  # more header lines, each ending in CRLF (a throttle's RateLimit-*)
        head = head[:-2] + extra + b"\r\n"
    return head if head_only else head + body


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    request_id: bytes | None = None,
    close: bool = False,
    retry_after: int | None = None,
    extra: bytes = b"",
) -> bytes:
    """The proxy's own errors: JSON `{"error", "message"}`, never naming an internal address."""
    body = json.dumps({"error": error, "message": message}, separators=(",", ":")).encode()
    return own_response(
        status, b"application/json", body, request_id=request_id, close=close,
        retry_after=retry_after, extra=extra,
    )  # fmt: skip
