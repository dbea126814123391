"""`strangler load`: a headless locust run with CSV and HTML reports and a verdict.

Starts the stack on free ports (or uses --host), runs the personas of loadtests/locustfile.py
for --run-time with --users, writes `var/load-reports/<stamp>_*.csv` and `<stamp>.html`,
and exits 1 when the failure ratio is above --max-failure-ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strangler.control import project
from strangler.loadtests.command import DEFAULT_HELP, run_module
from strangler.loadtests.shifting import shift_and_wait
from strangler.loadtests.stats import locust_totals
from strangler.stack.running import running_stack

LOADTESTS = Path(__file__).resolve().parent
CONF = LOADTESTS / "locust.conf"
ROUTE = "verification"
FORUM_ONLY = ["ForumReader", "ForumWriter"]  # what runs when no sink can read the codes
_DURATION = re.compile(r"(\d+)\s*([hms])")


def parse_duration(text: str) -> int:
    """Seconds in a locust run time: `90`, `30s`, `2m`, `1h30m`."""
    if text.strip().isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(f"not a run time: {text!r} (e.g. 30s, 2m, 1h30m)")
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="public URL of a running stack (default: start one)")
    parser.add_argument("--sink-url", help="with --host: the sink its backends deliver to")
    parser.add_argument("--users", type=int, default=10, help="concurrent users" + DEFAULT_HELP)
    parser.add_argument(
        "--spawn-rate", type=float, default=5, help="users started per second" + DEFAULT_HELP
    )
    parser.add_argument("--run-time", default="30s", help="e.g. 30s, 2m" + DEFAULT_HELP)
    parser.add_argument(
        "--max-failure-ratio", type=float, default=0.01, help="fail above it" + DEFAULT_HELP
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="report folder (default: load-reports in the project's var/)",
    )
    parser.add_argument(
        "--no-proxy", action="store_true", help="start the monolith alone and load it directly"
    )
    parser.add_argument("--workers", type=int, help="gunicorn/proxy workers per server")
    parser.add_argument(
        "--split", type=int, default=0, metavar="PERCENT",
        help="share of the verification route on the service for the run" + DEFAULT_HELP,
    )  # fmt: skip


def locust_argv(args: argparse.Namespace, host: str, sink_url: str | None, prefix: Path) -> list:
    argv = [
        sys.executable, "-m", "locust", "--config", str(CONF),
        "--locustfile", str(LOADTESTS / "locustfile.py"), "--host", host,
        "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", args.run_time, "--csv", str(prefix), "--html", f"{prefix}.html",
        "--max-failure-ratio", str(args.max_failure_ratio),
    ]  # fmt: skip
    if sink_url:
        return [*argv, "--sink-url", sink_url]
    print("loadtests.run: no sink, so no PhoneVerifier: forum personas only", flush=True)
    return [*argv, *FORUM_ONLY]


def run_locust(args: argparse.Namespace, host: str, sink_url: str | None) -> int:
    """Run locust to the end; its exit status is the verdict (see locustfile._verdict)."""
    reports = args.reports or project.load().var / "load-reports"
    reports.mkdir(parents=True, exist_ok=True)
    prefix = reports / time.strftime("%Y%m%d-%H%M%S")
    limit = parse_duration(args.run_time) + 60  # spawn, stop-timeout, reports
    print(f"loadtests.run: {args.users} users for {args.run_time} against {host}", flush=True)
    proc = subprocess.run(
        locust_argv(args, host, sink_url, prefix),
        timeout=limit, check=False,
    )  # fmt: skip
    stats_csv = Path(f"{prefix}_stats.csv")
    if stats_csv.exists():
        totals = locust_totals(stats_csv.read_text())
        print(
            f"\nloadtests.run: {totals.requests} requests, {totals.failures} failed "
            f"({totals.failure_ratio:.2%}; allowed {args.max_failure_ratio:.2%}): "
            f"{'PASS' if proc.returncode == 0 else f'FAIL (status {proc.returncode})'}\n"
            f"  reports: {prefix}_*.csv, {prefix}.html",
            flush=True,
        )
    else:
        print(f"loadtests.run: locust failed (status {proc.returncode})", file=sys.stderr)
    return proc.returncode or (0 if stats_csv.exists() else 1)


def main(verb: str, args: argparse.Namespace) -> int:
    if importlib.util.find_spec("locust") is None:
        print(
            f"strangler {verb}: locust is not installed: pip install 'strangler[load]'",
            file=sys.stderr,
        )
        return 2
    if args.host:
        if args.split or args.no_proxy:
            print("loadtests.run: --split and --no-proxy need a stack of its own, not --host")
            return 2
        return run_locust(args, args.host.rstrip("/"), args.sink_url)
    proxy = not args.no_proxy
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        print("loadtests.run: starting the stack on free ports…", flush=True)
        with running_stack(Path(tmp), service=proxy, proxy=proxy, workers=args.workers) as running:
            if running.routes is not None and args.split:
                reason = f"load test at {args.split}%"
                shift_and_wait(running.cfg.admin_url, running.routes, ROUTE, args.split, reason)
            host = running.proxy_url if proxy else running.monolith_url
            return run_locust(args, host, running.sink.base_url)


if __name__ == "__main__":
    sys.exit(run_module(sys.modules[__name__], "load"))
