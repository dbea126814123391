"""`strangler load-compare`: the verification flow against each backend, side by side.

A benchmark, not a test. Starts the whole stack on free ports and, in alternating rounds,
runs --users threads of send → check flows against the monolith directly, the service
directly, and the proxy with the route at 0 % and at 100 %. Prints req/s, p50/p95/p99 per
request, and each target's ratios to the backend that served it, hit directly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from strangler.loadtests.command import DEFAULT_HELP, run_module
from strangler.loadtests.flows import Flow, FlowLoad
from strangler.loadtests.shifting import shift_and_wait
from strangler.loadtests.stats import LatencySummary, format_table, rate, ratio
from strangler.stack.running import RunningStack, running_stack


@dataclass(frozen=True)
class Target:
    name: str
    baseline: str  # the target that is "the same backend, hit directly"
    percent: int | None = None  # through the proxy at this split; None: direct
    expect_backend: str | None = None  # the X-Strangler-Backend every answer must carry


TARGETS = (
    Target("monolith direct", "monolith direct"),
    Target("service direct", "service direct"),
    Target("proxy at 0%", "monolith direct", 0, "monolith"),
    Target("proxy at 100%", "service direct", 100, "verification"),
)


@dataclass(frozen=True)
class TargetFigures:
    name: str
    flows: int
    failed: int  # not approved, or answered by another backend than expected
    requests: int
    seconds: float
    latency: LatencySummary

    @property
    def rps(self) -> float:
        return rate(self.requests, self.seconds)


def target_figures(target: Target, flows: Sequence[Flow], seconds: float) -> TargetFigures:
    """Figures of one target over all its rounds (`seconds` is their summed duration)."""
    exchanges = [e for f in flows for e in f.exchanges]
    misrouted = {
        id(f)
        for f in flows
        for e in f.exchanges
        if target.expect_backend and e.backend != target.expect_backend
    }
    failed = sum(not f.approved or id(f) in misrouted for f in flows)
    latency = LatencySummary.of([e.seconds for e in exchanges])
    return TargetFigures(target.name, len(flows), failed, len(exchanges), seconds, latency)


def render(figures: Mapping[str, TargetFigures], targets: Sequence[Target] = TARGETS) -> str:
    rows = []
    for target in targets:
        f, base = figures[target.name], figures[target.baseline]
        rows.append((
            f.name, f.flows, f.failed, f.rps, f.latency.p50, f.latency.p95, f.latency.p99,
            f"{ratio(f.rps, base.rps):.2f}x", f"{ratio(f.latency.p50, base.latency.p50):.2f}x",
            f.latency.p50 - base.latency.p50,
        ))  # fmt: skip
    return format_table(
        ("target", "flows", "failed", "req/s", "p50 ms", "p95 ms", "p99 ms",
         "req/s vs direct", "p50 vs direct", "added p50 ms"),
        rows,
    )  # fmt: skip


def url_of(running: RunningStack, target: Target) -> str:
    if target.percent is not None:
        return running.proxy_url
    return running.monolith_url if target.name.startswith("monolith") else running.service_url


def run_round(
    running: RunningStack, target: Target, route: str, users: int, seconds: float
) -> tuple[list[Flow], float]:
    """Flows against one target for `seconds`; the flows and the time they ran."""
    if target.percent is not None:
        assert running.routes is not None
        reason = f"benchmark: {target.name}"
        shift_and_wait(running.cfg.admin_url, running.routes, route, target.percent, reason)
    load = FlowLoad(url_of(running, target), running.code_of, users)
    started = time.monotonic()
    load.start()
    time.sleep(seconds)
    flows = load.stop()
    return flows, time.monotonic() - started


def benchmark(
    running: RunningStack, route: str, rounds: int, users: int, seconds: float, warmup: float
) -> dict[str, TargetFigures]:
    """Alternate the targets round by round (reversed every other round, to cancel drift)."""
    for target in TARGETS:
        run_round(running, target, route, users, warmup)
    flows: dict[str, list[Flow]] = {t.name: [] for t in TARGETS}
    elapsed = dict.fromkeys(flows, 0.0)
    for n in range(rounds):
        print(f"  round {n + 1} of {rounds}", flush=True)
        for target in TARGETS if n % 2 == 0 else TARGETS[::-1]:
            got, took = run_round(running, target, route, users, seconds)
            flows[target.name] += got
            elapsed[target.name] += took
    return {t.name: target_figures(t, flows[t.name], elapsed[t.name]) for t in TARGETS}


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=4, help="concurrent flows" + DEFAULT_HELP)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target" + DEFAULT_HELP)
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=3.0,
        help="seconds per target and round" + DEFAULT_HELP,
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds each" + DEFAULT_HELP
    )
    parser.add_argument("--route", default="verification", help="the route to shift" + DEFAULT_HELP)
    parser.add_argument("--workers", type=int, help="gunicorn/proxy workers per server")


def main(verb: str, args: argparse.Namespace) -> int:
    print(
        f"backends compared: send → check, {args.users} users, {args.rounds} rounds of "
        f"{args.round_seconds:g} s per target; starting the stack on free ports…",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="compare-") as tmp,
        running_stack(Path(tmp), workers=args.workers) as running,
    ):
        figures = benchmark(
            running, args.route, args.rounds, args.users, args.round_seconds, args.warmup
        )
    print(render(figures), flush=True)
    print("latency per request (send or check); 'direct' is the backend that served it")
    failed = sum(f.failed for f in figures.values())
    if failed:
        print(f"{failed} flows failed: the figures above are not trustworthy", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_module(sys.modules[__name__], "load-compare"))
