"""Who owns a listening port: a bind check before a child starts, and the owner's identity after.

`strangler up` must not announce a stack whose readiness probes were answered by another
one, nor start a child on a port that is taken. Linux tells us which processes hold a
listening socket (`/proc/net/tcp*` gives the socket's inode, `/proc/PID/fd` the holders);
elsewhere `owners` answers None and only the bind check runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
STACK_COMMAND = re.compile(r"strangler(\.cli)? (up|serve)\b")


@dataclass(frozen=True)
class Port:
    """A child's listen address and the environment variable that moves it."""

    host: str
    port: int
    variable: str

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def taken(port: Port) -> str | None:
    """None when `port` can be bound now; otherwise what to tell the user, naming the owner."""
    family = socket.AF_INET6 if ":" in port.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR passes sockets in TIME_WAIT only; never SO_REUSEPORT, which would
        # let this check succeed beside a listener that set it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((port.host, port.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"cannot listen on {port.address} ({port.variable}): {exc.strerror}"
        else:
            return None
    message = f"port {port.port} ({port.address}) is taken"
    holders = sorted(owners(port.port) or ())
    if holders:
        message += f" by pid {holders[0]} ({command_line(holders[0])})"
        stack = strangler_ancestor(holders[0])
        if stack is not None:
            message += f"; another strangler stack seems to run there (pid {stack[0]}: {stack[1]})"
    return f"{message}. Stop it, or move this one with {port.variable}=HOST:PORT"


def owners(port: int) -> set[int] | None:
    """The pids (of those we may inspect) holding a socket that listens on `port`.

    None when this system has no /proc to tell.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    if not inodes:
        return set()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = set()
    for pid in _pids():
        if any(target in wanted for target in _fd_targets(pid)):
            found.add(pid)
    return found


def _fd_targets(pid: int) -> list[str]:
    """What a process's open descriptors point at (empty when it is not ours to read)."""
    targets = []
    with contextlib.suppress(OSError), os.scandir(PROC / str(pid) / "fd") as fds:
        for fd in fds:
            with contextlib.suppress(OSError):
                targets.append(os.readlink(fd.path))
    return targets


def listening(port: int) -> bool:
    """Whether any socket (of any user) listens on `port`, as /proc/net/tcp* tells."""
    return bool(_listening_inodes(port))


def session_of(pid: int) -> int | None:
    """The session id of a process (a child started with a new session leads its own)."""
    return _stat_field(pid, 3)


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "unknown command"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= 90 else text[:87] + "..."


def strangler_ancestor(pid: int) -> tuple[int, str] | None:
    """The strangler command (`up`, `serve`) that `pid` runs under, else the nearest strangler
    process among `pid` and its parents; None when none runs strangler."""
    nearest = None
    for _ in range(8):
        if pid <= 1:
            break
        line = command_line(pid)
        if "strangler" in line:
            nearest = nearest or (pid, line)
            if STACK_COMMAND.search(line):
                return pid, line
        parent = _stat_field(pid, 1)
        if parent is None:
            break
        pid = parent
    return nearest


def _listening_inodes(port: int) -> set[str] | None:
    tables = [PROC / "net" / name for name in ("tcp", "tcp6")]
    if not any(t.exists() for t in tables):
        return None
    inodes = set()
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                listening = len(fields) > 9 and fields[3] == LISTEN
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def _stat_field(pid: int, index: int) -> int | None:
    """A numeric field of /proc/PID/stat after the command name (0: state, 1: ppid, 3: sid)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[index])
    except (IndexError, ValueError):
        return None
