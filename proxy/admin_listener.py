"""The asyncio protocol of a worker's admin listener: small GETs answered by `admin`."""

from __future__ import annotations

import asyncio

import httptools

from strangler.proxy import edge_rules, forwarding, own_responses
from strangler.proxy.client_connection import RequestReader


class AdminProtocol(RequestReader):
    """The admin listener: small GET requests answered from the workers' shared snapshots."""

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
        method = self.parser.get_method().decode("latin-1")
        path = self.url.partition(b"?")[0].decode("latin-1")

        def lookup(name: str) -> str | None:
            value = forwarding.header_value(self.headers, name.encode())
            return None if value is None else value.decode("latin-1")

        reply = self.plane.admin_reply(method, path, lookup, self.client_ip)
        keep_alive = self.parser.should_keep_alive()
        given = forwarding.header_value(self.headers, b"x-request-id")
        request_id = forwarding.request_id_of(given)
        transport.write(
            own_responses.own_response(
                reply.status,
                reply.content_type.encode(),
                reply.body,
                request_id=request_id,
                close=not keep_alive,
                head_only=method == "HEAD",
            )
        )
        if not keep_alive:
            transport.close()
