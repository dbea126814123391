"""The routing table: `routes.yaml` read and validated into records, and the route for a request."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from strangler.routing.records import Route, RoutingConfigError, RoutingTable
from strangler.routing.validation import validate_table


def match_route(
    table: RoutingTable,
    method: str,
    path: str,
    headers: Callable[[str], str | None] | None = None,
) -> Route | None:
    """The route for a request: among those accepting the method, the longest matching prefix;
    on one prefix, a route whose `match.header` values the request carries (`headers` looks
    one up by lower-case name) comes first."""
    candidates = table.by_method.get(method)
    if candidates is None:  # a method no route lists: only method-less routes apply
        candidates = table.by_method["*"]
    for prefix, route in candidates:
        if path.startswith(prefix) and (not route.match_headers or _carries(route, headers)):
            return route
    return None


def _carries(route: Route, headers: Callable[[str], str | None] | None) -> bool:
    if headers is None:
        return False
    for name, wanted in route.match_headers:
        value = headers(name)
        if value is None or value.strip(" \t") != wanted:
            return False
    return True


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
    return validate_table(data, source, os.environ if environ is None else environ, digest)


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
