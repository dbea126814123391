"""`strangler up`: the whole stack in the foreground, stopped (every child) on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

from strangler.control import project
from strangler.stack import specs as stack
from strangler.stack.supervisor import Child, ChildSpec, StartError, Supervisor

RESTARTS_ALLOWED = 5  # per child within RESTART_WINDOW, then the stack gives up
RESTART_WINDOW = 60.0


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT."""


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--routes",
        type=Path,
        default=None,
        help="routing table (default: $STRANGLER_ROUTES or the project's, see strangler.toml)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn/proxy workers (default: cores)"
    )
    parser.add_argument(
        "--data-plane",
        choices=stack.DATA_PLANES,
        default=os.environ.get("STRANGLER_DATA_PLANE") or "embedded",
        help="what serves the public URL (default: $STRANGLER_DATA_PLANE or embedded)",
    )


def plan(cfg: stack.StackConfig, routes: Path, data_plane: str = "embedded") -> list[ChildSpec]:
    """The children in start order; Redis only when no REDIS_URL names an existing server."""
    specs = [] if cfg.redis_url else [stack.redis_spec(cfg)]
    specs += [
        stack.monolith_spec(cfg),
        stack.service_spec(cfg),
        stack.consumer_spec(cfg),
        stack.data_plane_spec(cfg, routes, data_plane),
    ]
    return specs


def main(verb: str, args: argparse.Namespace) -> int:
    cfg = stack.StackConfig.from_env()
    env = dict(cfg.env)
    # The proxy and both backends must share one internal token for dry runs to be honoured.
    env.setdefault(
        "STRANGLER_INTERNAL_TOKEN",
        os.environ.get("STRANGLER_INTERNAL_TOKEN") or secrets.token_urlsafe(24),
    )
    if args.workers is not None:
        env["STRANGLER_WORKERS"] = str(args.workers)
    cfg = replace(cfg, env=env, workers=args.workers)
    try:
        specs = plan(cfg, (args.routes or project.load().routes).resolve(), args.data_plane)
    except (FileNotFoundError, ValueError) as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 1
    return run(cfg, specs)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(cfg: stack.StackConfig, specs: list[ChildSpec]) -> int:
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    sup = Supervisor(prefix_output=True)
    try:
        for spec in specs:
            sup.start(spec, timeout=60)
        _print_banner(cfg, sup.children)
        return _watch(sup)
    except StartError as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 1
    except _Stop as exc:
        print(f"strangler up: {exc}: stopping", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not interrupt the shutdown half-way and leave orphans.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        sup.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print("strangler up: every process stopped", flush=True)


def _watch(sup: Supervisor) -> int:
    """Restart a child that dies (with a budget), like a process manager would."""
    restarts: dict[str, list[float]] = {}
    while True:
        time.sleep(0.5)
        dead = sup.first_exited()
        if dead is None:
            continue
        now = time.monotonic()
        recent = [t for t in restarts.get(dead.name, []) if now - t < RESTART_WINDOW]
        code = dead.process.returncode
        if len(recent) >= RESTARTS_ALLOWED:
            print(f"strangler up: {dead.name} keeps exiting (status {code}); stopping", flush=True)
            return 1
        print(f"strangler up: {dead.name} exited with status {code}; restarting", flush=True)
        restarts[dead.name] = [*recent, now]
        _restart(sup, dead)


def _restart(sup: Supervisor, dead: Child) -> None:
    sup.stop(dead)
    index = sup.children.index(dead)
    sup.children.remove(dead)
    try:
        sup.start(dead.spec, timeout=60)
    except StartError as exc:
        print(f"strangler up: {exc}", flush=True)
        # Stopped, it stays in the list, so _watch tries again within its budget.
        sup.stop(sup.children[-1])
    # Keep the start order, so the stop order stays the reverse of it.
    sup.children.insert(index, sup.children.pop())


def _print_banner(cfg: stack.StackConfig, children: list[Child]) -> None:
    names = ", ".join(c.name for c in children)
    print(
        "\n"
        f"strangler up: {names} running\n"
        f"  public URL    {cfg.proxy_url}   <- point clients here\n"
        f"  admin         {cfg.admin_url}/_strangler/status\n"
        f"  monolith      {cfg.monolith_url}\n"
        f"  verification  {cfg.service_url}\n"
        f"  redis         {cfg.effective_redis_url}\n"
        "  Ctrl-C stops every process.\n",
        flush=True,
    )
