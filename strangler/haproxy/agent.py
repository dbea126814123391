"""`python -m strangler.haproxy.agent --routes PATH`: HAProxy as the data plane of a routes file.

The agent is to HAProxy what the master is to the embedded proxy. It renders the routes file
(refusing one HAProxy cannot serve, with the file, the route and the field named), runs real
`haproxy` in master-worker mode, and then watches the file like the embedded proxy does: a
changed split is flipped live through the runtime API (`set map`, no reload), any other
valid change goes through a seamless reload (the listeners and the stick tables pass to the
new process), an invalid file is refused whole and the running table stays. It answers
`/_strangler/status` (behind HAProxy's admin frontend) in the embedded proxy's shape, from
HAProxy's own counters, so `strangler status` and `shift` work the same against either.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from strangler.haproxy import dashboard_side, files, status_doc
from strangler.haproxy.config import SOCKET_FILE, ExportOptions
from strangler.haproxy.rules import map_entries, stick_table
from strangler.haproxy.runtime import RuntimeAPI, RuntimeAPIError
from strangler.proxy.reload import POLL_INTERVAL, TableWatcher
from strangler.proxy.settings import ProxySettings
from strangler.routing.records import RoutingConfigError, RoutingTable

log = logging.getLogger("strangler.haproxy")
START_TIMEOUT = 20.0
SAMPLE_INTERVAL = 1.0
STOP_TIMEOUT = 10.0


def map_only_change(old: RoutingTable, new: RoutingTable) -> bool:
    """True when `new` differs from `old` in split percentages only (the map carries it)."""
    if (old.backends, old.default_backend, len(old.routes)) != (
        new.backends, new.default_backend, len(new.routes),
    ):  # fmt: skip
        return False
    for a, b in zip(old.routes, new.routes, strict=True):
        if replace(a, split=b.split) != b or [n for n, _ in a.split] != [n for n, _ in b.split]:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HAProxyPlane:
    """HAProxy serving the watcher's table; every change applied whole or not at all."""

    def __init__(self, settings: ProxySettings, watcher: TableWatcher, state_dir: Path) -> None:
        self.settings = settings
        self.watcher = watcher
        self.state_dir = state_dir
        self.options = ExportOptions.from_settings(
            settings, state_dir, agent=None, peer_bind=("127.0.0.1", free_port())
        )  # the agent's address is set by `start`
        self.api = RuntimeAPI(state_dir / SOCKET_FILE)
        self.running: RoutingTable = watcher.table  # the table HAProxy serves now
        self.generation = 1
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.process: subprocess.Popen | None = None
        self.history = status_doc.History()
        self.ring = dashboard_side.Ring(state_dir)  # the dashboard's 15 minutes
        self.lock = threading.Lock()

    # --- life ------------------------------------------------------------------------------

    def start(self, agent_address: tuple[str, int]) -> None:
        self.options = replace(self.options, agent=agent_address)
        written = files.write(self.running, self.options)  # RoutingConfigError: refused
        files.check(written.config)
        self.process = subprocess.Popen(files.master_argv(written.config, self.state_dir))
        deadline = time.monotonic() + START_TIMEOUT
        while not self.api.alive():
            if self.process.poll() is not None:
                raise files.HAProxyError(f"haproxy exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise files.HAProxyError(f"haproxy did not answer on {self.api.socket_path}")
            time.sleep(0.05)
        log.info(
            "haproxy %s serving http://%s:%d (admin http://%s:%d), table %s",
            self.api.info().get("Version", "?"), *self.options.bind, *self.options.admin_bind,
            self.running.digest[:12],
        )  # fmt: skip

    def stop(self) -> None:
        """Soft-stop HAProxy (requests under way finish), then make sure it is gone."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGUSR1)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()

    # --- changes ---------------------------------------------------------------------------

    def poll(self) -> None:
        new = self.watcher.poll()
        if new is not None:
            self.apply(new)
        elif self.watcher.last_error and self.watcher.last_error != self.last_error:
            self._refused(self.watcher.last_error)

    def apply(self, new: RoutingTable) -> None:
        try:
            if map_only_change(self.running, new):
                self._flip(new)
            else:
                self._reload(new)
        except (RoutingConfigError, files.HAProxyError, RuntimeAPIError, OSError) as exc:
            self._refused(str(exc))
            return
        with self.lock:
            self.running = new
            self.generation += 1
            self.last_error = self.last_error_at = None
        log.info("routing table applied: generation %d", self.generation)

    def _refused(self, message: str) -> None:
        log.error("routing table refused, keeping the running one: %s", message)
        with self.lock:
            self.last_error, self.last_error_at = message, time.time()

    def _flip(self, new: RoutingTable) -> None:
        """New splits through the runtime API, the map file kept in step for later reloads."""
        path = files.write(new, self.options).splits_map
        wanted = {key: str(upper) for key, upper in map_entries(new)}
        for key, upper in wanted.items():
            self.api.set_map(path, key, upper)
        held = self.api.show_map(path)
        if held != wanted:
            raise RuntimeAPIError(f"{path}: HAProxy holds {held}, not {wanted}")

    def _reload(self, new: RoutingTable) -> None:
        """A config the map cannot carry: checked, then a seamless reload of the master."""
        staging = replace(self.options, state_dir=self.state_dir / "staging")
        files.check(files.write(new, staging).config)  # nothing live is touched if refused
        files.write(new, self.options)
        self._wait(self.api.peers_synced, "haproxy to learn its stick tables")
        old_pid = self.api.info().get("Pid")
        if self.process is None:
            raise files.HAProxyError("haproxy is not running")
        self.process.send_signal(signal.SIGUSR2)  # master-worker: reload, listeners handed over
        self._wait(lambda: self.api.info().get("Pid") not in (None, old_pid), "a new worker")

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if condition():
                    return
            except RuntimeAPIError:
                pass  # a new worker is binding its socket
            if time.monotonic() > deadline:
                raise files.HAProxyError(f"timed out waiting for {what}")
            time.sleep(0.05)

    # --- figures ---------------------------------------------------------------------------

    def sample(self) -> None:
        try:
            rows = self.api.stats()
        except RuntimeAPIError:
            return
        self.history.add(time.time(), status_doc.totals(rows))
        pid_of = lambda: int(self.api.info().get("Pid", "0") or 0)  # noqa: E731
        self.ring.sample(rows, self.running.backends, pid_of)

    def status(self) -> dict:
        with self.lock:
            table, generation = self.running, self.generation
            error = self.last_error
        try:
            rows, info = self.api.stats(), self.api.info()
            entries = sum(self.api.table_entries(stick_table(r)) for r in table.routes if r.sticky)
        except RuntimeAPIError:
            rows, info, entries = [], {}, 0
        watcher = {"generation": generation, "digest": table.digest, "last_reload_error": error}
        return status_doc.document(
            table, watcher, rows, self.history, info, entries, time.time(), applied=True
        )


def serve_status(plane: HAProxyPlane, token: str | None) -> ThreadingHTTPServer:
    """The agent's own listener on a loopback port: HAProxy's admin frontend routes to it."""

    side = dashboard_side.AgentSide(plane, token)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            dashboard_side.respond(self, side)

        do_HEAD = do_POST = do_GET

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # not a client gone away
                super().handle_error(request, client_address)

    # Any free port, but not one HAProxy is about to bind: a port someone found free and let
    # go (a stack on free ports) is the first the kernel hands out again.
    taken = {plane.settings.bind[1], plane.settings.admin_bind[1]}
    server = Server(("127.0.0.1", 0), Handler)
    while server.server_address[1] in taken:
        replacement = Server(("127.0.0.1", 0), Handler)  # opened first: another port
        server.server_close()
        server = replacement
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


def run(plane: HAProxyPlane, stop: threading.Event) -> int:
    server = serve_status(plane, plane.settings.admin_token)
    try:
        plane.start(server.server_address[:2])
        next_sample = 0.0
        while not stop.wait(POLL_INTERVAL):
            if plane.process is not None and plane.process.poll() is not None:
                log.error("haproxy exited with status %d", plane.process.returncode)
                return 1
            plane.poll()
            if time.monotonic() >= next_sample:
                plane.sample()
                next_sample = time.monotonic() + SAMPLE_INTERVAL
        return 0
    finally:
        plane.stop()
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strangler.haproxy.agent", description=__doc__)
    parser.add_argument("--routes", required=True, help="the routing table (routes.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="HAProxy's files")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s haproxy-agent[%(process)d] %(levelname)s %(message)s",
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        settings = ProxySettings.from_env()
        state_dir = (args.state_dir or Path(settings.run_dir or "var/haproxy")).resolve()
        watcher = TableWatcher.load(os.path.abspath(args.routes))
        plane = HAProxyPlane(settings, watcher, state_dir)
        return run(plane, stop)
    except (RoutingConfigError, files.HAProxyError, ValueError, OSError) as exc:
        print(f"strangler haproxy: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
