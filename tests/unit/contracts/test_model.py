"""Scenario files: parsed into typed records; every mistake names the file, step and value."""

from __future__ import annotations

import pytest

from strangler.contracts.model import (
    NO_BODY,
    RecordMode,
    ScenarioError,
    SinkCode,
    Target,
    Via,
    load_scenarios,
    parse_scenario,
)
from tests.contract.suite import SCENARIOS

SEND = {"method": "post", "path": "/api/verification/send", "json": {"to": "{{phone}}"}}


def scenario(**overrides):
    data = {"variables": {"phone": "phone"}, "steps": [{"name": "send", "request": SEND}]}
    return {**data, **overrides}


def test_a_scenario_parses_into_typed_steps() -> None:
    parsed = parse_scenario(
        scenario(
            targets=["monolith", "proxy"],
            steps=[
                {"name": "send", "request": SEND, "capture": {"id": "json.id"}},
                {"name": "code", "sink": "{{phone}}", "via": "monolith",
                 "capture": {"c": {"sink_code": "{{phone}}", "wrong": True}}},
            ],
        ),
        "f.yaml",
        "f",
    )  # fmt: skip
    assert parsed.name == "f"
    assert parsed.targets == (Target.MONOLITH, Target.PROXY)
    send, code = parsed.steps
    assert send.request.method == "POST" and send.request.json == {"to": "{{phone}}"}
    assert send.capture == {"id": "json.id"}
    assert code.request is None and code.via is Via.MONOLITH
    assert code.capture == {"c": SinkCode("{{phone}}", wrong=True)}


def test_a_request_without_a_body_has_none() -> None:
    data = scenario(steps=[{"name": "get", "request": {"method": "GET", "path": "/x"}}])
    assert parse_scenario(data, "f.yaml", "f").steps[0].request.json is NO_BODY


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(stpes=[]), r"f.yaml: unknown key 'stpes'"),
        (scenario(targets=["servic"]), r"f.yaml: 'servic' is not one of: monolith, service"),
        (scenario(variables={"p": "phon"}), r"'phon' is not one of: phone, email"),
        (scenario(steps=[]), r"at least one step"),
        (scenario(steps=[{"name": "s"}]), r"steps\[0\] \(s\): give exactly one of"),
        (scenario(steps=[{"name": "s", "request": SEND, "captur": {}}]), r"unknown key 'captur'"),
        (
            scenario(steps=[{"name": "s", "request": {**SEND, "raw": "x"}}]),
            r"steps\[0\] \(s\).request: give one body",
        ),
        (
            scenario(steps=[{"name": "s", "request": SEND, "capture": {"id": "body.id"}}]),
            r"capture.id: malformed path 'body.id'",
        ),
        (
            scenario(steps=[{"name": "s", "request": SEND, "match": {"json.id": {"$regex": "("}}}]),
            r"match.json.id: \$regex '\(' is not a regular expression",
        ),
        (scenario(steps=[{"name": "s", "request": SEND, "via": "proxy"}]), r"via: 'proxy'"),
        (
            scenario(steps=[{"name": "s", "request": SEND, "until": {"path": "status"}}]),
            r"until: 'equals' is required",
        ),
    ],
)
def test_mistakes_are_refused_with_their_place(data, message) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "f.yaml", "f")


def test_the_digest_follows_the_contract_not_the_description() -> None:
    base = parse_scenario(scenario(), "f.yaml", "f")
    reworded = parse_scenario(scenario(description="new words"), "f.yaml", "f")
    changed = parse_scenario(scenario(variables={"phone": "email"}), "f.yaml", "f")
    assert base.digest == reworded.digest != changed.digest


def test_record_modes_reject_typos() -> None:
    assert RecordMode.parse("new") is RecordMode.NEW
    with pytest.raises(ValueError, match="'al' is not one of: all, new"):
        RecordMode.parse("al")


def test_the_shipped_scenarios_all_parse_and_cover_every_target() -> None:
    scenarios = load_scenarios(SCENARIOS)
    assert len({s.name for s in scenarios}) == len(scenarios)
    for target in Target:
        assert any(s.applies_to(target) for s in scenarios)
