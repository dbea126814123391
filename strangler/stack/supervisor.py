"""Start child processes, wait until they are ready, and stop them all: `strangler up` and tests."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from strangler.stack import listeners
from strangler.stack.listeners import Port

PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A child exited or never became ready."""


PORT_RANGE = "STRANGLER_PORT_RANGE"  # LOW-HIGH: where free_port looks (a test lane's own)
_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now.

    The kernel picks it, unless $STRANGLER_PORT_RANGE names a range: then it is one of that
    range this process has not handed out before. Test lanes that run side by side each get
    a range of their own below the kernel's ephemeral ports, so a port one lane found free
    and let go cannot be picked by another before it is bound.
    """
    span = _port_range()
    if span is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    low, high = span
    size = high - low + 1
    start = random.randrange(size)
    with _handed_lock:
        for step in range(size):
            port = low + (start + step) % size
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise OSError(f"no free port left in {PORT_RANGE}={low}-{high}")


def _port_range() -> tuple[int, int] | None:
    text = os.environ.get(PORT_RANGE, "").strip()
    if not text:
        return None
    low, sep, high = text.partition("-")
    if not (sep and low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
        raise ValueError(f"{PORT_RANGE}={text!r}: expected LOW-HIGH, e.g. 20000-23999")
    return int(low), int(high)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def http_ready(url: str, expect: int = 200) -> Callable[[], bool]:
    """A readiness probe: GET `url` answers `expect`."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (our own loopback URL)
                return resp.status == expect
        except urllib.error.HTTPError as exc:
            return exc.code == expect
        except (OSError, ValueError):
            return False

    return probe


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """A readiness probe: something accepts TCP connections on host:port."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


def redis_ready(host: str, port: int) -> Callable[[], bool]:
    """A readiness probe: a Redis server answers PING with PONG."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    return probe


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGTERM when we die (even by SIGKILL), or None.

    libc is looked up here, in the parent: between fork and exec the child may only make
    the one foreign call, since other threads (output relays) may hold locks it would need.
    """
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    term = int(signal.SIGTERM)

    def set_signal() -> None:
        prctl(PR_SET_PDEATHSIG, term)

    return set_signal


@dataclass
class ChildSpec:
    """What to run, and how to know it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    url: str | None = None
    cwd: str | None = None
    # The addresses it listens on: each must be free before it starts, and held by it
    # (not by another process answering its readiness probe) before it counts as ready.
    ports: tuple[Port, ...] = ()


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen
    log_path: Path | None

    @property
    def name(self) -> str:
        return self.spec.name

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Supervisor:
    """Owns a set of children: starts them in order and stops them in reverse order."""

    def __init__(
        self, log_dir: Path | None = None, inherit_output: bool = False, prefix_output: bool = False
    ) -> None:
        self.children: list[Child] = []
        self.log_dir = log_dir
        self.inherit_output = inherit_output
        self.prefix_output = prefix_output  # `name | line` on our stdout, like a Procfile runner
        self._forker: ThreadPoolExecutor | None = None

    def _fork(self, argv: list[str], **options: object) -> subprocess.Popen:
        """Popen, from a thread that lives as long as this supervisor.

        The parent-death signal fires when the *thread* that forked the child ends, not the
        process: a child started again from a short-lived thread (a fault injector restarting
        Redis) would get SIGTERM when that thread finished.
        """
        if threading.current_thread() is threading.main_thread():
            return subprocess.Popen(argv, **options)  # type: ignore[call-overload]
        if self._forker is None:
            self._forker = ThreadPoolExecutor(1, thread_name_prefix="supervisor-fork")
        return self._forker.submit(subprocess.Popen, argv, **options).result()

    def start(self, spec: ChildSpec, timeout: float = 30.0) -> Child:
        for port in spec.ports:
            problem = listeners.taken(port)
            if problem is not None:
                raise StartError(f"{spec.name} cannot start: {problem}")
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        log_path = None
        if self.prefix_output:
            out = subprocess.PIPE
        elif self.inherit_output:
            out = None
        elif self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{spec.name}.log"
            out = log_path.open("ab")
        else:
            out = subprocess.DEVNULL
        process = self._fork(
            list(spec.argv),
            env=env,
            cwd=spec.cwd,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        if out not in (None, subprocess.DEVNULL, subprocess.PIPE):
            out.close()
        if out is subprocess.PIPE:
            _relay_prefixed(spec.name, process)
        child = Child(spec, process, log_path)
        self.children.append(child)
        self.wait_ready(child, timeout)
        return child

    def wait_ready(self, child: Child, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if not child.alive():
                raise StartError(
                    f"{child.name} exited with status {child.process.returncode} before it was "
                    f"ready\n{child.log_tail()}"
                )
            if (child.spec.ready is None or child.spec.ready()) and _holds_its_ports(child):
                return
            if time.monotonic() > deadline:
                raise StartError(f"{child.name} not ready after {timeout:.0f}s\n{child.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def stop(self, child: Child, timeout: float = 10.0) -> int | None:
        """SIGTERM the child's process group, then SIGKILL what is left after `timeout`."""
        if child.alive():
            _signal_group(child.process, signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait(5)
        # Workers forked by the child share its group: make sure none outlives it.
        _signal_group(child.process, signal.SIGKILL)
        return child.process.returncode

    def kill(self, child: Child) -> None:
        """SIGKILL the whole group at once, as a crash would."""
        _signal_group(child.process, signal.SIGKILL)
        child.process.wait(5)

    def restart(self, child: Child, timeout: float = 60.0) -> Child:
        """Start `child`'s spec again (killing what is left of it first), in its place."""
        if child.alive():
            self.kill(child)
        index = self.children.index(child)
        self.children.remove(child)
        fresh = self.start(child.spec, timeout=timeout)
        self.children.remove(fresh)
        self.children.insert(index, fresh)  # stopped in the order it was first started
        return fresh

    def child(self, name: str) -> Child:
        """The (latest) child started under `name`."""
        found = [c for c in self.children if c.name == name]
        if not found:
            raise KeyError(f"no child named {name!r}")
        return found[-1]

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()
        if self._forker is not None:
            self._forker.shutdown()
            self._forker = None

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _holds_its_ports(child: Child) -> bool:
    """Whether the child's own processes (its session) hold every port it declares.

    Raises StartError when another process holds one: the readiness probe was answered by
    someone else (another stack on the same ports), which will not go away by waiting.
    """
    for port in child.spec.ports:
        holders = listeners.owners(port.port)
        if holders is None:  # no /proc: the bind check before the start is all we have
            continue
        foreign = {pid for pid in holders if listeners.session_of(pid) != child.process.pid}
        if foreign:
            pid = min(foreign)
            raise StartError(
                f"{child.name}: port {port.port} ({port.variable}) is held by pid {pid} "
                f"({listeners.command_line(pid)}), not by the process started; another stack "
                f"seems to run there. Stop it, or move this one with {port.variable}=HOST:PORT"
            )
        if not holders:
            if listeners.listening(port.port):  # held, by a process we may not inspect
                raise StartError(
                    f"{child.name}: port {port.port} ({port.variable}) is held by a process of "
                    f"another user. Stop it, or move this one with {port.variable}=HOST:PORT"
                )
            return False
    return True


def _relay_prefixed(name: str, process: subprocess.Popen) -> None:
    width = 12

    def relay() -> None:
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            sys.stdout.write(f"{name:<{width}}| {line}\n")
            sys.stdout.flush()
        process.stdout.close()

    threading.Thread(target=relay, name=f"relay-{name}", daemon=True).start()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args` with this interpreter.

    `-P`: the working directory is not put on the module path, so a `strangler` folder
    there (a checkout, say) never shadows the installed package the command came from.
    """
    return [sys.executable, "-P", "-m", module, *args]
