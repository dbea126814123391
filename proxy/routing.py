"""The routing table: typed records parsed and validated from `routes.yaml`."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn
from urllib.parse import urlsplit

import yaml

from proxy.selection import bucket_ranges

StickyKind = Literal["header", "cookie", "query", "json", "client_ip"]
STICKY_KINDS: tuple[str, ...] = ("header", "cookie", "query", "json", "client_ip")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"})
DEFAULT_HEALTH = "/healthz"
DEFAULT_TTL = 600  # the lifetime of a verification code: a flow started before a flip ends there

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token: header/cookie names
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RoutingConfigError(ValueError):
    """An invalid routing table; the message names the file, the route and the bad value."""

    def __init__(self, source: str, where: str, message: str) -> None:
        self.source = source
        self.where = where  # e.g. "routes[0] (verification).split" or "backends.monolith.url"
        self.detail = message
        super().__init__(f"{source}: {where}: {message}")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    url: str  # scheme://host:port, no path
    scheme: str
    host: str
    port: int
    health: str  # path probed to close a circuit, e.g. "/healthz"


@dataclass(frozen=True, slots=True)
class Sticky:
    kind: StickyKind
    name: str | None  # header (lower-cased)/cookie/query/json field name; None for client_ip
    ttl: int  # seconds a served key keeps its backend after a split change


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    prefix: str
    methods: frozenset[str] | None  # None: every method
    split: tuple[tuple[str, int], ...]  # (backend, percent) in file order, sums to 100
    sticky: Sticky | None
    fallback: str | None
    # Derived for the hot path: cumulative (upper bucket, backend), see selection.bucket_ranges.
    ranges: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", bucket_ranges(self.split, self.fallback))

    @property
    def new_backend(self) -> str | None:
        """The backend the route migrates to: the split's backend that is not the fallback."""
        others = [name for name, _ in self.split if name != self.fallback]
        return others[0] if len(others) == 1 else None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    backends: dict[str, Backend]
    default_backend: str
    routes: tuple[Route, ...]
    source: str  # the file it came from
    digest: str  # sha256 of the file's bytes: same text, same table
    # Derived for match_route: per method, the routes that accept it, longest prefix first.
    by_method: dict[str, tuple[tuple[str, Route], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        ordered = sorted(self.routes, key=lambda r: len(r.prefix), reverse=True)
        index = {
            method: tuple(
                (r.prefix, r) for r in ordered if r.methods is None or method in r.methods
            )
            for method in ["*", *sorted(METHODS)]
        }
        object.__setattr__(self, "by_method", index)

    def route(self, name: str) -> Route | None:
        """The route called `name`, if any."""
        return next((r for r in self.routes if r.name == name), None)


def match_route(table: RoutingTable, method: str, path: str) -> Route | None:
    """The route for a request: among those accepting the method, the longest matching prefix."""
    candidates = table.by_method.get(method)
    if candidates is None:  # a method no route lists: only method-less routes apply
        candidates = table.by_method["*"]
    for prefix, route in candidates:
        if path.startswith(prefix):
            return route
    return None


def load_table(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> RoutingTable:
    """Read, parse and validate a routing file; every failure is a RoutingConfigError."""
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RoutingConfigError(source, "(file)", f"cannot be read: {exc.strerror}") from exc
    return parse_text(raw, source, environ)


def parse_text(
    raw: bytes | str, source: str, environ: Mapping[str, str] | None = None
) -> RoutingTable:
    """Parse a routing file's text (YAML); the table's digest is the sha256 of its bytes."""
    raw_bytes = raw.encode() if isinstance(raw, str) else raw
    try:
        data = yaml.load(raw_bytes, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise RoutingConfigError(source, where, f"YAML syntax error: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise RoutingConfigError(source, "(file)", f"not readable as YAML: {exc}") from exc
    digest = hashlib.sha256(raw_bytes).hexdigest()
    return parse_table(data, source, environ=environ, digest=digest)


def parse_table(
    data: object, source: str, *, environ: Mapping[str, str] | None = None, digest: str = ""
) -> RoutingTable:
    """Validate a loaded document into a RoutingTable; `${VAR:-default}` in URLs from `environ`."""
    check = _Checker(source)
    if data is None:
        check.fail("(file)", "is empty; expected backends, default_backend and routes")
    top_keys = {"backends", "default_backend", "routes"}
    top = check.keys(data, "(top level)", top_keys, top_keys)
    backends = _parse_backends(check, top["backends"], os.environ if environ is None else environ)
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
    allowed = {"name", "match", "split", "sticky", "fallback"}
    check.keys(mapping, where, allowed, {"name", "match", "split"})
    prefix, methods = _parse_match(check, mapping["match"], f"{where}.match")
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
    return Route(name, prefix, methods, split, sticky, fallback)


def _parse_match(check: _Checker, value: object, where: str) -> tuple[str, frozenset[str] | None]:
    mapping = check.keys(value, where, {"prefix", "methods"}, {"prefix"})
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
    mapping = check.keys(value, where, {"key", "ttl"}, {"key"})
    key = check.typed(mapping["key"], str, f"{where}.key", "'kind:name' or 'client_ip'")
    kind, colon, name = key.partition(":")
    if kind not in STICKY_KINDS:
        check.fail(f"{where}.key", f"unknown kind {kind!r} in {key!r} ({', '.join(STICKY_KINDS)})")
    if kind == "client_ip" and colon:
        check.fail(f"{where}.key", f"client_ip takes no name, got {key!r}")
    if kind != "client_ip" and not name:
        check.fail(f"{where}.key", f"{key!r} needs a name after '{kind}:'")
    if kind in ("header", "cookie") and not _TOKEN.match(name):
        check.fail(f"{where}.key", f"bad {kind} name {name!r} in {key!r}")
    ttl = check.typed(mapping.get("ttl", DEFAULT_TTL), int, f"{where}.ttl", "whole seconds")
    if ttl <= 0:
        check.fail(f"{where}.ttl", f"must be a positive number of seconds, got {ttl!r}")
    name = name.lower() if kind == "header" else name
    return Sticky(kind, name or None, ttl)  # type: ignore[arg-type]  # kind checked above


def _check_unique(check: _Checker, routes: tuple[Route, ...]) -> None:
    for i, route in enumerate(routes):
        where = f"routes[{i}] ({route.name})"
        for j, other in enumerate(routes[:i]):
            if other.name == route.name:
                check.fail(f"{where}.name", f"duplicate name {route.name!r} (also routes[{j}])")
            methods = (route.methods or METHODS) & (other.methods or METHODS)
            if other.prefix == route.prefix and methods:
                check.fail(
                    f"{where}.match", f"{route.prefix!r} overlaps routes[{j}] ({other.name})"
                )


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys (plain PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key_node.tag != "tag:yaml.org,2002:merge" and isinstance(key, str | int | float):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)
