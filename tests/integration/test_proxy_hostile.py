"""Hostile HTTP at the public edge, byte for byte, against the running proxy and real backends.

Each case says what nginx or HAProxy answers (`like`); the proxy answers the same status.
A refused request gets the proxy's JSON error and a closed connection (the request after it,
the sentinel, is never answered): where one head was not accepted, no later byte can be
trusted to start the next. A served one reaches the backend as exactly what the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port

from .proxy_support import INTERNAL_TOKEN, echo_spec, routes_text, write_atomically
from .raw_http import SENTINEL, converse

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """Backend a (the default) and b (the `verification` route's, at 100 %), the proxy."""
    base = tmp_path_factory.mktemp("hostile")
    a, b = free_port(), free_port()
    routes = base / "routes.yaml"
    backends = {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}
    write_atomically(routes, routes_text(backends, percent=100))
    cfg = replace(
        StackConfig.on_free_ports(base / "var"),
        env={"STRANGLER_INTERNAL_TOKEN": INTERNAL_TOKEN},
        workers=1,
    )
    with Supervisor(log_dir=base / "logs") as sup:
        sup.start(echo_spec("a", a, "gthread"))
        sup.start(echo_spec("b", b, "gthread"))
        sup.start(proxy_spec(cfg, routes))
        yield cfg


def post(headers: str, body: bytes = b"", target: str = "/x", version: str = "1.1") -> bytes:
    head = f"POST {target} HTTP/{version}\r\nHost: edge\r\n{headers}\r\n"
    return head.encode() + body


def get(headers: str = "", target: str = "/x", method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: edge\r\n{headers}\r\n".encode()


@dataclass(frozen=True)
class Refused:
    id: str
    data: bytes
    status: int
    error: str
    like: str  # what nginx / HAProxy answer
    sentinel: bool = True  # another request follows (it must never be answered)


CHUNKED = "Transfer-Encoding: chunked\r\n"
REFUSED = [
    # request smuggling, every classic form
    Refused("CL.TE", post("Content-Length: 6\r\n" + CHUNKED, b"0\r\n\r\nG"), 400, "bad_request",
            "nginx 400, HAProxy drops CL and closes"),
    Refused("TE.CL", post(CHUNKED + "Content-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
            400, "bad_request", "nginx 400"),
    Refused("TE xchunked", post("Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 501,
            "not_implemented", "nginx 501"),
    Refused("TE chunked, identity", post("Transfer-Encoding: chunked, identity\r\n"), 400,
            "bad_request", "nginx 501, HAProxy 400"),
    Refused("TE identity, chunked", post("Transfer-Encoding: identity, chunked\r\n",
            b"0\r\n\r\n"), 501, "not_implemented", "nginx 501"),
    Refused("TE space before colon", post("Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
            400, "bad_request", "nginx 400, HAProxy 400"),
    Refused("TE twice", post(CHUNKED + CHUNKED, b"0\r\n\r\n"), 400, "bad_request",
            "HAProxy 400"),
    Refused("TE obs-folded", post("Transfer-Encoding: identity\r\n chunked\r\n", b"0\r\n\r\n"),
            400, "bad_request", "nginx 400, HAProxy 400"),
    Refused("CL twice, same", post("Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"),
            400, "bad_request", "nginx 400"),
    Refused("CL twice, differing", post("Content-Length: 3\r\nContent-Length: 5\r\n",
            b"abcde"), 400, "bad_request", "nginx 400, HAProxy 400"),
    Refused("CL list", post("Content-Length: 3, 3\r\n", b"abc"), 400, "bad_request",
            "nginx 400"),
    Refused("CL signed", post("Content-Length: +3\r\n", b"abc"), 400, "bad_request",
            "nginx 400, HAProxy 400"),
    Refused("CL negative", post("Content-Length: -1\r\n"), 400, "bad_request", "nginx 400"),
    Refused("CL overflows", post("Content-Length: 99999999999999999999999\r\n"), 400,
            "bad_request", "nginx 400"),
    Refused("chunk size not hex", post(CHUNKED, b"zz\r\nabc\r\n0\r\n\r\n"), 400,
            "bad_request", "nginx 400"),
    Refused("chunk size 0x", post(CHUNKED, b"0x3\r\nabc\r\n0\r\n\r\n"), 400, "bad_request",
            "nginx 400"),
    Refused("chunk size overflows", post(CHUNKED, b"fffffffffffffffff1\r\nabc\r\n"), 400,
            "bad_request", "nginx 400"),
    Refused("chunk lines bare LF", post(CHUNKED, b"3\nabc\n0\n\n"), 400, "bad_request",
            "HAProxy 400"),
    # line syntax
    Refused("obs-fold", get("X-A: one\r\n two\r\n"), 400, "bad_request", "HAProxy 400"),
    Refused("bare LF lines", b"GET /x HTTP/1.1\nHost: edge\n\n", 400, "bad_request",
            "HAProxy 400 (nginx accepts)"),
    Refused("bare LF in a header", b"GET /x HTTP/1.1\r\nHost: edge\nX-A: 1\r\n\r\n", 400,
            "bad_request", "HAProxy 400"),
    Refused("bare CR", b"GET /x HTTP/1.1\r\nHost: edge\rX-A: 1\r\n\r\n", 400, "bad_request",
            "nginx 400"),
    Refused("NUL in a header name", get("X-\x00A: 1\r\n"), 400, "bad_request", "nginx 400"),
    Refused("NUL in a header value", get("X-A: 1\x002\r\n"), 400, "bad_request", "nginx 400"),
    Refused("space in a header name", get("X A: 1\r\n"), 400, "bad_request", "HAProxy 400"),
    Refused("space before the colon", get("X-A : 1\r\n"), 400, "bad_request", "HAProxy 400"),
    Refused("first header line indented", b"GET /x HTTP/1.1\r\n X-A: 1\r\nHost: e\r\n\r\n",
            400, "bad_request", "nginx 400"),
    Refused("unknown method", get(method="FOO"), 400, "bad_request", "HAProxy forwards"),
    Refused("no Host in HTTP/1.1", b"GET /x HTTP/1.1\r\n\r\n", 400, "bad_request", "nginx 400"),
    Refused("two Host headers", get("Host: other\r\n"), 400, "bad_request", "nginx 400"),
    Refused("Host with a path", b"GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "bad_request",
            "nginx 400"),
    # sizes
    Refused("request line over 8 KiB", get(target="/" + "a" * 9000), 414, "uri_too_long",
            "nginx 414"),
    Refused("header section over 32 KiB",
            get("".join(f"X-H{i}: {'v' * 1000}\r\n" for i in range(40))), 431,
            "header_fields_too_large", "nginx 400, HAProxy 400"),
    Refused("over 100 header lines", get("".join(f"X-H{i}: v\r\n" for i in range(101))), 431,
            "header_fields_too_large", "gunicorn 431"),
    Refused("one header never ending", b"GET /x HTTP/1.1\r\nHost: e\r\nX-A: " + b"v" * 50_000,
            431, "header_fields_too_large", "nginx 400", sentinel=False),
    # methods and versions
    Refused("CONNECT", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
            405, "method_not_allowed", "nginx 405"),
    Refused("TRACE", get(method="TRACE"), 405, "method_not_allowed", "nginx 405"),
    Refused("HTTP/2 prior knowledge", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request",
            "nginx 400, HAProxy 400 on an HTTP/1 bind"),
    Refused("HTTP/2.0 request line", b"GET /x HTTP/2.0\r\nHost: edge\r\n\r\n", 505,
            "http_version_not_supported", "nginx 505"),
    Refused("HTTP/1.2", b"GET /x HTTP/1.2\r\nHost: edge\r\n\r\n", 400, "bad_request",
            "HAProxy 400"),
    Refused("upgrade with a body", post("Connection: Upgrade\r\nUpgrade: h2c\r\n"
            "Content-Length: 3\r\n", b"abc"), 400, "bad_request", "a body cannot be tunnelled"),
    Refused("absolute-form with userinfo", get(target="http://u:p@evil/x"), 400,
            "bad_request", "HAProxy 400"),
    Refused("absolute-form of another scheme", get(target="ftp://evil/x"), 400, "bad_request",
            "nginx 400"),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_hostile_requests_are_refused_with_json_and_a_closed_connection(edge, case):
    answers, _ = converse(edge.proxy_port, case.data + (SENTINEL if case.sentinel else b""))
    assert [a.status for a in answers] == [case.status], [a.body for a in answers]
    refusal = answers[0]
    assert refusal.headers["x-strangler-backend"] == "proxy"  # no backend saw it
    assert refusal.headers["content-type"] == "application/json"
    assert refusal.headers["connection"] == "close"
    assert refusal.json()["error"] == case.error
    assert refusal.json()["message"]


@dataclass(frozen=True)
class Served:
    id: str
    data: bytes
    seen: list[dict]  # what the backend(s) received, in order: the echo's fields
    statuses: list[int] = field(default_factory=lambda: [200])
    methods: list[str] = field(default_factory=list)
    then: bytes = b""  # sent after a 100 Continue
    keeps_open: bool = True  # the sentinel after it is answered
    like: str = ""


SERVED = [
    Served("TE chunked, upper case", post("Transfer-Encoding: CHUNKED\r\n",
           b"3\r\nabc\r\n0\r\n\r\n"), [{"backend": "a", "body_length": 3}]),
    Served("TE after a tab", post("Transfer-Encoding:\tchunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
           [{"body_length": 3}]),
    Served("chunk extension", post(CHUNKED, b"3;x=y\r\nabc\r\n0\r\n\r\n"),
           [{"body_length": 3}]),
    Served("chunked HTTP/1.0 then closed", post("Connection: keep-alive\r\n" + CHUNKED,
           b"3\r\nabc\r\n0\r\n\r\n", version="1.0"), [{"body_length": 3}], keeps_open=False,
           like="RFC 9112 6.1: close after it"),
    Served("absolute-form", get(target="http://public.example/api/x?q=1"),
           [{"path": "/api/x", "query": "q=1", "host": "public.example"}],
           like="nginx, HAProxy: served, Host from the target"),
    Served("websocket upgrade, served plain", get("Connection: Upgrade\r\n"
           "Upgrade: websocket\r\n"), [{"path": "/x", "upgrade": None}], keeps_open=False,
           like="nginx without upgrade config"),
    Served("pipelined before a websocket upgrade", get(target="/one") + get(
           "Connection: Upgrade\r\nUpgrade: websocket\r\n", "/two"),
           [{"path": "/one"}, {"path": "/two"}], [200, 200], keeps_open=False),
    Served("pipelined, answered in order",
           get(target="/one") + get(target="/slow?seconds=0.3") + get(target="/three"),
           [{"path": "/one"}, {"path": "/slow"}, {"path": "/three"}], [200, 200, 200]),
    Served("Expect: 100-continue", post("Content-Length: 3\r\nExpect: 100-continue\r\n"),
           [{"body_length": 3, "expect": None}], [100, 200], then=b"abc"),
    Served("HEAD has no body", get(method="HEAD") + get(target="/after"),
           [{}, {"path": "/after"}], [200, 200], methods=["HEAD", "GET"]),
    Served("204 has no body", get(target="/status/204") + get(target="/after"),
           [{}, {"path": "/after"}], [204, 200]),
    Served("304 has no body", get(target="/status/304") + get(target="/after"),
           [{}, {"path": "/after"}], [304, 200]),
]  # fmt: skip


@pytest.mark.parametrize("case", SERVED, ids=[c.id for c in SERVED])
def test_awkward_but_valid_requests_are_served_as_sent(edge, case):
    data, then = (case.data, case.then + SENTINEL) if case.then else (case.data + SENTINEL, b"")
    answers, clean = converse(edge.proxy_port, data, case.methods, then)
    final = [a for a in answers if a.status >= 200]
    if case.keeps_open:
        assert final[-1].json()["path"] == "/sentinel"  # framing intact: the next one is read
        final = final[:-1]
    else:
        assert len(final) == len(case.seen)  # the connection ended after its answers
    assert [a.status for a in answers][: len(case.statuses)] == case.statuses
    for answer, seen in zip(final, case.seen, strict=True):
        assert not answer.body or answer.headers["x-strangler-backend"] in ("a", "b")
        if not seen:
            assert answer.body == b""
            continue
        echoed = answer.json()
        for key, value in seen.items():
            if key in ("host", "upgrade", "expect"):
                assert echoed["headers"].get(key) == value, echoed
            else:
                assert echoed[key] == value, echoed
    assert clean


# --- an attacker's review of the edge ------------------------------------------------------


def seen_by_backend(edge, headers: str, target: str = "/x") -> dict:
    (answer,), _ = converse(edge.proxy_port, get(headers + "Connection: close\r\n", target))
    assert answer.status == 200, answer.body
    return answer.json()["headers"]


@pytest.mark.parametrize(
    "spelling",
    ["X-Strangler-Shadow", "x-strangler-shadow", "X-STRANGLER-SHADOW", "X_Strangler_Shadow",
     "x-strangler_shadow", "X-Strangler-Internal-Token", "x_strangler_internal_token",
     "X-Strangler-Admin-Token", "X-Strangler-Backend", "X-Strangler-Anything"],
)  # fmt: skip
def test_no_spelling_of_our_headers_reaches_a_backend(edge, spelling):
    seen = seen_by_backend(edge, f"{spelling}: spoofed\r\n")
    assert "spoofed" not in json.dumps(seen)
    assert seen["x-strangler-internal-token"] == INTERNAL_TOKEN  # only ours, set by the proxy


def test_connection_cannot_strip_what_the_proxy_sets(edge):
    listed = "Host, X-Request-Id, X-Strangler-Internal-Token, X-Forwarded-Proto, X-Forwarded-For"
    seen = seen_by_backend(
        edge, f"Connection: {listed}\r\nX-Request-Id: rid-1\r\nX-Forwarded-For: 6.6.6.6\r\n"
    )
    assert seen["host"] == "edge" and seen["x-forwarded-host"] == "edge"
    assert seen["x-request-id"] == "rid-1"
    assert seen["x-strangler-internal-token"] == INTERNAL_TOKEN
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the listed one dropped, the peer added


def test_client_claims_about_its_origin_are_not_passed_on(edge):
    seen = seen_by_backend(
        edge,
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /admin\r\nForwarded: for=6.6.6.6\r\n"
        "X-Real-IP: 6.6.6.6\r\n",
    )
    assert seen["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"  # the rightmost is the proxy's
    assert (seen["x-forwarded-host"], seen["x-forwarded-proto"]) == ("edge", "http")
    for dropped in ("x-forwarded-port", "x-forwarded-prefix", "forwarded", "x-real-ip"):
        assert dropped not in seen


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("a b", False), ("x" * 129, False), ("<script>", False), ("a\x01b", None)],
)
def test_request_ids_are_kept_only_when_sane(edge, given, kept):
    if kept is None:  # a control byte: the head itself is refused
        (answer,), _ = converse(edge.proxy_port, get(f"X-Request-Id: {given}\r\n"))
        assert answer.status == 400
        return
    (answer,), _ = converse(edge.proxy_port, get(f"X-Request-Id: {given}\r\nConnection: close\r\n"))
    echoed = answer.json()["headers"]["x-request-id"]
    assert (echoed == given) is kept and answer.headers["x-request-id"] == echoed


def test_a_backend_cannot_set_or_leak_our_headers_to_the_client(edge):
    (answer,), _ = converse(edge.proxy_port, get("Connection: close\r\n", "/leak"))
    assert answer.status == 200
    assert INTERNAL_TOKEN not in str(answer.headers)
    assert "x-strangler-internal-token" not in answer.headers
    assert "x_strangler_shadow" not in answer.headers
    assert answer.headers["x-strangler-backend"] == "a"


def test_a_refusal_behind_pipelined_requests_comes_after_their_answers(edge):
    data = get(target="/slow?seconds=0.3") + get(target="/two") + get(method="TRACE") + SENTINEL
    answers, _ = converse(edge.proxy_port, data)
    assert [a.status for a in answers] == [200, 200, 405]
    assert [a.json().get("path") for a in answers[:2]] == ["/slow", "/two"]
    assert answers[2].json()["error"] == "method_not_allowed"
