"""One request's journey through a worker: choose a backend, connect, stream both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy import forwarding
from proxy.forwarding import LAST_CHUNK, byte_size, chunk, error_response, header_value

if TYPE_CHECKING:
    from proxy.dispatch import Decision
    from proxy.protocols import ClientProtocol, UpstreamProtocol
    from proxy.server import Plane

BUFFER_LIMIT = 256 * 1024  # body bytes held while connecting before the client is paused
RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
PROXY_LABEL = "(proxy)"  # metrics label of answers no backend was chosen for


class Exchange:
    """A request and its response; the client protocol feeds it, the upstream answers it."""

    __slots__ = (
        "body", "body_size", "buffered", "client", "content_length", "dead", "decision",
        "has_body", "headers", "informational", "keep_alive", "last_activity", "method", "out",
        "out_chunked", "path", "plane", "query", "request_done", "request_id", "resp_chunked",
        "responded", "response_done", "retries", "route", "started", "status", "target", "tried",
        "until_close", "upstream", "wait_body",
    )  # fmt: skip

    def __init__(
        self, client: ClientProtocol, method: str, target: bytes, headers: list, keep_alive: bool
    ) -> None:
        self.client = client
        self.plane: Plane = client.plane
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition(b"?")
        self.headers = headers
        self.keep_alive = keep_alive
        self.started = self.plane.loop.time()
        self.request_id = forwarding.request_id_of(headers)
        length = header_value(headers, b"content-length")
        self.content_length = int(length) if length is not None else None
        encoding = header_value(headers, b"transfer-encoding")
        self.has_body = self.content_length is not None or encoding is not None
        self.body: list[bytes] = []
        self.body_size = self.buffered = 0
        self.out_chunked = self.resp_chunked = self.until_close = False
        self.request_done = self.response_done = self.responded = self.informational = False
        self.dead = self.wait_body = False
        self.route = None
        self.decision: Decision | None = None
        self.upstream: UpstreamProtocol | None = None
        self.tried: list[str] = []
        self.retries = 0
        self.status = 0
        self.last_activity = self.started
        self.out: list[bytes] = []

    def lookup(self, name: str) -> str | None:
        value = header_value(self.headers, name.encode())
        return None if value is None else value.decode("latin-1")

    # --- request side --------------------------------------------------------------------

    def start(self) -> None:
        plane = self.plane
        path = forwarding.routing_path(self.path)
        if path is None:
            self.fail(400, "bad_request", "the request target must be an absolute path")
        elif path.startswith("/_strangler/"):
            self.fail(404, "not_found", "no such path")
        elif self.content_length is not None and self.content_length > plane.settings.max_body:
            self.too_large()
        else:
            if self.has_body and (header_value(self.headers, b"expect") or b"").lower() == (
                b"100-continue"
            ):
                self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.route = plane.dispatcher.route_for(self.method, path)
            if self.has_body and not self.request_done and plane.dispatcher.needs_body(self.route):
                self.wait_body = True  # the sticky key is in the body: choose once it is read
            else:
                self.decide()

    def decide(self) -> None:
        plane = self.plane
        body = b"".join(self.body) if self.wait_body else None
        self.decision = d = plane.dispatcher.decide(
            self.route, self.lookup, self.query, self.client.client_ip, body
        )
        if (
            d.key is not None
            and not d.forced
            and plane.affinity.needs_recall(d.route, d.key, d.backend)
        ):
            plane.spawn(self._recall_then_connect())
        else:
            self.connect(d.backend)

    async def _recall_then_connect(self) -> None:
        d = self.decision
        remembered = await self.plane.affinity.recall(d.route, d.key)
        if self.dead:
            return
        if remembered != d.backend and self.plane.dispatcher.usable_affinity(remembered):
            d.backend = remembered
        self.connect(d.backend)

    def connect(self, name: str) -> None:
        self.tried.append(name)
        backend = self.plane.dispatcher.backend(name)
        conn = self.plane.pool.acquire(backend.url)
        if conn is not None:
            self.attach(conn)
        else:
            self.plane.spawn(self._open(backend))

    async def _open(self, backend) -> None:
        plane = self.plane
        try:
            conn = await plane.open_connection(backend)
        except (OSError, TimeoutError):
            plane.connect_failed(backend.name)
            if not self.dead:
                self._failover(backend.name)
            return
        plane.connect_succeeded(backend.name)
        if self.dead:
            plane.pool.release(conn, plane.loop.time())
        else:
            self.attach(conn)

    def _failover(self, failed: str) -> None:
        alternative = self.plane.dispatcher.alternative(self.route, failed)
        if alternative is not None and alternative not in self.tried:
            self.decision.backend = alternative
            self.connect(alternative)
        else:
            self.fail(502, "bad_gateway", "the backend could not be reached")

    def attach(self, conn: UpstreamProtocol) -> None:
        self.upstream = conn
        conn.begin(self)
        plane = self.plane
        headers = forwarding.upstream_request_headers(
            self.headers,
            client_ip=self.client.client_ip,
            proto="http",
            request_id=self.request_id,
            internal_token=plane.internal_token,
            body_framing=self._request_framing(),
        )
        data = [forwarding.request_head(self.method.encode(), self.target, headers)]
        data += [chunk(b) for b in self.body] if self.out_chunked else self.body
        if self.request_done and self.out_chunked:
            data.append(LAST_CHUNK)
        self.body, self.buffered = [], 0
        conn.transport.write(b"".join(data))
        self.client.resume_reading("buffer")
        self.last_activity = plane.loop.time()
        plane.active.add(self)

    def _request_framing(self) -> tuple[bytes, bytes] | None:
        if not self.has_body:
            return None
        if self.request_done:  # the whole body is here: send it with a length
            return (b"Content-Length", str(self.body_size).encode())
        if self.content_length is not None:
            return (b"Content-Length", str(self.content_length).encode())
        self.out_chunked = True
        return (b"Transfer-Encoding", b"chunked")

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

    # --- response side -------------------------------------------------------------------

    def response_head(self, status: int, reason: bytes, headers: list) -> None:
        if 100 <= status < 200:  # interim answers (we never forward Expect): not the response
            self.informational = True
            return
        self.status = status
        length = header_value(headers, b"content-length")
        chunked = b"chunked" in (header_value(headers, b"transfer-encoding") or b"").lower()
        close = not self.keep_alive or self.plane.stopping
        framing = None
        if self.method == "HEAD" or status in (204, 304):
            if length is not None and status != 204:
                framing = (b"Content-Length", length)
        elif length is not None and not chunked:
            framing = (b"Content-Length", length)
        elif self.client.http11:
            framing, self.resp_chunked = (b"Transfer-Encoding", b"chunked"), True
            self.until_close = not chunked
        else:
            close, self.until_close = True, not chunked
        self.keep_alive = not close
        rewritten = forwarding.client_response_headers(
            headers,
            backend=self.decision.backend,
            request_id=self.request_id,
            body_framing=framing,
            close=close,
        )
        self.out.append(forwarding.response_head(status, reason, rewritten))
        self.responded = True
        d = self.decision
        if d.key is not None and status < 500 and not d.forced:
            self.plane.affinity.remember(d.route, d.key, d.backend)
        if self.method == "HEAD":  # no body follows; the parser would wait for one
            self.response_complete(reusable=False)

    def response_body(self, data: bytes) -> None:
        if not self.informational:
            self.out.append(chunk(data) if self.resp_chunked else data)

    def response_complete(self, reusable: bool) -> None:
        if self.informational:
            self.informational = False
            return
        if self.resp_chunked:
            self.out.append(LAST_CHUNK)
        self.flush()
        conn, self.upstream = self.upstream, None
        plane = self.plane
        plane.active.discard(self)
        if conn is not None:
            conn.finish()
            if reusable and self.request_done and not self.dead:
                plane.pool.release(conn, plane.loop.time())
            else:
                conn.close()
        self._done(self.decision.backend)

    def flush(self) -> None:
        if self.out:
            self.client.write(b"".join(self.out))
            self.out.clear()

    def upstream_lost(self, conn: UpstreamProtocol) -> None:
        """The backend closed the connection (or it broke) while this exchange used it."""
        if conn is not self.upstream or self.response_done:
            return
        self.upstream = None
        self.plane.active.discard(self)
        if self.until_close and self.responded:
            self.response_complete(reusable=False)  # a body delimited by the close: done
        elif not self.responded and not conn.received and conn.reused and self._may_retry():
            self.retries += 1  # a pooled connection the backend had closed: try a fresh one
            self.connect(self.decision.backend)
        elif not self.responded:
            self.fail(502, "bad_gateway", "the backend closed the connection without answering")
        else:
            self.client.abort()  # a truncated body: the client must not take it as whole

    def _may_retry(self) -> bool:
        return self.method in RETRYABLE and self.body_size == 0 and self.retries < 2

    def timed_out(self) -> None:
        conn, self.upstream = self.upstream, None
        self.plane.active.discard(self)
        if conn is not None:
            conn.finish()
            conn.close()
        if self.responded:
            self.client.abort()
        else:
            self.fail(504, "gateway_timeout", "the backend did not answer in time")

    # --- endings -------------------------------------------------------------------------

    def fail(self, status: int, error: str, message: str) -> None:
        """The proxy's own answer; a response already under way can only be cut off."""
        if self.responded:
            self.client.abort()
            return
        self.status = status
        self.responded = True
        self.out.append(
            error_response(
                status, error, message, request_id=self.request_id, close=not self.keep_alive
            )
        )
        self.flush()
        self._done(self.decision.backend if self.decision else PROXY_LABEL)

    def too_large(self) -> None:
        if self.dead:
            return
        if self.upstream is not None:
            conn, self.upstream = self.upstream, None
            self.plane.active.discard(self)
            conn.finish()
            conn.close()
        self.keep_alive = False
        limit = self.plane.settings.max_body
        self.fail(413, "payload_too_large", f"the body is over {byte_size(limit)}")
        self.dead = True
        self.client.close()

    def _done(self, backend: str) -> None:
        self.response_done = True
        plane = self.plane
        route = self.decision.route_name if self.decision else PROXY_LABEL
        plane.record(route, backend, self.status, plane.loop.time() - self.started)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.request_done and self.response_done and not self.dead:
            self.dead = True
            self.client.exchange_done(self)

    def client_lost(self) -> None:
        """The client went away: stop everything this exchange started."""
        self.dead = True
        conn, self.upstream = self.upstream, None
        self.plane.active.discard(self)
        if conn is not None:
            conn.finish()
            conn.close()
