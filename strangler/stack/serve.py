"""`strangler serve`: the data plane alone, in front of whatever backends a routing table names.

For your own pair (a legacy app and its replacement, already running): the embedded proxy
serves the routing file on the public URL, with its admin listener beside it and affinity in
$REDIS_URL or in a redis-server of its own, in the foreground until Ctrl-C or SIGTERM stops
every process. Once every worker is ready it records itself in the project's state directory
(`var/dataplane.json`), so `shift`, `rollback` and `status` find it with no port repeated.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from strangler.control import dataplane, project
from strangler.proxy.master import check_bindable
from strangler.routing.records import RoutingConfigError, RoutingTable
from strangler.routing.table import load_table
from strangler.stack import foreground
from strangler.stack import specs as stack
from strangler.stack.supervisor import Child, free_port

DATA_PLANES = stack.DATA_PLANES
DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_ADMIN_BIND = "127.0.0.1:8009"
HEALTH_TIMEOUT = 1.0  # seconds per backend for the banner's look at each one


class ServeError(ValueError):
    """A flag or setting `serve` refuses; the message names it."""


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--routes", type=Path, help="routing file (default: $STRANGLER_ROUTES or the project's)")
    add(
        "--data-plane",
        default=None,
        help=f"which data plane: {', '.join(DATA_PLANES)} (default: $STRANGLER_DATA_PLANE "
        "or embedded)",
    )
    add("--bind", help=f"public HOST:PORT (default: $STRANGLER_PROXY_BIND or {DEFAULT_BIND})")
    add(
        "--admin-bind",
        help=f"admin HOST:PORT (default: $STRANGLER_ADMIN_BIND or {DEFAULT_ADMIN_BIND})",
    )
    add("--workers", type=int, help="proxy workers (default: $STRANGLER_WORKERS or cores)")


def parse_bind(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeError(f"{flag}: expected HOST:PORT with a port 1-65535, got {text!r}")
    return host.strip("[]"), int(port)


def _bind(given: str | None, flag: str, variable: str, default: str) -> tuple[str, int]:
    """The flag's address, else the variable's, else the default; the error names its source."""
    if given:
        return parse_bind(given, flag)
    if os.environ.get(variable):
        return parse_bind(os.environ[variable], variable)
    return parse_bind(default, flag)


def data_plane_of(args: argparse.Namespace) -> str:
    return args.data_plane or os.environ.get("STRANGLER_DATA_PLANE") or "embedded"


def config(args: argparse.Namespace, var: Path) -> stack.StackConfig:
    """Where the data plane listens and keeps its state, from the flags, else the environment."""
    env = os.environ
    data_plane = data_plane_of(args)
    if data_plane not in DATA_PLANES:
        raise ServeError(f"--data-plane: {data_plane!r} is not one of: {', '.join(DATA_PLANES)}")
    proxy = _bind(args.bind, "--bind", "STRANGLER_PROXY_BIND", DEFAULT_BIND)
    admin = _bind(args.admin_bind, "--admin-bind", "STRANGLER_ADMIN_BIND", DEFAULT_ADMIN_BIND)
    if proxy == admin:
        raise ServeError(f"--admin-bind: {admin[0]}:{admin[1]} is the public address too")
    if args.workers is not None and args.workers < 1:
        raise ServeError(f"--workers: must be 1 or more, got {args.workers}")
    redis_bind = env.get("STRANGLER_REDIS_BIND")
    return stack.StackConfig(
        proxy_host=proxy[0],
        proxy_port=proxy[1],
        admin_host=admin[0],
        admin_port=admin[1],
        # A redis-server of its own on a free port: it can never meet a stack's on 6380.
        redis_port=parse_bind(redis_bind, "STRANGLER_REDIS_BIND")[1] if redis_bind else free_port(),
        redis_url=env.get("REDIS_URL") or None,
        var_dir=var.resolve(),
        workers=args.workers,
    )


def main(verb: str, args: argparse.Namespace) -> int:
    where = project.load()
    routes = (args.routes or where.routes).resolve()
    try:
        cfg = config(args, where.var)
        table = load_table(routes)
    except (ServeError, RoutingConfigError) as exc:
        print(f"strangler serve: {exc}", file=sys.stderr)
        return 2
    if foreground.already_running(verb, cfg.var_dir):
        return 1
    try:
        check_bindable((cfg.proxy_host, cfg.proxy_port), (cfg.admin_host, cfg.admin_port))
    except OSError as exc:
        print(f"strangler serve: {exc}", file=sys.stderr)
        return 1
    try:
        plan = [] if cfg.redis_url else [stack.redis_spec(cfg, quiet=True)]
    except FileNotFoundError as exc:
        print(f"strangler serve: {exc}", file=sys.stderr)
        return 1
    # Only Redis from us: the backends' URLs are the routing file's, `${VAR}`s from your env.
    kind = data_plane_of(args)
    base_env = {"REDIS_URL": cfg.effective_redis_url}
    plan.append(stack.data_plane_spec(cfg, routes, kind, base_env))
    extra = {}
    if kind == "haproxy":
        extra = {"runtime_socket": str(stack.haproxy_state_dir(cfg) / "haproxy.sock")}
        extra["stats_url"] = cfg.admin_url + "/_strangler/haproxy"
    plane = functools.partial(
        dataplane.DataPlane.of_this_process, kind, routes, cfg.proxy_url, cfg.admin_url, **extra
    )
    announce = functools.partial(_print_banner, cfg, table, kind)
    return foreground.run(verb, plan, announce, (cfg.var_dir, plane))


def _print_banner(
    cfg: stack.StackConfig, table: RoutingTable, kind: str, children: list[Child]
) -> None:
    redis = _without_password(cfg.effective_redis_url)
    lines = [
        "",
        f"strangler serve: the {kind} data plane runs {table.source}",
        f"  public URL    {cfg.proxy_url}   <- point clients here",
        f"  admin         {cfg.admin_url}/_strangler/status",
    ]
    for backend in table.backends.values():
        role = " (default)" if backend.name == table.default_backend else ""
        if backend.mock is not None:  # canned answers: nothing to ask
            answers = len(backend.mock.answers)
            lines.append(f"  {backend.name:<13} a mock ({answers} canned answers){role}")
            continue
        lines.append(
            f"  {backend.name:<13} {backend.url}{role}{_health(backend.url, backend.health)}"
        )
    for route in table.routes:
        split = " / ".join(f"{name} {percent}%" for name, percent in route.split)
        lines.append(f"  route         {route.name}: {route.prefix} -> {split}")
    lines += [
        f"  redis         {redis}{'' if cfg.redis_url else ' (its own)'}",
        f"  recorded in   {dataplane.path(cfg.var_dir)}: shift, rollback, status find it",
        "  Ctrl-C stops it.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _health(url: str, path: str) -> str:
    """A warning for a backend that does not answer its health path (any answer below 500 does)."""
    try:
        with urllib.request.urlopen(url + path, timeout=HEALTH_TIMEOUT):  # noqa: S310 (the table's http URL)
            return ""
    except urllib.error.HTTPError as exc:
        return "" if exc.code < 500 else f"   warning: {path} answered {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"   warning: not answering on {path} ({reason})"


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
