"""One worker's shared state, the Plane: its table and decisions, upstream pools, circuits,
affinity, figures and timers. The connections of a worker all reach it; it knows none of them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sized
from pathlib import Path
from typing import Protocol

from strangler.proxy import admin, diversions, forwarding, metrics
from strangler.proxy.affinity import HISTORY_FILE, Affinity
from strangler.proxy.cache import ResponseCache
from strangler.proxy.outcomes import OutcomeCounts
from strangler.proxy.placements import Placements
from strangler.proxy.redis_client import RedisAffinityStore
from strangler.proxy.reload import POLL_INTERVAL, TableWatcher
from strangler.proxy.settings import ProxySettings
from strangler.proxy.throttle import Throttle
from strangler.proxy.upstream_pool import Pool
from strangler.routing.circuit import Circuits
from strangler.routing.dispatch import Dispatcher, HeaderLookup
from strangler.routing.records import RoutingTable

log = logging.getLogger("strangler.proxy")
HOUSEKEEPING_INTERVAL = 0.25
SNAPSHOT_INTERVAL = 1.0
DRAIN_TIMEOUT = 10.0


class Connection(Protocol):
    """A client connection as the plane sees it (`client_connection.ClientProtocol`)."""

    current: object | None  # the exchange under way, if any
    queue: Sized  # pipelined exchanges after it
    last_seen: float
    head_since: float | None  # when the head being read began (None: none is)
    incoming: object | None  # the exchange whose body is being read, if any

    def close(self) -> None: ...

    def head_timed_out(self) -> None: ...

    def body_timed_out(self) -> None: ...

    def abort(self) -> None: ...


class Waiting(Protocol):
    """An exchange waiting on a backend (`exchange.Exchange`), watched for read timeouts."""

    last_activity: float

    def timed_out(self) -> None: ...


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
        self.outcomes = OutcomeCounts()  # only routes under a rollout's analysis
        self.events = metrics.RecentCounts()
        self.retries: dict[tuple[str, str, str], int] = {}  # (route, from, to) -> requests
        self.limited: dict[tuple[str, str], int] = {}  # (route, backend) -> requests refused
        self._take_over_counts()
        self.store = RedisAffinityStore(settings.redis_url, loop) if settings.redis_url else None
        placements = None
        if self.store is not None:
            placements = Placements(
                self.store, self.events, settings.placement_queue, loop.time, loop.call_later
            )
        self.diversions = diversions.Diversions(run_dir / diversions.FILE)
        self.affinity = Affinity(
            placements,
            self.events,
            diversions=self.diversions,
            history=run_dir / HISTORY_FILE,
            store_timeout=settings.store_timeout,
            confirm=settings.confirm_placements,
        )
        self.affinity.load_history(watcher.table)  # a restarted worker: flips it did not see
        self.throttle = Throttle(self.store, loop, self.events, settings.workers)
        self.cache = ResponseCache(settings.cache_bytes, loop.time)
        self.published_state: tuple[str, str | None] | None = None
        token = settings.internal_token.encode() if settings.internal_token else None
        self.upstream_lines = forwarding.fixed_upstream_lines("http", token)
        self.active: set[Waiting] = set()
        self.clients: set[Connection] = set()
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

    def connect_failed(self, name: str) -> None:
        circuit = self.circuits.by_backend.get(name)
        if circuit is not None and circuit.record_failure():
            log.warning("circuit opened for backend %s after %d failures", name, circuit.threshold)
            self.write_snapshot()  # the status shows it at once, not up to a second later

    def count_retry(self, route: str, away_from: str, to: str) -> None:
        key = (route, away_from, to)
        self.retries[key] = self.retries.get(key, 0) + 1
        self.events.count("retries")

    def count_limited(self, route: str, backend: str) -> None:
        key = (route, backend)
        self.limited[key] = self.limited.get(key, 0) + 1
        self.events.count("limited")

    def _take_over_counts(self) -> None:
        """A worker started in place of one that died keeps the counts it published."""
        try:
            before = json.loads((self.run_dir / f"worker-{self.index}.json").read_text())
            self.events.load(before.get("events") or {})
            for route, away_from, to, n in before.get("retries") or []:
                self.retries[(route, away_from, to)] = int(n)
            for route, backend, n in before.get("limited") or []:
                self.limited[(route, backend)] = int(n)
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("the counts of worker %d before its restart are lost: %s", self.index, exc)

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
            self.cache.clear_route({r.name for r in new.routes if r.cache is not None})
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
        state = (self.affinity.state, self.affinity.store_state)
        if now - self.last_snapshot >= SNAPSHOT_INTERVAL or state != self.published_state:
            self.write_snapshot()  # at once when the affinity's state changed
            idle = self.settings.client_idle_timeout
            for client in [c for c in self.clients if c.current is None]:
                if now - client.last_seen > idle:
                    client.close()
        self._expire_heads(now)
        if not self.stopping:
            self.loop.call_later(HOUSEKEEPING_INTERVAL, self._housekeeping_tick)

    def _expire_heads(self, now: float) -> None:
        """408 and a close for clients whose head takes longer than the header timeout, or
        whose body has been silent longer than the read timeout."""
        deadline = now - self.settings.header_timeout
        silent = now - self.settings.read_timeout
        for client in list(self.clients):
            if client.head_since is not None and client.head_since < deadline:
                client.head_timed_out()
            elif client.incoming is not None and client.last_seen < silent:
                client.body_timed_out()

    def make_room(self) -> bool:
        """Whether a new client connection may be taken: under the cap, or once the connection
        that waits longest without a request under way (idle, or reading its head) is closed."""
        if len(self.clients) < self.settings.max_clients:
            return True
        waiting = [c for c in self.clients if c.current is None and not c.queue]
        if not waiting:
            return False
        victim = min(waiting, key=lambda c: c.head_since or c.last_seen)
        self.clients.discard(victim)  # before its connection_lost: not chosen twice
        victim.abort()
        return True

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
                self.write_snapshot()

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
            "affinity_store": self.affinity.store_state,
            "affinity_backlog": self.affinity.placements.backlog if self.affinity.placements else 0,
            "affinity_failed_recalls": self.affinity.failed_recalls,
            "events": self.events.snapshot(),
            "retries": [[r, a, t, n] for (r, a, t), n in self.retries.items()],
            "limited": [[r, b, n] for (r, b), n in self.limited.items()],
            "throttle": self.throttle.state,
            "cache": self.cache.snapshot(),
            "pool": {
                "idle": self.pool.size(),
                "opened": self.pool.opened,
                "reused": self.pool.reused,
            },
            "in_flight": len(self.active),
            "connections": len(self.clients),
            "metrics": self.recorder.snapshot(time.time()),
            "analysis": self.outcomes.snapshot(),
        }

    def write_snapshot(self) -> None:
        self.last_snapshot = self.loop.time()
        self.published_state = (self.affinity.state, self.affinity.store_state)
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
        self.diversions.close()
