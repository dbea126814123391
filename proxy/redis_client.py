"""A minimal pipelined Redis client on asyncio for the affinity store: SET PX, GET and PING.

It implements `placements.AffinityStore` on one persistent connection per worker. Commands
are written at once and their replies, in order, go to each command's callback; nothing here
waits. Its state tells the placements what to expect: `unreachable` without a connection (it
reconnects in the background, quickly: a restarted Redis is used as soon as it listens),
`stalled` while a reply is overdue (a paused or hung Redis: commands would only pile up),
`refusing` for a moment after an error reply (a Redis loading its append-only file answers
LOADING), else `answering`. An idle connection is pinged so a hang shows without traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from strangler.proxy.placements import ANSWERING, REFUSING, STALLED, UNREACHABLE

log = logging.getLogger("strangler.proxy")
RECONNECT_DELAY = 0.1  # first wait before reconnecting; doubles up to RECONNECT_MAX
RECONNECT_MAX = 1.0
STALL_AFTER = 0.1  # seconds a reply may be late before the store counts as stalled
REFUSE_FOR = 0.1  # seconds the store counts as refusing after an error reply
PING_INTERVAL = 0.5  # an idle connection is checked this often
LOST = object()  # what a command's callback gets when its connection went away

Reply = Callable[[object], None]  # bytes, None (nil), RedisError or LOST


def command(*args: str | bytes | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse_reply(buffer: bytearray, start: int = 0) -> tuple[bool, object, int]:
    """(complete, value, where it ends) for the reply at `start`; errors are values.

    From `start` 0 the end is the number of bytes the reply used. Nothing is copied but the
    values: a buffer of many pipelined replies is read in one pass.
    """
    end = buffer.find(b"\r\n", start)
    if end < 0:
        return False, None, start
    kind, line = buffer[start : start + 1], bytes(buffer[start + 1 : end])
    if kind in (b"+", b":"):
        return True, line, end + 2
    if kind == b"-":
        return True, RedisError(line.decode(errors="replace")), end + 2
    if kind == b"*":  # an array (a script's answer): its elements, in order
        count, used, items = int(line), end + 2, []
        for _ in range(max(count, 0)):
            if buffer[used : used + 1] == b":":  # an integer, the usual element: read here
                end = buffer.find(b"\r\n", used)
                if end < 0:
                    return False, None, start
                items.append(bytes(buffer[used + 1 : end]))
                used = end + 2
                continue
            complete, value, used = parse_reply(buffer, used)
            if not complete:
                return False, None, start
            items.append(value)
        return True, (None if count < 0 else items), used
    if kind == b"$":
        size = int(line)
        if size < 0:
            return True, None, end + 2
        if len(buffer) < end + 2 + size + 2:
            return False, None, start
        return True, bytes(buffer[end + 2 : end + 2 + size]), end + 2 + size + 2
    raise RedisError(f"unexpected reply type {kind!r}")


class RedisError(Exception):
    pass


def _ignore(value: object) -> None:
    return None


class _Connection(asyncio.Protocol):
    def __init__(self, store: RedisAffinityStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: deque[tuple[Reply, float]] = deque()  # (callback, sent at)
        self.outgoing: list[bytes] = []  # commands of this turn of the loop, written together

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, data: bytes, reply: Reply) -> None:
        self.waiters.append((reply, self.clock()))
        if not self.outgoing:
            self.store.loop.call_soon(self._write)
        self.outgoing.append(data)

    def _write(self) -> None:
        """One write per turn of the loop for every command of it (one system call, not one
        per answered request)."""
        outgoing, self.outgoing = self.outgoing, []
        if self.transport is not None and outgoing:
            self.transport.write(b"".join(outgoing))

    def overdue(self) -> bool:
        return bool(self.waiters) and self.clock() - self.waiters[0][1] >= STALL_AFTER

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answered = False
        buffer, position = self.buffer, 0
        while position < len(buffer):
            try:
                complete, value, end = parse_reply(buffer, position)
            except (RedisError, ValueError):
                self.transport.close()  # not a Redis we understand: start afresh
                return
            if not complete:
                break
            position = end
            answered = True
            if isinstance(value, RedisError):
                self.store.refused()
            if self.waiters:
                self.waiters.popleft()[0](value)
        del buffer[:position]  # once for every reply read: no copy per reply
        if answered:
            self.store.answered()

    def connection_lost(self, exc) -> None:
        waiters, self.waiters = self.waiters, deque()
        self.transport = None
        self.store.lost(self)
        for reply, _ in waiters:
            reply(LOST)


class RedisAffinityStore:
    """Implements `placements.AffinityStore` on one persistent connection per worker."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.password = parts.password
        self.loop = loop
        self.conn: _Connection | None = None
        self.refusing_until = 0.0
        self.delay = RECONNECT_DELAY
        self.on_answer: Callable[[], None] = lambda: None
        self.setup_commands: list[bytes] = []  # sent on every new connection (a script load)
        self._connecting = False
        self._closed = False

    @property
    def state(self) -> str:
        conn = self.conn
        if conn is None:
            return UNREACHABLE
        if conn.overdue():
            return STALLED
        return REFUSING if self.loop.time() < self.refusing_until else ANSWERING

    def listen(self, on_answer: Callable[[], None]) -> None:
        self.on_answer = on_answer

    def start(self) -> None:
        self._schedule_connect(0)
        self.loop.call_later(PING_INTERVAL, self._ping)

    def close(self) -> None:
        self._closed = True
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()

    def write(self, key: str, backend: str, ttl_ms: int, done: Callable[[bool], None]) -> bool:
        if self.conn is None:
            return False
        self.conn.send(
            command(b"SET", key, backend, b"PX", ttl_ms),
            lambda value: done(value == b"OK"),
        )
        return True

    def call(self, data: bytes, reply: Reply) -> bool:
        """Send one command (see `command`); False, and nothing sent, without a connection."""
        if self.conn is None:
            return False
        self.conn.send(data, reply)
        return True

    def read(self, key: str, done: Callable[[bool, str | None], None]) -> bool:
        if self.conn is None:
            return False

        def reply(value: object) -> None:
            if value is None or isinstance(value, bytes):
                done(True, None if value is None else value.decode())
            else:
                done(False, None)

        self.conn.send(command(b"GET", key), reply)
        return True

    # called by the connection
    def answered(self) -> None:
        self.on_answer()

    def refused(self) -> None:
        now = self.loop.time()
        if now >= self.refusing_until:  # the first error: look again when it may be over
            self.loop.call_later(REFUSE_FOR, self._refusal_over)
        self.refusing_until = now + REFUSE_FOR

    def _refusal_over(self) -> None:
        left = self.refusing_until - self.loop.time()
        if left > 0:
            self.loop.call_later(left, self._refusal_over)
        else:
            self.on_answer()  # what waits is written (or asked) again now

    def lost(self, conn: _Connection) -> None:
        if self.conn is conn:
            self.conn = None
            self._schedule_connect(self.delay)

    def _ping(self) -> None:
        if self._closed:
            return
        conn = self.conn
        if conn is not None and not conn.waiters and conn.transport is not None:
            conn.send(command(b"PING"), _ignore)
        self.loop.call_later(PING_INTERVAL, self._ping)

    def _schedule_connect(self, delay: float) -> None:
        if not self._connecting and not self._closed:
            self._connecting = True
            self.loop.call_later(delay, lambda: self.loop.create_task(self._connect()))

    async def _connect(self) -> None:
        conn = _Connection(self, self.loop.time)
        try:
            async with asyncio.timeout(1.0):
                await self.loop.create_connection(lambda: conn, self.host, self.port)
                for data in self._setup():
                    reply = self.loop.create_future()
                    conn.send(data, lambda value, r=reply: r.done() or r.set_result(value))
                    value = await reply
                    if isinstance(value, RedisError):
                        log.warning("the affinity store refused the connection: %s", value)
                    if value is LOST or isinstance(value, RedisError):
                        raise OSError(f"setup refused: {value}")
        except (OSError, TimeoutError):
            self._connecting = False
            if conn.transport is not None:
                conn.transport.close()
            self.delay = min(self.delay * 2, RECONNECT_MAX)
            self._schedule_connect(self.delay)
            return
        self._connecting = False
        self.delay = RECONNECT_DELAY
        self.conn = conn
        self.on_answer()

    def _setup(self) -> list[bytes]:
        setup = []
        if self.password:
            setup.append(command(b"AUTH", self.password))
        if self.db:
            setup.append(command(b"SELECT", self.db))
        return setup + self.setup_commands
