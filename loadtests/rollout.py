"""`strangler load-rollout`: a whole progressive rollout under steady load, on a fresh stack.

Like `load-migration`: starts the stack on free ports, runs --users threads of real
verification flows (send, read the code from the webhook sink, check) through the proxy, then
adds a `rollout:` block to the stack's copy of routes.yaml and runs the real controller
(`strangler rollout ROUTE`, its own process) until it promotes or aborts. The service runs
behind `strangler.loadtests.candidate`, which with --fault answers 500s (`errors`), slowly
(`slow`) or `valid: false` to right codes (`invalid`). Prints per step: split, flows, broken
flows, error rates, p99 old/new, outcome drift, verdict; and how fast a fault was caught.
Exits 1 when a faithful candidate is not promoted or a flow broke, or a fault is not rolled back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from strangler.loadtests.candidate import FAULTS
from strangler.loadtests.command import DEFAULT_HELP, run_module
from strangler.loadtests.flows import Flow, FlowLoad
from strangler.loadtests.rollout_report import caught_after, render, step_rows
from strangler.loadtests.rollout_run import (
    ControllerProcess,
    Followed,
    RolloutPlan,
    follow,
    write_rollout,
)
from strangler.loadtests.shifting import wait_applied
from strangler.rollout.state import ABORTED, PROMOTED
from strangler.stack.running import running_stack

CANDIDATE_APP = "strangler.loadtests.candidate:create_app()"


@dataclass(frozen=True)
class Load:
    users: int = 8
    think: float = 0.3
    fault: str = "none"
    share: float = 0.3  # of requests the fault touches (errors, invalid)
    above: int | None = None  # the fault starts once the split is over this percentage
    delay: float = 0.05  # seconds the slow fault adds
    timeout: float = 120.0  # seconds the whole rollout may take
    workers: int | None = 1


@dataclass
class RolloutRun:
    followed: Followed
    flows: list[Flow]
    lines: list[str]
    returncode: int | None


def candidate_env(load: Load, routes: Path, route: str) -> dict[str, str]:
    env = {
        "STRANGLER_CANDIDATE_FAULT": load.fault,
        "STRANGLER_CANDIDATE_SHARE": str(load.share),
        "STRANGLER_CANDIDATE_DELAY": str(load.delay),
        "STRANGLER_CANDIDATE_ROUTES": str(routes),
        "STRANGLER_CANDIDATE_ROUTE": route,
    }
    if load.above is not None:
        env["STRANGLER_CANDIDATE_ABOVE"] = str(load.above)
    return env


def rollout_under_load(var_dir: Path, plan: RolloutPlan, load: Load) -> RolloutRun:
    """Start the stack under `var_dir`, roll the route out under load, stop it all."""
    var_dir = var_dir.resolve()
    env = candidate_env(load, var_dir / "routes.yaml", plan.route)
    with running_stack(
        var_dir, workers=load.workers, service_app=CANDIDATE_APP, env=env
    ) as running:
        assert running.routes is not None
        write_rollout(running.routes, plan)
        wait_applied(running.cfg.admin_url, running.routes)
        flows = FlowLoad(running.proxy_url, running.code_of, load.users, think=load.think)
        flows.phase = "0"
        flows.start()
        controller = ControllerProcess(running, plan.route).start()
        try:
            followed = follow(
                controller.files,
                load.timeout,
                lambda step: setattr(flows, "phase", str(step.index)),
            )
            flows.phase = "after"
            code = controller.wait(10) if followed.phase else None
        finally:
            controller.stop()
            finished = flows.stop()
    return RolloutRun(followed, finished, controller.lines, code)


def report(run: RolloutRun, plan: RolloutPlan, load: Load) -> tuple[str, bool]:
    """The printed table and verdict line; whether the run passed."""
    followed = run.followed
    state = followed.state
    analyses = state.analyses if state is not None else []
    rows = step_rows([(s.index, s.percent) for s in followed.steps], run.flows, analyses)
    lines = [render(rows, len(plan.steps))]
    broken = sum(f.broken or f.unfinished for f in run.flows)
    if followed.phase == ABORTED and state is not None:
        lines.append(f"rolled back at step {state.step + 1} ({state.percent}%): {state.reason}")
        caught = caught_after([(s.percent, s.entered) for s in followed.steps], followed.ended,
                              load.above)  # fmt: skip
        interval = state.rollout.interval
        if caught is not None and load.fault != "none":
            lines.append(f"fault {load.fault!r} caught {caught:.1f} s after it began "
                         f"({caught / interval:.1f} intervals of {interval:g} s)")  # fmt: skip
    elif followed.phase == PROMOTED:
        lines.append("promoted: 100% to the new backend")
    else:
        lines.append(f"neither promoted nor rolled back within {load.timeout:g} s")
    lines.append(f"flows: {len(run.flows)}, broken or unfinished: {broken}")
    if load.fault == "none":
        passed = followed.phase == PROMOTED and broken == 0
    else:
        passed = followed.phase == ABORTED
    return "\n".join(lines), passed


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    default = RolloutPlan()
    parser.add_argument("--fault", choices=FAULTS, default="none",
                        help="what the candidate does wrong" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--fault-share", type=float, default=Load.share,
                        help="share of requests the fault touches" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--fault-above", type=int, default=None,
                        help="the fault starts once the split is over this percent")  # fmt: skip
    parser.add_argument("--delay", type=float, default=Load.delay,
                        help="seconds the slow fault adds" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--steps", default=",".join(map(str, default.steps)),
                        help="percentages" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--interval", default=default.interval, help="per step" + DEFAULT_HELP)
    parser.add_argument("--min-requests", type=int, default=default.min_requests,
                        help="per backend per window" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--failed-checks", type=int, default=default.failed_checks,
                        help="consecutive failed analyses that abort" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--users", type=int, default=Load.users, help="flows" + DEFAULT_HELP)
    parser.add_argument("--think", type=float, default=Load.think,
                        help="max seconds from code to check" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--timeout", type=float, default=Load.timeout,
                        help="seconds the rollout may take" + DEFAULT_HELP)  # fmt: skip
    parser.add_argument("--workers", type=int, default=Load.workers,
                        help="gunicorn/proxy workers per server" + DEFAULT_HELP)  # fmt: skip


def main(verb: str, args: argparse.Namespace) -> int:
    try:
        steps = tuple(int(s) for s in args.steps.split(","))
    except ValueError:
        print(f"load-rollout: --steps must be whole percentages, got {args.steps!r}")
        return 2
    plan = replace(RolloutPlan(), steps=steps, interval=args.interval,
                   min_requests=args.min_requests, failed_checks=args.failed_checks)  # fmt: skip
    load = Load(args.users, args.think, args.fault, args.fault_share, args.fault_above,
                args.delay, args.timeout, args.workers)  # fmt: skip
    fault = "" if load.fault == "none" else f", fault {load.fault!r}"
    print(f"rollout under load: {plan.route} {' -> '.join(map(str, steps))} %, every "
          f"{plan.interval}, {load.users} users{fault}; starting the stack on free ports...",
          flush=True)  # fmt: skip
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rollout-") as tmp:
        run = rollout_under_load(Path(tmp), plan, load)
    text, passed = report(run, plan, load)
    print(text)
    print(f"({time.monotonic() - started:.0f} s in all)", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(run_module(sys.modules[__name__], "load-rollout"))
