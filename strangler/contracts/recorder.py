"""`strangler record`: run every scenario twice against the monolith and write the recordings."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from strangler.contracts import noise, paths
from strangler.contracts.choices import option_type
from strangler.contracts.filters import redact
from strangler.contracts.model import RecordMode, Scenario, ScenarioError, Target, load_scenarios
from strangler.contracts.recording import Recording, build, path_for, write
from strangler.contracts.replay import ASPECTS
from strangler.contracts.runner import Endpoints, Run, run_scenario
from strangler.contracts.stacks import running
from strangler.contracts.templating import unrender
from strangler.control import project

RUNS = 2  # two runs tell noise from contract


class RecordError(RuntimeError):
    """A scenario could not be recorded (a step failed, or an explicit matcher has no target)."""


def normalised(run: Run) -> list[dict[str, Any]]:
    """Each step's response with secrets redacted and this run's values back to placeholders."""
    if run.error:
        raise RecordError(f"{run.scenario.name}: {run.error}")
    responses = []
    for step_run in run.steps:
        if step_run.notes:
            raise RecordError(f"{run.scenario.name}: step {step_run.step.name!r}: {step_run.notes}")
        captured = {k: v for k, v in step_run.values.items() if k not in run.generated}
        responses.append(unrender(redact(step_run.observed), run.generated, captured))
    return responses


def in_aspect_order(response: dict[str, Any]) -> dict[str, Any]:
    """Status first, then headers, then the body: the order a reader expects."""
    return {key: response[key] for key in ASPECTS if key in response}


def record_scenario(scenario: Scenario, endpoints: Endpoints) -> Recording:
    """Run twice, keep what agrees, turn what differs into matchers, apply explicit matchers."""
    # The runs use variables of their own, so they may overlap: half the wall-clock time.
    with ThreadPoolExecutor(RUNS) as pool:
        first, second = pool.map(run_scenario, [scenario] * RUNS, [endpoints] * RUNS)
    return recording_from(scenario, first, second)


def recording_from(scenario: Scenario, first_run: Run, second_run: Run) -> Recording:
    """The recording two runs of `scenario` make (pure: no I/O)."""
    first, second = normalised(first_run), normalised(second_run)
    expected = []
    for step, a, b in zip(scenario.steps, first, second, strict=True):
        merged = noise.merge(a, b)
        try:
            merged = noise.apply_overrides(merged, step.match, scenario.match)
        except (paths.PathError, ValueError) as exc:
            raise RecordError(f"{scenario.name}: step {step.name!r}: match: {exc}") from None
        expected.append(in_aspect_order(merged))
    return build(scenario, expected)


def record_all(
    scenarios: list[Scenario], endpoints: Endpoints, out: Path, mode: RecordMode
) -> list[Path]:
    written = []
    for scenario in scenarios:
        if mode is RecordMode.NEW and path_for(scenario.name, out).exists():
            continue
        written.append(write(record_scenario(scenario, endpoints), out))
    return written


@contextlib.contextmanager
def endpoints_for(args: argparse.Namespace) -> Iterator[Endpoints]:
    """The given base URL, or a monolith started here (gunicorn, sink, short code lifetime)."""
    if args.base_url:
        yield Endpoints(args.base_url, args.monolith_url or args.base_url, args.sink_url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="strangler-record-") as tmp,
        running(Target.MONOLITH, Path(tmp)) as endpoints,
    ):
        yield endpoints


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--base-url", help="record from this running monolith instead of starting one")
    add("--monolith-url", help="with --base-url: where `via: monolith` steps go")
    add("--sink-url", help="with --base-url: the webhook sink's base URL (required)")
    add("--scenario", help="record only this scenario (by name)")
    add("--scenarios", type=Path, default=None, help="scenario files (default: the project's)")
    add("--out", type=Path, default=None, help="where recordings go (default: the project's)")
    add(
        "--mode",
        type=option_type(RecordMode),
        default=RecordMode.ALL,
        help="all: re-record every scenario; new: only those without a recording",
    )


def main(verb: str, args: argparse.Namespace) -> int:
    if args.base_url and not args.sink_url:
        print("strangler record: --base-url needs --sink-url (the webhook sink)", file=sys.stderr)
        return 2
    try:
        where = project.load()
        out = args.out or where.recordings
        scenarios = load_scenarios(args.scenarios or where.scenarios, only=args.scenario)
        with endpoints_for(args) as endpoints:
            written = record_all(scenarios, endpoints, out, args.mode)
    except (ScenarioError, RecordError) as exc:
        print(f"strangler record: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"recorded {path}")
    print(f"{len(written)} of {len(scenarios)} scenarios recorded into {out}")
    return 0
