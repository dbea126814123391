"""A client connection of a worker (httptools): requests parsed, run one at a time in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

import httptools

from strangler.proxy import edge_rules, own_responses
from strangler.proxy.edge_rules import MAX_HEAD, MAX_HEADERS, MAX_TARGET, Refusal
from strangler.proxy.exchange import Exchange
from strangler.routing.records import METHODS

if TYPE_CHECKING:
    from strangler.proxy.plane import Plane

log = logging.getLogger("strangler.proxy")
METHOD_NAMES = {m.encode(): m for m in METHODS}


class RequestReader(asyncio.Protocol):
    """What the public and the admin listener share: the request line and headers, bounded
    (`edge_rules`: MAX_TARGET, MAX_HEAD, MAX_HEADERS)."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.ip_bytes = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # bytes of the head being read, as the parser reports them
        self.reading_head = True  # until this request's headers are complete
        self.raw_head = 0  # bytes received while the head was still incomplete
        self.head_since: float | None = None  # when the head being read began (see ClientProtocol)

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.ip_bytes = self.client_ip.encode()

    def on_message_begin(self) -> None:
        if self.head_since is None:
            self.head_since = self.plane.loop.time()
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.reading_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            raise edge_rules.too_long_target()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        self.head_size += len(name) + len(value)
        if self.head_size > MAX_HEAD or len(self.headers) > MAX_HEADERS:
            raise edge_rules.too_large_head()

    def feed(self, data: bytes) -> None:
        """Parse `data`; a head still incomplete after more than MAX_HEAD + MAX_TARGET bytes
        is refused (httptools holds a header's bytes until it ends, so it is bounded here)."""
        self.parser.feed_data(data)
        if self.reading_head:
            self.raw_head += len(data)
            if self.raw_head > MAX_HEAD + MAX_TARGET:
                raise edge_rules.too_large_head()

    def head_complete(self) -> None:
        self.reading_head = False
        self.raw_head = 0
        self.head_since = None


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
        self.closing_with: bytes | None = None  # a refusal, sent once the answers before it are
        self.head_since: float | None = self.last_seen  # a head must be read by header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        if not self.plane.make_room():
            self.head_since = None
            transport.write(
                own_responses.error_response(
                    503, "too_many_connections", "this proxy is at its connection limit; "
                    "try again shortly", close=True, retry_after=1,
                )
            )  # fmt: skip
            transport.close()
            return
        self.plane.clients.add(self)

    def head_timed_out(self) -> None:
        self.head_since = None
        message = f"the request head did not arrive within {self.plane.settings.header_timeout:g} s"
        self.refuse(Refusal(408, "request_timeout", message))

    def body_timed_out(self) -> None:
        message = f"the request body stalled for {self.plane.settings.read_timeout:g} s"
        self.refuse(Refusal(408, "request_timeout", message))

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.plane.loop.time()
        if self.closing_with is not None:
            return
        try:
            self.feed(data)
        except httptools.HttpParserUpgrade:
            # Upgrades are not tunnelled: the request is served as plain HTTP (its `Upgrade`
            # is hop-by-hop, dropped) and the connection ends with its answer.
            last = self.queue[-1] if self.queue else self.current
            if self.incoming is None and last is not None:
                last.keep_alive = False  # the upgrade request: the ones before it are served
                self.pause_reading("upgrade")
        except Refusal as exc:
            self.refuse(exc)
        except httptools.HttpParserError as exc:
            if isinstance(exc, httptools.HttpParserCallbackError) and not isinstance(
                exc.__context__, Refusal
            ):
                log.error("request handling failed", exc_info=exc.__context__ or exc)
            self.refuse(edge_rules.of_parser_error(exc))

    def refuse(self, refusal: Refusal) -> None:
        """Answer `refusal` after the answers to the requests before it, then close."""
        self.closing_with = own_responses.error_response(
            refusal.status, refusal.error, refusal.message, close=True
        )
        self.pause_reading("refused")
        exchange, self.incoming = self.incoming, None
        if exchange is not None:  # its head was read, its body was not: it gets no answer
            answering = exchange is self.current and exchange.responded
            exchange.client_lost()  # a backend it reached loses the connection mid-body
            if exchange in self.queue:
                self.queue.remove(exchange)
            if exchange is self.current:
                self.current = None
            if answering:  # its answer has begun: cutting it off is all that is left
                self.abort()
                return
        if self.current is None:
            self.write(self.closing_with)
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
        self.head_complete()
        parser = self.parser
        version = parser.get_http_version()
        self.http11 = version == "1.1"
        raw = parser.get_method()
        method = METHOD_NAMES.get(raw) or raw.decode("latin-1")
        headers = self.headers
        edge_rules.check_head(method, version, headers, parser.should_upgrade())
        target, authority = edge_rules.origin_form(self.url)
        if authority is not None:
            headers = [h for h in headers if h[0].lower() != b"host"] + [(b"Host", authority)]
        # RFC 9112 6.1: chunked HTTP/1.0 framing is suspect; the connection ends after it.
        chunked10 = version == "1.0" and parser.should_keep_alive() and self._chunked(headers)
        keep_alive = parser.should_keep_alive() and not self.plane.stopping and not chunked10
        exchange = Exchange(self, method, target, headers, keep_alive)
        self.incoming = exchange
        if self.current is None:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)
            self.pause_reading("pipeline")

    @staticmethod
    def _chunked(headers: list[tuple[bytes, bytes]]) -> bool:
        return any(name.lower() == b"transfer-encoding" for name, _ in headers)

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
        if not self.queue and self.closing_with is not None:
            self.write(self.closing_with)
            self.close()
            return
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
        if self.incoming is not None:  # a body that can never be complete: nothing to answer
            return False
        return self.current is not None  # half-closed clients still get their answer
