"""`strangler record`: run every scenario twice against the legacy backend, write the recordings.

The legacy backend is `--base-url` (yours: any HTTP API), or, without it, this repository's
demo monolith started here on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from strangler.contracts import noise, paths
from strangler.contracts.choices import option_type
from strangler.contracts.filters import redact
from strangler.contracts.model import RecordMode, Scenario, ScenarioError, Target, load_scenarios
from strangler.contracts.recording import Recording, build, path_for, write
from strangler.contracts.replay import ASPECTS
from strangler.contracts.runner import (
    EndpointError,
    Endpoints,
    Run,
    check_base_url,
    run_scenario,
)
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
    scenarios: list[Scenario],
    endpoints: Endpoints,
    out: Path,
    mode: RecordMode,
    root: Path | None = None,
) -> list[Path]:
    """Record each scenario into `out`; headers name scenario files relative to `root`.

    `root` defaults to the project's (see `strangler.control.project`), so the files read
    the same on every machine.
    """
    root = (project.load().root if root is None else root).resolve()
    written = []
    for scenario in scenarios:
        if mode is RecordMode.NEW and path_for(scenario.name, out).exists():
            continue
        made = record_scenario(scenario, endpoints)
        written.append(write(replace(made, source=shown_source(scenario, root)), out))
    return written


def shown_source(scenario: Scenario, root: Path) -> str:
    """The scenario's file as a recording's header names it: relative to `root` if inside."""
    path = Path(scenario.source).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def sink_needed(scenarios: list[Scenario], sink_url: str | None) -> str | None:
    """Why the scenarios cannot run without a sink, or None."""
    needing = [s.name for s in scenarios if s.uses_sink]
    if sink_url or not needing:
        return None
    return (
        f"scenario {needing[0]!r} reads the webhook sink (a `sink:` step or a `sink_code` "
        "capture): give --sink-url, where your backend delivers its messages"
    )


@contextlib.contextmanager
def endpoints_for(args: argparse.Namespace) -> Iterator[Endpoints]:
    """The given base URL, or a monolith started here (gunicorn, sink, short code lifetime)."""
    if args.base_url:
        base = args.base_url.rstrip("/")
        legacy = (args.monolith_url or base).rstrip("/")
        yield Endpoints(base, legacy, (args.sink_url or "").rstrip("/"))
        return
    with (
        tempfile.TemporaryDirectory(prefix="strangler-record-") as tmp,
        running(Target.MONOLITH, Path(tmp)) as endpoints,
    ):
        yield endpoints


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--base-url",
        help="record from this running legacy backend (default: start the demo monolith)",
    )
    add(
        "--monolith-url",
        "--legacy-url",
        help="with --base-url: where `via: monolith` steps go (default: the base URL)",
    )
    add(
        "--sink-url",
        help="with --base-url: the webhook sink's base URL, for scenarios that read it",
    )
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
    where = project.load()
    out = args.out or where.recordings
    try:
        for flag in ("base_url", "monolith_url", "sink_url"):
            if getattr(args, flag):
                check_base_url(getattr(args, flag), "--" + flag.replace("_", "-"))
        scenarios = load_scenarios(args.scenarios or where.scenarios, only=args.scenario)
        problem = sink_needed(scenarios, args.sink_url) if args.base_url else None
        if problem:
            raise ScenarioError(problem)
    except (ScenarioError, EndpointError) as exc:
        print(f"strangler record: {exc}", file=sys.stderr)
        return 2
    try:
        with endpoints_for(args) as endpoints:
            written = record_all(scenarios, endpoints, out, args.mode, where.root)
    except RecordError as exc:
        print(f"strangler record: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"recorded {path}")
    print(f"{len(written)} of {len(scenarios)} scenarios recorded into {out}")
    return 0
