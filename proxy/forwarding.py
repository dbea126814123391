"""Header rewriting between client and backend: pure functions over `(name, value)` byte pairs."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

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


def header_value(headers: Iterable[tuple[bytes, bytes]], lower_name: bytes) -> bytes | None:
    """The first value of a header, by lower-case name."""
    for name, value in headers:
        if name.lower() == lower_name:
            return value
    return None


def new_request_id() -> bytes:
    # An identifier, not a secret: the PRNG (reseeded in every forked worker) spares a syscall.
    return b"%032x" % random.getrandbits(128)


def request_id_of(value: bytes | None) -> bytes:
    """The client's `X-Request-Id` (`value`) when it is a sane token, else a fresh one."""
    if value is not None and _REQUEST_ID_OK.fullmatch(value):
        return value
    return new_request_id()


# What the one-pass scans do with a header, by lower-case name; unlisted names are kept.
_DROP, _LENGTH, _ENCODING, _EXPECT, _REQUEST_ID, _FORWARDED_FOR, _HOST, _CONNECTION = range(8)
_REQUEST_ACTIONS = {
    **dict.fromkeys(HOP_BY_HOP, _DROP),
    # Claims about the client only this hop may make (it sets X-Forwarded-For/-Host/-Proto);
    # the other X-Forwarded-* are dropped in `scan_request`.
    b"x-forwarded-proto": _DROP,
    b"x-forwarded-host": _DROP,
    b"forwarded": _DROP,
    b"x-real-ip": _DROP,
    b"connection": _CONNECTION,
    b"content-length": _LENGTH,
    b"transfer-encoding": _ENCODING,
    b"expect": _EXPECT,
    b"x-request-id": _REQUEST_ID,
    b"x-forwarded-for": _FORWARDED_FOR,
    b"host": _HOST,
}
_RESPONSE_ACTIONS = {
    **dict.fromkeys(HOP_BY_HOP, _DROP),
    b"x-strangler-backend": _DROP,
    b"x-request-id": _DROP,
    b"connection": _CONNECTION,
    b"content-length": _LENGTH,
    b"transfer-encoding": _ENCODING,
}
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})  # tokens that name no other header


class RequestHead:
    """A client's request headers read in one pass: what the proxy needs, and the rest as bytes.

    `kept` holds the header lines forwarded unchanged: everything but hop-by-hop headers (and
    those named in `Connection`), `Expect`, framing, `X-Request-Id`, `X-Forwarded-*` and any
    `X-Strangler-*`; those the client sent are in `strangler` (lower-case names), for the
    dispatcher's tester override, and never reach a backend.
    """

    __slots__ = (
        "content_length", "expect", "forwarded_for", "host", "kept", "request_id", "strangler",
        "transfer_encoding",
    )  # fmt: skip

    def __init__(self) -> None:
        self.content_length = self.transfer_encoding = self.expect = None
        self.request_id = self.forwarded_for = self.host = None
        self.strangler: dict[str, str] | None = None
        self.kept = b""


def scan_request(headers: Headers, drop: frozenset[bytes] = frozenset()) -> RequestHead:
    """Read a request's headers once (see RequestHead); `drop` names more headers to leave out."""
    head = RequestHead()
    kept: list[bytes] = []
    tokens = None
    for name, value in headers:
        lower = name.lower()
        action = _REQUEST_ACTIONS.get(lower)
        if action is None:
            if lower.startswith(STRANGLER_PREFIX):
                if head.strangler is None:
                    head.strangler = {}
                head.strangler.setdefault(lower.decode("latin-1"), value.decode("latin-1"))
            elif _spelled_like_ours(lower) or lower.startswith(b"x-forwarded-"):
                # Some servers map X_Strangler_Shadow onto X-Strangler-Shadow: drop it too.
                continue
            elif not drop or lower not in drop:
                kept += (name, b": ", value, b"\r\n")
            continue
        if drop and lower in drop and action == _FORWARDED_FOR:
            continue  # named in `Connection`: not forwarded (this hop still adds the client)
        if action == _CONNECTION:
            tokens = _more_tokens(tokens, value)
        elif action == _LENGTH:
            head.content_length = head.content_length or value
        elif action == _ENCODING:
            head.transfer_encoding = head.transfer_encoding or value
        elif action == _EXPECT:
            head.expect = head.expect or value
        elif action == _REQUEST_ID:
            head.request_id = head.request_id or value
        elif action == _FORWARDED_FOR:
            xff = head.forwarded_for
            head.forwarded_for = value if xff is None else xff + b", " + value
        elif action == _HOST:
            head.host = head.host or value
            kept += (name, b": ", value, b"\r\n")
    if tokens and not drop:  # the client named more hop-by-hop headers: read again without them
        return scan_request(headers, frozenset(tokens))
    head.kept = b"".join(kept)
    return head


def _spelled_like_ours(lower: bytes) -> bool:
    """An `X-Strangler-*` name in another spelling (underscores), which some servers unify."""
    return b"_" in lower and lower.replace(b"_", b"-").startswith(STRANGLER_PREFIX)


def _more_tokens(tokens: set[bytes] | None, value: bytes) -> set[bytes] | None:
    """The header names a `Connection` value adds to those already found (None: none yet)."""
    for token in value.split(b","):
        token = token.strip().lower()
        if token and token not in _PLAIN_CONNECTION:
            tokens = tokens or set()
            tokens.add(token)
    return tokens


def upstream_head(
    method: bytes,
    target: bytes,
    head: RequestHead,
    *,
    client_ip: bytes,
    request_id: bytes,
    fixed: bytes,
    body_framing: bytes = b"",
    kept: bytes | None = None,
) -> bytes:
    """The request head a backend receives: the kept headers plus those this hop sets.

    `X-Forwarded-For` appends the client, `X-Forwarded-Host` names the original `Host`;
    `fixed` holds the worker's constant lines (`X-Forwarded-Proto`, the internal token, see
    `fixed_upstream_lines`) and `body_framing` the framing line this hop uses, if any;
    `kept` replaces the client's kept lines (a rewrite's header edits).
    """
    xff = head.forwarded_for
    host = head.host
    return b"".join(
        (
            method, b" ", target, b" HTTP/1.1\r\n", head.kept if kept is None else kept,
            b"X-Forwarded-For: ", xff + b", " + client_ip if xff else client_ip, b"\r\n",
            b"X-Forwarded-Host: " + host + b"\r\n" if host else b"",
            b"X-Request-Id: ", request_id, b"\r\n", fixed, body_framing, b"\r\n",
        )
    )  # fmt: skip


def fixed_upstream_lines(proto: str, internal_token: bytes | None) -> bytes:
    """The header lines every upstream request of a worker carries, built once."""
    lines = b"X-Forwarded-Proto: %b\r\n" % proto.encode()
    if internal_token:
        lines += b"X-Strangler-Internal-Token: %b\r\n" % internal_token
    return lines


class ResponseHead:
    """A backend's response headers read in one pass (see `scan_response`)."""

    __slots__ = ("chunked", "content_length", "kept")

    def __init__(self, kept: bytes, content_length: bytes | None, chunked: bool) -> None:
        self.kept = kept
        self.content_length = content_length
        self.chunked = chunked


def scan_response(headers: Headers, drop: frozenset[bytes] = frozenset()) -> ResponseHead:
    """The lines a client receives unchanged (no hop-by-hop, framing, `X-Strangler-*` or
    `X-Request-Id`: the proxy sets those) and the backend's framing."""
    kept: list[bytes] = []
    tokens = length = encoding = None
    for name, value in headers:
        lower = name.lower()
        action = _RESPONSE_ACTIONS.get(lower)
        if action is None:
            if lower.startswith(STRANGLER_PREFIX) or _spelled_like_ours(lower):
                continue  # the proxy's own names: a backend can neither set nor leak them
            if not drop or lower not in drop:
                kept += (name, b": ", value, b"\r\n")
        elif action == _CONNECTION:
            tokens = _more_tokens(tokens, value)
        elif action == _LENGTH:
            length = length or value
        elif action == _ENCODING:
            encoding = encoding or value
    if tokens and not drop:
        return scan_response(headers, frozenset(tokens))
    chunked = encoding is not None and b"chunked" in encoding.lower()
    return ResponseHead(b"".join(kept), length, chunked)


def client_head(
    status: int,
    reason: bytes,
    kept: bytes,
    *,
    backend: bytes,
    request_id: bytes,
    body_framing: bytes = b"",
    close: bool = False,
) -> bytes:
    """The response head a client receives: the kept lines plus those the proxy sets."""
    return b"".join(
        (
            b"HTTP/1.1 %d %b\r\n" % (status, reason), kept,
            b"X-Strangler-Backend: ", backend, b"\r\nX-Request-Id: ", request_id, b"\r\n",
            body_framing, b"Connection: close\r\n\r\n" if close else b"\r\n",
        )
    )  # fmt: skip


def routing_path(target_path: bytes) -> str | None:
    """The path routes are matched on: percent-decoded, without dot segments or doubled slashes.

    Decoding comes first, so `%2F` is a slash and `%2e%2e` a dot segment: `/api/%76erification/`
    or `/api/x/..%2Fverification/` cannot slip past a route (see `normalised_target`).
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


# Bytes a path is forwarded with unescaped (RFC 3986 pchar and "/"); anything else is %XX.
PATH_SAFE = "/!$&'()*+,;=:@-._~"
_PLAIN_PATH = re.compile(rb"[A-Za-z0-9/!$&'()*+,;=:@._~-]*")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def normalised_target(target_path: bytes) -> tuple[str, bytes] | None:
    """The path routes match on and the path the backend receives, which is the same path
    (re-encoded): no spelling reaches a backend as another path than the one routed.

    None when the target is no absolute path or its decoded path holds control bytes.
    """
    plain = _PLAIN_PATH.fullmatch(target_path) and target_path.startswith(b"/")
    if plain and b"/." not in target_path and b"//" not in target_path:
        return target_path.decode("ascii"), target_path  # the usual case: nothing to do
    path = routing_path(target_path)
    if path is None or _CONTROL.search(path):
        return None
    return path, quote(path.encode("utf-8", "surrogateescape"), safe=PATH_SAFE).encode("ascii")


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
