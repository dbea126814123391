"""The asyncio protocol of a worker's admin listener: requests answered by `dashboard_server`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httptools

from strangler.proxy import dashboard, edge_rules, forwarding, own_responses
from strangler.proxy.admin import Reply
from strangler.proxy.client_connection import RequestReader
from strangler.proxy.dashboard_server import AdminRequest, EmbeddedSide, Rollouts, Toolkit, answer

if TYPE_CHECKING:
    from strangler.proxy.plane import Plane

log = logging.getLogger("strangler.proxy")


class AdminProtocol(RequestReader):
    """The admin listener: status, metrics and the dashboard, one request at a time."""

    def __init__(self, plane: Plane, toolkit: Toolkit, rollouts: Rollouts) -> None:
        super().__init__(plane)
        # The worker's toolkit (its audit path asked once) and its rollouts' cached states.
        self.side = EmbeddedSide(plane, toolkit, rollouts)
        self.body = bytearray()
        self.too_large = False
        self.written: asyncio.Future | None = None  # the last request's answer written

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.body = bytearray()
        self.too_large = False

    def on_body(self, body: bytes) -> None:
        if len(self.body) + len(body) > dashboard.MAX_BODY:
            self.too_large = True
        else:
            self.body += body

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        try:
            self.feed(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, edge_rules.Refusal) as exc:
            refusal = (
                exc if isinstance(exc, edge_rules.Refusal) else edge_rules.of_parser_error(exc)
            )
            self.transport.write(
                own_responses.error_response(
                    refusal.status, refusal.error, refusal.message, close=True
                )
            )
            self.transport.close()
            self.transport = None

    def on_headers_complete(self) -> None:
        self.head_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def on_message_complete(self) -> None:
        transport: asyncio.Transport | None = self.transport
        if transport is None:
            return
        url = self.url.decode("latin-1")
        headers = self.headers

        def lookup(name: str) -> str | None:
            value = forwarding.header_value(headers, name.encode())
            return None if value is None else value.decode("latin-1")

        request = AdminRequest(
            method=self.parser.get_method().decode("latin-1"),
            path=url.partition("?")[0],
            query=dashboard.query_of(url),
            lookup=lookup,
            client_ip=self.client_ip,
            body=bytes(self.body),
            too_large=self.too_large,
        )
        keep_alive = self.parser.should_keep_alive()
        request_id = forwarding.request_id_of(forwarding.header_value(headers, b"x-request-id"))
        transport.pause_reading()  # an action may take a moment: read on once it is answered
        # Requests already read (pipelined) are answered in their order: each waits for the
        # one before it to be written.
        before, self.written = self.written, self.plane.loop.create_future()
        self.plane.spawn(self._respond(request, keep_alive, request_id, before, self.written))

    async def _respond(
        self, request: AdminRequest, keep_alive: bool, request_id: bytes,
        before: asyncio.Future | None, written: asyncio.Future,
    ) -> None:  # fmt: skip
        try:
            try:
                reply = await answer(self.side, request)
            except OSError as exc:
                log.error("admin request %s failed: %s", request.path, exc)
                reply = dashboard.error(500, "admin_failed", str(exc))
            if before is not None:
                await before
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            transport.write(_response(reply, request, keep_alive, request_id))
            if keep_alive:
                transport.resume_reading()
            else:
                transport.close()
        finally:
            written.set_result(None)


def _response(reply: Reply, request: AdminRequest, keep_alive: bool, request_id: bytes) -> bytes:
    return own_responses.own_response(
        reply.status,
        reply.content_type.encode(),
        reply.body,
        request_id=request_id,
        close=not keep_alive,
        head_only=request.method == "HEAD",
        extra=b"".join(b"%s: %s\r\n" % (k.encode(), v.encode("latin-1")) for k, v in reply.headers),
    )
