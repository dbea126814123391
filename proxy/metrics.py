"""Request counters and latency histograms: recorded per worker, merged across workers."""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Upper bounds in seconds; the last bucket is +Inf.
BOUNDS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
WINDOW = 10  # seconds per slot of the recent-latency ring
RECENT = 60  # "the last minute"


def _empty_series() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "seconds": 0.0, "buckets": [0] * (len(BOUNDS) + 1)}


def _add_to(series: dict[str, Any], slot: int, seconds: float, error: bool) -> None:
    series["requests"] += 1
    series["errors"] += error
    series["seconds"] += seconds
    series["buckets"][slot] += 1


class Recorder:
    """One worker's figures: totals since start plus 10-second slots of the last minute."""

    def __init__(self) -> None:
        self.totals: dict[str, dict[str, Any]] = {}  # backend -> series
        self.by_status: dict[tuple[str, str, int], int] = {}  # (route, backend, status) -> n
        self.slots: dict[int, dict[str, dict[str, Any]]] = {}  # slot start -> backend -> series

    def record(self, route: str, backend: str, status: int, seconds: float, now: float) -> None:
        """Count one finished request; `error` means a 5xx answer, the proxy's own included."""
        slot = bisect_left(BOUNDS, seconds)
        error = status >= 500
        key = (route, backend, status)
        self.by_status[key] = self.by_status.get(key, 0) + 1
        total = self.totals.get(backend)
        if total is None:
            total = self.totals[backend] = _empty_series()
        _add_to(total, slot, seconds, error)
        start = int(now) // WINDOW * WINDOW
        window = self.slots.get(start)
        if window is None:
            window = self.slots[start] = {}
            self._prune(now)
        series = window.get(backend)
        if series is None:
            series = window[backend] = _empty_series()
        _add_to(series, slot, seconds, error)

    def _prune(self, now: float) -> None:
        for start in [s for s in self.slots if s + WINDOW <= now - RECENT]:
            del self.slots[start]

    def snapshot(self, now: float) -> dict[str, Any]:
        """A JSON-able copy, the unit that workers share."""
        self._prune(now)
        return {
            "totals": self.totals,
            "by_status": [[r, b, s, n] for (r, b, s), n in self.by_status.items()],
            "slots": {str(start): window for start, window in self.slots.items()},
        }


class RecentCounts:
    """Named event counts of one worker: totals, and 10-second slots of the last minute.

    What a migration engineer must see at once (an affinity miss, a queued placement, a
    retry) is counted here; the status says `degraded` while any is in the last minute.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.totals: dict[str, int] = {}
        self.slots: dict[int, dict[str, int]] = {}  # slot start -> name -> count

    def count(self, name: str, n: int = 1) -> None:
        now = self.clock()
        self.totals[name] = self.totals.get(name, 0) + n
        start = int(now) // WINDOW * WINDOW
        slot = self.slots.get(start)
        if slot is None:
            slot = self.slots[start] = {}
            self._prune(now)
        slot[name] = slot.get(name, 0) + n

    def _prune(self, now: float) -> None:
        for start in [s for s in self.slots if s + WINDOW <= now - RECENT]:
            del self.slots[start]

    def last_minute(self) -> dict[str, int]:
        now = self.clock()
        recent: dict[str, int] = {}
        for start, counts in self.slots.items():
            if start + WINDOW > now - RECENT:
                for name, n in counts.items():
                    recent[name] = recent.get(name, 0) + n
        return recent

    def snapshot(self) -> dict[str, Any]:
        self._prune(self.clock())
        return {"totals": dict(self.totals), "slots": {str(s): c for s, c in self.slots.items()}}

    def load(self, snapshot: Mapping[str, Any]) -> None:
        """Take over the counts a predecessor published (a worker restarted after a crash)."""
        for name, n in snapshot.get("totals", {}).items():
            self.totals[name] = self.totals.get(name, 0) + int(n)
        for start, counts in snapshot.get("slots", {}).items():
            slot = self.slots.setdefault(int(start), {})
            for name, n in counts.items():
                slot[name] = slot.get(name, 0) + int(n)
        self._prune(self.clock())


def merge_counts(snapshots: Iterable[Mapping[str, Any]], now: float) -> dict[str, dict[str, int]]:
    """RecentCounts snapshots summed: {"totals": {...}, "last_minute": {...}}."""
    totals: dict[str, int] = {}
    recent: dict[str, int] = {}
    for snap in snapshots:
        for name, n in snap.get("totals", {}).items():
            totals[name] = totals.get(name, 0) + n
        for start, counts in snap.get("slots", {}).items():
            if int(start) + WINDOW > now - RECENT:
                for name, n in counts.items():
                    recent[name] = recent.get(name, 0) + n
    return {"totals": totals, "last_minute": recent}


def merge(snapshots: Iterable[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """Sum the workers' figures: totals, per-status counts, and the last minute per backend."""
    totals: dict[str, dict[str, Any]] = {}
    recent: dict[str, dict[str, Any]] = {}
    by_status: dict[tuple[str, str, int], int] = {}
    for snap in snapshots:
        for backend, series in snap.get("totals", {}).items():
            _merge_series(totals.setdefault(backend, _empty_series()), series)
        for route, backend, status, count in snap.get("by_status", []):
            key = (route, backend, int(status))
            by_status[key] = by_status.get(key, 0) + count
        for start, window in snap.get("slots", {}).items():
            if int(start) + WINDOW > now - RECENT:
                for backend, series in window.items():
                    _merge_series(recent.setdefault(backend, _empty_series()), series)
    return {"totals": totals, "recent": recent, "by_status": by_status}


def _merge_series(into: dict[str, Any], series: Mapping[str, Any]) -> None:
    into["requests"] += series["requests"]
    into["errors"] += series["errors"]
    into["seconds"] += series["seconds"]
    into["buckets"] = [a + b for a, b in zip(into["buckets"], series["buckets"], strict=True)]


def quantile(buckets: list[int], q: float) -> float | None:
    """The q-quantile in seconds, interpolated inside the bucket that holds it."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = BOUNDS[i - 1] if i > 0 else 0.0
            high = BOUNDS[i] if i < len(BOUNDS) else BOUNDS[-1] * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return BOUNDS[-1]


def backend_summary(merged: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per backend: requests since start, and last-minute requests, error rate, p50, p99 (ms)."""
    out: dict[str, dict[str, Any]] = {}
    for backend, total in merged["totals"].items():
        last = merged["recent"].get(backend, _empty_series())
        p50, p99 = quantile(last["buckets"], 0.5), quantile(last["buckets"], 0.99)
        out[backend] = {
            "requests": total["requests"],
            "errors": total["errors"],
            "last_minute": {
                "requests": last["requests"],
                "error_rate": round(last["errors"] / last["requests"], 4)
                if last["requests"]
                else 0,
                "p50_ms": None if p50 is None else round(p50 * 1000, 3),
                "p99_ms": None if p99 is None else round(p99 * 1000, 3),
            },
        }
    return out


@dataclass(frozen=True)
class Family:
    """A labelled metric for `prometheus_text`: its samples as (labels, value)."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: list[tuple[dict[str, str], float]]


def prometheus_text(
    merged: Mapping[str, Any],
    gauges: Mapping[str, float] | None = None,
    families: Iterable[Family] = (),
) -> str:
    """Prometheus exposition text of the merged figures."""
    lines = [
        "# HELP strangler_requests_total Requests answered, by route, backend and status.",
        "# TYPE strangler_requests_total counter",
    ]
    for (route, backend, status), count in sorted(merged["by_status"].items()):
        labels = f'route="{_esc(route)}",backend="{_esc(backend)}",status="{status}"'
        lines.append(f"strangler_requests_total{{{labels}}} {count}")
    lines += [
        "# HELP strangler_request_duration_seconds Time from request head to response end.",
        "# TYPE strangler_request_duration_seconds histogram",
    ]
    for backend, series in sorted(merged["totals"].items()):
        label = f'backend="{_esc(backend)}"'
        cumulative = 0
        for bound, count in zip((*BOUNDS, "+Inf"), series["buckets"], strict=True):
            cumulative += count
            lines.append(
                f'strangler_request_duration_seconds_bucket{{{label},le="{bound}"}} {cumulative}'
            )
        lines.append(f"strangler_request_duration_seconds_sum{{{label}}} {series['seconds']:.6f}")
        lines.append(f"strangler_request_duration_seconds_count{{{label}}} {series['requests']}")
    for name, value in (gauges or {}).items():
        lines += [f"# TYPE {name} gauge", f"{name} {value}"]
    for family in families:
        lines += [f"# HELP {family.name} {family.help}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in family.samples:
            text = ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items())
            lines.append(f"{family.name}{{{text}}} {value}")
    return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_snapshot(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def read_snapshots(directory: Path, pattern: str = "worker-*.json") -> list[dict[str, Any]]:
    """Every worker's latest snapshot; a file vanishing or half-written mid-read is skipped."""
    out = []
    for path in sorted(directory.glob(pattern)):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out
