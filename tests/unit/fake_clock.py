"""A clock for unit tests: time moves only when the test says so."""

from __future__ import annotations


class FakeClock:
    """Callable like `time.time`; `advance(seconds)` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
