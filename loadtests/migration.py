"""`strangler load-migration`: shift a route 0 → 10 → 50 → 100 → 0 % under steady load.

Starts the whole stack on free ports, runs --users threads of real verification flows (send,
read the code from the webhook sink, check) through the proxy, and at every --step-seconds
shifts the route with the real `strangler shift` code on the stack's copy of routes.yaml.
Prints flows per step (completed, broken, across a shift), sends per backend against the
configured share, and p50/p99; exits 1 on any broken flow or refused send.

With --fault NAME (a rehearsal), the same migration runs once per named fault, on a fresh
stack each, with the fault injected on a schedule (see strangler.loadtests.faults), and one
table prints per fault: flows, broken flows, client-visible errors, the data plane's affinity
misses, queued writes and retries, and the time to recover; exits 1 on any broken flow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strangler.loadtests import fault_report
from strangler.loadtests.command import DEFAULT_HELP, run_module
from strangler.loadtests.faults import FAULTS, PROBES, Fault, Injector, Schedule
from strangler.loadtests.flows import Flow, FlowLoad
from strangler.loadtests.migration_report import (
    StepFigures,
    StepWindow,
    migration_figures,
    passed,
    render,
)
from strangler.loadtests.shifting import old_and_new, shift_and_wait
from strangler.stack.running import RunningStack, running_stack
from strangler.stack.specs import DATA_PLANES

DEFAULT_STEPS = "0,10,50,100,0"


def parse_steps(text: str) -> list[int]:
    """`0,10,50,100,0` → [0, 10, 50, 100, 0]; each a whole percentage."""
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must be whole numbers, got {text!r}") from None
    if not steps or any(not 0 <= s <= 100 for s in steps):
        raise argparse.ArgumentTypeError(f"every step must be 0-100, got {text!r}")
    return steps


@dataclass(frozen=True)
class Plan:
    """What to shift, how, and under how much load."""

    route: str = "verification"
    steps: Sequence[int] = (0, 10, 50, 100, 0)
    users: int = 10
    step_seconds: float = 5.0
    think: float = 1.0  # users wait 0..think s before checking, so flows straddle the shifts
    workers: int | None = None
    data_plane: str = "embedded"  # what serves the public URL: embedded or haproxy


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users", type=int, default=Plan.users, help="concurrent flows" + DEFAULT_HELP
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=Plan.step_seconds,
        help="time at each split" + DEFAULT_HELP,
    )
    parser.add_argument(
        "--steps", type=parse_steps, default=DEFAULT_STEPS,
        help="new-backend percentages in order" + DEFAULT_HELP,
    )  # fmt: skip
    parser.add_argument(
        "--think",
        type=float,
        default=Plan.think,
        help="max seconds from code to check" + DEFAULT_HELP,
    )
    parser.add_argument("--route", default=Plan.route, help="route to shift" + DEFAULT_HELP)
    parser.add_argument("--workers", type=int, help="gunicorn/proxy workers per server")
    parser.add_argument(
        "--data-plane", choices=DATA_PLANES, default=Plan.data_plane,
        help="what serves the public URL" + DEFAULT_HELP,
    )  # fmt: skip
    parser.add_argument(
        "--show-failed", type=int, default=5, help="failed flows to list" + DEFAULT_HELP
    )
    add_fault_arguments(parser)


def run_steps(
    running: RunningStack, plan: Plan, injector: Injector | None = None
) -> tuple[list[StepWindow], list[Flow]]:
    """Load through the proxy while stepping the split; the steps' windows and every flow.

    An `injector` starts its faults with the load and ends them before the last flows finish.
    """
    assert running.routes is not None, "the migration needs the proxy"
    admin, routes, route = running.cfg.admin_url, running.routes, plan.route
    shift_and_wait(admin, routes, route, plan.steps[0], "load test: starting split")
    windows: list[StepWindow] = []
    load = FlowLoad(running.proxy_url, running.code_of, plan.users, think=plan.think)
    load.phase = "0"
    started = time.monotonic()
    load.start()
    if injector is not None:
        injector.start()
    try:
        for index, percent in enumerate(plan.steps):
            if index:
                started = time.monotonic()
            load.phase = str(index)
            applied = started
            if index:
                reason = f"load test: step {index + 1} of {len(plan.steps)}"
                applied = shift_and_wait(admin, routes, route, percent, reason)
            print(f"  step {index + 1}: {route} at {percent}% new backend", flush=True)
            time.sleep(max(0.0, started + plan.step_seconds - time.monotonic()))
            windows.append(StepWindow(index, percent, started, applied, time.monotonic()))
    finally:
        if injector is not None:
            injector.stop()
        flows = load.stop()
    return windows, flows


def migrate_under_load(var_dir: Path, plan: Plan) -> tuple[list[StepFigures], list[Flow]]:
    """Start the stack under `var_dir`, run the plan, stop the stack; figures and flows."""
    with running_stack(var_dir, workers=plan.workers, data_plane=plan.data_plane) as running:
        assert running.routes is not None
        old, new = old_and_new(running.routes, plan.route)
        windows, flows = run_steps(running, plan)
    return migration_figures(windows, flows, old, new), flows


SNAPSHOT_EVERY = 1.0  # seconds between a worker's published figures (strangler.proxy.plane)


def rehearse(
    var_dir: Path, plan: Plan, fault: Fault, schedule: Schedule, slow: float = fault_report.SLOW
) -> tuple[fault_report.FaultFigures, list[Flow]]:
    """The migration under load on a fresh stack with `fault` injected on `schedule`."""
    with running_stack(
        var_dir, workers=plan.workers, persist_redis=True, data_plane=plan.data_plane
    ) as running:
        plane = PROBES[plan.data_plane](running)
        before = plane.counters()
        injector = Injector(fault, schedule, running, plane)
        _, flows = run_steps(running, plan, injector)
        time.sleep(SNAPSHOT_EVERY + 0.2)  # every worker's figures include the last flows
        counted = plane.counters().minus(before)
    figures = fault_report.fault_figures(
        fault.name, injector.events, flows, counted, slow, injector.errors
    )
    return figures, flows


def parse_faults(text: str) -> list[str]:
    """`redis-pause,worker-kill` or `all` → the faults' names, in order."""
    names = list(FAULTS) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault {', '.join(unknown) or text!r} (known: {', '.join(FAULTS)}, all)"
        )
    return names


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    faults = "; ".join(f"{f.name}: {f.describe(f.schedule)}" for f in FAULTS.values())
    parser.add_argument(
        "--fault", type=parse_faults, default=None, metavar="NAME[,NAME]|all",
        help=f"rehearse the migration with a fault injected on a schedule: {faults}",
    )  # fmt: skip
    parser.add_argument("--fault-every", type=float, help="seconds between injections")
    parser.add_argument("--fault-length", type=float, help="seconds each fault lasts")
    parser.add_argument(
        "--slow-ms", type=float, default=fault_report.SLOW * 1000,
        help="a request slower than this is affected by a fault" + DEFAULT_HELP,
    )  # fmt: skip


def schedule_of(fault: Fault, args: argparse.Namespace) -> Schedule:
    every = args.fault_every if args.fault_every is not None else fault.schedule.every
    length = args.fault_length if args.fault_length is not None else fault.schedule.length
    if fault.name != "none" and not 0 <= length < every:
        raise SystemExit(f"load-migration: --fault-length {length} must be below every {every}")
    return Schedule(min(fault.schedule.first, every), every, length)


def main_rehearsal(plan: Plan, args: argparse.Namespace) -> int:
    slow = args.slow_ms / 1000
    rows: list[fault_report.FaultFigures] = []
    for name in args.fault:
        fault = FAULTS[name]
        if name not in PROBES[plan.data_plane].faults:
            print(f"fault {name}: not one the {plan.data_plane} data plane has; skipped")
            continue
        schedule = schedule_of(fault, args)
        print(f"fault {name}: {fault.describe(schedule)}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"rehearsal-{name}-") as tmp:
            figures, flows = rehearse(Path(tmp), plan, fault, schedule, slow)
        rows.append(figures)
        broken = [f for f in flows if f.broken]
        for flow in broken[: args.show_failed]:
            print(f"  broken flow: {flow.to} in step {int(flow.phase) + 1}: {flow.error}")
    print(fault_report.render(rows, slow), flush=True)
    return 0 if fault_report.passed(rows) else 1


def main(verb: str, args: argparse.Namespace) -> int:
    plan = Plan(
        args.route, args.steps, args.users, args.step_seconds, args.think, args.workers,
        args.data_plane,
    )  # fmt: skip
    if args.fault:
        return main_rehearsal(plan, args)
    print(
        f"migration under load: {plan.route} {' → '.join(map(str, plan.steps))} %, "
        f"{plan.users} users (0-{plan.think:g} s from code to check), "
        f"{plan.step_seconds:g} s per step, {plan.data_plane} data plane; "
        "starting the stack on free ports…",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="migration-") as tmp:
        figures, flows = migrate_under_load(Path(tmp), plan)
    print(render(figures), flush=True)
    failed = [f for f in flows if f.broken or f.unfinished or not f.sent]
    for flow in failed[: args.show_failed]:
        print(f"  failed flow: {flow.to} in step {int(flow.phase) + 1}: {flow.error}", flush=True)
    return 0 if passed(figures) else 1


if __name__ == "__main__":
    sys.exit(run_module(sys.modules[__name__], "load-migration"))
