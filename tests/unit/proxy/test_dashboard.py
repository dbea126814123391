"""The dashboard's HTTP rules: credentials, cross-site refusals, actions, audit lines, the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from strangler.proxy import admin, dashboard

TOKEN = "t0k"


def lookup_of(headers: dict[str, str]):
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower())


def authorized(path, headers=None, query=None, ip="127.0.0.1", token=TOKEN) -> int:
    lookup = dashboard.credentials(lookup_of(headers or {}), path, query or {})
    refusal = admin.authorize(lookup, ip, token)
    return 200 if refusal is None else refusal.status


@pytest.mark.parametrize(
    ("path", "headers", "query", "ip", "expected"),
    [
        (dashboard.PAGE, {}, {}, "127.0.0.1", 401),  # a token is set: loopback is not enough
        (dashboard.PAGE, {}, {"token": "t0k"}, "10.0.0.9", 200),  # opened with ?token=
        (dashboard.PAGE, {}, {"token": "wrong"}, "127.0.0.1", 401),
        (dashboard.HISTORY, {}, {"token": "t0k"}, "127.0.0.1", 401),  # ?token= is the page's only
        (dashboard.HISTORY, {"Cookie": "a=b; strangler_admin=t0k"}, {}, "10.0.0.9", 200),
        (dashboard.ACTIONS, {"Cookie": "strangler_admin=nope"}, {}, "127.0.0.1", 401),
        (dashboard.ACTIONS, {"Authorization": "Bearer t0k"}, {}, "10.0.0.9", 200),
        (admin.PREFIX + "status", {"Cookie": "strangler_admin=t0k"}, {}, "10.0.0.9", 200),
    ],
)
def test_the_token_comes_from_a_header_the_cookie_or_the_page_address(
    path, headers, query, ip, expected
):
    assert authorized(path, headers, query, ip) == expected


def test_without_a_token_the_page_is_for_loopback_only():
    assert authorized(dashboard.PAGE, token=None) == 200
    assert authorized(dashboard.PAGE, ip="192.0.2.2", token=None) == 403
    assert authorized(dashboard.PAGE, query={"token": "x"}, ip="192.0.2.2", token=None) == 403


def test_the_page_sets_the_token_cookie_only_for_the_right_token():
    headers = dict(dashboard.page_reply({"token": "t0k"}, "t0k").headers)
    assert (
        headers["Set-Cookie"] == "strangler_admin=t0k; Path=/_strangler/; HttpOnly; SameSite=Strict"
    )
    assert "Set-Cookie" not in dict(dashboard.page_reply({"token": "bad"}, "t0k").headers)
    assert "Set-Cookie" not in dict(dashboard.page_reply({}, None).headers)


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"Host": "127.0.0.1:8009", "Origin": "http://127.0.0.1:8009"}, False),
        (
            {
                "Host": "127.0.0.1:8009",
                "Origin": "http://127.0.0.1:8009",
                "Sec-Fetch-Site": "same-origin",
            },
            False,
        ),
        ({"Host": "127.0.0.1:8009"}, False),  # no browser: curl, a script
        ({"Host": "127.0.0.1:8009", "Origin": "http://evil.example"}, True),
        ({"Host": "127.0.0.1:8009", "Origin": "http://127.0.0.1:8010"}, True),
        ({"Host": "127.0.0.1:8009", "Origin": "null"}, True),
        ({"Host": "127.0.0.1:8009", "Sec-Fetch-Site": "cross-site"}, True),
        ({"Host": "127.0.0.1:8009", "Sec-Fetch-Site": "same-site"}, True),
        ({"Origin": "http://127.0.0.1:8009"}, True),  # no Host to compare with
    ],
)
def test_a_state_change_must_come_from_the_page_itself(headers, refused):
    reply = dashboard.cross_site(lookup_of(headers))
    assert (reply is not None) == refused
    if refused:
        assert (reply.status, json.loads(reply.body)["error"]) == (403, "cross_site")


JSON = "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"action": "shift"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"action": "shift"}', None, 415, "unsupported_media_type"),
        (b"{nope", JSON, 400, "bad_json"),
        (b"[1, 2]", JSON, 400, "bad_action"),
        (b'{"action": "delete", "route": "r", "reason": "x"}', JSON, 400, "bad_action"),
        (b'{"action": "promote", "route": "r", "reason": "x"}', JSON, 400, "bad_action"),
        (b'{"action": "pause", "route": "r"}', JSON, 400, "reason_required"),
        (b'{"action": "abort", "route": "r", "reason": " "}', JSON, 400, "reason_required"),
        (b'{"action": "resume", "reason": "x"}', JSON, 400, "bad_route"),
        (b'{"action": "shift", "percent": 5, "reason": "x"}', JSON, 400, "bad_route"),
        (b'{"action": "shift", "route": "", "percent": 5, "reason": "x"}', JSON, 400, "bad_route"),
        (b'{"action": "shift", "route": "r", "percent": 5}', JSON, 400, "reason_required"),
        (b'{"action": "rollback", "route": "r", "reason": "  "}', JSON, 400, "reason_required"),
        (
            b'{"action": "shift", "route": "r", "percent": 5, "reason": "' + b"x" * 501 + b'"}',
            JSON,
            400,
            "bad_reason",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": 5, "reason": "x", "user": 7}',
            JSON,
            400,
            "bad_user",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": 101, "reason": "x"}',
            JSON,
            400,
            "bad_percent",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": -1, "reason": "x"}',
            JSON,
            400,
            "bad_percent",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": "50", "reason": "x"}',
            JSON,
            400,
            "bad_percent",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": 12.5, "reason": "x"}',
            JSON,
            400,
            "bad_percent",
        ),
        (
            b'{"action": "shift", "route": "r", "percent": true, "reason": "x"}',
            JSON,
            400,
            "bad_percent",
        ),
    ],
)
def test_malformed_actions_are_refused_naming_the_field(body, content_type, status, code):
    reply = dashboard.parse_action(body, content_type)
    assert isinstance(reply, admin.Reply)
    doc = json.loads(reply.body)
    assert (reply.status, doc["error"]) == (status, code)
    assert doc["message"]


def test_a_good_action_is_read_whole():
    body = b'{"action": "shift", "route": "r", "percent": 50, "reason": " why ", "user": "ann"}'
    assert dashboard.parse_action(body, "application/json; charset=utf-8") == dashboard.Action(
        "shift", "r", 50, "why", "ann"
    )
    rollback = b'{"action": "rollback", "route": "r", "percent": 50, "reason": "bad p99"}'
    assert dashboard.parse_action(rollback, JSON) == dashboard.Action(
        "rollback", "r", None, "bad p99", None
    )


@pytest.mark.parametrize("verb", ["pause", "resume", "abort"])
def test_a_rollout_verb_is_read_without_a_percent(verb):
    body = json.dumps({"action": verb, "route": "r", "percent": 5, "reason": "look", "user": "bo"})
    assert dashboard.parse_action(body.encode(), JSON) == dashboard.Action(
        verb, "r", None, "look", "bo"
    )


def test_the_audit_lines_are_the_newest_first_and_skip_what_is_not_a_record(tmp_path: Path):
    log = tmp_path / "audit.log"
    records = [{"route": "r", "reason": f"step {i}"} for i in range(30)]
    log.write_text("\n".join([*map(json.dumps, records[:10]), "not json", "[1]",
                              *map(json.dumps, records[10:])]) + "\n")  # fmt: skip
    doc = dashboard.audit_lines(log, limit=5)
    assert [line["reason"] for line in doc["lines"]] == [f"step {i}" for i in (29, 28, 27, 26, 25)]
    assert dashboard.audit_lines(tmp_path / "none.log") == {
        "audit_log": str(tmp_path / "none.log"), "lines": []
    }  # fmt: skip
    assert dashboard.audit_lines(None) == {"audit_log": None, "lines": []}


def test_a_long_audit_log_is_read_from_its_tail_only(tmp_path: Path):
    log = tmp_path / "audit.log"
    line = json.dumps({"reason": "x" * 300})
    log.write_text((line + "\n") * 2000)  # ~600 KB
    doc = dashboard.audit_lines(log)
    assert len(doc["lines"]) == dashboard.AUDIT_LINES


def test_the_page_allows_its_own_script_and_style_and_nothing_from_elsewhere():
    body, policy = dashboard.page()
    assert b"<script src" not in body and b"http://" not in body.replace(b"http://www.w3.org", b"")
    assert b"https://" not in body
    assert policy.startswith("default-src 'none'; script-src 'sha256-")
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert len(re.findall(r"'sha256-", policy)) == 2  # one script block, one style block
