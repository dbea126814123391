"""Validation of the gateway duties of a route (limit, rewrite, mock, versions, cache).

Called by `validation.py` with its checker, whose `fail` raises the RoutingConfigError that
names the file, the place and the bad value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Protocol

from strangler.routing.gateway import (
    MAX_MOCK_BODY,
    PER_UNIT,
    RESERVED_HEADERS,
    BackendRules,
    Cache,
    Limit,
    Mock,
    MockAnswer,
    Rewrite,
)
from strangler.routing.records import STICKY_KINDS as KEY_KINDS

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token: header/cookie names
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\Z")
_PATH_CHARS = re.compile(r"/[^\s?#]*\Z")
MAX_CACHE_ENTRY = 16 * 1024 * 1024
DEFAULT_MAX_ENTRY = 256 * 1024


class Checker(Protocol):
    def fail(self, where: str, message: str): ...

    def typed(self, value: object, kind: type, where: str, what: str): ...

    def keys(self, value: object, where: str, allowed: set[str], required: set[str]) -> dict: ...


def parse_key(check: Checker, value: object, where: str) -> tuple[str, str | None]:
    """`kind:name` or `client_ip` (a sticky key or a limit's key): (kind, name)."""
    key = check.typed(value, str, where, "'kind:name' or 'client_ip'")
    kind, colon, name = key.partition(":")
    if kind not in KEY_KINDS:
        check.fail(where, f"unknown kind {kind!r} in {key!r} ({', '.join(KEY_KINDS)})")
    if kind == "client_ip" and colon:
        check.fail(where, f"client_ip takes no name, got {key!r}")
    if kind != "client_ip" and not name:
        check.fail(where, f"{key!r} needs a name after '{kind}:'")
    if kind in ("header", "cookie") and not TOKEN.match(name):
        check.fail(where, f"bad {kind} name {name!r} in {key!r}")
    return kind, (name.lower() if kind == "header" else name) or None


def parse_limit(check: Checker, value: object, where: str) -> Limit:
    """`{key, rate: 20/s, burst: 40}`; the burst defaults to one second's (minute's...) worth."""
    mapping = check.keys(value, where, {"key", "rate", "burst"}, {"key", "rate"})
    kind, name = parse_key(check, mapping["key"], f"{where}.key")
    rate = mapping["rate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float | str):
        check.fail(f"{where}.rate", f"must be like 20/s, 100/m or 1000/h, got {rate!r}")
    text = f"{rate}/s" if isinstance(rate, int | float) else rate.strip()
    found = _RATE.match(text)
    if found is None or float(found[1]) <= 0:
        check.fail(f"{where}.rate", f"must be a positive count per s, m or h (20/s), got {rate!r}")
    count, unit = float(found[1]), found[2]
    burst = mapping.get("burst", max(1, math.ceil(count)))
    check.typed(burst, int, f"{where}.burst", "a whole number of requests")
    if burst < 1:
        check.fail(f"{where}.burst", f"must be at least 1, got {burst!r}")
    return Limit(kind, name, count / PER_UNIT[unit], burst, text.replace(" ", ""))


def parse_match_headers(check: Checker, value: object, where: str) -> tuple[tuple[str, str], ...]:
    """`header: {Accept-Version: "2"}`: every header must carry exactly that value."""
    mapping = check.typed(value, dict, where, "a mapping of header name to value")
    if not mapping:
        check.fail(where, "is empty; leave it out to match any headers")
    pairs = []
    for name, wanted in mapping.items():
        if not isinstance(name, str) or not TOKEN.match(name):
            check.fail(where, f"bad header name {name!r}")
        if isinstance(wanted, bool) or not isinstance(wanted, str | int):
            check.fail(f"{where}.{name}", f"must be a string, got {wanted!r}")
        text = str(wanted)
        if not text or text != text.strip() or not text.isprintable():
            check.fail(f"{where}.{name}", f"must be printable, without spaces around: {text!r}")
        pairs.append((name.lower(), text))
    return tuple(sorted(pairs))


def parse_route_backends(
    check: Checker, value: object, where: str, split: dict, mocks: set[str]
) -> tuple[tuple[str, BackendRules], ...]:
    """`backends: {NAME: {rewrite, limit}}` for backends of the route's split."""
    mapping = check.typed(value, dict, where, "a mapping of backend name to {rewrite, limit}")
    rules = []
    for name, spec in mapping.items():
        if name not in split:
            check.fail(where, f"{name!r} is not in the route's split ({', '.join(split)})")
        here = f"{where}.{name}"
        spec = check.keys(spec, here, {"rewrite", "limit"}, set())
        rewrite = None
        if "rewrite" in spec:
            if name in mocks:
                check.fail(f"{here}.rewrite", f"{name!r} is a mock: there is nothing to rewrite")
            rewrite = parse_rewrite(check, spec["rewrite"], f"{here}.rewrite")
        limit = parse_limit(check, spec["limit"], f"{here}.limit") if "limit" in spec else None
        rules.append((name, BackendRules(rewrite, limit)))
    return tuple(rules)


def parse_rewrite(check: Checker, value: object, where: str) -> Rewrite:
    allowed = {"prefix", "set_headers", "remove_headers", "response"}
    mapping = check.keys(value, where, allowed, set())
    if not mapping:
        check.fail(where, f"is empty; give one of {', '.join(sorted(allowed))}")
    prefix = None
    if "prefix" in mapping:
        prefix = check.typed(mapping["prefix"], str, f"{where}.prefix", "a path prefix")
        if not _PATH_CHARS.match(prefix):
            check.fail(
                f"{where}.prefix", f"must start with '/', without space, '?', '#': {prefix!r}"
            )
    set_request, remove_request = _header_edits(check, mapping, where)
    set_response, remove_response = (), frozenset()
    if "response" in mapping:
        here = f"{where}.response"
        response = check.keys(mapping["response"], here, {"set_headers", "remove_headers"}, set())
        set_response, remove_response = _header_edits(check, response, here)
    return Rewrite(prefix, set_request, remove_request, set_response, remove_response)


def _header_edits(check: Checker, mapping: dict, where: str) -> tuple[tuple, frozenset[str]]:
    set_headers = _headers(check, mapping.get("set_headers", {}), f"{where}.set_headers")
    removed = check.typed(
        mapping.get("remove_headers", []), list, f"{where}.remove_headers", "a list of names"
    )
    for name in removed:
        _header_name(check, name, f"{where}.remove_headers")
    return set_headers, frozenset(n.lower() for n in removed)


def _header_name(check: Checker, name: object, where: str) -> str:
    if not isinstance(name, str) or not TOKEN.match(name):
        check.fail(where, f"bad header name {name!r}")
    lower = name.lower()
    if lower in RESERVED_HEADERS or lower.startswith("x-strangler-"):
        check.fail(where, f"{name!r} is set by the proxy itself and cannot be changed")
    return name


def _headers(check: Checker, value: object, where: str) -> tuple[tuple[str, str], ...]:
    mapping = check.typed(value, dict, where, "a mapping of header name to value")
    pairs = []
    for name, text in mapping.items():
        _header_name(check, name, where)
        if isinstance(text, bool) or not isinstance(text, str | int):
            check.fail(f"{where}.{name}", f"must be a string, got {text!r}")
        text = str(text)
        if not text.isprintable() or not text.isascii():
            check.fail(f"{where}.{name}", f"must be printable ASCII text, got {text!r}")
        pairs.append((name, text))
    return tuple(pairs)


def parse_mock(check: Checker, value: object, where: str) -> Mock:
    """`{status, headers, body}`, or `{answers: [{method, path, status, headers, body}, ...]}`."""
    mapping = check.typed(value, dict, where, "a mapping {status, headers, body} or {answers}")
    if "answers" not in mapping:
        return Mock((_mock_answer(check, mapping, where, single=True),))
    check.keys(mapping, where, {"answers"}, {"answers"})
    answers = check.typed(mapping["answers"], list, f"{where}.answers", "a list of answers")
    if not answers:
        check.fail(f"{where}.answers", "is empty; give at least one answer")
    parsed = [_mock_answer(check, a, f"{where}.answers[{i}]") for i, a in enumerate(answers)]
    return Mock(tuple(parsed))


def _mock_answer(check: Checker, value: object, where: str, single: bool = False) -> MockAnswer:
    allowed = {"status", "headers", "body"} | (set() if single else {"method", "path"})
    mapping = check.keys(value, where, allowed, set())
    status = check.typed(mapping.get("status", 200), int, f"{where}.status", "an HTTP status")
    if not 200 <= status <= 599:
        check.fail(f"{where}.status", f"must be an HTTP status 200-599, got {status!r}")
    headers = _headers(check, mapping.get("headers", {}), f"{where}.headers")
    body, content_type = _mock_body(check, mapping.get("body", ""), f"{where}.body")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers = (("Content-Type", content_type), *headers)
    method = mapping.get("method")
    if method is not None:
        method = check.typed(method, str, f"{where}.method", "an HTTP method").upper()
    path = mapping.get("path")
    if path is not None:
        check.typed(path, str, f"{where}.path", "a path")
        if not _PATH_CHARS.match(path):
            check.fail(f"{where}.path", f"must start with '/', without space, '?', '#': {path!r}")
    return MockAnswer(status, headers, body, method, path)


def _mock_body(check: Checker, body: object, where: str) -> tuple[bytes, str]:
    if isinstance(body, str):
        data, content_type = body.encode(), "text/plain; charset=utf-8"
    elif isinstance(body, dict | list):
        data = json.dumps(body, separators=(",", ":")).encode()
        content_type = "application/json"
    else:
        check.fail(where, f"must be text, or a mapping or list sent as JSON, got {body!r}")
    if len(data) > MAX_MOCK_BODY:
        check.fail(where, f"is {len(data)} bytes; a mock answers at most {MAX_MOCK_BODY}")
    return data, content_type


def parse_cache(check: Checker, value: object, where: str, methods: frozenset | None) -> Cache:
    """`cache: true` or `{ttl, max_entry}`; only a route that takes GET has anything to cache."""
    if methods is not None and "GET" not in methods:
        check.fail(
            where, f"caches GET answers; the route's methods are {', '.join(sorted(methods))}"
        )
    if value is True:
        return Cache()
    mapping = check.keys(value, where, {"ttl", "max_entry"}, set())
    ttl = check.typed(mapping.get("ttl", 0), int, f"{where}.ttl", "whole seconds")
    if ttl < 0:
        check.fail(f"{where}.ttl", f"must be 0 or more seconds, got {ttl!r}")
    size = check.typed(
        mapping.get("max_entry", DEFAULT_MAX_ENTRY), int, f"{where}.max_entry", "bytes"
    )
    if not 0 < size <= MAX_CACHE_ENTRY:
        check.fail(f"{where}.max_entry", f"must be 1-{MAX_CACHE_ENTRY} bytes, got {size!r}")
    return Cache(ttl, size)
