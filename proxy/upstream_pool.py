"""Pools of idle keep-alive connections to backends, one pool per backend address."""

from __future__ import annotations

import contextlib
from typing import Protocol


class PooledConnection(Protocol):
    pool_key: str
    idle_since: float

    @property
    def usable(self) -> bool:
        """False once the connection is closing or closed."""

    def alive(self) -> bool:
        """True unless the backend has closed its end (checked just before reuse)."""

    def close(self) -> None: ...


class Pool:
    """Idle connections by backend address (`scheme://host:port`); newest reused first.

    Reusing the most recently released connection keeps few sockets warm under light load
    and lets the idle ones age out; the cap bounds file descriptors per worker.
    """

    def __init__(self, max_idle: int = 64) -> None:
        self.max_idle = max_idle
        self.idle: dict[str, list[PooledConnection]] = {}
        self.opened = 0
        self.reused = 0

    def acquire(self, key: str) -> PooledConnection | None:
        stack = self.idle.get(key)
        while stack:
            conn = stack.pop()
            if conn.usable and conn.alive():
                self.reused += 1
                return conn
            conn.close()
        return None

    def release(self, conn: PooledConnection, now: float) -> None:
        stack = self.idle.get(conn.pool_key)
        if stack is None:
            stack = self.idle[conn.pool_key] = []
        if not conn.usable or len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        stack.append(conn)

    def discard(self, conn: PooledConnection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.idle[conn.pool_key].remove(conn)

    def expire(self, now: float, idle_timeout: float) -> int:
        """Close connections idle longer than `idle_timeout`, before the backend does."""
        closed = 0
        for key, stack in self.idle.items():
            keep = []
            for conn in stack:
                if conn.usable and now - conn.idle_since < idle_timeout:
                    keep.append(conn)
                else:
                    conn.close()
                    closed += 1
            self.idle[key] = keep
        return closed

    def retain(self, keys: set[str]) -> None:
        """Close the idle connections of backends no longer configured."""
        for key in [k for k in self.idle if k not in keys]:
            for conn in self.idle.pop(key):
                conn.close()

    def size(self) -> int:
        return sum(len(s) for s in self.idle.values())
