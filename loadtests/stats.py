"""Pure figures for the load-test reports: percentiles, rates and per-backend shares."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; NaN when empty."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Request count and latency percentiles, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        ms = [s * 1000 for s in seconds]
        return cls(len(ms), percentile(ms, 50), percentile(ms, 95), percentile(ms, 99))


@dataclass(frozen=True)
class Share:
    """How many requests one backend served, against the share it was configured for."""

    backend: str
    requests: int
    observed_pct: float
    configured_pct: float

    @property
    def deviation(self) -> float:
        """Observed minus configured, in percentage points."""
        return self.observed_pct - self.configured_pct


def shares(served: Iterable[str], configured: Mapping[str, float]) -> list[Share]:
    """Per backend: requests served (from X-Strangler-Backend values) vs the configured split.

    Every configured backend is listed, served or not; a backend that served without being
    configured (it should never happen) is listed too, with a configured share of 0.
    """
    counts = Counter(served)
    total = sum(counts.values())
    names = list(configured) + sorted(set(counts) - set(configured))
    return [
        Share(
            backend=name,
            requests=counts[name],
            observed_pct=100 * counts[name] / total if total else 0.0,
            configured_pct=float(configured.get(name, 0)),
        )
        for name in names
    ]


def within_failure_ratio(requests: int, fail_ratio: float, limit: float) -> bool:
    """A run passes when it measured something and failed no more than `limit` of it."""
    return requests > 0 and fail_ratio <= limit


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 for an empty interval."""
    return count / seconds if seconds > 0 else 0.0


def ratio(value: float, baseline: float) -> float:
    """`value / baseline`, NaN when the baseline is 0 or NaN."""
    if not baseline or math.isnan(baseline):
        return math.nan
    return value / baseline


@dataclass(frozen=True)
class LocustTotals:
    """The `Aggregated` row of locust's `<prefix>_stats.csv`."""

    requests: int
    failures: int

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def locust_totals(stats_csv: str) -> LocustTotals:
    """Read the totals from the text of locust's `_stats.csv` report."""
    for row in csv.DictReader(io.StringIO(stats_csv)):
        if row.get("Name") == "Aggregated":
            return LocustTotals(int(row["Request Count"]), int(row["Failure Count"]))
    raise ValueError("no 'Aggregated' row in the locust stats CSV")


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        rest = zip(row[1:], widths[1:], strict=True)
        parts = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in rest]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.1f}"
    return str(value)
