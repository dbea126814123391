"""`strangler export haproxy`: every table it accepts renders a config HAProxy accepts, and
what HAProxy cannot express is refused with the file, the route and the field named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strangler.haproxy import files, rules
from strangler.haproxy.config import ExportOptions, Peer, render
from strangler.routing.placement import route_seed, split_bounds
from strangler.routing.records import RoutingConfigError
from strangler.routing.table import parse_text

HEAD = """
backends:
  monolith: {url: "http://127.0.0.1:8001", health: /healthz}
  verification: {url: "http://127.0.0.1:8002", health: /healthz}
  third: {url: "http://[::1]:8003", health: /ready}
default_backend: monolith
routes:
"""
ROUTES = {
    "json": """
  - name: verification
    match: {prefix: /api/verification/, methods: [POST]}
    split: {monolith: 75, verification: 25}
    sticky: {key: "json:to", ttl: 600, normalize: [strip, lower]}
    fallback: monolith
""",
    "header": """
  - name: orders
    match: {prefix: /api/orders/}
    split: {monolith: 50, verification: 50}
    sticky: {key: "header:X-User", ttl: 30}
    fallback: monolith
""",
    "cookie": """
  - name: carts
    match: {prefix: /carts/, methods: [GET, PUT]}
    split: {monolith: 90, verification: 10}
    sticky: {key: "cookie:sid", ttl: 60, normalize: [lower]}
    fallback: monolith
""",
    "query": """
  - name: search
    match: {prefix: /search}
    split: {monolith: 50, verification: 50}
    sticky: {key: "query:user", ttl: 60}
    fallback: monolith
""",
    "client_ip": """
  - name: ip
    match: {prefix: /ip/}
    split: {monolith: 50, verification: 50}
    sticky: {key: client_ip, ttl: 60}
    fallback: monolith
""",
    "three-way, no key": """
  - name: three
    match: {prefix: /three/}
    split: {monolith: 20, verification: 30, third: 50}
    fallback: monolith
""",
    "one backend": """
  - name: legacy
    match: {prefix: /legacy/}
    split: {monolith: 100}
""",
    "versions": """
  - name: verification-v2
    match: {prefix: /api/verification/, methods: [POST], header: {Accept-Version: "2"}}
    split: {verification: 100}
""",
}
needs_haproxy = pytest.mark.skipif(
    not files.installed() and not os.environ.get("CI"), reason="haproxy is not installed"
)


def table(*kinds: str, head: str = HEAD):
    return parse_text(head + "".join(ROUTES[k] for k in kinds), "routes.yaml")


@needs_haproxy
@pytest.mark.parametrize("kinds", [[k] for k in ROUTES] + [list(ROUTES)], ids=str)
def test_haproxy_accepts_every_config_the_export_writes(tmp_path: Path, kinds) -> None:
    peers = (Peer("node2", "10.0.0.2", 10000), Peer("node3", "10.0.0.3", 10000))
    options = ExportOptions(state_dir=tmp_path, agent=("127.0.0.1", 9999), peers=peers)
    written = files.write(table(*kinds), options)
    files.check(written.config)  # raises with HAProxy's alerts when refused
    text = written.config.read_text()
    assert "peer node2 10.0.0.2:10000" in text and text.count("\nbackend b:") == 3


def test_the_map_holds_each_routes_ranges_as_the_routing_model_computes_them() -> None:
    routes = table("json", "three-way, no key", "one backend")
    _, splits = render(routes, ExportOptions(state_dir=Path("/run/x")))
    entries = dict(line.split() for line in splits.splitlines() if not line.startswith("#"))
    assert entries == {"verification/0": "2500", "three/0": "3000", "three/1": "8000"}
    three = routes.route("three")
    assert [name for name, _, _ in split_bounds(three.split, three.fallback)] == [
        "verification", "third", "monolith",
    ]  # fmt: skip
    assert rules.positions(three) == ["verification", "third", "monolith"]


def test_the_config_names_the_route_salt_and_the_stick_table_ttl() -> None:
    text, _ = render(table("json", "header"), ExportOptions(state_dir=Path("/run/x")))
    assert f"xxh32({route_seed('verification')}),mod(10000)" in text
    assert "stick-table type binary len 8 size 1m expire 600s store gpt0 peers strangler" in text
    assert "expire 30s" in text
    assert "lua.strangler_json_key(to)" in text and "req.fhdr(x-user,1)" in text
    assert "STRANGLER_INTERNAL_TOKEN" in text and "${" not in text  # read at run time


@pytest.mark.parametrize(
    ("text", "where", "detail"),
    [
        (
            HEAD + ROUTES["json"].replace('"json:to"', '"json:to\'x"'),
            "routes[0] (verification).sticky.key",
            "letters, digits",
        ),
        (
            HEAD + ROUTES["header"].replace("/api/orders/", "/api/it's/"),
            "routes[0] (orders).match.prefix",
            "cannot be exported to HAProxy",
        ),
        (
            HEAD.replace("/ready", "/re'ady") + ROUTES["three-way, no key"],
            "backends.third.health",
            "cannot be exported to HAProxy",
        ),
        (
            HEAD + ROUTES["query"].replace("query:user", "query:us%er"),
            "routes[0] (search).sticky.key",
            "letters, digits",
        ),
        (
            HEAD + ROUTES["json"] + "    rollout: {steps: [10, 100]}\n",
            "routes[0] (verification).rollout",
            "needs the embedded data plane",
        ),
    ],
)
def test_what_haproxy_cannot_express_is_refused_by_name(text: str, where: str, detail: str) -> None:
    with pytest.raises(RoutingConfigError) as refused:
        render(parse_text(text, "routes.yaml"), ExportOptions(state_dir=Path("/run/x")))
    assert refused.value.source == "routes.yaml"
    assert refused.value.where == where and detail in str(refused.value)


def test_a_refused_table_writes_nothing(tmp_path: Path) -> None:
    bad = parse_text(HEAD + ROUTES["header"].replace("/api/orders/", "/a'b/"), "routes.yaml")
    with pytest.raises(RoutingConfigError):
        files.write(bad, ExportOptions(state_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


@needs_haproxy
def test_the_export_verb_writes_checked_files_and_refuses_by_name(tmp_path: Path, capsys) -> None:
    from strangler import cli

    routes = tmp_path / "routes.yaml"
    routes.write_text(HEAD + ROUTES["json"])
    out = tmp_path / "out" / "haproxy.cfg"
    assert cli.main(["export", "haproxy", "--routes", str(routes), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "haproxy -c: the configuration is valid" in printed
    assert {p.name for p in out.parent.iterdir()} >= {"haproxy.cfg", "splits.map", "json_key.lua"}
    routes.write_text(HEAD + ROUTES["json"].replace("/api/verification/", "/a'b/"))
    assert cli.main(["export", "haproxy", "--routes", str(routes), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{routes}: routes[0] (verification).match.prefix" in err and err[-1] == "\n"
    assert "xxh32" in out.read_text()  # the refusal left the earlier, valid files in place


def test_a_version_route_is_asked_before_the_route_on_its_prefix_without_the_header() -> None:
    text, _ = render(table("json", "versions"), ExportOptions(state_dir=Path("/run/x")))
    uses = [line.strip() for line in text.splitlines() if line.strip().startswith("use_backend r:")]
    assert uses == [
        "use_backend r:verification-v2 if { path_beg '/api/verification/' } { method POST } "
        "{ req.fhdr(accept-version,1) -m str '2' }",
        "use_backend r:verification if { path_beg '/api/verification/' } { method POST }",
    ]


GATEWAY_HEAD = HEAD.replace(
    "default_backend", "  stub: {mock: {status: 200, body: {ok: true}}}\ndefault_backend"
)
DUTY = """
  - name: verification
    match: {prefix: /api/verification/}
    split: {monolith: 75, verification: 25}
    fallback: monolith
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            GATEWAY_HEAD
            + ROUTES["one backend"].replace("{monolith: 100}", "{stub: 50, monolith: 50}")
            + "    fallback: monolith\n",
            "backends.stub.mock",
        ),
        (
            HEAD + DUTY + "    limit: {key: client_ip, rate: 20/s}\n",
            "routes[0] (verification).limit",
        ),
        (
            HEAD + DUTY + "    backends: {verification: {rewrite: {prefix: /v1/}}}\n",
            "routes[0] (verification).backends.verification.rewrite",
        ),
        (
            HEAD + DUTY + "    backends: {verification: {limit: {key: client_ip, rate: 5/s}}}\n",
            "routes[0] (verification).backends.verification.limit",
        ),
        (HEAD + DUTY + "    cache: {ttl: 30}\n", "routes[0] (verification).cache"),
    ],
    ids=["mock", "limit", "rewrite", "backend limit", "cache"],
)
def test_gateway_duties_haproxy_does_not_do_alike_are_refused_by_name(text: str, where: str):
    with pytest.raises(RoutingConfigError) as refused:
        render(parse_text(text, "routes.yaml"), ExportOptions(state_dir=Path("/run/x")))
    assert refused.value.source == "routes.yaml" and refused.value.where == where
    assert "cannot be exported to HAProxy" in str(refused.value)


EXPORTED = """
  - name: orders
    match: {prefix: /api/orders/}
    split: {stub: 100}
  - name: verification
    match: {prefix: /api/verification/}
    split: {verification: 100}
    backends:
      verification:
        rewrite:
          prefix: /v1/verify/
          set_headers: {X-Api: "1"}
          remove_headers: [Cookie]
          response: {set_headers: {X-Served-By: new}, remove_headers: [Server]}
"""
ANSWERS = HEAD.replace(
    "default_backend",
    "  stub:\n    mock:\n      answers:\n"
    "        - {method: GET, path: /api/orders/42, body: {id: 42, note: two words}}\n"
    "        - {path: '/api/orders/*', status: 201, headers: {Location: /api/orders/43}}\n"
    "default_backend",
)


def test_a_mock_on_its_own_and_a_rewrite_all_backends_share_are_exported() -> None:
    text, _ = render(parse_text(ANSWERS + EXPORTED, "routes.yaml"), ExportOptions(Path("/x")))
    assert (
        "    http-request return status 200 content-type 'application/json' string "
        """'{"id":42,"note":"two words"}' hdr X-Strangler-Backend stub """
        "if { method GET } { path '/api/orders/42' }"
    ) in text
    assert (
        "    http-request return status 201 hdr X-Strangler-Backend stub "
        "hdr Location '/api/orders/43' if { path_beg '/api/orders/' }"
    ) in text
    assert "no_mock_answer" in text
    assert "    http-request replace-path '^/api/verification/(.*)' '/v1/verify/\\1'" in text
    assert "    http-request del-header cookie\n    http-request set-header X-Api '1'" in text
    assert (
        "    http-response del-header server\n    http-response set-header X-Served-By 'new'"
        in text
    )


@needs_haproxy
def test_haproxy_accepts_the_exported_mocks_and_rewrites(tmp_path: Path) -> None:
    written = files.write(parse_text(ANSWERS + EXPORTED, "routes.yaml"), ExportOptions(tmp_path))
    files.check(written.config)
