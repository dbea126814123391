"""What the public edge refuses in a request head before a backend sees it, and why (pure).

httptools (llhttp, strict) already refuses the classic smuggling shapes: `Content-Length`
with `Transfer-Encoding`, duplicate or malformed lengths, bad chunk sizes, obs-fold, bare LF
or CR, and bytes a header name or value may not hold. What it lets through and a proxy must
not is checked here, with the answer nginx or HAProxy gives. Every refusal closes the
connection: after a head the proxy did not accept, it cannot know where the next one starts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httptools

MAX_TARGET = 8 * 1024  # bytes of a request target; beyond it 414 (nginx's 8k buffer)
MAX_HEAD = 32 * 1024  # bytes of a header section (names and values); beyond it 431
MAX_HEADERS = 100  # header lines in one request; beyond them 431 (gunicorn's own limit)
REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})  # no tunnels; TRACE would echo our token
_HOST_OK = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(:[0-9]{1,5})?")


class Refusal(Exception):
    """A request the proxy answers itself with a JSON error, then closes the connection."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def too_long_target() -> Refusal:
    return Refusal(414, "uri_too_long", f"the request target is over {MAX_TARGET} bytes")


def too_large_head() -> Refusal:
    return Refusal(
        431,
        "header_fields_too_large",
        f"the header section is over {MAX_HEAD // 1024} KiB or {MAX_HEADERS} lines",
    )


def of_parser_error(exc: Exception) -> Refusal:
    """The refusal for an error httptools raised (a Refusal raised in a callback, or a parse
    error, whose llhttp reason is a fixed phrase safe to repeat)."""
    if isinstance(exc, httptools.HttpParserCallbackError) and isinstance(exc.__context__, Refusal):
        return exc.__context__
    reason = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else ""
    if reason == "Pause on PRI/Upgrade":
        return Refusal(400, "bad_request", "HTTP/2 is not served on this port: use HTTP/1.1")
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return Refusal(400, "bad_request", "malformed HTTP: unknown method")
    return Refusal(400, "bad_request", "malformed HTTP" + (f": {reason}" if reason else ""))


def check_head(method: str, version: str, headers: list, upgrade: bool) -> None:
    """Raise a Refusal for a parsed head the proxy will not forward."""
    if not version.startswith("1."):
        raise Refusal(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served")
    if method in REFUSED_METHODS:
        raise Refusal(405, "method_not_allowed", f"{method} is not served by this proxy")
    hosts = [value for name, value in headers if name.lower() == b"host"]
    if len(hosts) > 1:
        raise Refusal(400, "bad_request", "more than one Host header")
    if not hosts and version == "1.1":
        raise Refusal(400, "bad_request", "an HTTP/1.1 request needs a Host header")
    if hosts and not _HOST_OK.fullmatch(hosts[0]):
        raise Refusal(400, "bad_request", "the Host header is not a host[:port]")
    encoding = has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            encoding = True
            if value.strip().lower() != b"chunked":  # nginx: 501; the body's end is unknown
                raise Refusal(
                    501, "not_implemented", "the only Transfer-Encoding served is chunked"
                )
        elif lower == b"content-length":
            has_length = value.strip() != b"0"
    if upgrade and (encoding or has_length):
        # llhttp hands the body of an upgrade request over as the new protocol's bytes:
        # forwarded, the backend would see the head without its body.
        raise Refusal(400, "bad_request", "a protocol upgrade request cannot carry a body here")


def origin_form(target: bytes) -> tuple[bytes, bytes | None]:
    """The target in origin-form, and the authority an absolute-form target named (which
    replaces `Host`, RFC 9112 3.2.2); `*` and other forms are left for the exchange."""
    if target.startswith(b"/") or b"://" not in target[:10]:
        return target, None
    try:
        parts = urlsplit(target.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "bad_request", "the request target is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        raise Refusal(400, "bad_request", "an absolute target must be http(s)://host/path")
    path = parts.path or "/"
    rest = f"?{parts.query}" if parts.query or target.endswith(b"?") else ""
    return (path + rest).encode("ascii"), parts.netloc.encode("ascii")
