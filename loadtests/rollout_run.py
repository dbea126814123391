"""A rollout on a running stack: its block written into the stack's table, the real controller
started as its own process (`strangler rollout ROUTE`), its state followed step by step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from strangler.rollout.state import ABORTED, PROMOTED, RolloutState, StateFiles
from strangler.stack.running import RunningStack


@dataclass(frozen=True)
class RolloutPlan:
    """The `rollout:` block the run writes (short intervals: a rehearsal, not a migration)."""

    route: str = "verification"
    steps: tuple[int, ...] = (10, 50, 100)
    interval: str = "2s"
    min_requests: int = 20
    max_error_rate: str = "1%"
    max_latency_ratio: float = 1.5
    outcome: tuple[str, ...] = ("error", "status")
    max_outcome_drift: str = "2%"
    failed_checks: int = 2

    def block(self) -> CommentedMap:
        block = CommentedMap()
        for name in ("steps", "interval", "min_requests", "max_error_rate", "max_latency_ratio",
                     "outcome", "max_outcome_drift", "failed_checks"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = CommentedSeq(value)
                value.fa.set_flow_style()
            block[name] = value
        return block


def write_rollout(routes: Path, plan: RolloutPlan) -> None:
    """Add (or replace) the route's `rollout:` block, keeping the rest of the file as it is."""
    yaml = YAML()
    doc = yaml.load(routes.read_text())
    route = next(r for r in doc["routes"] if r["name"] == plan.route)
    route["rollout"] = plan.block()
    with routes.open("w") as handle:
        yaml.dump(doc, handle)


@dataclass
class Step:
    index: int
    percent: int
    entered: float  # time.monotonic() the controller had shifted to it


@dataclass
class Followed:
    """What the run saw of the controller's state: the steps entered, and how it ended."""

    steps: list[Step] = field(default_factory=list)
    phase: str | None = None
    ended: float | None = None
    state: RolloutState | None = None


class ControllerProcess:
    """`python -m strangler rollout ROUTE` against the stack; its lines echoed with a prefix."""

    def __init__(self, running: RunningStack, route: str, echo: Callable[[str], None] = print):
        assert running.routes is not None
        self.running, self.route, self.echo = running, route, echo
        self.files = StateFiles(running.cfg.var_dir, route)
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> ControllerProcess:
        env = {**os.environ, "STRANGLER_VAR": str(self.running.cfg.var_dir)}
        env.pop("STRANGLER_ADMIN_BIND", None)
        routes, admin = str(self.running.routes), self.running.cfg.admin_url
        argv = [sys.executable, "-m", "strangler", "rollout", self.route, "--routes", routes]
        argv += ["--admin", admin]
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.pump = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.pump.start()
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:  # closed once the controller is gone
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                self.echo(f"  controller| {line.rstrip()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the controller."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.pump.join(5)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self.pump.join(5)
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc is not None:
            self.pump.join(5)


def follow(
    files: StateFiles,
    timeout: float,
    on_step: Callable[[Step], None] = lambda step: None,
    until: Callable[[RolloutState], bool] = lambda state: state.phase in (PROMOTED, ABORTED),
) -> Followed:
    """Poll the state file until `until(state)` or `timeout`; each step entered, in order."""
    seen = Followed()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = files.load()
        if state is not None:
            seen.state = state
            last = seen.steps[-1] if seen.steps else None
            if state.shifted and (last is None or last.index != state.step):
                step = Step(state.step, state.percent, time.monotonic())
                seen.steps.append(step)
                on_step(step)
            if until(state):
                seen.phase, seen.ended = state.phase, time.monotonic()
                return seen
        time.sleep(0.05)
    return seen
