"""A rollout's persisted state (`var/rollout/ROUTE.json`) and the locks around it.

The file is written whole (`strangler.control.atomic`) after every decision, before the shift
it decides, so a controller killed at any moment and started again finds the step it was at
(or the one it had decided to enter) and never skips one. Two locks, both `flock` (released by
the kernel when the holder dies, SIGKILL included): `ROUTE.run.lock`, held by the one
controller for its whole life, and `ROUTE.lock`, held briefly by whoever reads, decides and
writes (the controller, or a `pause`/`abort`/... command), so decisions never interleave.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strangler.control.atomic import write_atomically
from strangler.routing.rollout import Rollout

RUNNING, PAUSED, ABORTED, PROMOTED = "running", "paused", "aborted", "promoted"
PHASES = (RUNNING, PAUSED, ABORTED, PROMOTED)
LOCK_TIMEOUT = 10.0
HISTORY = 50  # analyses kept in the file (the audit log keeps every decision)


class RolloutError(Exception):
    """A refused rollout command; one line for the engineer."""


@dataclass
class RolloutState:
    route: str
    plan: dict[str, Any]  # the Rollout in effect (the file's block with command-line overrides)
    phase: str = RUNNING
    step: int = 0  # index into plan["steps"]
    shifted: bool = False  # the step's shift is made (False: decided, not yet made)
    entered_at: float | None = None  # time.time() the step's split was live
    window_started_at: float | None = None
    due_at: float | None = None  # when the window is analysed
    baseline: dict[str, Any] | None = None  # the data plane's reading at the window's start
    failed: int = 0  # consecutive failed analyses
    analyses: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None  # why it paused, aborted or was promoted
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def rollout(self) -> Rollout:
        plan = dict(self.plan)
        plan["steps"] = tuple(plan["steps"])
        plan["outcome"] = tuple(plan["outcome"])
        return Rollout(**plan)

    @property
    def percent(self) -> int:
        return self.plan["steps"][self.step]

    def note(self, analysis: dict[str, Any]) -> None:
        self.analyses = [*self.analyses, analysis][-HISTORY:]


def plan_of(rollout: Rollout) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(rollout).items()
    }


class StateFiles:
    """Where one route's rollout state and locks live, under the project's var/rollout/."""

    def __init__(self, var_dir: Path, route: str) -> None:
        self.dir = var_dir / "rollout"
        self.route = route
        self.path = self.dir / f"{route}.json"

    def load(self) -> RolloutState | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RolloutError(f"{self.path}: unreadable rollout state: {exc}") from exc
        names = {f.name for f in dataclasses.fields(RolloutState)}
        return RolloutState(**{k: v for k, v in data.items() if k in names})

    def save(self, state: RolloutState) -> None:
        state.updated_at = time.time()
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dataclasses.asdict(state), indent=1, sort_keys=True)
        write_atomically(self.path, text.encode() + b"\n")

    @contextlib.contextmanager
    def deciding(self) -> Iterator[None]:
        """Held while a state is read, decided on and written (and its shift made)."""
        fd = self._open(f"{self.route}.lock")
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while not _try_lock(fd):
                if time.monotonic() > deadline:
                    raise RolloutError(f"{self.dir}: another command holds {self.route}.lock")
                time.sleep(0.02)
            yield
        finally:
            os.close(fd)

    def hold_run_lock(self) -> int:
        """The controller's lock, held until its process ends; RolloutError if taken."""
        fd = self._open(f"{self.route}.run.lock")
        if not _try_lock(fd):
            os.close(fd)
            raise RolloutError(
                f"another controller runs the rollout of {self.route!r} "
                f"(it holds {self.dir / (self.route + '.run.lock')})"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def controller_running(self) -> bool:
        fd = self._open(f"{self.route}.run.lock")
        try:
            return not _try_lock(fd)
        finally:
            os.close(fd)

    def _open(self, name: str) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        return os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
