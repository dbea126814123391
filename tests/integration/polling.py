"""Waiting without fixed sleeps, and racing requests for real: shared by the integration tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str = "condition", timeout: float = 20.0) -> T:
    """Poll until `condition()` is truthy; its value, or AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def in_parallel(count: int, call: Callable[[], T]) -> list[T]:
    """`count` calls released together by a barrier, so they really race."""
    barrier = threading.Barrier(count)

    def run() -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))
