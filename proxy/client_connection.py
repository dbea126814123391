"""A client connection of a worker (httptools): requests parsed, run one at a time in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

import httptools

from strangler.proxy import own_responses
from strangler.proxy.exchange import Exchange
from strangler.proxy.upstream_connection import HTTP_ERRORS
from strangler.routing.records import METHODS

if TYPE_CHECKING:
    from strangler.proxy.plane import Plane

log = logging.getLogger("strangler.proxy")
METHOD_NAMES = {m.encode(): m for m in METHODS}


class RequestReader(asyncio.Protocol):
    """What the public and the admin listener share: the request line and headers."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.ip_bytes = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.ip_bytes = self.client_ip.encode()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


class ClientProtocol(RequestReader):
    """One client connection: parses requests, runs them one at a time (pipelining-safe)."""

    def __init__(self, plane: Plane) -> None:
        super().__init__(plane)
        self.http11 = True
        self.current: Exchange | None = None
        self.incoming: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.paused: set[str] = set()
        self.last_seen = plane.loop.time()

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.plane.clients.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.plane.loop.time()
        try:
            self.parser.feed_data(data)
        except HTTP_ERRORS as exc:
            if isinstance(exc, httptools.HttpParserCallbackError):
                log.error("request handling failed", exc_info=exc.__context__ or exc)
            if self.current is None or not self.current.responded:
                reply = own_responses.error_response(
                    400, "bad_request", "malformed HTTP", close=True
                )
                self.write(reply)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.plane.clients.discard(self)
        for exchange in (self.current, *self.queue):
            if exchange is not None:
                exchange.client_lost()
        self.current, self.incoming = None, None
        self.queue.clear()
        self.transport = None

    # httptools callbacks (and those of RequestReader)
    def on_headers_complete(self) -> None:
        parser = self.parser
        self.http11 = parser.get_http_version() == "1.1"
        raw = parser.get_method()
        method = METHOD_NAMES.get(raw) or raw.decode("latin-1")
        keep_alive = parser.should_keep_alive() and not self.plane.stopping
        exchange = Exchange(self, method, self.url, self.headers, keep_alive)
        self.incoming = exchange
        if self.current is None:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)
            self.pause_reading("pipeline")

    def on_body(self, body: bytes) -> None:
        if self.incoming is not None:
            self.incoming.add_body(body)

    def on_message_complete(self) -> None:
        if self.incoming is not None:
            exchange, self.incoming = self.incoming, None
            exchange.finish_body()

    # called by exchanges
    def exchange_done(self, exchange: Exchange) -> None:
        if exchange is not self.current:
            return
        self.current = None
        if not exchange.keep_alive or self.plane.stopping:
            self.close()
            return
        if self.queue:
            self.current = self.queue.popleft()
            if not self.queue:
                self.resume_reading("pipeline")
            self.current.start()

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self, reason: str) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self.paused:
            self.paused.discard(reason)
            if not self.paused and self.transport is not None:
                self.transport.resume_reading()

    # the client reads slower than the backend answers: slow the backend down
    def pause_writing(self) -> None:
        upstream = self.current.upstream if self.current else None
        if upstream is not None and upstream.transport is not None:
            upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        upstream = self.current.upstream if self.current else None
        if upstream is not None and upstream.transport is not None:
            upstream.transport.resume_reading()

    def eof_received(self) -> bool:
        return self.current is not None  # half-closed clients still get their answer
