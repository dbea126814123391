"""The rollout controller: steps a route's split, analyses each interval, promotes or aborts.

Every decision is made under the state's lock, written to `var/rollout/ROUTE.json` first and
then carried out, so a controller killed at any moment resumes at the step it was at. Each
step is a real `strangler shift` (validated, atomic, audited with the step and the figures of
the analysis that justified it); an abort is a `rollback` to 0 % with the reason and figures.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strangler.control import status
from strangler.control.shift import rollback, shift
from strangler.rollout.analysis import FAILED, PASSED, RESET, WAITING, Analysis, analyse, window
from strangler.rollout.state import (
    ABORTED,
    PAUSED,
    PROMOTED,
    RolloutError,
    RolloutState,
    StateFiles,
)
from strangler.routing.table import load_table

TICK = 0.1  # seconds between looks at the state and the clock


@dataclass
class Target:
    """What the controller acts on: the routing file, its audit log, the data plane's admin."""

    routes: Path
    audit: Path
    admin_url: str
    token: str | None = None


class Controller:
    def __init__(
        self,
        files: StateFiles,
        target: Target,
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
        fetch: Callable[..., dict[str, Any]] = status.fetch,
    ) -> None:
        self.files = files
        self.fetch = fetch  # the data plane's admin status (a fake one in unit tests)
        self.target = target
        self.say = say
        self.clock = clock
        self.route = files.route
        self._split: tuple[tuple[int, int, int], int] | None = None  # (file identity, share)
        self._unreachable = False  # said once, not every tick

    def run(self, follow: bool = False) -> str:
        """Hold the run lock and tick until the rollout is promoted or aborted; its phase.

        `follow` (inside `strangler up`): never return; a promoted or aborted rollout is
        watched until a person resumes it (or starts a new one).
        """
        lock = self.files.hold_run_lock()
        try:
            while True:
                phase = self.tick()
                if phase in (PROMOTED, ABORTED) and not follow:
                    return phase
                time.sleep(TICK if phase not in (PROMOTED, ABORTED) else 5 * TICK)
        finally:
            os.close(lock)

    def tick(self) -> str:
        """Look once: enter the step, start a window, or analyse a window that is due."""
        with self.files.deciding():
            state = self.files.load()
            if state is None:
                return ABORTED  # the state file was removed: nothing to run
            if state.phase == PAUSED or state.phase in (PROMOTED, ABORTED):
                return state.phase
            share = self.share()
            if share != state.percent and not state.shifted:
                first = state.step == 0 and not state.analyses
                self.enter(state, "the first step" if first else "resumed: entering the step")
                return state.phase
            if not state.shifted:  # the split already was the step's
                state.shifted = True
                self.files.save(state)
            if share != state.percent:  # someone shifted by hand: a person decides now
                state.phase = PAUSED
                state.reason = f"the split was changed to {share}% outside the rollout"
                self.files.save(state)
                self.say(f"{self.route}: paused: {state.reason}")
                return state.phase
            if state.baseline is None:
                self._start_window(state)
                return state.phase
            if self.clock() >= (state.due_at or 0):
                self._analyse(state)
            return state.phase

    # --- decisions, each under the lock ---------------------------------------------------

    def _start_window(self, state: RolloutState) -> None:
        doc = self._status()
        if doc is None or doc.get("digest") != self._digest() or not doc.get("converged"):
            return  # the data plane does not serve this step's split yet
        state.baseline = doc.get("analysis", {}).get(self.route, {})
        state.window_started_at = self.clock()
        state.due_at = state.window_started_at + state.rollout.interval
        if state.entered_at is None:
            state.entered_at = state.window_started_at
        self.files.save(state)

    def _analyse(self, state: RolloutState) -> None:
        doc = self._status()
        if doc is None:
            return
        reading = doc.get("analysis", {}).get(self.route, {})
        route = load_table(self.target.routes).route(self.route)
        assert route is not None and route.fallback and route.new_backend
        seconds = self.clock() - (state.window_started_at or self.clock())
        result = analyse(
            window(state.baseline or {}, reading, route.fallback),
            window(state.baseline or {}, reading, route.new_backend),
            state.rollout,
            seconds,
        )
        state.note(self._record(state, result))
        self.say(self._line(state, result))
        if result.verdict == WAITING:  # the window grows from the same baseline
            state.due_at = self.clock() + state.rollout.interval
        elif result.verdict == RESET:
            self._new_window(state, reading)
        elif result.verdict == FAILED:
            state.failed += 1
            if state.failed >= state.rollout.failed_checks:
                self.abort(state, "; ".join(result.reasons), result)
                return
            self._new_window(state, reading)
        else:
            state.failed = 0
            state.step += 1
            state.baseline = state.window_started_at = state.entered_at = None
            state.shifted = False
            self.files.save(state)  # decided before done: a kill here resumes at the new step
            self.enter(state, f"step {state.step} passed", result)
            return
        self.files.save(state)

    def _new_window(self, state: RolloutState, reading: dict[str, Any]) -> None:
        state.baseline, state.window_started_at = reading, self.clock()
        state.due_at = state.window_started_at + state.rollout.interval

    def enter(self, state: RolloutState, why: str, result: Analysis | None = None) -> None:
        """Shift to the state's step; the last step (100 %) is the promotion."""
        steps = state.plan["steps"]
        percent = state.percent
        details = self._details(state, result)
        reason = f"rollout: step {state.step + 1}/{len(steps)} ({percent}%): {why}"
        if result is not None:
            reason += f": {result.summary}"
        shift(self.target.routes, self.route, percent, reason, audit_path=self.target.audit,
              details=details)  # fmt: skip
        if state.step == len(steps) - 1:
            state.phase, state.reason = PROMOTED, why
            self.say(f"{self.route}: promoted: {percent}% to the new backend")
        else:
            self.say(f"{self.route}: step {state.step + 1}/{len(steps)}: {percent}% ({why})")
        state.baseline = state.window_started_at = state.entered_at = None
        state.shifted = True
        self.files.save(state)

    def abort(
        self, state: RolloutState, reason: str, result: Analysis | None = None,
        user: str | None = None,
    ) -> None:  # fmt: skip
        """Back to 0 % at once, audited with the reason and figures; the state stays aborted."""
        state.phase, state.reason = ABORTED, reason
        state.baseline = state.window_started_at = None
        self.files.save(state)
        rollback(self.target.routes, self.route, f"rollout aborted: {reason}", user,
                 audit_path=self.target.audit, details=self._details(state, result))  # fmt: skip
        self.say(f"{self.route}: aborted at step {state.step + 1} ({state.percent}%): {reason}")

    # --- what the controller reads ------------------------------------------------------

    def share(self) -> int:
        """The route's percentage on its new backend in the routing file (parsed on change)."""
        stat = self.target.routes.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a shift renames: a new inode
        if self._split is None or self._split[0] != key:
            route = load_table(self.target.routes).route(self.route)
            if route is None or route.new_backend is None:
                raise RolloutError(f"{self.target.routes}: no route {self.route!r} to roll out")
            self._split = (key, dict(route.split)[route.new_backend])
        return self._split[1]

    def _digest(self) -> str:
        return hashlib.sha256(self.target.routes.read_bytes()).hexdigest()

    def _status(self) -> dict[str, Any] | None:
        try:
            doc = self.fetch(self.target.admin_url, self.target.token, timeout=2)
        except (OSError, ValueError) as exc:
            if not self._unreachable:
                self.say(f"{self.route}: the data plane at {self.target.admin_url} is "
                         f"unreachable ({exc}); the window waits")  # fmt: skip
            self._unreachable = True
            return None
        if self._unreachable:
            self.say(f"{self.route}: the data plane answers again")
            self._unreachable = False
        return doc

    def _record(self, state: RolloutState, result: Analysis) -> dict[str, Any]:
        return {
            "time": round(self.clock(), 3),
            "step": state.step + 1,
            "percent": state.percent,
            "verdict": result.verdict,
            "reasons": list(result.reasons),
            "figures": result.figures,
        }

    def _details(self, state: RolloutState, result: Analysis | None) -> dict[str, Any]:
        details: dict[str, Any] = {
            "step": state.step + 1,
            "steps": list(state.plan["steps"]),
            "phase": state.phase,
            "failed_checks": state.failed,
        }
        if result is not None:
            details.update(verdict=result.verdict, reasons=list(result.reasons),
                           figures=result.figures)  # fmt: skip
        return details

    def _line(self, state: RolloutState, result: Analysis) -> str:
        steps = state.plan["steps"]
        head = f"{self.route}: step {state.step + 1}/{len(steps)} ({state.percent}%): "
        verdict = result.verdict
        if verdict == FAILED:
            verdict += f" ({state.failed + 1}/{state.rollout.failed_checks})"
        tail = f": {'; '.join(result.reasons)}" if result.verdict != PASSED else ""
        return f"{head}{verdict}: {result.summary}{tail}"
