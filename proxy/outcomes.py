"""Counts of the answers of routes under a rollout's analysis, per backend: the controller's input.

Only routes whose `Route.analysed` is set (a rollout, both backends with traffic) are counted,
so every other request pays nothing. Per (route, backend), since the worker started: answers,
5xx answers, failed connects, a latency histogram, and each *outcome* (the status plus the
JSON fields the rollout names, read from at most `OUTCOME_BODY_LIMIT` bytes of the body).
The controller subtracts two readings to get a window.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

from strangler.proxy.metrics import BOUNDS
from strangler.routing.records import Route
from strangler.routing.rollout import OUTCOME_BODY_LIMIT, outcome_label

MAX_OUTCOMES = 64  # distinct outcomes kept per route and backend; more are counted as "other"
OTHER = "other"
STRATUM = " -> "  # between what was asked (method and path) and the outcome, in a label
_ID = re.compile(rb"[^/]*[0-9][^/]*")  # a path segment with a digit: an id, not a new stratum


def empty() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "connect_failures": 0,
        "buckets": [0] * (len(BOUNDS) + 1),
        "outcomes": {},
    }


class OutcomeCounts:
    """One worker's counts of analysed routes."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], dict[str, Any]] = {}

    def _series(self, route: str, backend: str) -> dict[str, Any]:
        series = self.series.get((route, backend))
        if series is None:
            series = self.series[(route, backend)] = empty()
        return series

    def record(
        self,
        route: Route,
        backend: str,
        status: int,
        seconds: float,
        body: bytearray | None,
        method: str = "",
        path: bytes = b"",
    ) -> None:
        """One answer; `body` is what was read of it (None, or over the bound: status only).

        Its label starts with what was asked (`POST /api/verification/check -> 200
        status=approved`), so the analysis compares outcomes of like requests: right after a
        shift the new backend gets the sends of the users just moved and few of their checks.
        """
        assert route.rollout is not None
        series = self._series(route.name, backend)
        series["requests"] += 1
        series["errors"] += status >= 500
        series["buckets"][bisect_left(BOUNDS, seconds)] += 1
        sample = body if body is not None and len(body) <= OUTCOME_BODY_LIMIT else None
        label = outcome_label(status, sample, route.rollout.outcome)
        if method:
            asked = _ID.sub(b":id", path).decode("latin-1")
            label = f"{method} {asked}{STRATUM}{label}"
        outcomes = series["outcomes"]
        if label not in outcomes and len(outcomes) >= MAX_OUTCOMES:
            label = OTHER
        outcomes[label] = outcomes.get(label, 0) + 1

    def connect_failure(self, route: str, backend: str) -> None:
        """The backend could not be connected to (the request went to the fallback)."""
        self._series(route, backend)["connect_failures"] += 1

    def snapshot(self) -> list[list[Any]]:
        return [[route, backend, series] for (route, backend), series in self.series.items()]


def read_limit(body: bytearray, data: bytes) -> None:
    """Keep up to one byte past the bound of an answer's body: enough to tell it is over."""
    room = OUTCOME_BODY_LIMIT + 1 - len(body)
    if room > 0:
        body += data[:room]


def merge(snapshots: Iterable[Iterable[list[Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The workers' counts summed: route -> backend -> series."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for snapshot in snapshots:
        for route, backend, series in snapshot:
            into = out.setdefault(route, {}).setdefault(backend, empty())
            _add(into, series)
    return out


def _add(into: dict[str, Any], series: Mapping[str, Any]) -> None:
    for name in ("requests", "errors", "connect_failures"):
        into[name] += series.get(name, 0)
    into["buckets"] = [a + b for a, b in zip(into["buckets"], series["buckets"], strict=True)]
    for label, n in series.get("outcomes", {}).items():
        into["outcomes"][label] = into["outcomes"].get(label, 0) + n
