"""The gateway duties in the exported HAProxy config: what HAProxy does alike, and refusals.

Exported natively:
- versions (`match.header`): see `rules.use_backend_lines`;
- a rewrite shared by every backend of its route's split (a route on one backend, say):
  `replace-path`, `set-header`/`del-header` on the request and the answer. HAProxy rewrites a
  request before it picks the server, so a rewrite for one backend of several is refused: a
  failover to the other would get the rewritten path;
- a mock that is its route's only backend, or the default one: `http-request return`, one
  per canned answer (method and path), then 404 `no_mock_answer`, as the embedded proxy.
Refused with the file, the route and the field named: limits, caches, a rewrite for one
backend of several, a mock in a split with other backends (see REFUSED).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from strangler.routing.gateway import MockAnswer, Rewrite
from strangler.routing.records import Backend, Route, RoutingConfigError, RoutingTable

REFUSED = {
    "limit": "HAProxy's stick-table rates are not the token bucket the embedded proxy shares "
    "in Redis: a key would be limited differently on each data plane",
    "rewrite": "HAProxy rewrites a request before it picks the server, so a rewrite for one "
    "backend of several would reach the others on a failover; give every backend of the "
    "split the same rewrite, or serve it with the embedded data plane",
    "cache": "HAProxy's cache honours only some Vary headers and says neither hit nor miss in "
    "X-Strangler-Cache",
    "mock": "HAProxy answers with `http-request return` before it picks a server, so a mock "
    "can only be a route's one backend (or the default), not a server of a split with others",
}
_QUOTABLE = re.compile(r"[^'\\\x00-\x1f\x7f%]*\Z")  # inside '...' and no log-format escape
_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
NO_ANSWER = '{"error":"no_mock_answer","message":"the mock %s has no answer for this"}'


def refuse_gateway(table: RoutingTable, where_of) -> None:
    """A RoutingConfigError naming the first duty of the table HAProxy cannot do alike."""
    mocks = {name for name, backend in table.backends.items() if backend.mock is not None}
    for route in table.routes:
        where = where_of(route)
        if route.limit is not None:
            _refuse(table, f"{where}.limit", "limit")
        for name, duty in route.backend_rules:
            if duty.limit is not None:
                _refuse(table, f"{where}.backends.{name}.limit", "limit")
            if duty.rewrite is not None and shared_rewrite(route) is None:
                _refuse(table, f"{where}.backends.{name}.rewrite", "rewrite")
        if route.cache is not None:
            _refuse(table, f"{where}.cache", "cache")
        names = [name for name, _ in route.split]
        for name in names:
            if name in mocks and len(names) > 1:
                _refuse(table, f"backends.{name}.mock", "mock")


def _refuse(table: RoutingTable, where: str, duty: str) -> None:
    raise RoutingConfigError(table.source, where, f"cannot be exported to HAProxy: {REFUSED[duty]}")


def shared_rewrite(route: Route) -> Rewrite | None:
    """The rewrite every backend of the route's split has (None: none, or not all alike)."""
    rewrites = [route.rules_for(name) for name, _ in route.split]
    found = {rules.rewrite if rules is not None else None for rules in rewrites}
    return found.pop() if len(found) == 1 else None


def quoted(table: RoutingTable, where: str, value: str) -> str:
    if not _QUOTABLE.match(value):
        raise RoutingConfigError(
            table.source, where,
            f"{value!r} cannot be exported to HAProxy (a quote, backslash, '%' or control)",
        )  # fmt: skip
    return f"'{value}'"


def _header(table: RoutingTable, where: str, name: str) -> str:
    if not _NAME.match(name):
        raise RoutingConfigError(
            table.source, where, f"{name!r}: HAProxy takes names of letters, digits, '_.-' only"
        )
    return name


def rewrite_lines(table: RoutingTable, route: Route, where: str) -> Iterator[str]:
    """The route's shared rewrite: its path, then its request and answer headers."""
    rewrite = shared_rewrite(route)
    if rewrite is None:
        return
    here = f"{where}.backends.{route.split[0][0]}.rewrite"
    if rewrite.prefix is not None:
        quoted(table, f"{here}.prefix", rewrite.prefix)
        quoted(table, f"{where}.match.prefix", route.prefix)
        pattern = "^" + re.escape(route.prefix) + "(.*)"
        yield f"    http-request replace-path '{pattern}' '{rewrite.prefix}\\1'"
    for side, removed, added in (
        ("request", rewrite.remove_headers, rewrite.set_headers),
        ("response", rewrite.remove_response_headers, rewrite.set_response_headers),
    ):
        part = here if side == "request" else f"{here}.response"
        for name in sorted(removed):
            yield f"    http-{side} del-header {_header(table, f'{part}.remove_headers', name)}"
        for name, value in added:
            name = _header(table, f"{part}.set_headers", name)
            value = quoted(table, f"{part}.set_headers.{name}", value)
            yield f"    http-{side} set-header {name} {value}"


def mock_lines(table: RoutingTable, backend: Backend) -> Iterator[str]:
    """A mock's canned answers as `http-request return`, first match first, then a 404."""
    assert backend.mock is not None
    where = f"backends.{backend.name}.mock"
    for index, answer in enumerate(backend.mock.answers):
        here = where if len(backend.mock.answers) == 1 else f"{where}.answers[{index}]"
        yield "    " + _return(table, here, backend.name, answer)
    body = NO_ANSWER % backend.name
    yield (
        f"    http-request return status 404 content-type application/json string '{body}' "
        f"hdr X-Strangler-Backend proxy"
    )


def _return(table: RoutingTable, where: str, name: str, answer: MockAnswer) -> str:
    content_type = "text/plain"
    extra = []
    for header, value in answer.headers:
        if header.lower() == "content-type":
            content_type = value
        else:
            extra.append(f"hdr {_header(table, f'{where}.headers', header)} "
                         f"{quoted(table, f'{where}.headers.{header}', value)}")  # fmt: skip
    line = f"http-request return status {answer.status} "
    if answer.body:  # HAProxy takes a content type only with a body
        body = quoted(table, f"{where}.body", answer.body.decode("utf-8", "replace"))
        line += f"content-type {quoted(table, f'{where}.headers', content_type)} string {body} "
    line += f"hdr X-Strangler-Backend {name}"
    line += "".join(f" {h}" for h in extra)
    conditions = []
    if answer.method is not None:
        conditions.append(f"{{ method {answer.method} }}")
    if answer.path is not None:
        fetch = "path_beg" if answer.path.endswith("*") else "path"
        conditions.append(
            f"{{ {fetch} {quoted(table, f'{where}.path', answer.path.rstrip('*'))} }}"
        )
    return line + (f" if {' '.join(conditions)}" if conditions else "")
