"""The response half of an exchange: a backend's answer rewritten and streamed to the client.

On a sticky route the answer's placement is handed to the affinity store as the head
arrives. With confirmed writes (the default) what the client gets is held until the store
has the placement, or until the route's deadline: a user's next request, at any worker,
then always finds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from strangler.proxy.forwarding import LAST_CHUNK, chunk, client_head, scan_response
from strangler.proxy.outcomes import read_limit

if TYPE_CHECKING:
    from strangler.proxy.plane import Plane
    from strangler.proxy.upstream_connection import UpstreamProtocol
    from strangler.routing.dispatch import Decision

RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
CHUNKED = b"Transfer-Encoding: chunked\r\n"
HOLD_LIMIT = 256 * 1024  # answer bytes held for a placement before the backend is paused


class ClientSide(Protocol):
    """What an exchange needs of its client connection (`client_connection.ClientProtocol`)."""

    http11: bool
    client_ip: str
    ip_bytes: bytes
    paused: set[str]

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def pause_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...

    def exchange_done(self, exchange: object) -> None: ...


class ResponseSide:
    """What `Exchange` does with the upstream's answer (called by `UpstreamProtocol`)."""

    __slots__ = ()
    # set by Exchange
    client: ClientSide
    plane: Plane
    method: str
    decision: Decision | None
    upstream: UpstreamProtocol | None
    out: list[bytes]
    request_id: bytes
    keep_alive: bool
    informational: bool
    request_done: bool
    response_done: bool
    responded: bool
    resp_chunked: bool
    until_close: bool
    dead: bool
    body_size: int
    retries: int
    status: int
    held: bool  # the answer waits for its placement to be stored
    held_bytes: int
    finished: bool  # the backend's answer is complete (held or not)
    stash: list | None  # a refusal that may be retried: [status, reason, headers, body...]
    fill: list | None  # a cache miss's answer being stored (gateway_side)
    sample: bytearray | None  # the body read for its outcome (routes under analysis only)

    @property
    def backend_name(self) -> str:
        return self.decision.backend if self.decision else "-"

    def pause_client(self) -> None:
        """The backend reads the request body slower than the client sends it."""
        self.client.pause_reading("upstream")

    def resume_client(self) -> None:
        self.client.resume_reading("upstream")

    def response_head(self, status: int, reason: bytes, headers: list) -> None:
        if 100 <= status < 200:  # interim answers (we never forward Expect): not the response
            self.informational = True
            return
        if self._retry_wanted(status):  # kept back until its body shows whether it did nothing
            self.stash = [status, reason, headers]
            return
        self.forward_head(status, reason, headers)

    def forward_head(self, status: int, reason: bytes, headers: list) -> None:
        self.status = status
        scanned = scan_response(headers)
        length, chunked = scanned.content_length, scanned.chunked
        close = not self.keep_alive or self.plane.stopping
        framing = b""
        if self.method == "HEAD" or status in (204, 304):
            if length is not None and status != 204:
                framing = b"Content-Length: %b\r\n" % length
        elif length is not None and not chunked:
            framing = b"Content-Length: %b\r\n" % length
        elif self.client.http11:
            framing, self.resp_chunked = CHUNKED, True
            self.until_close = not chunked
        else:
            close, self.until_close = True, not chunked
        self.keep_alive = not close
        d = self.decision
        self.out.append(
            client_head(
                status,
                reason,
                self.answer_lines(scanned.kept, status, headers),
                backend=d.backend.encode(),
                request_id=self.request_id,
                body_framing=framing,
                close=close,
            )
        )
        self.responded = True
        if d.route is not None and d.route.analysed:
            self.sample = bytearray()  # its outcome is counted (strangler.proxy.outcomes)
        if d.key is not None and status < 500 and not d.forced:
            affinity = self.plane.affinity
            if d.placed is not None and d.backend not in (d.placed, self.recalled_to):
                affinity.divert(d.route, d.placed)  # sent away from its placement: look it up
            self.held = affinity.remember(d.route, d.key, d.backend, self._stored)
        if self.method == "HEAD":  # no body follows; the parser would wait for one
            self.response_complete(reusable=False)

    def _stored(self, stored: bool) -> None:
        """The placement is stored (or its deadline passed): what was held goes out."""
        self.held = False
        if self.dead:
            return
        if self.held_bytes > HOLD_LIMIT and self.upstream is not None:
            self.upstream.transport.resume_reading()
        self.flush()
        if self.finished:
            self._done(self.decision.backend)

    def response_body(self, data: bytes) -> None:
        if self.informational:
            return
        if self.stash is not None:
            self._stash_body(data)
            return
        self.out.append(chunk(data) if self.resp_chunked else data)
        if self.fill is not None:
            self.fill_body(data)
        if self.sample is not None:
            read_limit(self.sample, data)
        if self.held:
            self.held_bytes += len(data)
            if self.held_bytes > HOLD_LIMIT and self.upstream is not None:
                self.upstream.transport.pause_reading()  # bounded: the rest waits upstream

    def response_complete(self, reusable: bool) -> None:
        if self.informational:
            self.informational = False
            return
        conn = self._detach()
        if conn is not None:
            if reusable and self.request_done and not self.dead:
                self.plane.pool.release(conn, self.plane.loop.time())
            else:
                conn.close()
        if self.stash is not None:
            self._refused()
        else:
            self.finish_response()

    def finish_response(self) -> None:
        if self.resp_chunked:
            self.out.append(LAST_CHUNK)
        if self.fill is not None:
            self.fill_done()
        self.finished = True
        if not self.held:
            self.flush()
            self._done(self.decision.backend)

    def _detach(self) -> UpstreamProtocol | None:
        """Let go of the upstream connection (finished, no longer active); it, if any."""
        conn, self.upstream = self.upstream, None
        self.plane.active.discard(self)
        if conn is not None:
            conn.finish()
        return conn

    def _drop_upstream(self) -> None:
        conn = self._detach()
        if conn is not None:
            conn.close()

    def flush(self) -> None:
        """Everything the backend sent so far, in one write (head and body together)."""
        out = self.out
        if out and not self.held:
            self.client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def upstream_lost(self, conn: UpstreamProtocol) -> None:
        """The backend closed the connection (or it broke) while this exchange used it."""
        if conn is not self.upstream or self.response_done:
            return
        self.upstream = None
        self.plane.active.discard(self)
        if self.stash is not None:
            self._refused()  # a refusal whose body ended with the connection
        elif self.until_close and self.responded:
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
        self._drop_upstream()
        if self.responded:
            self.client.abort()
        else:
            self.fail(504, "gateway_timeout", "the backend did not answer in time")

    # provided by Exchange and its retry side (retry.RetrySide)
    recalled_to: str | None  # the backend the store said the key was placed on, if asked

    def connect(self, name: str) -> None:
        raise NotImplementedError

    def _retry_wanted(self, status: int) -> bool:
        raise NotImplementedError

    def _stash_body(self, data: bytes) -> None:
        raise NotImplementedError

    def _refused(self) -> None:
        raise NotImplementedError

    def fail(self, status: int, error: str, message: str, retry_after: int | None = None) -> None:
        raise NotImplementedError

    def _done(self, backend: str) -> None:
        raise NotImplementedError

    def answer_lines(self, kept: bytes, status: int, headers: list) -> bytes:
        raise NotImplementedError

    def fill_body(self, data: bytes) -> None:
        raise NotImplementedError

    def fill_done(self) -> None:
        raise NotImplementedError
