"""The routing table: every malformed file is refused with the file, the place and the value."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from strangler.routing.records import Retry, Route, RoutingConfigError, Sticky
from strangler.routing.table import load_table, match_route, parse_table, parse_text

VALID = {
    "backends": {
        "monolith": {"url": "http://127.0.0.1:8001", "health": "/healthz"},
        "verification": {"url": "http://127.0.0.1:8002", "health": "/healthz"},
    },
    "default_backend": "monolith",
    "routes": [
        {
            "name": "verification",
            "match": {"prefix": "/api/verification/", "methods": ["POST"]},
            "split": {"monolith": 100, "verification": 0},
            "sticky": {"key": "json:to", "ttl": 600},
            "fallback": "monolith",
        }
    ],
}
R0 = "routes[0] (verification)"
DELETE = object()


def variant(**changes: object) -> str:
    """VALID as YAML with `a__b__0__c=value` set (or deleted with DELETE)."""
    doc = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split("__")]
        node = doc
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, sort_keys=False)


def second_route(**fields: object) -> str:
    route = {**copy.deepcopy(VALID["routes"][0]), **fields}
    return variant(routes=[VALID["routes"][0], route])


# (id, file text, expected `where`, a fragment naming the bad value)
MALFORMED = [
    ("empty file", "", "(file)", "empty"),
    ("comments only", "# nothing here\n", "(file)", "empty"),
    ("yaml syntax", "backends:\n  monolith: {url: [\n", "line 3", "YAML syntax error"),
    ("bad indentation", "backends:\n  a: 1\n b: 2\n", "line 3", "YAML syntax error"),
    (
        "duplicate yaml key",
        variant().replace("verification: 0", "monolith: 0"),
        "line",
        "duplicate key 'monolith'",
    ),
    ("top level is a list", "- a\n- b\n", "(top level)", "['a', 'b'] (list)"),
    ("unknown top-level key", variant(default="x"), "(top level)", "'default'"),
    ("missing backends", variant(backends=DELETE), "backends", "missing"),
    ("missing default", variant(default_backend=DELETE), "default_backend", "missing"),
    ("missing routes", variant(routes=DELETE), "routes", "missing"),
    ("no backends", variant(backends={}), "backends", "empty"),
    ("backends a list", variant(backends=["monolith"]), "backends", "['monolith'] (list)"),
    (
        "bad backend name",
        variant(backends__mono_lith={"url": "http://h:1"}).replace("mono_lith", "'mono lith'"),
        "backends",
        "'mono lith'",
    ),
    (
        "backend unknown key",
        variant(backends__monolith__helth="/h"),
        "backends.monolith",
        "'helth'",
    ),
    (
        "backend missing url",
        variant(backends__monolith__url=DELETE),
        "backends.monolith.url",
        "missing",
    ),
    (
        "url not a string",
        variant(backends__monolith__url=8001),
        "backends.monolith.url",
        "8001 (int)",
    ),
    (
        "https url",
        variant(backends__monolith__url="https://127.0.0.1:8001"),
        "backends.monolith.url",
        "'https://127.0.0.1:8001'",
    ),
    (
        "url with a path",
        variant(backends__monolith__url="http://127.0.0.1:8001/api"),
        "backends.monolith.url",
        "'http://127.0.0.1:8001/api'",
    ),
    (
        "url with a query",
        variant(backends__monolith__url="http://127.0.0.1:8001?x=1"),
        "backends.monolith.url",
        "'http://127.0.0.1:8001?x=1'",
    ),
    (
        "url port out of range",
        variant(backends__monolith__url="http://127.0.0.1:99999"),
        "backends.monolith.url",
        "99999",
    ),
    (
        "url port not a number",
        variant(backends__monolith__url="http://127.0.0.1:80a"),
        "backends.monolith.url",
        "'http://127.0.0.1:80a'",
    ),
    (
        "url without host",
        variant(backends__monolith__url="http://:8001"),
        "backends.monolith.url",
        "'http://:8001'",
    ),
    (
        "url with credentials",
        variant(backends__monolith__url="http://u:p@h:8001"),
        "backends.monolith.url",
        "'http://u:p@h:8001'",
    ),
    (
        "env var unset, no default",
        variant(backends__monolith__url="${STRANGLER_TEST_NOPE}"),
        "backends.monolith.url",
        "STRANGLER_TEST_NOPE",
    ),
    (
        "malformed env reference",
        variant(backends__monolith__url="${MONOLITH_URL:http://h:1}"),
        "backends.monolith.url",
        "'${MONOLITH_URL:http://h:1}'",
    ),
    (
        "env expands to bad url",
        variant(backends__monolith__url="${BAD_URL:-http://h:1}"),
        "backends.monolith.url",
        "'ftp://h:1' (from '${BAD_URL:-http://h:1}')",
    ),
    (
        "health not a path",
        variant(backends__monolith__health="healthz"),
        "backends.monolith.health",
        "'healthz'",
    ),
    ("unknown default backend", variant(default_backend="monolit"), "default_backend", "'monolit'"),
    ("routes a mapping", variant(routes={"verification": {}}), "routes", "(dict)"),
    ("route not a mapping", variant(routes=["verification"]), "routes[0]", "'verification'"),
    ("route without name", variant(routes__0__name=DELETE), "routes[0].name", "missing"),
    ("empty route name", variant(routes__0__name=""), "routes[0].name", "''"),
    ("route name not a string", variant(routes__0__name=7), "routes[0].name", "7 (int)"),
    ("unknown route key", variant(routes__0__spilt={}), R0, "'spilt'"),
    ("missing match", variant(routes__0__match=DELETE), f"{R0}.match", "missing"),
    ("missing split", variant(routes__0__split=DELETE), f"{R0}.split", "missing"),
    ("unknown match key", variant(routes__0__match__host="x"), f"{R0}.match", "'host'"),
    (
        "prefix without slash",
        variant(routes__0__match__prefix="api/verification/"),
        f"{R0}.match.prefix",
        "'api/verification/'",
    ),
    (
        "prefix with a query",
        variant(routes__0__match__prefix="/api?x"),
        f"{R0}.match.prefix",
        "'/api?x'",
    ),
    (
        "prefix not a string",
        variant(routes__0__match__prefix=["/api"]),
        f"{R0}.match.prefix",
        "['/api'] (list)",
    ),
    (
        "unknown method",
        variant(routes__0__match__methods=["POST", "FETCH"]),
        f"{R0}.match.methods",
        "'FETCH'",
    ),
    (
        "methods not a list",
        variant(routes__0__match__methods="POST"),
        f"{R0}.match.methods",
        "'POST' (str)",
    ),
    ("no methods", variant(routes__0__match__methods=[]), f"{R0}.match.methods", "empty"),
    ("split a list", variant(routes__0__split=["monolith"]), f"{R0}.split", "(list)"),
    ("empty split", variant(routes__0__split={}), f"{R0}.split", "empty"),
    (
        "split unknown backend",
        variant(routes__0__split={"monolith": 50, "verifcation": 50}),
        f"{R0}.split",
        "'verifcation'",
    ),
    (
        "percent a bool",
        variant(routes__0__split__verification=True),
        f"{R0}.split.verification",
        "True (bool)",
    ),
    (
        "percent a float",
        variant(routes__0__split={"monolith": 49.5, "verification": 50.5}),
        f"{R0}.split.monolith",
        "49.5 (float)",
    ),
    (
        "percent a string",
        variant(routes__0__split={"monolith": "50", "verification": 50}),
        f"{R0}.split.monolith",
        "'50' (str)",
    ),
    (
        "negative percent",
        variant(routes__0__split={"monolith": 110, "verification": -10}),
        f"{R0}.split.monolith",
        "110",
    ),
    (
        "percent below zero",
        variant(routes__0__split={"verification": -10, "monolith": 110}),
        f"{R0}.split.verification",
        "-10",
    ),
    (
        "split not summing to 100",
        variant(routes__0__split={"monolith": 60, "verification": 30}),
        f"{R0}.split",
        "sum to 90",
    ),
    (
        "fallback not in split",
        variant(routes__0__split={"verification": 100}, routes__0__fallback="monolith"),
        f"{R0}.fallback",
        "'monolith'",
    ),
    ("fallback unknown", variant(routes__0__fallback="legacy"), f"{R0}.fallback", "'legacy'"),
    ("fallback missing", variant(routes__0__fallback=DELETE), f"{R0}.fallback", "missing"),
    (
        "fallback not a string",
        variant(routes__0__fallback=["monolith"]),
        f"{R0}.fallback",
        "['monolith'] (list)",
    ),
    (
        "sticky not a mapping",
        variant(routes__0__sticky="json:to"),
        f"{R0}.sticky",
        "'json:to' (str)",
    ),
    (
        "sticky unknown key",
        variant(routes__0__sticky__ttl_seconds=5),
        f"{R0}.sticky",
        "'ttl_seconds'",
    ),
    ("sticky without key", variant(routes__0__sticky__key=DELETE), f"{R0}.sticky.key", "missing"),
    (
        "unknown sticky kind",
        variant(routes__0__sticky__key="body:to"),
        f"{R0}.sticky.key",
        "'body'",
    ),
    (
        "sticky kind without name",
        variant(routes__0__sticky__key="json:"),
        f"{R0}.sticky.key",
        "'json:'",
    ),
    (
        "client_ip with a name",
        variant(routes__0__sticky__key="client_ip:x"),
        f"{R0}.sticky.key",
        "'client_ip:x'",
    ),
    (
        "bad header name",
        variant(routes__0__sticky__key="header:X User"),
        f"{R0}.sticky.key",
        "'X User'",
    ),
    ("ttl zero", variant(routes__0__sticky__ttl=0), f"{R0}.sticky.ttl", "0"),
    ("ttl a string", variant(routes__0__sticky__ttl="600"), f"{R0}.sticky.ttl", "'600' (str)"),
    ("ttl a bool", variant(routes__0__sticky__ttl=True), f"{R0}.sticky.ttl", "True (bool)"),
    (
        "normalize not a list",
        variant(routes__0__sticky__normalize="lower"),
        f"{R0}.sticky.normalize",
        "'lower' (str)",
    ),
    (
        "unknown normalize step",
        variant(routes__0__sticky__normalize=["strip", "upper"]),
        f"{R0}.sticky.normalize",
        "'upper'",
    ),
    (
        "store_timeout a string",
        variant(routes__0__sticky__store_timeout="1s"),
        f"{R0}.sticky.store_timeout",
        "'1s' (str)",
    ),
    (
        "store_timeout a bool",
        variant(routes__0__sticky__store_timeout=True),
        f"{R0}.sticky.store_timeout",
        "True (bool)",
    ),
    (
        "store_timeout zero",
        variant(routes__0__sticky__store_timeout=0),
        f"{R0}.sticky.store_timeout",
        "0",
    ),
    (
        "store_timeout negative",
        variant(routes__0__sticky__store_timeout=-1.5),
        f"{R0}.sticky.store_timeout",
        "-1.5",
    ),
    (
        "store_timeout over a minute",
        variant(routes__0__sticky__store_timeout=61),
        f"{R0}.sticky.store_timeout",
        "61",
    ),
    (
        "store_timeout not a number",
        variant(routes__0__sticky__store_timeout=float("nan")),
        f"{R0}.sticky.store_timeout",
        "nan",
    ),
    ("retry not a mapping", variant(routes__0__retry=True), f"{R0}.retry", "True (bool)"),
    (
        "retry unknown key",
        variant(routes__0__retry={"status": 503, "error": "unavailable", "times": 2}),
        f"{R0}.retry",
        "'times'",
    ),
    (
        "retry without status",
        variant(routes__0__retry={"error": "unavailable"}),
        f"{R0}.retry.status",
        "missing",
    ),
    (
        "retry without error",
        variant(routes__0__retry={"status": 503}),
        f"{R0}.retry.error",
        "missing",
    ),
    (
        "retry status a string",
        variant(routes__0__retry={"status": "503", "error": "unavailable"}),
        f"{R0}.retry.status",
        "'503' (str)",
    ),
    (
        "retry status not 5xx",
        variant(routes__0__retry={"status": 404, "error": "not_found"}),
        f"{R0}.retry.status",
        "404",
    ),
    (
        "retry error not a code",
        variant(routes__0__retry={"status": 503, "error": "Service Unavailable"}),
        f"{R0}.retry.error",
        "'Service Unavailable'",
    ),
    (
        "retry error a list",
        variant(routes__0__retry={"status": 503, "error": ["unavailable"]}),
        f"{R0}.retry.error",
        "['unavailable'] (list)",
    ),
    (
        "retry without a fallback",
        variant(
            routes__0__split={"verification": 100},
            routes__0__fallback=DELETE,
            routes__0__retry={"status": 503, "error": "unavailable"},
        ),
        f"{R0}.retry",
        "fallback",
    ),
    (
        "duplicate route name",
        second_route(match={"prefix": "/other/"}),
        "routes[1] (verification).name",
        "'verification'",
    ),
    (
        "duplicate prefix and method",
        second_route(name="again"),
        "routes[1] (again).match",
        "'/api/verification/'",
    ),
    (
        "same prefix, one route for all methods",
        second_route(name="all", match={"prefix": "/api/verification/"}),
        "routes[1] (all).match",
        "'/api/verification/'",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "value"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_a_malformed_file_is_refused_naming_file_place_and_value(
    tmp_path: Path, text: str, where: str, value: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(RoutingConfigError) as caught:
        load_table(path, environ={"BAD_URL": "ftp://h:1"})
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}"), message
    assert caught.value.where.startswith(where)
    assert value in caught.value.detail, message


def test_the_shipped_routes_file_is_valid_and_starts_on_the_monolith() -> None:
    path = Path(__file__).parents[3] / "proxy" / "routes.yaml"
    table = load_table(path, environ={})
    (route,) = table.routes
    assert table.default_backend == "monolith"
    assert (route.name, route.prefix, route.methods) == (
        "verification",
        "/api/verification/",
        frozenset({"POST"}),
    )
    assert route.split == (("monolith", 100), ("verification", 0))
    assert route.sticky == Sticky("json", "to", 600, ("strip", "lower"))
    assert (route.fallback, route.new_backend) == ("monolith", "verification")
    assert route.retry == Retry(503, "unavailable")  # the service's "my store is down"
    assert table.backends["verification"].url == "http://127.0.0.1:8002"


def test_backend_urls_take_the_environment_and_fall_back_to_defaults() -> None:
    text = variant(
        backends__monolith__url="${MONOLITH_URL:-http://127.0.0.1:8001}",
        backends__verification__url="${VERIFICATION_URL:-http://127.0.0.1:8002}",
    )
    table = parse_text(
        text, "r.yaml", {"MONOLITH_URL": "http://localhost:41234/", "VERIFICATION_URL": ""}
    )
    monolith, service = table.backends["monolith"], table.backends["verification"]
    assert (monolith.url, monolith.host, monolith.port) == (
        "http://localhost:41234",
        "localhost",
        41234,
    )
    assert service.url == "http://127.0.0.1:8002"  # empty counts as unset, as in the shell


def test_defaults_and_normalisation() -> None:
    text = variant(
        backends__monolith={"url": "http://[::1]"},
        routes__0__match__methods=["post", "Get"],
        routes__0__sticky={"key": "header:X-User-Id"},
    )
    table = parse_text(text, "r.yaml", {})
    assert table.backends["monolith"].url == "http://[::1]:80"
    assert table.backends["monolith"].health == "/healthz"
    route = table.routes[0]
    assert route.methods == frozenset({"POST", "GET"})
    assert route.sticky == Sticky("header", "x-user-id", 600)
    assert route.sticky.store_timeout is None and route.retry is None  # the proxy's defaults


def test_a_store_timeout_and_a_retry_rule_are_read() -> None:
    text = variant(
        routes__0__sticky={"key": "json:to", "store_timeout": 2},
        routes__0__retry={"status": 503, "error": "unavailable"},
    )
    route = parse_text(text, "r.yaml", {}).routes[0]
    assert route.sticky.store_timeout == 2.0
    assert route.retry == Retry(503, "unavailable")


def test_the_digest_is_the_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(variant())
    assert load_table(path).digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert parse_table(VALID, "x").routes == load_table(path).routes


def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match=r"missing\.yaml: \(file\): cannot be read"):
        load_table(tmp_path / "missing.yaml")


def _route(name: str, prefix: str, methods: list[str] | None = None) -> dict:
    route = {"name": name, "match": {"prefix": prefix}, "split": {"monolith": 100}}
    if methods:
        route["match"]["methods"] = methods
    return route


def test_match_route_takes_the_longest_prefix_that_accepts_the_method() -> None:
    table = parse_table(
        {
            **VALID,
            "routes": [
                _route("api", "/api/"),
                _route("send-post", "/api/verification/send", ["POST"]),
                _route("verification-get", "/api/verification/", ["GET", "HEAD"]),
                _route("verification-post", "/api/verification/", ["POST"]),
            ],
        },
        "r.yaml",
    )

    def name(method: str, path: str) -> str | None:
        route = match_route(table, method, path)
        return route.name if route else None

    assert name("POST", "/api/verification/send") == "send-post"
    assert name("POST", "/api/verification/check") == "verification-post"
    assert name("GET", "/api/verification/send") == "verification-get"
    assert name("DELETE", "/api/verification/send") == "api"
    assert name("PROPFIND", "/api/threads") == "api"
    assert name("GET", "/api") is None  # prefixes are plain string prefixes
    assert name("GET", "/static/app.css") is None


def test_routes_built_directly_get_their_bucket_ranges() -> None:
    route = Route("r", "/", None, (("old", 75), ("new", 25)), None, "old")
    assert route.ranges == ((2500, "new"), (10000, "old"))
    assert route.new_backend == "new"
