"""The proxy's master process: fork workers, restart any that dies, stop them all on a signal."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from strangler.proxy import history, metrics, steering
from strangler.proxy.reload import TableWatcher
from strangler.proxy.settings import ProxySettings

log = logging.getLogger("strangler.proxy")
STOP_TIMEOUT = 15.0
RESTART_BURST = 5  # restarts of one worker within RESTART_WINDOW before it is slowed down
RESTART_WINDOW = 10.0

# A worker gets the master's watcher: the last valid table, its file signature and any
# reload error, so a restarted worker never starts on a table older than the others run.
Worker = Callable[[int, ProxySettings, TableWatcher, Path], None]


def open_listener(host: str, port: int, variable: str = "") -> socket.socket:
    """The one listening socket of an address, bound by the master before any worker forks.

    No `SO_REUSEPORT`: the workers share this socket (inherited by fork), so no other
    process, even one of the same user, can bind the address while the proxy holds it.
    `SO_REUSEADDR` only lets a restarted proxy bind past old connections in TIME_WAIT.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(bind_failure(host, port, exc, variable)) from exc
    sock.setblocking(False)
    return sock


def open_worker_listeners(
    host: str, port: int, count: int, variable: str = ""
) -> list[socket.socket]:
    """One listening socket per worker, so the kernel spreads connections evenly among them.

    They form one `SO_REUSEPORT` group, steered by a socket filter that picks among the
    first `count` members only: a process that joins the group later (same user, its own
    `SO_REUSEPORT`) is never handed a connection. The address is first bound without
    `SO_REUSEPORT`, so a port anyone else listens on fails at once. Where the filter cannot
    be attached, every worker shares one socket instead.
    """
    open_listener(host, port, variable).close()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            group.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        steering.attach(group[0], count, family)
    except OSError as exc:
        for sock in group:
            sock.close()
        if isinstance(exc, steering.SteeringUnavailable) or count == 1:
            return [open_listener(host, port, variable)]
        raise OSError(bind_failure(host, port, exc, variable)) from exc
    return group


def bind_failure(host: str, port: int, exc: OSError, variable: str = "") -> str:
    """What to tell a user whose listen address cannot be bound, and what to do about it."""
    where = f"{host}:{port}" + (f" ({variable})" if variable else "")
    message = f"cannot listen on {where}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        message += ": another process listens there; stop it"
        message += f", or set {variable} to a free address" if variable else ""
    return message


def check_bindable(*addresses: tuple[str, int]) -> None:
    """Fail before starting anything when a listen address is taken (the message names it)."""
    for host, port in addresses:
        open_listener(host, port).close()


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Master:
    def __init__(
        self,
        settings: ProxySettings,
        watcher: TableWatcher,
        worker: Worker,
        listeners: tuple[socket.socket, ...] = (),
    ) -> None:
        self.settings = settings
        self.listeners = listeners  # inherited by every worker; closed once they all stopped
        self.watcher = watcher
        self.worker = worker
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.restarts: dict[int, list[float]] = {}
        self.stopping = False
        self.own_run_dir = settings.run_dir is None
        self.run_dir = Path(settings.run_dir or tempfile.mkdtemp(prefix="strangler-proxy-"))

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("worker-*.json"):
            stale.unlink()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        for index in range(self.settings.workers):
            self._spawn(index)
        ring = history.History(self.run_dir / history.FILE, time.time())
        next_sample = time.monotonic() + history.STEP
        host, port = self.settings.bind
        admin_host, admin_port = self.settings.admin_bind
        digest = self.watcher.table.digest[:12]
        log.info(
            "listening on http://%s:%d (admin http://%s:%d), %d workers, table %s",
            host, port, admin_host, admin_port, self.settings.workers, digest,
        )  # fmt: skip
        try:
            while not self.stopping:
                self.watcher.poll()  # the workers apply changes; this copy is for restarts
                self._reap()
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + history.STEP
                    self._sample(ring)
                time.sleep(0.1)
        finally:
            self._stop_all()
        return 0

    def _sample(self, ring: history.History) -> None:
        try:
            ring.sample(metrics.read_snapshots(self.run_dir), time.time())
        except OSError as exc:
            log.warning("cannot keep the figures' history: %s", exc)

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _die_with_parent()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                self.worker(index, self.settings, self.watcher, self.run_dir)
            except BaseException:
                log.exception("worker %d crashed", index)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.pids[pid] = index

    def _reap(self) -> None:
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.pids.pop(pid, None)
            if index is None or self.stopping:
                continue
            log.warning("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
            self._throttle(index)
            self._spawn(index)

    def _throttle(self, index: int) -> None:
        now = time.monotonic()
        recent = [t for t in self.restarts.get(index, []) if now - t < RESTART_WINDOW]
        self.restarts[index] = [*recent, now]
        if len(recent) >= RESTART_BURST:
            time.sleep(1.0)  # a worker that cannot start must not spin the machine

    def _stop_all(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
            else:
                self.pids.pop(pid, None)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for sock in self.listeners:
            sock.close()
        if self.own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
