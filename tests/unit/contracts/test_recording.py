"""Recording files: stable bytes, readable order, one per scenario, none orphaned."""

from __future__ import annotations

from pathlib import Path

from strangler.contracts import recording
from strangler.contracts.model import load_scenarios, parse_scenario
from strangler.contracts.recorder import recording_from
from strangler.contracts.runner import Run, StepRun
from tests.contract.suite import RECORDINGS, SCENARIOS

SCENARIO = parse_scenario(
    {
        "variables": {"phone": "phone"},
        "steps": [
            {
                "name": "send",
                "request": {"method": "POST", "path": "/send", "json": {"to": "{{phone}}"}},
                "capture": {"id": "json.id"},
            },
            {"name": "check", "request": {"method": "POST", "path": "/check"}},
        ],
    },
    "s.yaml",
    "s",
)


def fake_run(phone: str, ident: str, when: str) -> Run:
    run = Run(SCENARIO, {"phone": phone})
    send = {"status": 201, "headers": {"content-type": "application/json"},
            "json": {"to": phone, "id": ident, "code": "123456", "at": when}}  # fmt: skip
    check = {"status": 200, "json": {"id": ident, "message": f"ok {phone}"}}
    run.steps = [
        StepRun(SCENARIO.steps[0], {"phone": phone}, send),
        StepRun(SCENARIO.steps[1], {"phone": phone, "id": ident}, check),
    ]
    return run


def test_two_runs_make_a_recording_of_placeholders_and_matchers() -> None:
    first = fake_run("+15550000001", "VE" + "a" * 32, "2026-01-01T00:00:00Z")
    second = fake_run("+15550000002", "VE" + "b" * 32, "2026-01-01T00:00:01Z")
    made = recording_from(SCENARIO, first, second)
    assert made.steps[0]["response"] == {
        "status": 201,
        "headers": {"content-type": "application/json"},
        "json": {
            "at": {"$regex": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                   r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"},
            "code": {"$redacted": "^[0-9]{6}$"},
            "id": {"$regex": "^VE[0-9a-f]{32}$"},
            "to": "{{phone}}",
        },
    }  # fmt: skip
    assert made.steps[1]["response"]["json"] == {"id": "{{id}}", "message": "ok {{phone}}"}
    assert "123456" not in recording.dumps(made)


def test_writing_is_byte_stable_and_reads_back(tmp_path: Path) -> None:
    first = fake_run("+15550000001", "VE" + "a" * 32, "2026-01-01T00:00:00Z")
    second = fake_run("+15550000002", "VE" + "b" * 32, "2026-01-01T00:00:01Z")
    path = recording.write(recording_from(SCENARIO, first, second), tmp_path / "a")
    again = recording.write(recording_from(SCENARIO, second, first), tmp_path / "b")
    assert path.read_bytes() == again.read_bytes()
    text = path.read_text()
    assert text.index("request:") < text.index("response:") < text.index("status: 201")
    assert recording.read("s", tmp_path / "a") == recording_from(SCENARIO, first, second)


def test_every_scenario_has_a_recording_and_every_recording_a_scenario() -> None:
    names = {s.name for s in load_scenarios(SCENARIOS)}
    recorded = {p.stem for p in RECORDINGS.glob("*.yaml")}
    assert names == recorded
