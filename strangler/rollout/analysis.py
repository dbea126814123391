"""One analysis of a rollout step: the window's figures per backend, each check, the verdict.

Pure. A *reading* is the data plane's counts of the route since start (the admin status's
`analysis`, see `strangler.proxy.outcomes`); a window is the difference of two readings, so
the old and the new backend are judged over the same seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strangler.proxy.metrics import quantile
from strangler.proxy.outcomes import STRATUM
from strangler.rollout.significance import homogeneity
from strangler.routing.rollout import Rollout

ALPHA = 0.01  # outcome shares must differ this significantly (and by more than the drift)
# A p99 of fewer answers is their slowest one or two: one hiccup of a busy machine. Below this
# many answers of either backend the latency is not judged and a window that passes every
# other check keeps growing, so latency is judged before any promotion (whatever
# min_requests says); errors and drift fail a window at once.
LATENCY_SAMPLES = 100
PASSED, FAILED, WAITING, RESET = "passed", "failed", "waiting", "reset"

Reading = Mapping[str, Mapping[str, Any]]  # backend -> series (requests, errors, ..., outcomes)


@dataclass(frozen=True)
class Series:
    """A backend's answers in one window."""

    requests: int = 0
    errors: int = 0  # 5xx answers
    connect_failures: int = 0
    buckets: tuple[int, ...] = ()
    outcomes: Mapping[str, int] | None = None

    @property
    def error_rate(self) -> float:
        attempts = self.requests + self.connect_failures
        return (self.errors + self.connect_failures) / attempts if attempts else 0.0

    @property
    def p99(self) -> float | None:
        return quantile(list(self.buckets), 0.99) if self.buckets else None


def window(before: Reading, after: Reading, backend: str) -> Series | None:
    """The backend's answers between two readings; None when a counter went back (a worker
    restarted and lost its counts), so the window says nothing."""
    a, b = before.get(backend, {}), after.get(backend, {})
    deltas = {k: b.get(k, 0) - a.get(k, 0) for k in ("requests", "errors", "connect_failures")}
    zeros = [0] * len(b.get("buckets") or a.get("buckets") or [])
    pairs = zip(a.get("buckets") or zeros, b.get("buckets") or zeros, strict=False)
    buckets = [y - x for x, y in pairs]
    labels = set(a.get("outcomes", {})) | set(b.get("outcomes", {}))
    outcomes = {
        k: b.get("outcomes", {}).get(k, 0) - a.get("outcomes", {}).get(k, 0) for k in labels
    }
    if min([*deltas.values(), *buckets, *outcomes.values(), 0]) < 0:
        return None
    return Series(
        **deltas, buckets=tuple(buckets), outcomes={k: n for k, n in outcomes.items() if n}
    )


@dataclass(frozen=True)
class Analysis:
    verdict: str  # passed, failed, waiting (too few requests), reset (counters went back)
    reasons: tuple[str, ...]  # why it failed or waits, one line each
    figures: dict[str, Any]  # what the audit log and the report show

    @property
    def summary(self) -> str:
        f = self.figures
        if self.verdict == RESET:
            return "reset: the data plane's counters restarted; the window starts again"
        parts = [
            f"requests old {f['old_requests']} new {f['new_requests']}",
            f"errors new {_pct(f['new_error_rate'])} old {_pct(f['old_error_rate'])}",
            f"p99 old {_ms(f['old_p99_ms'])} new {_ms(f['new_p99_ms'])}"
            + (f" (x{f['latency_ratio']:.2f})" if f["latency_ratio"] is not None else ""),
        ]
        if f.get("drift") is not None:
            parts.append(
                f"drift {_pct(f['drift'])} on {f['drift_outcome']!r} (p={f['drift_p']:.2g})"
            )
        return "; ".join(parts)


def analyse(old: Series | None, new: Series | None, rollout: Rollout, seconds: float) -> Analysis:
    """Judge a window: every check is made, and each one that fails is named."""
    if old is None or new is None:
        return Analysis(RESET, ("the data plane's counters went back",), {"seconds": seconds})
    figures = _figures(old, new, seconds, rollout.max_outcome_drift)
    waits = [
        f"{side} backend answered {s.requests} requests, below min_requests {rollout.min_requests}"
        for side, s in (("new", new), ("old", old))
        if s.requests < rollout.min_requests
    ]
    if waits:
        return Analysis(WAITING, tuple(waits), figures)
    fails = []
    timed = min(new.requests, old.requests) >= LATENCY_SAMPLES
    if new.error_rate > rollout.max_error_rate:
        fails.append(
            f"error rate {_pct(new.error_rate)} above max_error_rate {_pct(rollout.max_error_rate)}"
        )
    ratio = figures["latency_ratio"]
    if timed and ratio is not None and ratio > rollout.max_latency_ratio:
        fails.append(
            f"p99 {_ms(figures['new_p99_ms'])} is x{ratio:.2f} the old "
            f"{_ms(figures['old_p99_ms'])}, above max_latency_ratio {rollout.max_latency_ratio:g}"
        )
    drift = figures["drift"]
    if drift is not None and drift > rollout.max_outcome_drift and figures["drift_p"] < ALPHA:
        fails.append(
            f"outcome {figures['drift_outcome']!r} is {_pct(figures['drift_new_share'])} of the "
            f"new backend's answers of its kind against {_pct(figures['drift_old_share'])} "
            "of the old's: "
            f"drift {_pct(drift)} above max_outcome_drift {_pct(rollout.max_outcome_drift)} "
            f"(chi-square p={figures['drift_p']:.2g})"
        )
    if fails:
        return Analysis(FAILED, tuple(fails), figures)
    if not timed:
        waiting = (f"a p99 needs {LATENCY_SAMPLES} answers of each backend, got new "
                   f"{new.requests} old {old.requests}",)  # fmt: skip
        return Analysis(WAITING, waiting, figures)
    return Analysis(PASSED, (), figures)


def _figures(old: Series, new: Series, seconds: float, max_drift: float) -> dict[str, Any]:
    old_p99, new_p99 = old.p99, new.p99
    ratio = new_p99 / old_p99 if old_p99 and new_p99 is not None else None
    figures: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "old_requests": old.requests,
        "new_requests": new.requests,
        "old_error_rate": round(old.error_rate, 4),
        "new_error_rate": round(new.error_rate, 4),
        "new_connect_failures": new.connect_failures,
        "old_p99_ms": None if old_p99 is None else round(old_p99 * 1000, 2),
        "new_p99_ms": None if new_p99 is None else round(new_p99 * 1000, 2),
        "latency_ratio": None if ratio is None else round(ratio, 3),
        "drift": None,
    }
    figures.update(drift_figures(old.outcomes or {}, new.outcomes or {}, max_drift))
    return figures


def drift_figures(
    old: Mapping[str, int], new: Mapping[str, int], max_drift: float = 0.0
) -> dict[str, Any]:
    """Outcome drift within each kind of request (a label's part before " -> "; the mix of
    requests differs between backends for a while after every shift): the kind where an
    outcome's share differs by more than `max_drift` most significantly (Bonferroni over the
    kinds), else the one with the largest difference."""
    old_kinds, new_kinds = _kinds(old), _kinds(new)
    found = [
        figures
        for kind in sorted(set(old_kinds) | set(new_kinds))
        if (figures := _kind_drift(old_kinds.get(kind, {}), new_kinds.get(kind, {})))
    ]
    if not found:
        return {"drift": None}
    for figures in found:
        figures["drift_p"] = min(1.0, figures["drift_p"] * len(found))
    failing = [f for f in found if f["drift"] > max_drift]
    if failing:
        return min(failing, key=lambda f: f["drift_p"])
    return max(found, key=lambda f: f["drift"])


def _kinds(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for label, n in counts.items():
        kind = label.split(STRATUM, 1)[0] if STRATUM in label else ""
        kinds.setdefault(kind, {})[label] = n
    return kinds


def _kind_drift(old: Mapping[str, int], new: Mapping[str, int]) -> dict[str, Any] | None:
    """The outcome whose share differs most between the backends, and the test over all."""
    n_old, n_new = sum(old.values()), sum(new.values())
    if not n_old or not n_new:
        return None
    shares = {k: (old.get(k, 0) / n_old, new.get(k, 0) / n_new) for k in set(old) | set(new)}
    worst = max(sorted(shares), key=lambda k: abs(shares[k][1] - shares[k][0]))
    test = homogeneity(old, new)
    old_share, new_share = shares[worst]
    return {
        "drift": round(abs(new_share - old_share), 4),
        "drift_outcome": worst,
        "drift_old_share": round(old_share, 4),
        "drift_new_share": round(new_share, 4),
        "drift_p": test.p_value,
        "drift_chi2": round(test.statistic, 3),
        "drift_df": test.df,
    }


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"
