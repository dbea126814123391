"""`python -m strangler.proxy.server --routes PATH`: a master and one uvloop worker per core."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvloop

from strangler.proxy.admin_listener import AdminProtocol
from strangler.proxy.client_connection import ClientProtocol
from strangler.proxy.dashboard_server import Toolkit
from strangler.proxy.master import Master, check_bindable
from strangler.proxy.plane import Plane
from strangler.proxy.reload import TableWatcher
from strangler.proxy.settings import ProxySettings
from strangler.routing.records import RoutingConfigError

log = logging.getLogger("strangler.proxy")


def listening_socket(host: str, port: int) -> socket.socket:
    """A listener every worker opens on the same port: the kernel spreads connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_worker(index: int, settings: ProxySettings, watcher: TableWatcher, run_dir: Path):
    """A worker's life after fork: serve until SIGTERM/SIGINT, drain, return.

    `watcher` is the master's (copied by the fork): its table may predate the file, which
    the first poll reads if it changed since the master last looked (a restart after a
    shift); an invalid file keeps the master's table and the error is reported.
    """
    watcher.poll()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    plane = Plane(settings, watcher, index, run_dir, loop)
    toolkit = Toolkit()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))

    async def serve() -> None:
        public = await loop.create_server(
            lambda: ClientProtocol(plane), sock=listening_socket(*settings.bind)
        )
        admin_server = await loop.create_server(
            lambda: AdminProtocol(plane, toolkit), sock=listening_socket(*settings.admin_bind)
        )
        plane.start()
        await stop
        public.close()
        admin_server.close()
        await plane.drain()

    try:
        loop.run_until_complete(serve())
    finally:
        with contextlib.suppress(OSError):
            (run_dir / f"worker-{index}.json").unlink()
        loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strangler.proxy.server", description=__doc__)
    parser.add_argument("--routes", required=True, help="the routing table (routes.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s proxy[%(process)d] %(levelname)s %(message)s"
    )
    try:
        settings = ProxySettings.from_env()
        watcher = TableWatcher.load(os.path.abspath(args.routes))
        check_bindable(settings.bind, settings.admin_bind)
    except (RoutingConfigError, ValueError, OSError) as exc:
        print(f"strangler proxy: {exc}", file=sys.stderr)
        return 2
    return Master(settings, watcher, run_worker).run()


if __name__ == "__main__":
    sys.exit(main())
