"""`strangler verify`: replay recorded contracts against a base URL, with no pytest to know.

Each scenario runs live against `--base-url` and every step's answer is compared with its
recording: the comparison and the report of the pytest replay (`strangler.contracts.replay`),
every difference of a step at once. Exit 0 when every scenario matches, 1 on any difference,
2 on bad input: a scenario file that does not parse, a recording that is missing, unreadable
or older than its scenario, a recording without a scenario, a URL that is not one, a sink
the scenarios read and were not given. On bad input nothing runs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from strangler.contracts import recording
from strangler.contracts.choices import option_type
from strangler.contracts.model import Scenario, ScenarioError, Target, load_scenarios
from strangler.contracts.recorder import sink_needed
from strangler.contracts.replay import replay, stale
from strangler.contracts.runner import EndpointError, Endpoints, check_base_url
from strangler.control import project


class VerifyError(ValueError):
    """Inputs a replay cannot be judged on; the message names the file or the flag."""


@dataclass(frozen=True)
class Contract:
    scenario: Scenario
    recorded: recording.Recording


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--base-url", required=True, help="the backend (or proxy) to replay against")
    add(
        "--recordings",
        type=Path,
        help="the recordings (default: the project's, see strangler.toml)",
    )
    add("--scenarios", type=Path, help="their scenarios (default: the project's)")
    add("--sink-url", help="the webhook sink, for scenarios that read it")
    add(
        "--monolith-url",
        "--legacy-url",
        help="where `via: monolith` steps go (default: the base URL)",
    )
    add("--scenario", help="replay only this scenario (by name)")
    add(
        "--target",
        type=option_type(Target),
        help="replay only the scenarios whose `targets` list it (default: every scenario)",
    )


def contracts(
    scenarios_dir: Path, recordings_dir: Path, only: str | None, target: Target | None
) -> tuple[list[Contract], list[Scenario]]:
    """The scenarios to replay with their recordings, and those `target` leaves out."""
    scenarios = load_scenarios(scenarios_dir, only)
    if not recordings_dir.is_dir():
        raise VerifyError(f"{recordings_dir}: no such recordings folder")
    if only is None:
        names = {s.name for s in scenarios}
        orphans = sorted(p for p in recordings_dir.glob("*.yaml") if p.stem not in names)
        if orphans:
            raise VerifyError(f"{orphans[0]}: a recording without a scenario in {scenarios_dir}")
    found, skipped = [], []
    for scenario in scenarios:
        if target is not None and not scenario.applies_to(target):
            skipped.append(scenario)
            continue
        recorded = recording.read(scenario.name, recordings_dir)
        problem = stale(scenario, recorded)
        if problem is not None or recorded is None:
            raise VerifyError(f"{scenario.source}: {problem}")
        found.append(Contract(scenario, recorded))
    return found, skipped


def main(verb: str, args: argparse.Namespace) -> int:
    where = project.load()
    try:
        base = check_base_url(args.base_url, "--base-url")
        legacy = check_base_url(args.monolith_url, "--monolith-url") if args.monolith_url else base
        sink = check_base_url(args.sink_url, "--sink-url") if args.sink_url else ""
        chosen, skipped = contracts(
            args.scenarios or where.scenarios,
            args.recordings or where.recordings,
            args.scenario,
            args.target,
        )
        if problem := sink_needed([c.scenario for c in chosen], sink):
            raise VerifyError(problem)
    except (ScenarioError, EndpointError, VerifyError, recording.RecordingError) as exc:
        print(f"strangler verify: {exc}", file=sys.stderr)
        return 2
    for scenario in skipped:
        targets = ", ".join(t.value for t in scenario.targets)
        print(f"scenario {scenario.name!r}: skipped, it is for {targets}")
    endpoints = Endpoints(base, legacy, sink)
    differ = 0
    for contract in chosen:
        report = replay(contract.scenario, contract.recorded, endpoints)
        if report.failed:
            differ += 1
            print(report.render(), flush=True)
        else:
            steps = len(report.steps)
            print(f"scenario {report.scenario!r} against {base}: all {steps} steps match")
    if differ:
        print(f"strangler verify: {differ} of {len(chosen)} scenarios differ at {base}")
        return 1
    print(f"strangler verify: {len(chosen)} of {len(chosen)} scenarios match at {base}")
    return 0
