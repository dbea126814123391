"""Choosing a backend: split, default, tester override and circuits."""

from __future__ import annotations

import json

from strangler.routing.circuit import Circuits
from strangler.routing.dispatch import Dispatcher, bearer_token
from strangler.routing.placement import select_backend
from tests.unit.routing.tables import table


def lookup_of(headers: dict[str, str]):
    return lambda name: headers.get(name)


def dispatcher(percent: int = 50, token: str | None = "s3cret") -> Dispatcher:  # noqa: S107
    return Dispatcher(table(percent), Circuits(threshold=1), token)


def decide(d: Dispatcher, path="/api/verification/send", method="POST", headers=None, to="+1"):
    route = d.route_for(method, path)
    body = json.dumps({"to": to}).encode()
    return d.decide(route, lookup_of(headers or {}), b"", "127.0.0.1", body)


def test_unmatched_requests_go_to_the_default_backend():
    d = dispatcher(100)
    decision = decide(d, path="/api/threads", method="GET")
    assert decision.backend == "monolith" and decision.route is None
    assert decision.route_name == "(default)"


def test_the_json_key_picks_the_backend_by_the_split():
    d = dispatcher(50)
    route = d.route_for("POST", "/api/verification/send")
    for to in ("+15550000001", "+15550000002", "a@b.example"):
        decision = decide(d, to=to)
        assert decision.key == to.encode()
        assert decision.backend == select_backend(route, to)


def test_force_header_needs_the_admin_token():
    d = dispatcher(0)
    forced = {"x-strangler-force-backend": "verification"}
    assert decide(d, headers=forced).backend == "monolith"
    wrong = {**forced, "x-strangler-admin-token": "nope"}
    assert decide(d, headers=wrong).backend == "monolith"
    right = {**forced, "x-strangler-admin-token": "s3cret"}
    decision = decide(d, headers=right)
    assert decision.backend == "verification" and decision.forced


def test_force_header_is_ignored_without_a_configured_token_or_for_unknown_backends():
    headers = {"x-strangler-force-backend": "verification", "x-strangler-admin-token": ""}
    assert decide(dispatcher(0, token=None), headers=headers).backend == "monolith"
    unknown = {"x-strangler-force-backend": "10.0.0.5:22", "x-strangler-admin-token": "s3cret"}
    assert decide(dispatcher(0), headers=unknown).backend == "monolith"


def test_an_open_circuit_sends_the_route_to_its_fallback():
    d = dispatcher(100)
    d.circuits["verification"].record_failure()
    assert decide(d).backend == "monolith"
    assert d.alternative(d.route_for("POST", "/api/verification/x"), "verification") == "monolith"
    assert d.alternative(None, "monolith") is None


def test_remembered_backends_are_used_only_while_healthy_and_configured():
    d = dispatcher(50)
    assert d.usable_affinity("monolith")
    assert not d.usable_affinity("gone")
    assert not d.usable_affinity(None)
    d.circuits["monolith"].record_failure()
    assert not d.usable_affinity("monolith")


def test_bearer_token_reads_either_header():
    assert bearer_token(lookup_of({"authorization": "Bearer abc"})) == "abc"
    assert bearer_token(lookup_of({"x-strangler-admin-token": "xyz"})) == "xyz"
    assert bearer_token(lookup_of({"authorization": "Basic abc"})) is None
