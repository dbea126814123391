"""A backend's rewrite: the path it is sent, and header lines set or removed."""

from __future__ import annotations

import pytest

from strangler.proxy.rewriting import edit_lines, rewritten_target
from strangler.routing.gateway import Rewrite

V1 = Rewrite("/v1/verify/")


@pytest.mark.parametrize(
    ("target", "matched", "expected"),
    [
        (b"/api/verification/send", "/api/verification/send", b"/v1/verify/send"),
        (b"/api/verification/send?x=1", "/api/verification/send", b"/v1/verify/send?x=1"),
        (b"/api/verification/a%2Fb", "/api/verification/a/b", b"/v1/verify/a%2Fb"),
        # matched only once normalised: the normalised path is rewritten, re-encoded
        (b"/api/x/../verification/send", "/api/verification/send", b"/v1/verify/send"),
        (b"/api/%76erification/s%20t", "/api/verification/s t", b"/v1/verify/s%20t"),
    ],
)
def test_the_route_prefix_becomes_the_backend_prefix(target, matched, expected) -> None:
    assert rewritten_target(target, "/api/verification/", V1, matched) == expected


def test_without_a_prefix_the_path_is_unchanged() -> None:
    target = b"/api/verification/send?x"
    assert rewritten_target(target, "/api/", Rewrite(None), "/api/verification/send") == target


def test_header_lines_are_removed_replaced_and_added() -> None:
    kept = b"Host: h\r\nCookie: a=1\r\nX-Api: old\r\nAccept: */*\r\n"
    edited = edit_lines(kept, frozenset({"cookie"}), (("X-Api", "v1"), ("X-New", "yes")))
    assert edited == b"Host: h\r\nAccept: */*\r\nX-Api: v1\r\nX-New: yes\r\n"
    assert edit_lines(kept, frozenset(), ()) is kept
