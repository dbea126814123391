"""Sticky keys read by real HAProxy, byte for byte as `strangler.routing.keys` reads them.

The exported key rules of every kind run in a real HAProxy that answers with the key's bytes;
each must equal what `extract_key` gives for the same request, on the inputs where readers
disagree most: escapes, duplicates, numbers, booleans, cookies quoted or repeated, malformed
percent escapes, whitespace around header values.
"""

from __future__ import annotations

import http.client
import subprocess
from pathlib import Path

import pytest

from strangler.haproxy import files, rules
from strangler.routing.keys import extract_key
from strangler.routing.records import Backend, Route, RoutingTable, Sticky
from strangler.stack.supervisor import free_port, tcp_ready
from tests.integration.haproxy.support import needs_haproxy
from tests.integration.polling import wait_for

pytestmark = [needs_haproxy, pytest.mark.live]

KINDS = {
    "json": Sticky("json", "to", 600, ("strip", "lower")),
    "jsonraw": Sticky("json", "to", 600),
    "header": Sticky("header", "x-user", 600),
    "cookie": Sticky("cookie", "sid", 600),
    "query": Sticky("query", "u", 600, ("strip",)),
}
CASES = [
    {"body": b'{"to": " \\u00c9mile@X.example\\t", "to": "dup"}'},
    {"body": '{"to": "Émile@X.example"}'.encode()},
    {"body": b'{"to": 15551234567}'},
    {"body": b'{"to": -0}'},
    {"body": b'{"to": 1.5}'},
    {"body": b'{"to": true}'},
    {"body": b'{"to": null}'},
    {"body": b'{"to": {"a": 1}}'},
    {"body": b'{"to": "a\\"b\\\\c\\/d\\ud83d\\ude00\\ud800"}'},
    {"body": b'{"a": {"to": "inner"}, "to": "top", "b": "x\\ny"}'},
    {"body": b'  {"to" : "spaced" }  '},
    {"body": b'{"to": "+15551230001", "channel": "sms"}'},
    {"body": b'{"to": "15551230001"}'},
    {"headers": {"X-User": "Ab, cd"}},
    {"headers": {"X-User": "  padded  "}},
    {"headers": {"Cookie": 'sid="q1"; sid=q2'}},
    {"headers": {"Cookie": "a=1;sid= v ;b=2"}},
    {"headers": {"Cookie": "sid="}},
    {"query": "u=a%C3%A9+b&u=2"},
    {"query": "u=%zz"},
    {"query": "x=1&u=+pad+"},
    {"query": "%75=enc&u=plain"},
    {"query": "u=a%2Bb%20c"},
]


def key_config(tmp: Path, port: int) -> Path:
    backend = Backend("a", "http://127.0.0.1:1", "http", "127.0.0.1", 1, "/")
    lines = [
        "global",
        f"    lua-load {tmp / 'json_key.lua'}",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 5s",
        "    timeout server 5s",
        "frontend keys",
        f"    bind 127.0.0.1:{port}",
        "    acl has_key var(txn.key) -m len gt 0",
        "    http-request wait-for-body time 1s at-least 16k",
    ]
    for name, sticky in KINDS.items():
        route = Route(name, f"/{name}/", None, (("a", 100),), sticky, "a")
        table = RoutingTable({"a": backend}, "a", (route,), "keys.yaml", "")
        lines += [line for line in rules._key_lines(table, route) if "wait-for-body" not in line]
        lines.append(f"    http-request set-var(txn.{name}) var(txn.key)")
        lines.append("    http-request unset-var(txn.key)")
    answers = " ".join(f"hdr X-{n} %[var(txn.{n}),hex]" for n in KINDS)
    lines.append(f"    http-request return status 200 {answers}")
    (tmp / "json_key.lua").write_text(files.lua_source())
    config = tmp / "keys.cfg"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_haproxy_reads_every_kind_of_key_as_the_routing_model_does(tmp_path: Path) -> None:
    port = free_port()
    config = key_config(tmp_path, port)
    process = subprocess.Popen([files.haproxy_binary(), "-db", "-f", str(config)])
    try:
        wait_for(tcp_ready("127.0.0.1", port), what="haproxy")
        mismatches = []
        for case in CASES:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            target = "/x" + ("?" + case["query"] if "query" in case else "")
            conn.request(
                "POST", target, body=case.get("body", b""), headers=case.get("headers", {})
            )
            response = conn.getresponse()
            response.read()
            answered = {k.lower(): v for k, v in response.getheaders()}
            conn.close()
            headers = {k.lower(): v for k, v in case.get("headers", {}).items()}
            for name, sticky in KINDS.items():
                got = bytes.fromhex(answered.get(f"x-{name}", ""))
                want = extract_key(
                    sticky, headers=headers.get, query=case.get("query", "").encode(),
                    body=case.get("body"), client_ip="127.0.0.1",
                ) or b""  # fmt: skip
                if got != want:
                    mismatches.append((name, case, got, want))
        assert mismatches == []
    finally:
        process.terminate()
        process.wait(10)
