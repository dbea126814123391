"""Every spelling of a path is routed on its normalised form, and the backend gets exactly that.

The routing table sends POST /api/verification/ to backend b and everything else to a; each
spelling below must land where its normalised path belongs, and the backend must see the
normalised path (decoded by gunicorn: `path`; as sent: `raw_uri`), never the spelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import Supervisor, free_port

from .proxy_support import echo_spec, routes_text, write_atomically
from .raw_http import converse

pytestmark = pytest.mark.live
BODY = json.dumps({"to": "+15550001111", "channel": "sms"}).encode()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    base = tmp_path_factory.mktemp("paths")
    a, b = free_port(), free_port()
    routes = base / "routes.yaml"
    write_atomically(
        routes, routes_text({"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}, 100)
    )
    # No Redis here: placements are queued, so no answer waits on a store that is not there.
    cfg = replace(
        StackConfig.on_free_ports(base / "var"),
        workers=1,
        env={"STRANGLER_AFFINITY_WRITES": "queued"},
    )
    with Supervisor(log_dir=base / "logs") as sup:
        sup.start(echo_spec("a", a, "gthread"))
        sup.start(echo_spec("b", b, "gthread"))
        sup.start(proxy_spec(cfg, routes))
        yield cfg


SEND = "/api/verification/send"
SPELLINGS = [
    # (as the client spells it, the backend that must answer, the path it must receive)
    ("/api/verification/send", "b", SEND, SEND),
    ("/api/%76erification/send", "b", SEND, SEND),
    ("/%61pi/verification/send", "b", SEND, SEND),
    ("/api/x/../verification/send", "b", SEND, SEND),
    ("/../api/verification/send", "b", SEND, SEND),
    ("/api//verification/send", "b", SEND, SEND),
    ("//api/verification/send", "b", SEND, SEND),
    ("/api/./verification/./send", "b", SEND, SEND),
    ("/api/verification/%2e/send", "b", SEND, SEND),
    ("/api%2Fverification%2Fsend", "b", SEND, SEND),
    ("/api/x%2F..%2Fverification/send", "b", SEND, SEND),
    ("/a/b/%2E%2E/%2e%2e/api/verification/send", "b", SEND, SEND),
    ("/api/verification/send/x/..", "b", SEND + "/", SEND + "/"),
    # WSGI's PATH_INFO holds the UTF-8 bytes of "café" as latin-1 characters
    (
        "/api/verification/caf%C3%A9",
        "b",
        "/api/verification/caf\xc3\xa9",
        "/api/verification/caf%C3%A9",
    ),
    ("/api/verification/a%3Fb", "b", "/api/verification/a?b", "/api/verification/a%3Fb"),
    ("/api/verification/a%2525", "b", "/api/verification/a%25", "/api/verification/a%2525"),
    ("/api/verification/../../admin", "a", "/admin", "/admin"),
    ("/api/verification/%2e%2e/%2e%2e/admin", "a", "/admin", "/admin"),
    ("/api/verification%2F..%2F..%2Fadmin", "a", "/admin", "/admin"),
    ("/api/verification/..%2f..%2fadmin", "a", "/admin", "/admin"),
    ("/api/verification/.%2E/x", "a", "/api/x", "/api/x"),
    ("/API/verification/send", "a", "/API/verification/send", "/API/verification/send"),
    ("/api/verification", "a", "/api/verification", "/api/verification"),
]


@pytest.mark.parametrize(
    ("spelling", "backend", "path", "raw"), SPELLINGS, ids=[s[0] for s in SPELLINGS]
)
def test_the_backend_gets_the_path_the_route_was_chosen_on(edge, spelling, backend, path, raw):
    request = (
        f"POST {spelling}?k=/../v HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    ).encode() + BODY
    (answer,), _ = converse(edge.proxy_port, request)
    assert answer.status == 200, answer.body
    echoed = answer.json()
    assert (echoed["backend"], echoed["path"]) == (backend, path)
    assert echoed["raw_uri"] == raw + "?k=/../v"  # the query is passed on untouched


@pytest.mark.parametrize(
    "spelling",
    ["/_strangler/status", "//_strangler/status", "/x/../_strangler/status", "/%5Fstrangler/status",
     "/_strangler%2Fstatus", "/_strangler"],
)  # fmt: skip
def test_no_spelling_of_the_admin_path_leaves_the_proxy(edge, spelling):
    (answer,), _ = converse(
        edge.proxy_port, f"GET {spelling} HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n".encode()
    )
    assert (answer.status, answer.headers["x-strangler-backend"]) == (404, "proxy")


@pytest.mark.parametrize("spelling", ["/api/verification/%00", "/a%0d%0aX-Injected:%201"])
def test_control_bytes_in_a_path_are_refused(edge, spelling):
    (answer,), _ = converse(
        edge.proxy_port, f"GET {spelling} HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n".encode()
    )
    assert (answer.status, answer.json()["error"]) == (400, "bad_request")
