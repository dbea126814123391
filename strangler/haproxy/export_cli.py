"""`strangler export haproxy`: a complete `haproxy.cfg` and its map, rendered from routes.yaml.

The addresses, timeouts and limits default to the embedded proxy's (the same environment
variables), so the exported HAProxy is a drop-in for it. Whatever the routes file asks that
HAProxy cannot do is refused with the file, the route and the field named; every config
written is checked with `haproxy -c` when haproxy is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from strangler.control import project
from strangler.haproxy import files
from strangler.haproxy.config import ExportOptions, Peer, render
from strangler.proxy.settings import ProxySettings
from strangler.routing.records import RoutingConfigError
from strangler.routing.table import load_table


def _address(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{flag}: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _peer(text: str) -> Peer:
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--peer: expected NAME=HOST:PORT, got {text!r}")
    host, port = _address(address, "--peer")
    return Peer(name, host, port)


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("data_plane", choices=["haproxy"], help="the data plane to export for")
    add("--routes", type=Path, default=None, help="routing file (default: the project's)")
    add(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="the config file to write (default: haproxy/haproxy.cfg in the project's var/)",
    )
    add(
        "--state-dir",
        type=Path,
        default=None,
        help="where HAProxy finds the map and Lua file and puts its runtime API socket at run "
        "time (default: the output's folder)",
    )
    add(
        "--bind",
        type=lambda t: _address(t, "--bind"),
        default=None,
        help="public address (default: $STRANGLER_PROXY_BIND or 127.0.0.1:8000)",
    )
    add(
        "--admin-bind",
        type=lambda t: _address(t, "--admin-bind"),
        default=None,
        help="metrics, stats and status (default: $STRANGLER_ADMIN_BIND or 127.0.0.1:8009)",
    )
    add(
        "--agent",
        type=lambda t: _address(t, "--agent"),
        default=None,
        help="where `strangler.haproxy.agent` answers /_strangler/status, if it runs",
    )
    add(
        "--local-peer",
        default="local=127.0.0.1:10000",
        metavar="NAME=HOST:PORT",
        help="this node in the peers section that shares the stick tables",
    )
    add(
        "--peer",
        type=_peer,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="another HAProxy node sharing affinity (repeat for each)",
    )
    add("--resolver", type=lambda t: _address(t, "--resolver"), default=None,
        help="DNS for the backends' names at run time (Docker: 127.0.0.11:53)")  # fmt: skip


def options_from(args: argparse.Namespace, state_dir: Path) -> ExportOptions:
    local = _peer(args.local_peer)
    return ExportOptions.from_settings(
        ProxySettings.from_env(),
        state_dir,
        bind=args.bind,
        admin_bind=args.admin_bind,
        agent=args.agent,
        local_peer=local.name,
        peer_bind=(local.host, local.port),
        peers=tuple(args.peer),
        resolver=args.resolver,
    )


def main(verb: str, args: argparse.Namespace) -> int:
    where = project.load()
    routes = args.routes or where.routes
    output = (args.output or where.var / "haproxy" / files.CONFIG_FILE).resolve()
    try:
        options = options_from(args, (args.state_dir or output.parent).resolve())
        table = load_table(routes)
        if any(peer.name == options.local_peer for peer in options.peers):
            raise ValueError(f"--peer {options.local_peer} is this node (--local-peer)")
        output.parent.mkdir(parents=True, exist_ok=True)
        # The map and the Lua file go beside the config; the config names them where
        # HAProxy will find them (--state-dir), which may be another machine's path.
        written = files.write(table, replace(options, state_dir=output.parent), config=output)
        if options.state_dir != output.parent:
            text, _ = render(table, options)
            files.write_atomically(output, text)
    except (RoutingConfigError, ValueError, argparse.ArgumentTypeError) as exc:
        print(f"strangler export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"strangler export: {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {written.config}, {written.splits_map.name} and {written.lua.name} from {routes}")
    try:
        if options.state_dir != output.parent:
            print(f"not checked with haproxy -c: its files are meant for {options.state_dir}")
        elif files.installed():
            files.check(written.config)
            print("haproxy -c: the configuration is valid")
        else:
            print("not checked: haproxy is not installed here")
    except files.HAProxyError as exc:
        print(f"strangler export: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("STRANGLER_INTERNAL_TOKEN") is None:
        print("note: run HAProxy with STRANGLER_INTERNAL_TOKEN set, as the backends are")
    return 0
