"""Replay reports: every mismatch of a step at once, readable, and stale recordings named."""

from __future__ import annotations

from strangler.contracts.model import parse_scenario
from strangler.contracts.recording import build
from strangler.contracts.replay import report_run, stale
from strangler.contracts.runner import Run, StepRun

SCENARIO = parse_scenario(
    {
        "steps": [
            {"name": "send", "request": {"method": "POST", "path": "/send"}},
            {"name": "mail", "sink": "x@y.example"},
            {"name": "check", "request": {"method": "POST", "path": "/check"}},
        ]
    },
    "s.yaml",
    "s",
)
RECORDED = build(
    SCENARIO,
    [
        {"status": 201, "headers": {"content-type": "application/json"},
         "json": {"status": "pending", "expires_in": 3}},
        {"status": 200, "json": {"messages": [{"to": "x@y.example"}]}},
        {"status": 404, "json": {"error": "not_found"}},
    ],
)  # fmt: skip


def live_run(*observed: dict) -> Run:
    run = Run(SCENARIO, {})
    run.steps = [
        StepRun(step, {}, obs) for step, obs in zip(SCENARIO.steps, observed, strict=False)
    ]
    return run


def test_a_matching_run_passes_and_extra_live_headers_do_not_matter() -> None:
    run = live_run(
        {"status": 201, "headers": {"content-type": "application/json", "x-extra": "1"},
         "json": {"status": "pending", "expires_in": 3}},
        {"status": 200, "json": {"messages": [{"to": "x@y.example"}]}},
        {"status": 404, "headers": {}, "json": {"error": "not_found"}},
    )  # fmt: skip
    assert not report_run(run, RECORDED, "svc").failed


def test_every_aspect_of_a_step_is_reported_together() -> None:
    run = live_run(
        {"status": 200, "headers": {"content-type": "text/html"},
         "json": {"status": "pending", "expiresIn": 3}},
        {"status": 200, "json": {"messages": []}},
        {"status": 404, "json": {"error": "not_found"}},
    )  # fmt: skip
    report = report_run(run, RECORDED, "service (http://127.0.0.1:1)")
    assert report.failed
    assert report.render() == "\n".join(
        [
            "scenario 's' against service (http://127.0.0.1:1): 2 of 3 steps differ",
            "  step 1 'send' (POST /send):",
            "    status: recorded 201, actual 200",
            "    headers.content-type: recorded 'application/json', actual 'text/html'",
            "    json.expires_in: recorded 3, actual (absent)",
            "    json.expiresIn: recorded (absent), actual 3",
            "  step 2 'mail' (webhook sink messages to x@y.example):",
            "    json.messages[0]: recorded {'to': 'x@y.example'}, actual (absent)",
        ]
    )


def test_steps_after_a_failed_one_are_reported_as_not_run() -> None:
    run = live_run({"status": 201, "headers": {"content-type": "application/json"},
                    "json": {"status": "pending", "expires_in": 3}})  # fmt: skip
    run.error = "step 'send': capture 'id': json.id: no such value in the response"
    text = report_run(run, RECORDED, "svc").render()
    assert "the run stopped early: step 'send': capture 'id'" in text
    assert "step 2 'mail' (webhook sink messages to x@y.example):\n    not run:" in text


def test_a_missing_or_outdated_recording_says_how_to_fix_it() -> None:
    assert "strangler record --scenario s" in stale(SCENARIO, None)
    outdated = build(SCENARIO, [{}, {}, {}])
    object.__setattr__(outdated, "scenario_digest", "0" * 64)
    assert "changed since it was recorded" in stale(SCENARIO, outdated)
    assert stale(SCENARIO, RECORDED) is None
