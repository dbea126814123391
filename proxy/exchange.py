"""One request's journey through a worker: choose a backend, connect, send the request.

The answer's way back is `upstream_response.ResponseSide`; `retry.RetrySide` sends a request
elsewhere when its backend cannot take it (failover, a retried refusal); `gateway_side`
applies the route's limits, cache, mocks and rewrites. `Exchange` extends them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler.proxy.forwarding import (
    LAST_CHUNK,
    chunk,
    header_value,
    normalised_target,
    request_id_of,
    scan_request,
    upstream_head,
)
from strangler.proxy.gateway_side import GatewaySide
from strangler.proxy.own_responses import byte_size, error_response
from strangler.proxy.upstream_connection import UpstreamProtocol, open_upstream
from strangler.proxy.upstream_response import CHUNKED, ClientSide

if TYPE_CHECKING:
    from strangler.proxy.placements import Recalled
    from strangler.proxy.plane import Plane
    from strangler.routing.dispatch import Decision

BUFFER_LIMIT = 256 * 1024  # body bytes held while connecting before the client is paused
PROXY_LABEL = "(proxy)"  # metrics label of answers no backend was chosen for


class Exchange(GatewaySide):
    """A request and its response; the client protocol feeds it, the upstream answers it."""

    __slots__ = (
        "body", "body_size", "buffered", "client", "content_length", "dead", "decision",
        "extra_head", "fill", "fill_size", "finished", "has_body", "head", "headers", "held",
        "held_bytes", "informational", "keep_alive", "last_activity", "matched", "method",
        "out", "out_chunked", "path", "plane", "query", "recalled", "request_done",
        "request_id", "resend", "resp_chunked", "responded", "response_done", "retried",
        "retries", "route", "sample", "started", "stash", "stash_size", "status", "target", "tried",
        "until_close", "upstream", "wait_body",
    )  # fmt: skip

    def __init__(
        self, client: ClientSide, method: str, target: bytes, headers: list, keep_alive: bool
    ) -> None:
        self.client = client
        self.plane: Plane = client.plane
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition(b"?")
        self.headers = headers
        self.head = head = scan_request(headers)
        self.keep_alive = keep_alive
        self.started = self.last_activity = self.plane.loop.time()
        self.request_id = request_id_of(head.request_id)
        length = head.content_length
        self.content_length = int(length) if length is not None else None
        self.has_body = length is not None or head.transfer_encoding is not None
        self.body: list[bytes] = []
        self.body_size = self.buffered = self.retries = self.status = 0
        self.held_bytes = self.stash_size = 0
        self.out_chunked = self.resp_chunked = self.until_close = False
        self.request_done = self.response_done = self.responded = self.informational = False
        self.dead = self.wait_body = self.held = self.finished = self.retried = False
        self.stash: list | None = None
        self.sample: bytearray | None = None  # the answer's body, read for its outcome
        self.resend: bytes | None = None
        self.recalled: Recalled | None = None
        self.route = None
        self.decision: Decision | None = None
        self.upstream: UpstreamProtocol | None = None
        self.tried: list[str] = []
        self.out: list[bytes] = []
        self.extra_head = b""
        self.fill: list | None = None
        self.fill_size = 0
        self.matched = ""

    def lookup(self, name: str) -> str | None:
        """A request header by lower-case name (the client's `X-Strangler-*` were set aside)."""
        if name.startswith("x-strangler-"):
            strangler = self.head.strangler
            return strangler.get(name) if strangler else None
        value = header_value(self.headers, name.encode())
        return None if value is None else value.decode("latin-1")

    # --- request side --------------------------------------------------------------------

    def start(self) -> None:
        plane = self.plane
        normal = normalised_target(self.path)
        path = None
        if normal is not None:
            path, forwarded = normal
            if forwarded is not self.path:  # the backend gets the path the route was chosen on
                self.target = forwarded + self.target[len(self.path) :]
        if path is None:
            self.fail(400, "bad_request", "the request target must be an absolute path")
        elif path.startswith("/_strangler/") or path == "/_strangler":
            self.fail(404, "not_found", "no such path")
        elif self.content_length is not None and self.content_length > plane.settings.max_body:
            self.too_large()
        else:
            if self.has_body and (self.head.expect or b"").lower() == b"100-continue":
                self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.matched = path
            self.route = plane.dispatcher.route_for(self.method, path, self.lookup)
            if self.has_body and not self.request_done and plane.dispatcher.needs_body(self.route):
                self.wait_body = True  # the sticky key is in the body: choose once it is read
            else:
                self.decide()

    def decide(self) -> None:
        plane = self.plane
        body = b"".join(self.body) if self.wait_body else None
        self.decision = plane.dispatcher.decide(
            self.route, self.lookup, self.query, self.client.client_ip, body
        )
        self.limits_then_place()  # then the cache, a recall if needed, and the backend

    async def _recall_then_connect(self) -> None:
        d = self.decision
        self.recalled = recalled = await self.plane.affinity.recall(d.route, d.key)
        if self.dead:
            return
        remembered, dispatcher = recalled.backend, self.plane.dispatcher
        if remembered is not None and remembered != d.backend:
            if dispatcher.usable_affinity(remembered):
                d.backend = remembered
            elif remembered in dispatcher.table.backends:  # its backend is down
                self._pinned_to_unavailable(remembered)
                return
        self.connect(d.backend)

    def connect(self, name: str) -> None:
        self.tried.append(name)
        backend = self.plane.dispatcher.backend(name)
        if backend.mock is not None:
            self.answer_mock(backend)
            return
        conn = self.plane.pool.acquire(backend.url)
        if conn is not None:
            self.attach(conn)
        else:
            self.plane.spawn(self._open(backend))

    async def _open(self, backend) -> None:
        plane = self.plane
        try:
            conn = await open_upstream(
                plane.loop, plane.pool, backend, plane.settings.connect_timeout
            )
        except (OSError, TimeoutError):
            plane.connect_failed(backend.name)
            d = self.decision
            if d is not None and d.route is not None and d.route.analysed:
                plane.outcomes.connect_failure(d.route.name, backend.name)
            if not self.dead:
                self._failover(backend.name)
            return
        plane.connect_succeeded(backend.name)
        if self.dead:
            plane.pool.release(conn, plane.loop.time())
        else:
            self.attach(conn)

    def attach(self, conn: UpstreamProtocol) -> None:
        self.upstream = conn
        conn.begin(self)
        plane = self.plane
        target, kept = self.rewritten(self.tried[-1])
        head = upstream_head(
            self.method.encode(),
            target,
            self.head,
            kept=kept,
            client_ip=self.client.ip_bytes,
            request_id=self.request_id,
            fixed=plane.upstream_lines,
            body_framing=self._request_framing(),
        )
        if self.body:
            if self.decision.route is not None and self.decision.route.retry is not None:
                self.resend = b"".join(self.body)  # held whole (the body limit bounds it)
            body = [chunk(b) for b in self.body] if self.out_chunked else self.body
            data = [head, *body]
            if self.request_done and self.out_chunked:
                data.append(LAST_CHUNK)
            self.body, self.buffered = [], 0
            head = b"".join(data)
        elif self.request_done and self.out_chunked:
            head += LAST_CHUNK
        conn.transport.write(head)
        if self.client.paused:
            self.client.resume_reading("buffer")
        self.last_activity = plane.loop.time()
        plane.active.add(self)

    def _request_framing(self) -> bytes:
        if not self.has_body:
            return b""
        if self.request_done:  # the whole body is here: send it with a length
            return b"Content-Length: %d\r\n" % self.body_size
        if self.content_length is not None:
            return b"Content-Length: %d\r\n" % self.content_length
        self.out_chunked = True
        return CHUNKED

    def add_body(self, data: bytes) -> None:
        if self.dead:
            return
        self.body_size += len(data)
        if self.body_size > self.plane.settings.max_body:
            self.too_large()
        elif self.upstream is not None:
            self.upstream.transport.write(chunk(data) if self.out_chunked else data)
        elif not self.response_done:
            self.body.append(data)
            self.buffered += len(data)
            if self.buffered > BUFFER_LIMIT and not self.wait_body:
                self.client.pause_reading("buffer")

    def finish_body(self) -> None:
        self.request_done = True
        if self.upstream is not None:
            if self.out_chunked:
                self.upstream.transport.write(LAST_CHUNK)
        elif self.wait_body and self.decision is None and not self.response_done:
            self.decide()
        self._maybe_finish()

    # --- endings -------------------------------------------------------------------------

    def fail(self, status: int, error: str, message: str, retry_after: int | None = None) -> None:
        """The proxy's own answer; a response already under way can only be cut off."""
        if self.responded:
            self.client.abort()
            return
        self.status = status
        self.responded = True
        self.out.append(
            error_response(
                status, error, message, request_id=self.request_id, close=not self.keep_alive,
                retry_after=retry_after,
            )
        )  # fmt: skip
        self.flush()
        self._done(self.decision.backend if self.decision else PROXY_LABEL)

    def too_large(self) -> None:
        if self.dead:
            return
        self._drop_upstream()
        self.keep_alive = False
        limit = self.plane.settings.max_body
        self.fail(413, "payload_too_large", f"the body is over {byte_size(limit)}")
        self.dead = True
        self.client.close()

    def _done(self, backend: str) -> None:
        self.response_done = True
        plane = self.plane
        d = self.decision
        route = d.route_name if d else PROXY_LABEL
        seconds = plane.loop.time() - self.started
        plane.record(route, backend, self.status, seconds)
        if d is not None and d.route is not None and d.route.analysed:
            plane.outcomes.record(
                d.route, backend, self.status, seconds, self.sample, self.method, self.path
            )
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.request_done and self.response_done and not self.dead:
            self.dead = True
            self.client.exchange_done(self)

    def client_lost(self) -> None:
        """The client went away: stop everything this exchange started."""
        self.dead = True
        self._drop_upstream()
