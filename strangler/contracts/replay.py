"""Replay: run a scenario live and compare every step with its recording, all mismatches at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strangler.contracts.backends import SplitCheck
from strangler.contracts.filters import redact
from strangler.contracts.matchers import MISSING, Mismatch, compare
from strangler.contracts.model import Scenario
from strangler.contracts.recording import Recording
from strangler.contracts.runner import Endpoints, Run, StepRun, run_scenario

# One small matcher per aspect of a response; each reports on its own, all of them run.
ASPECTS = ("status", "headers", "json", "text")


@dataclass
class StepReport:
    index: int
    name: str
    request: str
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.mismatches or self.notes)

    def render(self) -> str:
        lines = [f"  step {self.index + 1} {self.name!r} ({self.request}):"]
        lines += [f"    {note}" for note in self.notes]
        lines += [f"    {m}" for m in self.mismatches]
        return "\n".join(lines)


@dataclass
class Report:
    scenario: str
    target: str
    steps: list[StepReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # not tied to one step

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(s.failed for s in self.steps)

    @property
    def mismatches(self) -> list[Mismatch]:
        return [m for s in self.steps for m in s.mismatches]

    def render(self) -> str:
        bad = [s for s in self.steps if s.failed]
        head = (
            f"scenario {self.scenario!r} against {self.target}: "
            f"{len(bad)} of {len(self.steps)} steps differ"
        )
        return "\n".join([head, *(f"  {p}" for p in self.problems), *(s.render() for s in bad)])


def _aspect(name: str, expected: dict, observed: dict, values: dict) -> list[Mismatch]:
    if name not in expected and name not in observed:
        return []
    if name == "headers":
        # Extra live headers are not a difference; a recorded one missing or changed is.
        live = observed.get("headers", {})
        found: list[Mismatch] = []
        for key, want in expected.get("headers", {}).items():
            found += compare(want, live.get(key, MISSING), values, f"headers.{key}")
        return found
    return compare(expected.get(name, MISSING), observed.get(name, MISSING), values, name)


def compare_step(expected: dict[str, Any], step_run: StepRun) -> list[Mismatch]:
    """Every difference between a recorded response and the live one."""
    observed = redact(step_run.observed or {})
    found: list[Mismatch] = []
    for aspect in ASPECTS:
        found += _aspect(aspect, expected, observed, step_run.values)
    return found


def _describe_request(entry: dict[str, Any]) -> str:
    request = entry["request"]
    if "sink" in request:
        return f"webhook sink messages to {request['sink']}"
    return f"{request['method']} {request['path']}"


def stale(scenario: Scenario, recording: Recording | None) -> str | None:
    """Why the recording cannot be trusted for this scenario, or None."""
    if recording is None:
        return f"no recording: run `strangler record --scenario {scenario.name}`"
    if recording.scenario_digest != scenario.digest or len(recording.steps) != len(scenario.steps):
        return (
            "the scenario changed since it was recorded: "
            f"run `strangler record --scenario {scenario.name}`"
        )
    return None


def report_run(
    run: Run, recording: Recording, target: str, split_check: SplitCheck | None = None
) -> Report:
    """Compare `run` with `recording`; through the proxy, also check who answered each step."""
    report = Report(run.scenario.name, target)
    wrong_backend = split_check.check(run) if split_check is not None else []
    for index, entry in enumerate(recording.steps):
        step_report = StepReport(index, entry["name"], _describe_request(entry))
        report.steps.append(step_report)
        if index >= len(run.steps) or run.steps[index].observed is None:
            step_report.notes.append("not run: " + (run.error or "an earlier step failed"))
            continue
        step_run = run.steps[index]
        step_report.notes += step_run.notes
        step_report.mismatches = compare_step(entry["response"], step_run)
        if index < len(wrong_backend):
            step_report.mismatches += wrong_backend[index]
    if run.error:
        report.problems.append(f"the run stopped early: {run.error}")
    return report


def replay(
    scenario: Scenario,
    recording: Recording | None,
    endpoints: Endpoints,
    split_check: SplitCheck | None = None,
) -> Report:
    """Run `scenario` against `endpoints` and compare with `recording` (and `split_check`)."""
    problem = stale(scenario, recording)
    if problem is not None or recording is None:
        return Report(scenario.name, endpoints.target, problems=[problem or "no recording"])
    run = run_scenario(scenario, endpoints)
    return report_run(run, recording, endpoints.target, split_check)
