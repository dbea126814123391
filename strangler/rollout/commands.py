"""Starting a rollout, and `strangler rollout status|pause|resume|abort|promote ROUTE`.

Each reads, decides and writes the state under its lock, so a running controller sees the
change at its next look (within `controller.TICK`); abort and promote shift at once, audited,
whether a controller runs or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from strangler.control.shift import _current_user, shift
from strangler.rollout.controller import Controller, Target
from strangler.rollout.state import (
    ABORTED,
    PAUSED,
    PROMOTED,
    RUNNING,
    RolloutError,
    RolloutState,
    StateFiles,
    plan_of,
)
from strangler.routing import rollout as model
from strangler.routing.table import load_table


@dataclass(frozen=True)
class Session:
    files: StateFiles
    target: Target

    def controller(self) -> Controller:
        return Controller(self.files, self.target)


_FLAG_PARSERS: dict[str, Callable[[str, str, model.Fail], object]] = {
    "steps": lambda text, where, fail: model.parse_steps(_ints(text, where, fail), where, fail),
    "interval": model.parse_duration,
    "min_requests": lambda text, where, fail: model.parse_count(
        _int(text, where, fail), where, fail
    ),
    "max_error_rate": model.parse_fraction,
    "max_latency_ratio": lambda t, where, fail: model.parse_ratio(
        _float(t, where, fail), where, fail
    ),
    "outcome": lambda text, where, fail: model.parse_outcome(
        [p.strip() for p in text.split(",") if p.strip()], where, fail
    ),
    "max_outcome_drift": model.parse_fraction,
    "failed_checks": lambda text, where, fail: model.parse_count(
        _int(text, where, fail), where, fail
    ),
    "gate": model.parse_gate,
}


def _fail(where: str, message: str):
    raise RolloutError(f"{where}: {message}")


def _int(text: str, where: str, fail: model.Fail) -> int:
    try:
        return int(text)
    except ValueError:
        fail(where, f"must be a whole number, got {text!r}")


def _float(text: str, where: str, fail: model.Fail) -> float:
    try:
        return float(text)
    except ValueError:
        fail(where, f"must be a number, got {text!r}")


def _ints(text: str, where: str, fail: model.Fail) -> list[int]:
    return [_int(part.strip().removesuffix("%"), where, fail) for part in text.split(",")]


def plan_for(session: Session, overrides: Mapping[str, str]) -> model.Rollout:
    """The route's `rollout:` block with the command line's overrides, each validated."""
    table = load_table(session.target.routes)
    route = table.route(session.files.route)
    if route is None:
        known = ", ".join(r.name for r in table.routes)
        raise RolloutError(f"{table.source}: no route {session.files.route!r} (routes: {known})")
    if route.rollout is None:
        raise RolloutError(
            f"{table.source}: route {route.name!r} has no rollout: block; add one (see the "
            "README): the data plane counts outcomes only for routes that declare it"
        )
    changes = {
        name: _FLAG_PARSERS[name](text, "--" + name.replace("_", "-"), _fail)
        for name, text in overrides.items()
    }
    return dataclasses.replace(route.rollout, **changes)


def start(session: Session, overrides: Mapping[str, str]) -> RolloutState:
    """A new rollout, or the one in progress (resumed at its step); runs the gate first."""
    plan = plan_for(session, overrides)
    files = session.files
    if files.controller_running():
        raise RolloutError(f"another controller runs the rollout of {files.route!r}")
    with files.deciding():
        state = files.load()
        if state is not None and state.phase in (RUNNING, PAUSED):
            if overrides:
                print(f"{files.route}: resuming the rollout in progress; its plan stands, "
                      f"the options {', '.join(overrides)} are ignored")  # fmt: skip
            print(f"{files.route}: resuming at step {state.step + 1} ({state.percent}%), "
                  f"{state.phase}")  # fmt: skip
            return state
        if state is not None and state.phase == ABORTED:
            raise RolloutError(
                f"the rollout of {files.route!r} was aborted ({state.reason}); "
                f"`strangler rollout resume {files.route}` starts it again from the first step"
            )
        if state is not None and state.phase == PROMOTED and session.controller().share() == 100:
            print(f"{files.route}: already promoted (100% to the new backend); nothing to do")
            return state
        state = RolloutState(files.route, plan_of(plan))
        files.save(state)
    steps = " -> ".join(map(str, plan.steps))
    print(f"{files.route}: rollout {steps}%, every {plan.interval:g}s, "
          f"min {plan.min_requests} requests per backend", flush=True)  # fmt: skip
    if plan.gate is not None:
        _run_gate(session, state, plan.gate)
    return state


def _run_gate(session: Session, state: RolloutState, gate: str) -> None:
    print(f"{state.route}: gate: {gate}", flush=True)
    code = subprocess.run(shlex.split(gate), check=False).returncode
    if code != 0:
        with session.files.deciding():
            session.controller().abort(state, f"the gate {gate!r} exited {code}")


def status(session: Session, args: argparse.Namespace) -> int:
    state = session.files.load()
    if state is None:
        print(f"{session.files.route}: no rollout (no {session.files.path})")
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(state), indent=1))
        return 0
    running = session.files.controller_running()
    steps = state.plan["steps"]
    now = session.controller().share()
    print(f"{state.route}: {state.phase} at step {state.step + 1}/{len(steps)} "
          f"({state.percent}%) of {' -> '.join(map(str, steps))}%, the split now {now}%; "
          f"controller {'running' if running else 'not running'}")  # fmt: skip
    if state.entered_at is not None:
        print(f"  at this step for {time.time() - state.entered_at:.0f}s; failed checks "
              f"{state.failed}/{state.plan['failed_checks']}")  # fmt: skip
    if state.reason:
        print(f"  reason: {state.reason}")
    for analysis in state.analyses[-3:]:
        print(f"  step {analysis['step']} ({analysis['percent']}%): {analysis['verdict']} "
              f"{'; '.join(analysis['reasons'])}".rstrip())  # fmt: skip
    return 0


def _change(session: Session, allowed: tuple[str, ...], verb: str) -> RolloutState:
    state = session.files.load()
    if state is None:
        raise RolloutError(f"{session.files.route}: no rollout to {verb}")
    if state.phase not in allowed:
        raise RolloutError(f"{session.files.route}: cannot {verb} a rollout that is {state.phase}")
    return state


def _why(args: argparse.Namespace, verb: str) -> str:
    return args.reason or f"{verb} by {_current_user()}"


def _audit(session: Session, state: RolloutState, verb: str, args: argparse.Namespace) -> None:
    """A pause or resume in the audit log: a shift to the split there is (nothing rewritten)."""
    details = {"step": state.step + 1, "steps": list(state.plan["steps"]), "phase": state.phase}
    shift(session.target.routes, state.route, session.controller().share(),
          f"rollout {verb}: {state.reason}", getattr(args, "user", None),
          session.target.audit, action=f"rollout-{verb}", details=details)  # fmt: skip


def pause(session: Session, args: argparse.Namespace) -> int:
    with session.files.deciding():
        state = _change(session, (RUNNING,), "pause")
        state.phase, state.reason = PAUSED, _why(args, "paused")
        _audit(session, state, "pause", args)  # first: an unwritable audit log changes nothing
        session.files.save(state)
    print(f"{state.route}: paused at step {state.step + 1} ({state.percent}%)")
    return 0


def resume(session: Session, args: argparse.Namespace) -> int:
    with session.files.deciding():
        state = _change(session, (PAUSED, ABORTED), "resume")
        if state.phase == ABORTED:
            state.step, state.failed = 0, 0  # the route is at 0 %: start from the first step
            state.shifted = False
        state.phase, state.reason = RUNNING, _why(args, "resumed")
        state.baseline = state.window_started_at = state.due_at = None  # a fresh window
        state.shifted = False  # back to the step's split if someone changed it meanwhile
        _audit(session, state, "resume", args)
        session.files.save(state)
    print(f"{state.route}: running at step {state.step + 1} ({state.percent}%)")
    if not session.files.controller_running():
        print(f"  no controller runs: `strangler rollout {state.route}` continues it")
    return 0


def abort(session: Session, args: argparse.Namespace) -> int:
    with session.files.deciding():
        state = _change(session, (RUNNING, PAUSED), "abort")
        session.controller().abort(state, _why(args, "aborted"), user=getattr(args, "user", None))
    return 0


def promote(session: Session, args: argparse.Namespace) -> int:
    with session.files.deciding():
        state = _change(session, (RUNNING, PAUSED), "promote")
        state.step, state.phase = len(state.plan["steps"]) - 1, RUNNING
        state.shifted = False
        session.controller().enter(state, _why(args, "promoted"))
    return 0


COMMANDS: dict[str, Callable[[Session, argparse.Namespace], int]] = {
    "status": status,
    "pause": pause,
    "resume": resume,
    "abort": abort,
    "promote": promote,
}
