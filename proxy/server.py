"""`python -m strangler.proxy.server --routes PATH`: a master and one uvloop worker per core."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import socket
import sys
from pathlib import Path

import uvloop

from strangler.proxy.admin_listener import AdminProtocol
from strangler.proxy.client_connection import ClientProtocol
from strangler.proxy.dashboard_server import ROLLOUT_TOOLKIT, Rollouts, Toolkit
from strangler.proxy.master import Master, open_listener, open_worker_listeners
from strangler.proxy.plane import Plane
from strangler.proxy.reload import TableWatcher
from strangler.proxy.settings import ProxySettings
from strangler.routing.records import RoutingConfigError

log = logging.getLogger("strangler.proxy")


def run_worker(
    index: int,
    settings: ProxySettings,
    watcher: TableWatcher,
    run_dir: Path,
    listeners: tuple[list[socket.socket], socket.socket],
):
    """A worker's life after fork: serve the master's listeners until SIGTERM/SIGINT, drain.

    Of the public sockets (one per worker, see `open_worker_listeners`) it serves its own;
    the admin socket is shared by all.

    `watcher` is the master's (copied by the fork): its table may predate the file, which
    the first poll reads if it changed since the master last looked (a restart after a
    shift); an invalid file keeps the master's table and the error is reported.
    """
    watcher.poll()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    plane = Plane(settings, watcher, index, run_dir, loop)
    toolkit = Toolkit()
    rollouts = Rollouts(Toolkit(ROLLOUT_TOOLKIT))
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))

    async def serve() -> None:
        group, admin_sock = listeners
        public_sock = group[index % len(group)]
        for other in group:
            if other is not public_sock:
                other.close()  # this process's copy only: the master keeps them open
        public = await loop.create_server(lambda: ClientProtocol(plane), sock=public_sock)
        admin_server = await loop.create_server(
            lambda: AdminProtocol(plane, toolkit, rollouts), sock=admin_sock
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


def raise_file_limit(settings: ProxySettings) -> None:
    """Let a worker hold its connection cap: each client and its upstream take a descriptor."""
    wanted = settings.max_clients * 2 + settings.pool_size * 4 + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    if limit < wanted:
        log.warning(
            "open files limited to %d: STRANGLER_MAX_CLIENTS=%d needs about %d",
            limit, settings.max_clients, wanted,
        )  # fmt: skip


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
        public = open_worker_listeners(*settings.bind, settings.workers, "STRANGLER_PROXY_BIND")
        admin_sock = open_listener(*settings.admin_bind, "STRANGLER_ADMIN_BIND")
    except (RoutingConfigError, ValueError, OSError) as exc:
        print(f"strangler proxy: {exc}", file=sys.stderr)
        return 2
    raise_file_limit(settings)
    worker = functools.partial(run_worker, listeners=(public, admin_sock))
    return Master(settings, watcher, worker, (*public, admin_sock)).run()


if __name__ == "__main__":
    sys.exit(main())
