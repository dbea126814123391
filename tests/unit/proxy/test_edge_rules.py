"""The edge's head checks, table-driven: each refusal with its status and error code."""

from __future__ import annotations

import pytest

from strangler.proxy import edge_rules
from strangler.proxy.edge_rules import Refusal

HOST = [(b"Host", b"edge")]


@pytest.mark.parametrize(
    ("method", "version", "headers", "upgrade", "status"),
    [
        ("GET", "2.0", HOST, False, 505),
        ("CONNECT", "1.1", HOST, False, 405),
        ("TRACE", "1.1", HOST, False, 405),
        ("GET", "1.1", [], False, 400),
        ("GET", "1.1", [*HOST, (b"host", b"other")], False, 400),
        ("GET", "1.1", [(b"Host", b"a b")], False, 400),
        ("GET", "1.1", [(b"Host", b"a/b")], False, 400),
        ("POST", "1.1", [*HOST, (b"Transfer-Encoding", b"gzip")], False, 501),
        ("POST", "1.1", [*HOST, (b"Transfer-Encoding", b"identity, chunked")], False, 501),
        ("POST", "1.1", [*HOST, (b"Content-Length", b"3")], True, 400),
        ("POST", "1.1", [*HOST, (b"Transfer-Encoding", b"chunked")], True, 400),
    ],
)
def test_heads_the_edge_refuses(method, version, headers, upgrade, status):
    with pytest.raises(Refusal) as refused:
        edge_rules.check_head(method, version, headers, upgrade)
    assert refused.value.status == status
    assert refused.value.message


@pytest.mark.parametrize(
    ("method", "version", "headers", "upgrade"),
    [
        ("GET", "1.1", HOST, False),
        ("GET", "1.0", [], False),
        ("GET", "1.1", [(b"Host", b"[::1]:8000")], False),
        ("GET", "1.1", [(b"Host", b"api.example.com:443")], False),
        ("POST", "1.1", [*HOST, (b"Transfer-Encoding", b"Chunked")], False),
        ("GET", "1.1", [*HOST, (b"Content-Length", b"0")], True),
    ],
)
def test_heads_the_edge_accepts(method, version, headers, upgrade):
    edge_rules.check_head(method, version, headers, upgrade)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/x?y", (b"/x?y", None)),
        (b"*", (b"*", None)),
        (b"http://a.example/x?y=1", (b"/x?y=1", b"a.example")),
        (b"https://a.example:8443", (b"/", b"a.example:8443")),
        (b"HTTP://a.example/x", (b"/x", b"a.example")),
    ],
)
def test_origin_form(target, expected):
    assert edge_rules.origin_form(target) == expected


@pytest.mark.parametrize("target", [b"http://u:p@a/x", b"ftp://a/x", b"http:///x"])
def test_absolute_targets_refused(target):
    with pytest.raises(Refusal):
        edge_rules.origin_form(target)
