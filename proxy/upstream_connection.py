"""A kept-alive connection to a backend (httptools), lent to one exchange at a time."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Protocol

import httptools

from strangler.proxy.upstream_pool import Pool
from strangler.routing.records import Backend

log = logging.getLogger("strangler.proxy")
HTTP_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)
PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT


class Relay(Protocol):
    """What a connection tells the exchange it serves (`exchange.Exchange` is one)."""

    last_activity: float

    @property
    def backend_name(self) -> str: ...

    def response_head(self, status: int, reason: bytes, headers: list) -> None: ...

    def response_body(self, body: bytes) -> None: ...

    def response_complete(self, reusable: bool) -> None: ...

    def upstream_lost(self, conn: UpstreamProtocol) -> None: ...

    def flush(self) -> None: ...

    def pause_client(self) -> None: ...

    def resume_client(self) -> None: ...


async def open_upstream(
    loop: asyncio.AbstractEventLoop, pool: Pool, backend: Backend, timeout: float
) -> UpstreamProtocol:
    """A new connection to `backend`; OSError or TimeoutError when it cannot be made in time."""
    async with asyncio.timeout(timeout):
        _, protocol = await loop.create_connection(
            lambda: UpstreamProtocol(loop, pool, backend.url), backend.host, backend.port
        )
    pool.opened += 1
    return protocol


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection to a backend, lent to one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Pool, pool_key: str) -> None:
        self.loop = loop
        self.pool = pool
        self.pool_key = pool_key
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: Relay | None = None
        self.idle_since = 0.0
        self.uses = 0
        self.reused = self.received = False
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.sock: socket.socket | None = None  # the borrowed descriptor alive() peeks at

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def alive(self) -> bool:
        """Peek at the socket: a backend that closed (or died) since the last answer shows
        EOF or a reset here, before a request is lost on it."""
        sock = self.sock
        if sock is None:
            pseudo = self.transport.get_extra_info("socket") if self.transport else None
            if pseudo is None:
                return False
            # The loop's socket object refuses recv(); borrow the descriptor (once: building
            # a socket object costs a getsockname) and hand it back in connection_lost.
            sock = self.sock = socket.socket(pseudo.family, socket.SOCK_STREAM, 0, pseudo.fileno())
        try:
            return sock.recv(1, PEEK) != b""
        except BlockingIOError:
            return True  # nothing to read: open and quiet, as an idle connection should be
        except OSError:
            return False

    def begin(self, exchange: Relay) -> None:
        self.exchange = exchange
        self.reused = self.uses > 0
        self.uses += 1
        self.received = False

    def finish(self) -> None:
        self.exchange = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # nobody asked: a broken or confused backend
            self.transport.close()
            return
        self.received = True
        exchange.last_activity = self.loop.time()
        try:
            self.parser.feed_data(data)
        except HTTP_ERRORS:
            log.warning("malformed response from backend %s", exchange.backend_name)
            self.finish()
            self.transport.close()
            exchange.upstream_lost(self)
        exchange.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sock is not None:
            self.sock.detach()  # the loop closes the descriptor, not this borrowed object
            self.sock = None
        self.pool.discard(self)
        exchange, self.exchange = self.exchange, None
        self.transport = None
        if exchange is not None:
            exchange.upstream_lost(self)
            exchange.flush()

    def eof_received(self) -> bool:
        return False

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.exchange is not None:
            status = self.parser.get_status_code()
            self.exchange.response_head(status, self.reason or b"-", self.headers)

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self.exchange is not None:
            self.exchange.response_complete(self.parser.should_keep_alive())

    # the backend reads the request body slower than the client sends it
    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_client()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_client()
