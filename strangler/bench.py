"""`strangler bench`: wrk against the monolith directly, through both data planes and nginx.

It starts what it needs on free loopback ports (see `bench_setup`), then runs wrk in
alternating rounds so that noise from a shared machine hits every target alike. A benchmark,
not a test: it prints figures and asserts nothing.

The `json` case prices HAProxy's `json:to` key and stick table: the same route through HAProxy
with them (sticky) and without (plain), each request a new user.

The `gateway` case prices a throttled route whose limit is never reached and a cached route
against the same proxy's route without either (see `bench_gateway`).

The `placements` case posts `{"to": ...}` with a new key per request to the sticky `json:to`
route (one placement stored per answer) through three proxies on one Redis: without an
affinity store, with queued placements (the answer goes out at once), and with confirmed
placements (the answer waits until Redis has the placement).

The `outcomes` case prices a rollout's analysis: the same 50/50 route through a proxy that
counts each answer's outcome (its body read, its JSON fields parsed) and one that does not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from strangler import bench_gateway
from strangler.bench_outcomes import TITLE, outcome_targets
from strangler.bench_setup import CASES, Target, start_all
from strangler.stack.supervisor import Supervisor

CLK_TCK = os.sysconf("SC_CLK_TCK")


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="proxy workers")
    parser.add_argument("--no-nginx", action="store_true", help="skip nginx even if installed")
    parser.add_argument("--no-haproxy", action="store_true", help="skip HAProxy even if installed")
    parser.add_argument(
        "--cases", type=lambda text: text.split(","), default=list(CASES),
        help=f"which cases, comma-separated (default {','.join(CASES)})",
    )  # fmt: skip


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us: float | None = None  # the measured process tree's CPU per request


# Ratios printed for each case that has both: HAProxy against nginx, and the price of the
# json:to key and the stick table (sticky) against the same route without them (plain).
COMPARED = (
    ("haproxy", "nginx"), ("proxy", "nginx"), ("sticky", "plain"), ("proxy", "sticky"),
    ("outcomes", "plain"),  # counting outcomes on a route under a rollout's analysis
    *bench_gateway.COMPARED,  # what a never-reached limit and a cache hit cost (or save)
)  # fmt: skip


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> Run:
    threads = min(2, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        argv[1:1] = ["-s", str(script)]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Run(
        rps, latency("50"), latency("99"), requests, errors + int(non2xx[1] if non2xx else 0)
    )


def tree_pids(root: int) -> list[int]:
    """`root` and its children (the proxy's master and its forked workers)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == root:
                pids.append(int(entry.name))
    return pids


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measured(
    url: str, seconds: int, connections: int, root: int | None, script: Path | None = None
) -> Run:
    pids = tree_pids(root) if root else []
    before = cpu_ticks(pids)
    run = wrk(url, seconds, connections, script)
    if root:
        run.cpu_us = (cpu_ticks(pids) - before) / CLK_TCK / max(run.requests, 1) * 1e6
    return run


def run_case(targets: list[Target], args: argparse.Namespace) -> dict[str, list[Run]]:
    for target in targets:  # warm-up: pools filled, code paths hot
        wrk(target.url, 1, args.connections, target.script)
    runs: dict[str, list[Run]] = {t.name: [] for t in targets}
    for round_no in range(args.rounds):
        order = targets[round_no % len(targets) :] + targets[: round_no % len(targets)]
        for target in order:
            run = measured(target.url, args.duration, args.connections, target.root, target.script)
            runs[target.name].append(run)
            cpu = f"  cpu {run.cpu_us:6.1f} us/req" if run.cpu_us is not None else ""
            print(
                f"  round {round_no + 1} {target.name:7} {run.rps:9.0f} req/s  "
                f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}{cpu}",
                flush=True,
            )
    return runs


def summarize(targets: list[Target], runs: dict[str, list[Run]]) -> None:
    """Medians per target, the ratio of each to the first (the reference) side by side."""
    direct = statistics.median(r.rps for r in runs[targets[0].name])
    print(
        f"  {'median':9} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11}"
    )
    for target in targets:
        rs = runs[target.name]
        cpu = [r.cpu_us for r in rs if r.cpu_us is not None]
        rps = statistics.median(r.rps for r in rs)
        print(
            f"  {target.name:9} {rps:9.0f} {rps / direct:6.2f} "
            f"{statistics.median(r.p50_ms for r in rs):8.2f} "
            f"{statistics.median(r.p99_ms for r in rs):8.2f} "
            f"{f'{statistics.median(cpu):.1f}' if cpu else '-':>11}"
        )
    medians = {}
    for t in targets:
        cpu = [r.cpu_us for r in runs[t.name] if r.cpu_us is not None]
        medians[t.name] = (statistics.median(r.rps for r in runs[t.name]),
                           statistics.median(cpu) if cpu else None)  # fmt: skip
    for mine, theirs in COMPARED:
        if mine in medians and theirs in medians and medians[theirs][1]:
            (rps, cpu), (their_rps, their_cpu) = medians[mine], medians[theirs]
            print(
                f"  {mine} vs {theirs}: {rps / their_rps:.2f}x the throughput at "
                f"{cpu / their_cpu:.2f}x the CPU per request"
            )
    base = 0.0
    for target in targets:  # added latency without queueing: one connection
        p50 = wrk(target.url, 2, 1, target.script).p50_ms
        if target is targets[0]:
            base = p50
        else:
            added = p50 - base
            print(
                f"  {target.name} p50 added latency at 1 connection: {added:.3f} ms "
                f"(vs {targets[0].name})"
            )


def main(verb: str, args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("strangler bench: wrk is not installed (apt-get install wrk)")
        return 1
    with tempfile.TemporaryDirectory(prefix="strangler-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with Supervisor(log_dir=tmp / "logs") as sup:
            proxy_root, cases = start_all(sup, tmp, args)
            if "outcomes" in args.cases and shutil.which("nginx") and not args.no_nginx:
                cases[TITLE] = outcome_targets(sup, tmp, args.workers)
            print(
                f"wrk -c{args.connections}, {args.rounds} alternating rounds of "
                f"{args.duration}s; proxy workers {args.workers}, cores {os.cpu_count()}"
            )
            for title, targets in cases.items():
                print(f"\n{title}")
                runs = run_case(targets, args)
                summarize(targets, runs)
            workers = [p for p in tree_pids(proxy_root) if p != proxy_root]
            sizes = ", ".join(f"{rss_mb(p):.1f}" for p in workers)
            print(f"\nproxy RSS per worker (MB): {sizes}; master {rss_mb(proxy_root):.1f}")
    return 0
