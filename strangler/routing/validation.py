"""Validation of a loaded routing document into a RoutingTable, naming each bad value."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from typing import NoReturn
from urllib.parse import urlsplit

from strangler.routing import gateway_validation as gateway
from strangler.routing.records import (
    DEFAULT_HEALTH,
    DEFAULT_TTL,
    MAX_STORE_TIMEOUT,
    METHODS,
    NORMALIZERS,
    Backend,
    Retry,
    Route,
    RoutingConfigError,
    RoutingTable,
    Sticky,
)
from strangler.routing.rollout import parse_rollout

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")  # a machine error code, as the backends write them
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def validate_table(
    data: object, source: str, environ: Mapping[str, str], digest: str
) -> RoutingTable:
    """The table a document describes; the first problem found is a RoutingConfigError."""
    check = _Checker(source)
    if data is None:
        check.fail("(file)", "is empty; expected backends, default_backend and routes")
    top_keys = {"backends", "default_backend", "routes"}
    top = check.keys(data, "(top level)", top_keys, top_keys)
    backends = _parse_backends(check, top["backends"], environ)
    default = check.backend(top["default_backend"], "default_backend", backends)
    routes = check.typed(top["routes"], list, "routes", "a list of routes")
    parsed = tuple(_parse_route(check, i, item, backends) for i, item in enumerate(routes))
    _check_unique(check, parsed)
    return RoutingTable(backends, default, parsed, source, digest)


class _Checker:
    """Type and shape checks that raise RoutingConfigError for one source file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        raise RoutingConfigError(self.source, where, message)

    def typed(self, value: object, kind: type, where: str, what: str):
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(where, f"must be {what}, got {_show(value)}")
        return value

    def keys(self, value: object, where: str, allowed: set[str], required: set[str]) -> dict:
        mapping = self.typed(value, dict, where, "a mapping")
        for key in mapping:
            if key not in allowed:
                self.fail(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - mapping.keys()):
            self.fail(key if where == "(top level)" else f"{where}.{key}", "is missing")
        return mapping

    def name(self, value: object, where: str) -> str:
        name = self.typed(value, str, where, "a name")
        if not _NAME.match(name):
            self.fail(where, f"bad name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
        return name

    def backend(self, value: object, where: str, backends: Mapping[str, Backend]) -> str:
        name = self.typed(value, str, where, "a backend name")
        if name not in backends:
            self.fail(where, f"unknown backend {name!r} (known: {', '.join(backends)})")
        return name


def _show(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _parse_backends(check: _Checker, value: object, environ: Mapping[str, str]) -> dict:
    mapping = check.typed(value, dict, "backends", "a mapping of name to {url, health}")
    if not mapping:
        check.fail("backends", "is empty; at least one backend is required")
    backends = {}
    for name, spec in mapping.items():
        check.name(name, "backends")
        where = f"backends.{name}"
        if isinstance(spec, dict) and "mock" in spec:  # no server: canned answers
            check.keys(spec, where, {"mock"}, {"mock"})
            mock = gateway.parse_mock(check, spec["mock"], f"{where}.mock")
            backends[name] = Backend(name, f"mock://{name}", "mock", "", 0, "", mock)
            continue
        spec = check.keys(spec, where, {"url", "health"}, {"url"})
        scheme, host, port = _parse_url(check, spec["url"], environ, f"{where}.url")
        health = check.typed(spec.get("health", DEFAULT_HEALTH), str, f"{where}.health", "a path")
        if not health.startswith("/") or any(c.isspace() for c in health):
            check.fail(f"{where}.health", f"must be a path starting with '/', got {health!r}")
        url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        backends[name] = Backend(name, url, scheme, host, port, health)
    return backends


def _expand(check: _Checker, template: str, environ: Mapping[str, str], where: str) -> str:
    """Shell-style `${VAR}` and `${VAR:-default}` (empty counts as unset, as in the shell)."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if environ.get(name):
            return environ[name]
        if default is None:
            check.fail(where, f"environment variable {name} is unset; {match[0]!r} has no default")
        return default

    if "$" in _ENV.sub("", template):
        check.fail(where, f"malformed variable in {template!r}: use ${{VAR}} or ${{VAR:-default}}")
    return _ENV.sub(substitute, template)


def _parse_url(
    check: _Checker, value: object, environ: Mapping[str, str], where: str
) -> tuple[str, str, int]:
    template = check.typed(value, str, where, "a URL string")
    url = _expand(check, template, environ, where)
    shown = repr(url) if url == template else f"{url!r} (from {template!r})"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        check.fail(where, f"bad URL {shown}: {exc}")
    if parts.scheme != "http":
        check.fail(where, f"bad URL {shown}: the scheme must be http")
    if parts.username is not None:
        check.fail(where, f"bad URL {shown}: credentials are not allowed")
    if not _valid_host(parts.hostname or ""):
        check.fail(where, f"bad URL {shown}: the host is missing or invalid")
    if port == 0:
        check.fail(where, f"bad URL {shown}: the port must be 1-65535")
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        check.fail(where, f"bad URL {shown}: use http://host:port with no path, query or fragment")
    return parts.scheme, parts.hostname, port or 80


def _valid_host(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return bool(ipaddress.IPv6Address(host))
    return bool(_HOST.match(host))


def _parse_route(check: _Checker, index: int, value: object, backends: dict) -> Route:
    base = f"routes[{index}]"
    mapping = check.typed(value, dict, base, "a mapping")
    if "name" not in mapping:
        check.fail(f"{base}.name", "is missing")
    name = check.name(mapping.get("name"), f"{base}.name")
    where = f"{base} ({name})"
    allowed = {"name", "match", "split", "sticky", "fallback", "retry", "rollout", *GATEWAY_FIELDS}
    check.keys(mapping, where, allowed, {"name", "match", "split"})
    prefix, methods = _parse_match(check, mapping["match"], f"{where}.match")
    headers = ()
    if "header" in mapping["match"]:
        headers = gateway.parse_match_headers(
            check, mapping["match"]["header"], f"{where}.match.header"
        )
    split = _parse_split(check, mapping["split"], f"{where}.split", backends)
    sticky = (
        _parse_sticky(check, mapping["sticky"], f"{where}.sticky") if "sticky" in mapping else None
    )
    fallback = None
    if "fallback" in mapping:
        fallback = check.backend(mapping["fallback"], f"{where}.fallback", backends)
        if fallback not in dict(split):
            check.fail(f"{where}.fallback", f"{fallback!r} must be one of the split's backends")
    elif len(split) > 1:
        check.fail(f"{where}.fallback", "is missing; required when the split has several backends")
    retry = None
    if "retry" in mapping:
        retry = _parse_retry(check, mapping["retry"], f"{where}.retry")
        if fallback is None:
            check.fail(f"{where}.retry", "needs the route's fallback: that is where it retries")
    duties = _parse_duties(check, mapping, where, dict(split), backends, methods)
    rollout = None
    if "rollout" in mapping:
        rollout = parse_rollout(mapping["rollout"], f"{where}.rollout", check.fail)
        if fallback is None or len(split) != 2:
            check.fail(f"{where}.rollout", "needs a split of two backends, one the fallback")
    limit, rules, cache = duties
    return Route(
        name, prefix, methods, split, sticky, fallback, retry, headers, limit, rules, cache,
        rollout,
    )  # fmt: skip


GATEWAY_FIELDS = ("limit", "backends", "cache")  # see strangler/routing/gateway.py


def _parse_duties(
    check: _Checker, mapping: dict, where: str, split: dict, backends: dict, methods
) -> tuple:
    """The route's limit, per-backend rules and cache (each None or empty when not given)."""
    limit = rules = cache = None
    if "limit" in mapping:
        limit = gateway.parse_limit(check, mapping["limit"], f"{where}.limit")
    if "backends" in mapping:
        mocks = {name for name, b in backends.items() if b.mock is not None}
        rules = gateway.parse_route_backends(
            check, mapping["backends"], f"{where}.backends", split, mocks
        )
    if "cache" in mapping:
        cache = gateway.parse_cache(check, mapping["cache"], f"{where}.cache", methods)
    return limit, rules or (), cache


def _parse_match(check: _Checker, value: object, where: str) -> tuple[str, frozenset[str] | None]:
    mapping = check.keys(value, where, {"prefix", "methods", "header"}, {"prefix"})
    prefix = check.typed(mapping["prefix"], str, f"{where}.prefix", "a path prefix")
    if not prefix.startswith("/") or any(c.isspace() or c in "?#" for c in prefix):
        check.fail(f"{where}.prefix", f"must start with '/', without space, '?', '#': {prefix!r}")
    if "methods" not in mapping:
        return prefix, None
    methods = check.typed(mapping["methods"], list, f"{where}.methods", "a list of HTTP methods")
    if not methods:
        check.fail(f"{where}.methods", "is empty; leave it out to match every method")
    for method in methods:
        check.typed(method, str, f"{where}.methods", "a list of method names")
        if method.upper() not in METHODS:
            check.fail(
                f"{where}.methods", f"unknown method {method!r} ({' '.join(sorted(METHODS))})"
            )
    return prefix, frozenset(m.upper() for m in methods)


def _parse_split(check: _Checker, value: object, where: str, backends: dict) -> tuple:
    mapping = check.typed(value, dict, where, "a mapping of backend to percent")
    if not mapping:
        check.fail(where, "is empty; give each backend a percentage")
    for name, percent in mapping.items():
        check.backend(name, where, backends)
        check.typed(percent, int, f"{where}.{name}", "a whole percentage 0-100")
        if not 0 <= percent <= 100:
            check.fail(f"{where}.{name}", f"must be 0-100, got {percent!r}")
    if sum(mapping.values()) != 100:
        check.fail(where, f"percentages sum to {sum(mapping.values())}, not 100: {mapping!r}")
    return tuple(mapping.items())


def _parse_sticky(check: _Checker, value: object, where: str) -> Sticky:
    mapping = check.keys(value, where, {"key", "ttl", "normalize", "store_timeout"}, {"key"})
    kind, name = gateway.parse_key(check, mapping["key"], f"{where}.key")
    ttl = check.typed(mapping.get("ttl", DEFAULT_TTL), int, f"{where}.ttl", "whole seconds")
    if ttl <= 0:
        check.fail(f"{where}.ttl", f"must be a positive number of seconds, got {ttl!r}")
    normalize = _parse_normalize(check, mapping.get("normalize", []), f"{where}.normalize")
    timeout = None
    if "store_timeout" in mapping:
        timeout = _seconds(check, mapping["store_timeout"], f"{where}.store_timeout")
    return Sticky(kind, name or None, ttl, normalize, timeout)  # type: ignore[arg-type]


def _seconds(check: _Checker, value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        check.fail(where, f"must be a number of seconds, got {_show(value)}")
    if not 0 < value <= MAX_STORE_TIMEOUT:
        check.fail(where, f"must be above 0 and at most {MAX_STORE_TIMEOUT:g} s, got {value!r}")
    return float(value)


def _parse_retry(check: _Checker, value: object, where: str) -> Retry:
    mapping = check.keys(value, where, {"status", "error"}, {"status", "error"})
    status = check.typed(mapping["status"], int, f"{where}.status", "an HTTP status 500-599")
    if not 500 <= status <= 599:
        check.fail(f"{where}.status", f"must be an HTTP status 500-599, got {status!r}")
    error = check.typed(mapping["error"], str, f"{where}.error", "a machine error code")
    if not _CODE.match(error):
        check.fail(f"{where}.error", f"bad error code {error!r}: use lower-case letters, digits, _")
    return Retry(status, error)


def _parse_normalize(check: _Checker, value: object, where: str) -> tuple[str, ...]:
    steps = check.typed(value, list, where, f"a list of {', '.join(NORMALIZERS)}")
    for step in steps:
        if step not in NORMALIZERS:
            check.fail(where, f"unknown step {step!r} ({', '.join(NORMALIZERS)})")
    return tuple(steps)


def _check_unique(check: _Checker, routes: tuple[Route, ...]) -> None:
    for i, route in enumerate(routes):
        where = f"routes[{i}] ({route.name})"
        for j, other in enumerate(routes[:i]):
            if other.name == route.name:
                check.fail(f"{where}.name", f"duplicate name {route.name!r} (also routes[{j}])")
            methods = (route.methods or METHODS) & (other.methods or METHODS)
            same_headers = other.match_headers == route.match_headers
            if other.prefix == route.prefix and methods and same_headers:
                check.fail(
                    f"{where}.match", f"{route.prefix!r} overlaps routes[{j}] ({other.name})"
                )
