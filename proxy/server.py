"""`python -m proxy.server --routes PATH`: the proxy; a master and one uvloop worker per core."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

import uvloop

from proxy import admin, forwarding, metrics
from proxy.admin_listener import AdminProtocol
from proxy.affinity import HISTORY_FILE, Affinity
from proxy.circuit import Circuits
from proxy.dispatch import Dispatcher, HeaderLookup
from proxy.master import Master, check_bindable
from proxy.protocols import ClientProtocol, UpstreamProtocol
from proxy.reload import POLL_INTERVAL, TableWatcher
from proxy.resp import RedisAffinityStore
from proxy.routing import Backend, RoutingConfigError, RoutingTable
from proxy.settings import ProxySettings
from proxy.upstream import Pool

log = logging.getLogger("strangler.proxy")
HOUSEKEEPING_INTERVAL = 0.25
SNAPSHOT_INTERVAL = 1.0
DRAIN_TIMEOUT = 10.0


class Plane:
    """One worker's data plane: the table, its decisions, upstream pools and figures."""

    def __init__(
        self, settings: ProxySettings, watcher: TableWatcher, index: int, run_dir: Path, loop
    ) -> None:
        self.settings = settings
        self.watcher = watcher
        self.index = index
        self.run_dir = run_dir
        self.loop = loop
        self.circuits = Circuits(settings.circuit_threshold, settings.circuit_cooldown)
        self.dispatcher = Dispatcher(watcher.table, self.circuits, settings.admin_token)
        self.pool = Pool(settings.pool_size)
        self.recorder = metrics.Recorder()
        self.store = RedisAffinityStore(settings.redis_url, loop) if settings.redis_url else None
        self.affinity = Affinity(self.store, history=run_dir / HISTORY_FILE)
        self.affinity.load_history(watcher.table)  # a restarted worker: flips it did not see
        token = settings.internal_token.encode() if settings.internal_token else None
        self.upstream_lines = forwarding.fixed_upstream_lines("http", token)
        self.active: set = set()  # exchanges waiting on a backend, watched for read timeouts
        self.clients: set[ClientProtocol] = set()
        self.tasks: set[asyncio.Task] = set()
        self.stopping = False
        self.last_snapshot = 0.0
        self.last_logged_error: str | None = None

    def start(self) -> None:
        if self.store is not None:
            self.store.start()
        self.loop.call_later(POLL_INTERVAL, self._reload_tick)
        self.loop.call_soon(self._housekeeping_tick)

    def spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open_connection(self, backend: Backend) -> UpstreamProtocol:
        async with asyncio.timeout(self.settings.connect_timeout):
            _, protocol = await self.loop.create_connection(
                lambda: UpstreamProtocol(self, backend.url), backend.host, backend.port
            )
        self.pool.opened += 1
        return protocol

    def connect_failed(self, name: str) -> None:
        circuit = self.circuits.by_backend.get(name)
        if circuit is not None and circuit.record_failure():
            log.warning("circuit opened for backend %s after %d failures", name, circuit.threshold)

    def connect_succeeded(self, name: str) -> None:
        circuit = self.circuits.by_backend.get(name)
        if circuit is not None:
            circuit.record_success()

    def record(self, route: str, backend: str, status: int, seconds: float) -> None:
        self.recorder.record(route, backend, status, seconds, time.time())

    # --- timers ----------------------------------------------------------------------------

    def _reload_tick(self) -> None:
        old = self.watcher.table
        new = self.watcher.poll()
        if new is not None:
            self.dispatcher.set_table(new)
            self.affinity.table_changed(old, new)
            self.pool.retain({b.url for b in new.backends.values()})
            log.info("routing table reloaded: generation %d", self.watcher.generation)
        error = self.watcher.last_error
        if error and error != self.last_logged_error:
            log.error("routing table refused, keeping the running one: %s", error)
        if new is not None or error != self.last_logged_error:
            self.write_snapshot()  # the status shows a reload (or its refusal) at once
        self.last_logged_error = error
        if not self.stopping:
            self.loop.call_later(POLL_INTERVAL, self._reload_tick)

    def _housekeeping_tick(self) -> None:
        now = self.loop.time()
        timeout = self.settings.read_timeout
        for exchange in [e for e in self.active if now - e.last_activity > timeout]:
            exchange.timed_out()
        self.pool.expire(now, self.settings.idle_timeout)
        for name in self.circuits.due_probes():
            self.spawn(self._probe(name))
        if now - self.last_snapshot >= SNAPSHOT_INTERVAL:
            self.write_snapshot()
            idle = self.settings.client_idle_timeout
            for client in [c for c in self.clients if c.current is None]:
                if now - client.last_seen > idle:
                    client.close()
        if not self.stopping:
            self.loop.call_later(HOUSEKEEPING_INTERVAL, self._housekeeping_tick)

    async def _probe(self, name: str) -> None:
        """GET the backend's health path on a fresh connection; any answer below 500 is healthy."""
        backend = self.dispatcher.table.backends.get(name)
        healthy = False
        if backend is not None:
            try:
                async with asyncio.timeout(self.settings.connect_timeout + 1.0):
                    reader, writer = await asyncio.open_connection(backend.host, backend.port)
                    request = f"GET {backend.health} HTTP/1.1\r\nHost: {backend.host}\r\n"
                    writer.write(f"{request}Connection: close\r\n\r\n".encode())
                    status_line = await reader.readline()
                    writer.close()
                parts = status_line.split()
                healthy = len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < 500
            except (OSError, TimeoutError):
                healthy = False
        circuit = self.circuits.by_backend.get(name)
        if circuit is not None:
            circuit.probe_result(healthy)
            if healthy:
                log.info("circuit closed for backend %s: its health check passed", name)

    # --- shared figures --------------------------------------------------------------------

    def snapshot(self) -> dict:
        table: RoutingTable = self.dispatcher.table
        return {
            "index": self.index,
            "pid": os.getpid(),
            "written_at": time.time(),
            "source": table.source,
            "default_backend": table.default_backend,
            "routes": admin.routes_view(table),
            "backends": {n: {"url": b.url, "health": b.health} for n, b in table.backends.items()},
            "table": self.watcher.status(),
            "circuits": self.circuits.snapshot(),
            "affinity": self.affinity.state,
            "affinity_failed_recalls": self.affinity.failed_recalls,
            "pool": {
                "idle": self.pool.size(),
                "opened": self.pool.opened,
                "reused": self.pool.reused,
            },
            "in_flight": len(self.active),
            "connections": len(self.clients),
            "metrics": self.recorder.snapshot(time.time()),
        }

    def write_snapshot(self) -> None:
        self.last_snapshot = self.loop.time()
        try:
            metrics.write_snapshot(self.run_dir / f"worker-{self.index}.json", self.snapshot())
        except OSError as exc:
            log.warning("cannot share this worker's figures: %s", exc)

    def admin_reply(self, method: str, path: str, lookup: HeaderLookup, client_ip: str):
        self.write_snapshot()
        return admin.handle(
            method,
            path,
            lookup,
            client_ip,
            self.settings.admin_token,
            lambda: metrics.read_snapshots(self.run_dir),
            time.time(),
        )

    # --- shutdown --------------------------------------------------------------------------

    async def drain(self) -> None:
        """Stop taking requests, let the ones under way finish, then close every connection."""
        self.stopping = True
        deadline = self.loop.time() + DRAIN_TIMEOUT
        while self.loop.time() < deadline:
            for client in [c for c in self.clients if c.current is None]:
                client.close()
            if not self.clients:
                break
            await asyncio.sleep(0.05)
        for client in list(self.clients):
            client.abort()
        if self.store is not None:
            self.store.close()


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
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))

    async def serve() -> None:
        public = await loop.create_server(
            lambda: ClientProtocol(plane), sock=listening_socket(*settings.bind)
        )
        admin_server = await loop.create_server(
            lambda: AdminProtocol(plane), sock=listening_socket(*settings.admin_bind)
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
    parser = argparse.ArgumentParser(prog="proxy.server", description=__doc__)
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
