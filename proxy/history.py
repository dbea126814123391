"""The last 15 minutes per backend (rate, error rate, p50, p99), sampled by the master.

The workers' figures are cumulative since each worker started and die with it, so the master,
which outlives every worker, samples them every `STEP` seconds: a sample is the difference of
each worker's totals (latency histogram included) since the previous sample. A worker seen
under a new pid (restarted after a crash) started from zero, so its whole totals are its
difference; what a dead worker counted after the previous sample is lost (at most `STEP`
seconds of it). The ring is written to the run directory, where the admin listener of any
worker reads it, and read back when the master starts again on the same run directory.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from strangler.proxy import metrics

STEP = 5.0  # seconds per sample
SPAN = 900.0  # seconds kept: the dashboard's charts cover the last 15 minutes
FILE = "history.json"


def _minus(now: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    if before is None or now["requests"] < before["requests"]:  # new, or its counters reset
        return {"requests": now["requests"], "errors": now["errors"], "buckets": now["buckets"]}
    return {
        "requests": now["requests"] - before["requests"],
        "errors": now["errors"] - before["errors"],
        "buckets": [a - b for a, b in zip(now["buckets"], before["buckets"], strict=True)],
    }


def _figures(series: Mapping[str, Any], interval: float) -> dict[str, Any]:
    requests = series["requests"]
    p50, p99 = metrics.quantile(series["buckets"], 0.5), metrics.quantile(series["buckets"], 0.99)
    return {
        "requests": requests,
        "rate": round(requests / interval, 3),
        "error_rate": round(series["errors"] / requests, 4) if requests else 0,
        "p50_ms": None if p50 is None else round(p50 * 1000, 3),
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
    }


class History:
    """A ring of per-backend samples over `SPAN` seconds, kept in `path`."""

    def __init__(self, path: Path, now: float) -> None:
        self.path = path
        self.samples: deque[dict[str, Any]] = deque(maxlen=int(SPAN / STEP) + 1)
        self.baselines: dict[int, dict[str, Any]] = {}  # worker pid -> its totals last time
        self.last_at = now
        self._load(now)

    def _load(self, now: float) -> None:
        try:
            document = json.loads(self.path.read_text())
            kept = [s for s in document["samples"] if now - float(s["t"]) <= SPAN]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            return  # a damaged ring is started afresh: it only feeds charts
        self.samples.extend(kept)

    def sample(self, snapshots: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
        """Add the sample since the previous one and write the ring; the sample."""
        interval = max(now - self.last_at, 1e-3)
        sums: dict[str, dict[str, Any]] = {}
        baselines: dict[int, dict[str, Any]] = {}
        for snap in snapshots:
            totals = snap["metrics"]["totals"]
            before = self.baselines.get(snap["pid"], {})
            for backend, series in totals.items():
                delta = _minus(series, before.get(backend))
                into = sums.setdefault(backend, {"requests": 0, "errors": 0, "buckets": None})
                into["requests"] += delta["requests"]
                into["errors"] += delta["errors"]
                into["buckets"] = (
                    delta["buckets"]
                    if into["buckets"] is None
                    else [a + b for a, b in zip(into["buckets"], delta["buckets"], strict=True)]
                )
            baselines[snap["pid"]] = totals
        self.baselines, self.last_at = baselines, now
        sample = {
            "t": round(now, 3),
            "interval": round(interval, 3),
            "backends": {name: _figures(s, interval) for name, s in sorted(sums.items())},
        }
        self.samples.append(sample)
        metrics.write_snapshot(self.path, self.document())
        return sample

    def document(self) -> dict[str, Any]:
        return {"step": STEP, "span": SPAN, "samples": list(self.samples)}


def read(path: Path, since: float | None = None) -> dict[str, Any]:
    """The ring as written by the master, only samples newer than `since` when given."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {"step": STEP, "span": SPAN, "samples": []}
    if since is not None:
        document["samples"] = [s for s in document["samples"] if s["t"] > since]
    return document
