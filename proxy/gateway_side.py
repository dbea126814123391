"""The gateway duties of an exchange: its limits, a cached or mocked answer, the rewrite.

Order, once the backend is chosen: the limits (route's and backend's, one Redis round
trip; over any: 429), then the cache (a fresh stored answer is given, no backend asked),
then the backend: a mock answers at once, a server gets the request as its rewrite says.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING

from strangler.proxy import cache, rewriting
from strangler.proxy.own_responses import error_response, response_head
from strangler.proxy.retry import RetrySide
from strangler.proxy.throttle import Verdict, rate_limit_lines
from strangler.routing.keys import extract_key

if TYPE_CHECKING:
    from strangler.routing.records import Backend

CACHEABLE = frozenset({"GET", "HEAD"})
CACHE_LABEL = "(cache)"  # the metrics backend of answers the cache gave
LIMITED_LABEL = "(limited)"  # the metrics backend of requests refused by a limit
_KNOWN = frozenset(int(s) for s in HTTPStatus)
MISS, HIT = b"X-Strangler-Cache: miss\r\n", b"X-Strangler-Cache: hit\r\n"


class GatewaySide(RetrySide):
    """What `Exchange` does between choosing a backend and sending the request to it."""

    __slots__ = ()
    # set by Exchange
    target: bytes
    query: bytes
    wait_body: bool
    extra_head: bytes  # header lines the client's answer gets (RateLimit-*, X-Strangler-Cache)
    fill: list | None  # [entry fields..., body parts] while a miss's answer is being stored
    fill_size: int
    matched: str  # the normalised path the route matched

    def limits_then_place(self) -> None:
        d = self.decision
        route = d.route
        if route is None or d.forced:
            self.place()
            return
        rules = route.rules_for(d.backend)
        limits = [(route.name, route.limit)] if route.limit is not None else []
        if rules is not None and rules.limit is not None:
            limits.append((f"{route.name}/{d.backend}", rules.limit))
        if not limits:
            self.place()
            return
        body = b"".join(self.body) if self.wait_body else None
        checked = [(scope, limit, self._limit_key(limit, body) or b"") for scope, limit in limits]
        self.plane.throttle.decide(checked, self._throttled)

    def _limit_key(self, limit, body: bytes | None) -> bytes | None:
        return extract_key(
            limit, headers=self.lookup, query=self.query, body=body,
            client_ip=self.client.client_ip,
        )  # fmt: skip

    def _throttled(self, verdict: Verdict) -> None:
        if self.dead:
            return
        self.extra_head += rate_limit_lines(verdict)
        if verdict.allowed:
            self.place()
            return
        d = self.decision
        self.plane.count_limited(d.route_name, d.backend)
        self.status = 429
        self.responded = True
        wait = max(1, int(-(-verdict.retry_after // 1)))
        self.out.append(
            error_response(
                429, "rate_limited", f"too many requests; try again in {wait} s",
                request_id=self.request_id, close=not self.keep_alive, extra=self.extra_head,
            )
        )  # fmt: skip
        self.flush()
        self._done(LIMITED_LABEL)

    def place(self) -> None:
        """The cache, then the backend (after a recall of the key's placement, if needed)."""
        d = self.decision
        route = d.route
        if route is not None and route.cache is not None and self.method in CACHEABLE:
            if cache.request_may_use(self.lookup):
                entry = self.plane.cache.get(route.name, self.target, self.lookup)
                if entry is not None:
                    self._answer_cached(entry)
                    return
                self.fill = []  # a miss: its answer may be stored (see store_head)
            self.extra_head += MISS
        plane = self.plane
        if (
            d.key is not None
            and not d.forced
            and plane.affinity.needs_recall(d.route, d.key, d.backend, d.placed)
        ):
            plane.spawn(self._recall_then_connect())
        else:
            self.connect(d.backend)

    def _answer_cached(self, entry: cache.Entry) -> None:
        age = entry.age_at_store + int(time.time() - entry.stored_at)
        lines = entry.kept + b"Age: %d\r\n" % age + HIT + self.extra_head
        self._answer(200, entry.reason, lines, entry.body, entry.backend, CACHE_LABEL)

    def answer_mock(self, backend: Backend) -> None:
        """A mock backend's canned answer (404 JSON when none matches the request)."""
        mock = backend.mock
        answer = mock.answer_for(self.method, self.matched) if mock is not None else None
        if answer is None:
            self.decision.backend = backend.name
            self.fail(404, "no_mock_answer", f"the mock {backend.name} has no answer for this")
            return
        lines = b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in answer.headers)
        reason = HTTPStatus(answer.status).phrase.encode() if answer.status in _KNOWN else b"Mock"
        name = backend.name.encode()
        self._answer(answer.status, reason, lines + self.extra_head, answer.body, name, None)

    def _answer(
        self, status: int, reason: bytes, lines: bytes, body: bytes, backend: bytes,
        label: str | None,
    ) -> None:  # fmt: skip
        self.status = status
        self.responded = True
        headers = [
            (b"Content-Length", b"%d" % len(body)), (b"X-Strangler-Backend", backend),
            (b"X-Request-Id", self.request_id),
        ]  # fmt: skip
        if not self.keep_alive or self.plane.stopping:
            headers.append((b"Connection", b"close"))
            self.keep_alive = False
        head = response_head(status, reason, headers)
        head = head[:-2].replace(b"\r\n", b"\r\n" + lines, 1) + b"\r\n"
        self.out.append(head if self.method == "HEAD" else head + body)
        self.flush()
        self._done(label or backend.decode())

    # --- towards the backend, and back -------------------------------------------------

    def rewritten(self, name: str) -> tuple[bytes, bytes]:
        """The target and kept header lines a backend is sent, after its rewrite, if any."""
        route = self.decision.route if self.decision else None
        rules = route.rules_for(name) if route is not None else None
        if rules is None or rules.rewrite is None:
            return self.target, self.head.kept
        rewrite = rules.rewrite
        target = rewriting.rewritten_target(self.target, route.prefix, rewrite, self.matched)
        kept = rewriting.edit_lines(self.head.kept, rewrite.remove_headers, rewrite.set_headers)
        return target, kept

    def answer_lines(self, kept: bytes, status: int, headers: list) -> bytes:
        """The backend's kept lines as the client gets them: its rewrite's response edits and
        the gateway's own lines; a miss whose answer may be stored starts its entry here."""
        route = self.decision.route if self.decision else None
        rules = route.rules_for(self.decision.backend) if route is not None else None
        rewrite = rules.rewrite if rules is not None else None
        if rewrite is not None:
            kept = rewriting.edit_lines(
                kept, rewrite.remove_response_headers, rewrite.set_response_headers
            )
        if self.fill is not None:
            self._start_fill(kept, status, headers)
        return kept + self.extra_head

    def _start_fill(self, kept: bytes, status: int, headers: list) -> None:
        route = self.decision.route
        told = cache.freshness(headers, route.cache.ttl) if status == 200 else None
        if told is None or self.method != "GET":
            self.fill = None
            return
        fresh, age, vary = told
        now = time.time()
        entry = cache.Entry(
            b"OK", cache.kept_lines(kept), b"", self.decision.backend.encode(), now,
            now + fresh, age, tuple((name, self.lookup(name)) for name in vary),
        )  # fmt: skip
        self.fill, self.fill_size = [entry], 0

    def fill_body(self, data: bytes) -> None:
        fill = self.fill
        if fill is None:
            return
        self.fill_size += len(data)
        if self.fill_size > self.decision.route.cache.max_entry:
            self.fill = None  # too big to keep: passed on only
        else:
            fill.append(data)

    def fill_done(self) -> None:
        fill, self.fill = self.fill, None
        if fill:
            entry = fill[0]
            entry.body = b"".join(fill[1:])
            self.plane.cache.put(self.decision.route.name, self.target, entry)

    # provided by Exchange
    def _recall_then_connect(self):
        raise NotImplementedError
