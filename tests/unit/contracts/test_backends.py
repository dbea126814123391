"""Who answered through the proxy: the split, the flows, the proxy's own answers, the session."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from strangler.contracts.backends import PROBES, Routing, SplitCheck, check_run
from strangler.contracts.model import parse_scenario
from strangler.contracts.recording import build
from strangler.contracts.replay import report_run
from strangler.contracts.runner import Run, Sent, StepRun
from tests.contract.suite import MIGRATED_ROUTE, ROUTES_FILE

PROXY = "http://127.0.0.1:1"
MONOLITH_URL = "http://127.0.0.1:2"
ROUTING = Routing(
    route="verification", prefix="/api/verification/", methods=frozenset({"POST"}),
    old="monolith", new="verification", percent=50, default="monolith",
    key_field="to", normalize=("strip", "lower"), max_body=100,
)  # fmt: skip
HEADER = "headers.x-strangler-backend"


def post(path: str, body: object, backend: str | None, base: str = PROXY) -> Sent:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Sent(base, "POST", path, data, backend)


def send(to: object, backend: str | None) -> Sent:
    return post("/api/verification/send", {"to": to, "channel": "sms"}, backend)


def check(to: object, backend: str | None) -> Sent:
    return post("/api/verification/check", {"to": to, "code": "123456"}, backend)


def run_of(*sent: Sent | None) -> Run:
    steps = [{"name": f"s{i + 1}", "sink": "x"} for i in range(len(sent))]
    run = Run(parse_scenario({"steps": steps}, "s.yaml", "s"), {})
    run.steps = [
        StepRun(step, {}, {"status": 200}, sent=item)
        for step, item in zip(run.scenario.steps, sent, strict=True)
    ]
    return run


def lines(run: Run, percent: int = 50) -> list[str]:
    found = check_run(run, replace(ROUTING, percent=percent), PROXY)
    return [str(mismatch) for step in found for mismatch in step]


def test_the_promises_are_read_from_the_routing_table() -> None:
    routing = Routing.from_table(ROUTES_FILE, MIGRATED_ROUTE, 25)
    assert (routing.prefix, routing.methods) == ("/api/verification/", frozenset({"POST"}))
    assert (routing.old, routing.new, routing.default) == ("monolith", "verification", "monolith")
    assert (routing.percent, routing.key_field) == (25, "to")
    assert routing.max_body == 1024 * 1024
    with pytest.raises(LookupError, match="no route named 'billing'"):
        Routing.from_table(ROUTES_FILE, "billing", 0)


@pytest.mark.parametrize(
    ("percent", "promised"),
    [(0, ("monolith",)), (1, ("monolith", "verification")),
     (50, ("monolith", "verification")), (100, ("verification",))],
)  # fmt: skip
def test_the_route_goes_by_its_split_and_everything_else_to_the_default(
    percent: int, promised: tuple[str, ...]
) -> None:
    routing = replace(ROUTING, percent=percent)
    assert routing.promised(send("+15550000000", None)) == promised
    assert routing.promised(post("/api/verification/x?a=1", b"", None)) == promised
    for other in (
        Sent(PROXY, "GET", "/api/verification/send", None, None),  # not a method of the route
        post("/api/users", {}, None),
        post("/api/verification", {}, None),  # not under the prefix
    ):
        assert routing.promised(other) == ("monolith",)


@pytest.mark.parametrize("percent", [0, 100])
def test_at_0_and_100_every_answer_names_the_one_backend(percent: int) -> None:
    right, wrong = ("monolith", "verification") if percent == 0 else ("verification", "monolith")
    assert lines(run_of(send("+1", right), check("+1", right)), percent) == []
    assert lines(run_of(send("+1", wrong), None, check("+2", None)), percent) == [
        f"{HEADER}: expected {right!r} (route 'verification' at {percent} %), actual {wrong!r}",
        f"{HEADER}: expected {right!r} (route 'verification' at {percent} %), actual (absent)",
    ]


def test_other_routes_are_always_the_monolith() -> None:
    users = post("/api/users", {"to": "+1"}, "verification")
    assert lines(run_of(users), 100) == [
        f"{HEADER}: expected 'monolith' (the default backend: not on route 'verification'), "
        "actual 'verification'"
    ]


def test_a_flow_stays_on_the_backend_of_its_send() -> None:
    assert lines(run_of(send("+1", "verification"), check("+1", "verification"))) == []
    assert lines(run_of(send("+1", "verification"), check("+2", "monolith"))) == []
    assert lines(run_of(send("+1", "verification"), None, check("+1", "monolith"))) == [
        f"{HEADER}: expected 'verification' (the backend of step 1 's1', same to), "
        "actual 'monolith'"
    ]


def test_flow_keys_are_normalised_as_the_proxy_does_and_keyless_requests_are_free() -> None:
    run = run_of(
        send("  Ann@B.example ", "monolith"),
        check("ann@b.example", "verification"),
        post("/api/verification/check", b'{"to": ', "verification"),  # no key: placed at random
        send(15551234567, "monolith"),
        check("15551234567", "verification"),  # a number is keyed by its JSON text
    )
    assert lines(run) == [
        f"{HEADER}: expected 'monolith' (the backend of step 1 's1', same to), "
        "actual 'verification'",
        f"{HEADER}: expected 'monolith' (the backend of step 4 's4', same to), "
        "actual 'verification'",
    ]


def test_the_proxys_own_answers_may_name_proxy_or_nobody() -> None:
    too_big = post("/api/verification/send", b"x" * 101, None)
    assert lines(run_of(too_big, replace(too_big, backend="proxy")), 0) == []
    assert lines(run_of(replace(too_big, backend="monolith")), 0) == []  # a backend may refuse it
    assert lines(run_of(replace(too_big, backend="verification")), 0) == [
        f"{HEADER}: expected 'monolith' (route 'verification' at 0 %), "
        "or 'proxy' or none (the proxy's own answer), actual 'verification'"
    ]
    exactly = post("/api/verification/send", b"x" * 100, "proxy")
    assert lines(run_of(exactly), 0) == [
        f"{HEADER}: expected 'monolith' (route 'verification' at 0 %), actual 'proxy'"
    ]


def test_requests_that_did_not_go_through_the_proxy_are_not_checked() -> None:
    direct = post("/api/users", {}, None, base=MONOLITH_URL)  # `via: monolith` with --monolith-url
    assert lines(run_of(direct, None), 100) == []


def test_backend_mismatches_join_the_report_of_their_step() -> None:
    request = {"method": "POST", "path": "/api/verification/send"}
    scenario = parse_scenario({"steps": [{"name": "send", "request": request}]}, "s.yaml", "s")
    recorded = build(scenario, [{"status": 201}])
    run = Run(scenario, {})
    run.steps = [StepRun(scenario.steps[0], {}, {"status": 200}, sent=send("+1", "monolith"))]
    at_100 = SplitCheck(replace(ROUTING, percent=100), PROXY)
    report = report_run(run, recorded, "proxy at 100%", at_100)
    assert report.render().splitlines() == [
        "scenario 's' against proxy at 100%: 1 of 1 steps differ",
        "  step 1 'send' (POST /api/verification/send):",
        "    status: recorded 201, actual 200",
        f"    {HEADER}: expected 'verification' (route 'verification' at 100 %), actual 'monolith'",
    ]


def test_the_session_needs_both_backends_between_0_and_100() -> None:
    session = SplitCheck(ROUTING, PROXY)
    session.check(run_of(send("+1", "monolith"), check("+1", "monolith"), None))
    session.check(run_of(post("/api/users", {}, "monolith"), send("+2", None)))
    assert session.unused() == ["verification"]
    problem = session.problem()
    assert problem is not None
    assert problem.startswith("route 'verification' at 50 %: no answer came from 'verification'")
    assert "the scenarios' answers: 1 from (absent), 2 from monolith; probes" in problem
    session.check(run_of(send("+3", "verification")))
    assert session.unused() == [] and session.problem() is None


def test_probes_stop_once_both_backends_answered() -> None:
    session = SplitCheck(ROUTING, PROXY)
    session.check(run_of(send("+1", "monolith")))
    answers = iter(["monolith", "monolith", "verification", "monolith"])
    bodies: list[dict] = []
    next_key = itertools.count().__next__
    asked = session.probe(lambda body: bodies.append(body) or next(answers), next_key)
    assert asked == 3 and session.problem() is None
    assert [body["to"] for body in bodies] == [0, 1, 2]  # a fresh key each time


def test_a_proxy_that_ignores_its_split_fails_after_a_bounded_number_of_probes() -> None:
    session = SplitCheck(ROUTING, PROXY)
    assert session.probe(lambda body: "monolith", lambda: "+1") == PROBES
    problem = session.problem()
    assert problem is not None and f"probes with fresh keys: {PROBES} from monolith" in problem


@pytest.mark.parametrize("percent", [0, 100])
def test_at_0_and_100_there_is_nothing_to_probe(percent: int) -> None:
    session = SplitCheck(replace(ROUTING, percent=percent), PROXY)
    assert session.probe(lambda body: pytest.fail("probed"), lambda: "+1") == 0
    assert session.problem() is None
