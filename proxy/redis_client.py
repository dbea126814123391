"""A minimal pipelined Redis client on asyncio for the affinity store: SET EX and GET only.

Writes go straight to the socket and are never awaited by a request; a GET waits for its
reply with a short deadline. When Redis is unreachable the client reports itself unhealthy,
answers every recall with None and reconnects in the background. A Redis that accepts but
does not answer (hung, stopped) is unhealthy too: a reply overdue by more than a recall's
deadline means lookups are failing, and while it is overdue nothing more is sent. An idle
connection is pinged so a hang shows even without traffic; answers clear it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import urlsplit

RECONNECT_DELAY = 0.5
RECALL_TIMEOUT = 0.1
PING_INTERVAL = 0.5  # an idle connection is checked this often


def command(*args: str | bytes | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse_reply(buffer: bytearray) -> tuple[bool, object, int]:
    """(complete, value, bytes used) for the first reply in the buffer; errors are values."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return False, None, 0
    kind, line = buffer[:1], bytes(buffer[1:end])
    if kind in (b"+", b":"):
        return True, line, end + 2
    if kind == b"-":
        return True, RedisError(line.decode(errors="replace")), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return True, None, end + 2
        if len(buffer) < end + 2 + size + 2:
            return False, None, 0
        return True, bytes(buffer[end + 2 : end + 2 + size]), end + 2 + size + 2
    raise RedisError(f"unexpected reply type {kind!r}")


class RedisError(Exception):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self, on_lost, clock) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: deque[tuple[asyncio.Future | None, float]] = deque()  # (waiter, sent at)
        self.on_lost = on_lost
        self.clock = clock

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, data: bytes, waiter: asyncio.Future | None) -> None:
        self.waiters.append((waiter, self.clock()))
        self.transport.write(data)

    def overdue(self) -> bool:
        """The oldest unanswered command waits longer than a recall would."""
        return bool(self.waiters) and self.clock() - self.waiters[0][1] >= RECALL_TIMEOUT

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            complete, value, used = parse_reply(self.buffer)
            if not complete:
                return
            del self.buffer[:used]
            waiter = self.waiters.popleft()[0] if self.waiters else None
            if waiter is not None and not waiter.done():
                waiter.set_result(None if isinstance(value, RedisError) else value)

    def connection_lost(self, exc) -> None:
        for waiter, _ in self.waiters:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()
        self.on_lost(self)


class RedisAffinityStore:
    """Implements `affinity.AffinityStore` on one persistent connection per worker."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.password = parts.password
        self.loop = loop
        self.conn: _Connection | None = None
        self._connecting = False
        self._closed = False
        self.failed_recalls = 0  # lookups that got no answer: Redis down, hung or late

    @property
    def healthy(self) -> bool:
        return self.conn is not None and not self.conn.overdue()

    def start(self) -> None:
        self._schedule_connect(0)
        self.loop.call_later(PING_INTERVAL, self._ping)

    def close(self) -> None:
        self._closed = True
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()

    def remember(self, key: str, backend: str, ttl: int) -> None:
        if self.healthy:  # not piled up on a Redis that does not answer
            self.conn.send(command(b"SET", key, backend, b"EX", ttl), None)

    async def recall(self, key: str) -> str | None:
        if not self.healthy:  # the hash decides at once rather than after a timeout
            self.failed_recalls += 1
            return None
        waiter = self.loop.create_future()
        self.conn.send(command(b"GET", key), waiter)
        try:
            async with asyncio.timeout(RECALL_TIMEOUT):
                value = await waiter
        except TimeoutError:
            self.failed_recalls += 1
            return None
        return value.decode() if isinstance(value, bytes) else None

    def _ping(self) -> None:
        if self._closed:
            return
        conn = self.conn
        if conn is not None and not conn.waiters and conn.transport is not None:
            conn.send(command(b"PING"), None)
        self.loop.call_later(PING_INTERVAL, self._ping)

    def _schedule_connect(self, delay: float) -> None:
        if not self._connecting and not self._closed:
            self._connecting = True
            self.loop.call_later(delay, lambda: self.loop.create_task(self._connect()))

    async def _connect(self) -> None:
        conn = _Connection(self._lost, self.loop.time)
        try:
            async with asyncio.timeout(1.0):
                await self.loop.create_connection(lambda: conn, self.host, self.port)
                setup = []
                if self.password:
                    setup.append(command(b"AUTH", self.password))
                if self.db:
                    setup.append(command(b"SELECT", self.db))
                for data in setup:
                    waiter = self.loop.create_future()
                    conn.send(data, waiter)
                    await waiter
        except (OSError, TimeoutError):
            self._connecting = False
            if conn.transport is not None:
                conn.transport.close()
            self._schedule_connect(RECONNECT_DELAY)
            return
        self._connecting = False
        self.conn = conn

    def _lost(self, conn: _Connection) -> None:
        if self.conn is conn:
            self.conn = None
            self._schedule_connect(RECONNECT_DELAY)
