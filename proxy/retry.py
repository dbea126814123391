"""Sending a request elsewhere than its backend, never when that backend holds its flow.

Failover: a backend that cannot be connected to (or whose circuit is open) gets no request;
the route's fallback takes it, unless the affinity store places the request's key on that
backend: the flow (a code that backend sent) exists nowhere else, so the client is answered
503 `unavailable` with Retry-After and tries again. When the store cannot say within the
route's deadline, the fallback takes it, as it would without affinity.

Retry: a route's `retry` rule names the answer that means "I did nothing" (the service's 503
`unavailable`, when its own store is down). Such an answer is kept back, head and body (up
to STASH_LIMIT bytes; a longer one is passed on as it comes), until it is complete. When
its JSON `error` is the rule's and the request has no affinity to that backend (it has no
key, or the affinity store does not remember its key there), the same request, whose body
was held for this, goes to the fallback, and the fallback's answer is the only one the
client gets. Otherwise the refusal is passed on unchanged. A request pinned to the backend
is never sent elsewhere: its flow (a code that backend sent) exists nowhere else; and when
the store cannot say within the route's deadline, the refusal is passed on too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from strangler.proxy.upstream_response import ResponseSide

if TYPE_CHECKING:
    from strangler.proxy.placements import Recalled
    from strangler.routing.records import Route

STASH_LIMIT = 64 * 1024  # bytes of a refusal's body kept back to read its error code


def did_nothing(body: bytes, code: str) -> bool:
    """True when `body` is a JSON object whose `error` is `code`."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("error") == code


class RetrySide(ResponseSide):
    """What `Exchange` does when its backend cannot take the request: failover and retry."""

    __slots__ = ()
    # set by Exchange
    route: Route | None
    tried: list[str]
    resend: bytes | None  # the request body, kept for a second send
    retried: bool
    recalled: Recalled | None  # the store's answer when the request was placed, if asked
    stash_size: int
    body: list[bytes]

    @property
    def recalled_to(self) -> str | None:
        recalled = self.recalled
        return recalled.backend if recalled is not None and recalled.answered else None

    def _retry_wanted(self, status: int) -> bool:
        d = self.decision
        route = d.route if d is not None else None
        rule = route.retry if route is not None else None
        if rule is None or status != rule.status or self.retried or d.forced:
            return False
        fallback = route.fallback
        return (
            fallback is not None
            and fallback != d.backend
            and self.request_done
            and self.method != "HEAD"
            and self.plane.circuits.available(fallback)
        )

    def _stash_body(self, data: bytes) -> None:
        self.stash.append(data)
        self.stash_size += len(data)
        if self.stash_size > STASH_LIMIT:
            self._pass_refusal(complete=False)

    def _refused(self) -> None:
        """The refusal is complete: send the request to the fallback, or pass it on."""
        d = self.decision
        if not did_nothing(b"".join(self.stash[3:]), d.route.retry.error):
            self._pass_refusal(complete=True)
        elif d.key is None or d.route.sticky is None:
            self._retry()  # no key, no flow: nothing ties the request to that backend
        elif self.recalled is not None:
            self._retry_unless_pinned(self.recalled)
        else:
            self.plane.spawn(self._consult_then_retry())

    async def _consult_then_retry(self) -> None:
        d = self.decision
        recalled = await self.plane.affinity.consult(d.route, d.key)
        if not self.dead:
            self._retry_unless_pinned(recalled)

    def _retry_unless_pinned(self, recalled: Recalled) -> None:
        if recalled.answered and recalled.backend != self.decision.backend:
            self._retry()
        else:
            self._pass_refusal(complete=True)  # pinned there, or the store could not say

    def _retry(self) -> None:
        d = self.decision
        self.retried = True
        self.plane.count_retry(d.route_name, d.backend, d.route.fallback)
        self.stash, self.stash_size = None, 0
        self.resp_chunked = self.until_close = self.finished = False
        d.backend = d.route.fallback
        self.body = [self.resend] if self.resend else []
        self.connect(d.backend)

    def _failover(self, failed: str) -> None:
        """`failed` cannot be reached: to the fallback, unless its key's flow is there."""
        alternative = self.plane.dispatcher.alternative(self.route, failed)
        if alternative is None or alternative in self.tried:
            self.fail(502, "bad_gateway", "the backend could not be reached")
            return
        d = self.decision
        if d.key is None or d.forced or not self.plane.affinity.keeps(d.route):
            self._go_to(alternative)
        elif self.recalled is not None:
            self._failover_unless_pinned(self.recalled, failed, alternative)
        else:
            self.plane.spawn(self._consult_then_failover(failed, alternative))

    async def _consult_then_failover(self, failed: str, alternative: str) -> None:
        d = self.decision
        recalled = await self.plane.affinity.consult(d.route, d.key)
        if not self.dead:
            self._failover_unless_pinned(recalled, failed, alternative)

    def _failover_unless_pinned(self, recalled: Recalled, failed: str, alternative: str) -> None:
        if recalled.answered and recalled.backend == failed:
            self._pinned_to_unavailable(failed)
        else:
            self._go_to(alternative)

    def _go_to(self, backend: str) -> None:
        self.decision.backend = backend
        self.connect(backend)

    def _pinned_to_unavailable(self, backend: str) -> None:
        """The key's flow is on a backend that is down: anywhere else it would not exist."""
        self.decision.backend = backend
        self.fail(
            503, "unavailable", "the backend this request belongs to is unavailable; try again",
            retry_after=1,
        )  # fmt: skip

    def _pass_refusal(self, complete: bool) -> None:
        stash, self.stash, self.stash_size = self.stash, None, 0
        status, reason, headers, *body = stash
        self.forward_head(status, reason, headers)
        for part in body:
            self.response_body(part)
        if complete:
            self.finish_response()
