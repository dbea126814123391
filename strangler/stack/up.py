"""`strangler up`: the whole stack in the foreground, stopped (every child) on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from strangler.control import dataplane, project
from strangler.routing.table import load_table
from strangler.stack import foreground
from strangler.stack import specs as stack
from strangler.stack.supervisor import Child, ChildSpec


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
    parser.add_argument(
        "--rollout", action="append", default=[], metavar="ROUTE",
        help="run the route's progressive rollout (its rollout: block) inside the stack; "
        "`strangler rollout status|pause|resume|abort|promote ROUTE` steer it",
    )  # fmt: skip


def plan(
    cfg: stack.StackConfig,
    routes: Path,
    data_plane: str = "embedded",
    rollouts: Sequence[str] = (),
) -> list[ChildSpec]:
    """The children in start order; Redis only when no REDIS_URL names an existing server;
    last, a rollout controller per route in `rollouts`."""
    specs = [] if cfg.redis_url else [stack.redis_spec(cfg)]
    specs += [
        stack.monolith_spec(cfg),
        stack.service_spec(cfg),
        stack.consumer_spec(cfg),
        stack.data_plane_spec(cfg, routes, data_plane),
    ]
    specs += [stack.rollout_spec(cfg, routes, route) for route in rollouts]
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
    if foreground.already_running(verb, cfg.var_dir):
        return 1
    try:
        routes = routes_for(args.routes)
        for name in args.rollout:  # refused here: a controller child would only fail again
            route = load_table(routes).route(name)
            if route is None or route.rollout is None:
                raise ValueError(f"{routes}: --rollout {name}: no route {name!r} with a rollout:")
        specs = plan(cfg, routes, args.data_plane, args.rollout)
    except (FileNotFoundError, ValueError) as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 1
    plane = functools.partial(
        dataplane.DataPlane.of_this_process, args.data_plane, routes, cfg.proxy_url, cfg.admin_url
    )
    return foreground.run(
        verb, specs, functools.partial(_print_banner, cfg), (cfg.var_dir.resolve(), plane)
    )


def routes_for(given: Path | None) -> Path:
    """The routing table `up` serves: `--routes`, else the project's.

    The stack is the demo: in a directory that has no routing table yet, the demo's own is
    copied there (the installed one is never edited), so `shift` finds it afterwards.
    """
    routes = (given or project.load().routes).resolve()
    if routes.is_file():
        return routes
    if given is not None or os.environ.get("STRANGLER_ROUTES"):
        raise FileNotFoundError(f"{routes}: no such routing file")
    routes.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stack.DEMO_ROUTES, routes)
    print(f"strangler up: no routing table here: the demo's copied to {routes}", flush=True)
    return routes


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
