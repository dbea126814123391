"""Header rewriting between client and backend: pure functions over `(name, value)` byte pairs."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from urllib.parse import unquote

Headers = list[tuple[bytes, bytes]]

# RFC 9110 7.6.1 plus the legacy names proxies still meet; `Expect` is answered by the proxy.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
STRANGLER_PREFIX = b"x-strangler-"
_REQUEST_ID_OK = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

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


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in `Connection`: hop-by-hop for this message only."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def header_value(headers: Iterable[tuple[bytes, bytes]], lower_name: bytes) -> bytes | None:
    """The first value of a header, by lower-case name."""
    for name, value in headers:
        if name.lower() == lower_name:
            return value
    return None


def byte_size(count: int) -> str:
    """A size as the backends word it in their 413 message: "1 MiB", "64 KiB", "1000 bytes"."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def new_request_id() -> bytes:
    # An identifier, not a secret: the PRNG (reseeded in every forked worker) spares a syscall.
    return b"%032x" % random.getrandbits(128)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The client's `X-Request-Id` when it is a sane token, else a fresh one."""
    value = header_value(headers, b"x-request-id")
    if value is not None and _REQUEST_ID_OK.fullmatch(value):
        return value
    return new_request_id()


def upstream_request_headers(
    headers: Headers,
    *,
    client_ip: str,
    proto: str,
    request_id: bytes,
    internal_token: bytes | None,
    body_framing: tuple[bytes, bytes] | None,
) -> Headers:
    """The headers a backend receives.

    Hop-by-hop headers (and those named in `Connection`), `Expect`, framing headers and every
    client `X-Strangler-*` header are dropped; `X-Forwarded-*`, `X-Request-Id`, the internal
    token and the framing this hop uses (`body_framing`) are set.
    """
    drop = HOP_BY_HOP | connection_tokens(headers)
    out: Headers = []
    forwarded_for = None
    host = b""
    for name, value in headers:
        lower = name.lower()
        if lower in drop or lower.startswith(STRANGLER_PREFIX):
            continue
        if lower in (b"content-length", b"expect", b"x-request-id", b"x-forwarded-proto"):
            continue
        if lower == b"x-forwarded-host":
            continue
        if lower == b"x-forwarded-for":
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            continue
        if lower == b"host":
            host = value
        out.append((name, value))
    ip = client_ip.encode()
    out.append((b"X-Forwarded-For", forwarded_for + b", " + ip if forwarded_for else ip))
    out.append((b"X-Forwarded-Proto", proto.encode()))
    if host:
        out.append((b"X-Forwarded-Host", host))
    out.append((b"X-Request-Id", request_id))
    if internal_token:
        out.append((b"X-Strangler-Internal-Token", internal_token))
    if body_framing is not None:
        out.append(body_framing)
    return out


def client_response_headers(
    headers: Headers,
    *,
    backend: str,
    request_id: bytes,
    body_framing: tuple[bytes, bytes] | None,
    close: bool,
) -> Headers:
    """The headers a client receives from a backend's response."""
    drop = HOP_BY_HOP | connection_tokens(headers)
    out: Headers = [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in drop
        and lower not in (b"content-length", b"x-strangler-backend", b"x-request-id")
    ]
    out.append((b"X-Strangler-Backend", backend.encode()))
    out.append((b"X-Request-Id", request_id))
    if body_framing is not None:
        out.append(body_framing)
    if close:
        out.append((b"Connection", b"close"))
    return out


def routing_path(target_path: bytes) -> str | None:
    """The path routes are matched on: percent-decoded, without dot segments or doubled slashes.

    The target itself is forwarded unchanged; normalising only the matched path keeps
    `/api/%76erification/` or `/api/x/../verification/` from slipping past a route.
    None when the target is not an absolute path (absolute-form or `*`).
    """
    if not target_path.startswith(b"/"):
        return None
    path = target_path.decode("utf-8", "surrogateescape")
    if "%" in path:
        path = unquote(path, errors="surrogateescape")
    if "/." not in path and "//" not in path:
        return path
    parts = path.split("/")[1:]
    out: list[str] = []
    for i, segment in enumerate(parts):
        last = i == len(parts) - 1
        if segment == "..":
            if out:
                out.pop()
        elif segment not in (".", ""):
            out.append(segment)
            continue
        if last:
            out.append("")
    return "/" + "/".join(out)


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


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


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
