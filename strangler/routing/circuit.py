"""Per-backend circuit breakers: consecutive connect failures open one, a health probe closes it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"  # traffic flows
    OPEN = "open"  # routes skip the backend; a probe is due after the cooldown
    HALF_OPEN = "half_open"  # a probe of the health path is in flight


class Circuit:
    """One backend's breaker. The clock is injected so tests drive time by hand."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.state = State.CLOSED
        self.failures = 0  # consecutive connect failures while closed
        self.opened_at = 0.0
        self.opened_count = 0

    @property
    def available(self) -> bool:
        """True when requests may be sent to the backend."""
        return self.state is State.CLOSED

    def record_success(self) -> None:
        self.failures = 0

    def record_failure(self) -> bool:
        """Count a refused or timed-out connect; True when this one opened the circuit."""
        if self.state is not State.CLOSED:
            return False
        self.failures += 1
        if self.failures >= self.threshold:
            self._open()
            return True
        return False

    def begin_probe(self) -> bool:
        """True (and half-open now) when the cooldown has passed and a probe should start."""
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = State.HALF_OPEN
            return True
        return False

    def probe_result(self, healthy: bool) -> None:
        if self.state is not State.HALF_OPEN:
            return
        if healthy:
            self.state = State.CLOSED
            self.failures = 0
        else:
            self._open()

    def _open(self) -> None:
        self.state = State.OPEN
        self.opened_at = self.clock()
        self.opened_count += 1

    def snapshot(self) -> dict[str, object]:
        return {"state": self.state.value, "failures": self.failures, "opened": self.opened_count}


class Circuits:
    """The breakers of every configured backend, kept across table reloads by name."""

    def __init__(
        self, threshold: int = 3, cooldown: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._make = lambda: Circuit(threshold, cooldown, clock)
        self.by_backend: dict[str, Circuit] = {}

    def sync(self, backend_names: Iterable[str]) -> None:
        """Keep the breakers of backends still configured, add new ones, drop the rest."""
        names = set(backend_names)
        self.by_backend = {n: self.by_backend.get(n) or self._make() for n in sorted(names)}

    def __getitem__(self, name: str) -> Circuit:
        return self.by_backend[name]

    def available(self, name: str) -> bool:
        circuit = self.by_backend.get(name)
        return circuit is None or circuit.available

    def due_probes(self) -> list[str]:
        return [name for name, c in self.by_backend.items() if c.begin_probe()]

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {name: c.snapshot() for name, c in self.by_backend.items()}
