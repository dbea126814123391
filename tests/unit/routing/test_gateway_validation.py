"""The gateway duties of routes.yaml: read into records, every bad value refused by name."""

from __future__ import annotations

import pytest

from strangler.routing.gateway import BackendRules, Cache, Limit, Mock, MockAnswer, Rewrite
from strangler.routing.records import RoutingConfigError
from strangler.routing.table import match_route, parse_text

HEAD = """
backends:
  monolith: {url: "http://127.0.0.1:8001"}
  verification: {url: "http://127.0.0.1:8002"}
default_backend: monolith
routes:
  - name: verification
    match: {prefix: /api/verification/}
    split: {monolith: 90, verification: 10}
    fallback: monolith
"""
R0 = "routes[0] (verification)"


def with_route(extra: str) -> str:
    return HEAD + "".join(f"    {line}\n" for line in extra.strip().splitlines())


def with_mock(mock: str) -> str:
    return HEAD.replace("default_backend", f"  stub: {{mock: {mock}}}\ndefault_backend")


MALFORMED = [
    # throttling
    ("limit not a mapping", with_route("limit: 20/s"), f"{R0}.limit", "mapping"),
    ("limit without rate", with_route("limit: {key: client_ip}"), f"{R0}.limit.rate", "missing"),
    ("limit unknown key", with_route("limit: {key: client_ip, rate: 1/s, per: 2}"), f"{R0}.limit",
     "'per'"),
    ("limit bad kind", with_route("limit: {key: 'body:to', rate: 1/s}"), f"{R0}.limit.key",
     "'body'"),
    ("limit header without name", with_route("limit: {key: 'header:', rate: 1/s}"),
     f"{R0}.limit.key", "needs a name"),
    ("limit rate unit", with_route("limit: {key: client_ip, rate: 20/d}"), f"{R0}.limit.rate",
     "'20/d'"),
    ("limit rate zero", with_route("limit: {key: client_ip, rate: 0/s}"), f"{R0}.limit.rate",
     "'0/s'"),
    ("limit rate bool", with_route("limit: {key: client_ip, rate: true}"), f"{R0}.limit.rate",
     "True"),
    ("limit burst zero", with_route("limit: {key: client_ip, rate: 1/s, burst: 0}"),
     f"{R0}.limit.burst", "at least 1"),
    ("limit burst float", with_route("limit: {key: client_ip, rate: 1/s, burst: 1.5}"),
     f"{R0}.limit.burst", "1.5"),
    # per backend: rewriting and limits
    ("backends not a mapping", with_route("backends: [verification]"), f"{R0}.backends",
     "mapping"),
    ("backend not in split", with_route("backends: {third: {rewrite: {prefix: /v1/}}}"),
     f"{R0}.backends", "'third' is not in the route's split"),
    ("backend unknown duty", with_route("backends: {verification: {cache: true}}"),
     f"{R0}.backends.verification", "'cache'"),
    ("rewrite empty", with_route("backends: {verification: {rewrite: {}}}"),
     f"{R0}.backends.verification.rewrite", "empty"),
    ("rewrite prefix relative", with_route("backends: {verification: {rewrite: {prefix: v1/}}}"),
     f"{R0}.backends.verification.rewrite.prefix", "'v1/'"),
    ("rewrite prefix query", with_route("backends: {verification: {rewrite: {prefix: '/v1?x'}}}"),
     f"{R0}.backends.verification.rewrite.prefix", "'/v1?x'"),
    ("rewrite sets host",
     with_route("backends: {verification: {rewrite: {set_headers: {Host: evil}}}}"),
     f"{R0}.backends.verification.rewrite.set_headers", "'Host' is set by the proxy"),
    ("rewrite sets internal token",
     with_route("backends: {verification: {rewrite: {set_headers: {X-Strangler-Token: t}}}}"),
     f"{R0}.backends.verification.rewrite.set_headers", "set by the proxy"),
    ("rewrite removes framing",
     with_route("backends: {verification: {rewrite: {remove_headers: [Content-Length]}}}"),
     f"{R0}.backends.verification.rewrite.remove_headers", "'Content-Length'"),
    ("rewrite bad header name",
     with_route("backends: {verification: {rewrite: {set_headers: {'X Api': v1}}}}"),
     f"{R0}.backends.verification.rewrite.set_headers", "'X Api'"),
    ("rewrite header value list",
     with_route("backends: {verification: {rewrite: {set_headers: {X-Api: [1]}}}}"),
     f"{R0}.backends.verification.rewrite.set_headers.X-Api", "[1]"),
    ("rewrite header value non-ascii",
     with_route("backends: {verification: {rewrite: {set_headers: {X-Api: 'é'}}}}"),
     f"{R0}.backends.verification.rewrite.set_headers.X-Api", "ASCII"),
    ("rewrite response unknown",
     with_route("backends: {verification: {rewrite: {response: {prefix: /x}}}}"),
     f"{R0}.backends.verification.rewrite.response", "'prefix'"),
    ("backend limit bad",
     with_route("backends: {verification: {limit: {key: client_ip, rate: fast}}}"),
     f"{R0}.backends.verification.limit.rate", "'fast'"),
    # mocks
    ("mock with url", HEAD.replace("default_backend",
                                   "  stub: {url: 'http://h:1', mock: {}}\ndefault_backend"),
     "backends.stub", "'url'"),
    ("mock not a mapping", with_mock("'hello'"), "backends.stub.mock", "mapping"),
    ("mock unknown key", with_mock("{code: 200}"), "backends.stub.mock", "'code'"),
    ("mock bad status", with_mock("{status: 99}"), "backends.stub.mock.status", "99"),
    ("mock status text", with_mock("{status: ok}"), "backends.stub.mock.status", "'ok'"),
    ("mock body number", with_mock("{body: 42}"), "backends.stub.mock.body", "42"),
    ("mock body too big", with_mock("{body: '" + "x" * 70000 + "'}"), "backends.stub.mock.body",
     "70000 bytes"),
    ("mock reserved header", with_mock("{headers: {X-Strangler-Backend: real}}"),
     "backends.stub.mock.headers", "set by the proxy"),
    ("mock answers empty", with_mock("{answers: []}"), "backends.stub.mock.answers", "empty"),
    ("mock answers with status", with_mock("{answers: [{}], status: 200}"), "backends.stub.mock",
     "'status'"),
    ("mock answer bad path", with_mock("{answers: [{path: orders}]}"),
     "backends.stub.mock.answers[0].path", "'orders'"),
    ("mock answer unknown key", with_mock("{answers: [{when: x}]}"),
     "backends.stub.mock.answers[0]", "'when'"),
    ("rewrite of a mock", with_mock("{status: 200}").replace("verification: 10}",
                                                              "stub: 10}")
     + "    backends: {stub: {rewrite: {prefix: /v1/}}}\n",
     f"{R0}.backends.stub.rewrite", "is a mock"),
    # versions
    ("header not a mapping", HEAD.replace("prefix: /api/verification/}",
                                          "prefix: /api/verification/, header: v2}"),
     f"{R0}.match.header", "mapping"),
    ("header empty", HEAD.replace("prefix: /api/verification/}",
                                  "prefix: /api/verification/, header: {}}"),
     f"{R0}.match.header", "empty"),
    ("header bad name", HEAD.replace("prefix: /api/verification/}",
                                     "prefix: /api/verification/, header: {'A V': '2'}}"),
     f"{R0}.match.header", "'A V'"),
    ("header value spaced", HEAD.replace("prefix: /api/verification/}",
                                         "prefix: /api/verification/, header: {A-V: ' 2'}}"),
     f"{R0}.match.header.A-V", "' 2'"),
    ("same prefix same header",
     HEAD.replace("prefix: /api/verification/}", "prefix: /api/verification/, header: {V: '2'}}")
     + "  - name: again\n    match: {prefix: /api/verification/, header: {v: '2'}}\n"
       "    split: {monolith: 100}\n",
     "routes[1] (again).match", "overlaps routes[0]"),
    # caching
    ("cache not GET", HEAD.replace("prefix: /api/verification/}",
                                   "prefix: /api/verification/, methods: [POST]}")
     + "    cache: true\n", f"{R0}.cache", "POST"),
    ("cache a list", with_route("cache: [30]"), f"{R0}.cache", "mapping"),
    ("cache ttl negative", with_route("cache: {ttl: -1}"), f"{R0}.cache.ttl", "-1"),
    ("cache ttl text", with_route("cache: {ttl: 1m}"), f"{R0}.cache.ttl", "'1m'"),
    ("cache entry zero", with_route("cache: {max_entry: 0}"), f"{R0}.cache.max_entry", "0"),
    ("cache unknown", with_route("cache: {vary: [Accept]}"), f"{R0}.cache", "'vary'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "where", "value"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_a_bad_gateway_duty_is_refused_naming_file_place_and_value(
    text: str, where: str, value: str
) -> None:
    with pytest.raises(RoutingConfigError) as caught:
        parse_text(text, "routes.yaml", {})
    assert caught.value.source == "routes.yaml"
    assert caught.value.where == where, str(caught.value)
    assert value in caught.value.detail, str(caught.value)


def test_every_duty_is_read_into_its_record() -> None:
    text = with_route("""
limit: {key: "json:to", rate: 20/s, burst: 40}
backends:
  verification:
    rewrite:
      prefix: /v1/verify/
      set_headers: {X-Api-Version: 1}
      remove_headers: [Cookie]
      response: {set_headers: {X-Served-By: new}, remove_headers: [Server]}
    limit: {key: client_ip, rate: 100/m}
cache: {ttl: 30}
""")
    route = parse_text(text, "r.yaml", {}).routes[0]
    assert route.limit == Limit("json", "to", 20.0, 40, "20/s")
    assert route.rules_for("verification") == BackendRules(
        Rewrite("/v1/verify/", (("X-Api-Version", "1"),), frozenset({"cookie"}),
                (("X-Served-By", "new"),), frozenset({"server"})),
        Limit("client_ip", None, 100 / 60, 100, "100/m"),
    )  # fmt: skip
    assert route.rules_for("monolith") is None
    assert route.cache == Cache(ttl=30)
    assert route.json_keyed  # the limit's key is in the body: it is read before deciding


def test_a_mock_backend_answers_by_method_and_path_first_match_wins() -> None:
    text = with_mock(
        "{answers: [{method: get, path: /api/orders/42, body: {id: 42}}, "
        "{path: '/api/orders/*', status: 201, headers: {Location: /api/orders/43}, body: created}]}"
    )
    mock = parse_text(text, "r.yaml", {}).backends["stub"].mock
    assert mock.answer_for("GET", "/api/orders/42") == MockAnswer(
        200, (("Content-Type", "application/json"),), b'{"id":42}', "GET", "/api/orders/42"
    )
    created = mock.answer_for("POST", "/api/orders/")
    assert (created.status, created.body) == (201, b"created")
    assert created.headers[0] == ("Content-Type", "text/plain; charset=utf-8")
    assert mock.answer_for("GET", "/api/users/1") is None
    single = parse_text(with_mock("{}"), "r.yaml", {}).backends["stub"].mock
    assert single == Mock((MockAnswer(200, (("Content-Type", "text/plain; charset=utf-8"),), b""),))


def test_a_version_route_wins_on_its_header_and_the_plain_route_takes_the_rest() -> None:
    text = (
        HEAD
        + """
  - name: v2
    match: {prefix: /api/verification/, header: {Accept-Version: 2}}
    split: {verification: 100}
"""
    )
    table = parse_text(text, "r.yaml", {})
    headers = {"accept-version": " 2 "}.get
    assert match_route(table, "POST", "/api/verification/send", headers).name == "v2"
    other = {"accept-version": "1"}.get
    assert match_route(table, "POST", "/api/verification/send", other).name == "verification"
    assert match_route(table, "POST", "/api/verification/send").name == "verification"
