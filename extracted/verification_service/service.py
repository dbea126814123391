"""Service functions: send and check a code; they raise domain exceptions, never HTTP ones."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strangler.extracted.verification_service import errors
from strangler.extracted.verification_service.config import Config
from strangler.extracted.verification_service.notifier import Message, Notifier
from strangler.extracted.verification_service.store import (
    ApprovalEvent,
    IdempotencyRecord,
    IdempotencyState,
    Outcome,
    PendingCode,
    Store,
    StoredResponse,
)
from strangler.extracted.verification_service.validation import CheckRequest, SendRequest, mask

log = logging.getLogger(__name__)

Clock = Callable[[], float]
CodeGenerator = Callable[[int], str]
SEND_SCOPE = "send"
IN_FLIGHT_WAIT = 10.0  # longer than one webhook delivery (5 s timeout)
REPLACED_RETRIES = 5


def random_code(length: int) -> str:
    return f"{secrets.randbelow(10**length):0{length}d}"


@dataclass
class Services:
    """Everything the service functions need, passed in (tests pass fakes)."""

    config: Config
    store: Store
    notifier: Notifier
    clock: Clock = time.time
    code_generator: CodeGenerator = random_code

    # This process's copy of the shared development secret (see `secret`).
    _cached_secret: bytes | None = field(default=None, init=False, repr=False)

    def secret(self, *, fresh: bool = False) -> bytes:
        """The HMAC key; `fresh` reads the shared development secret from the store again.

        If Redis loses its data a new shared secret is made, and the codes hashed under the
        old one are gone with it. So a cached secret can only be wrong for a code another
        worker stored since: sends always read it fresh, and a check that does not match
        under the cached one reads it again before it counts a wrong attempt.
        """
        if self.config.secret:
            return self.config.secret.encode()
        if fresh or self._cached_secret is None:
            self._cached_secret = self.store.shared_secret(secrets.token_hex(32)).encode()
        return self._cached_secret


def _mac(secret: bytes, verification_id: str, code: str) -> str:
    return hmac.new(secret, f"{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _matches(svc: Services, pending: PendingCode, code: str) -> bool:
    """Whether `code` is the pending one; at most one extra secret read, on a mismatch."""
    cached = svc.secret()
    if hmac.compare_digest(pending.mac, _mac(cached, pending.id, code)):
        return True
    # A wrong code, or one hashed under a secret made after Redis lost its data: only the
    # secret in the store tells which. The attempt is counted once, after this, either way.
    fresh = svc.secret(fresh=True)
    return fresh != cached and hmac.compare_digest(pending.mac, _mac(fresh, pending.id, code))


def _new_id() -> str:
    return "VE" + uuid.uuid4().hex


def _pending_body(vid: str, to: str, channel: str, ttl: int) -> dict[str, Any]:
    return {"id": vid, "to": to, "channel": channel, "status": "pending", "expires_in": ttl}


def _rate_limited(retry_after: int) -> errors.RateLimited:
    return errors.RateLimited("too many codes sent to this address", retry_after)


def send(svc: Services, req: SendRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """Send a new code to `req.to`, replacing any pending one; the 201 body."""
    cfg, now, vid = svc.config, svc.clock(), _new_id()
    if dry_run:
        retry_after = svc.store.retry_after(req.to, now, cfg.max_sends, cfg.send_window)
        if retry_after is not None:
            raise _rate_limited(retry_after)
        return _pending_body(vid, req.to, req.channel, cfg.code_ttl)
    code = svc.code_generator(cfg.code_length)
    mac = _mac(svc.secret(fresh=True), vid, code)
    pending = PendingCode(vid, req.to, req.channel, mac, 0, now + cfg.code_ttl)
    retry_after = svc.store.begin_send(pending, now, cfg.max_sends, cfg.send_window)
    if retry_after is not None:
        log.info("send to %s refused: rate limited", mask(req.to))
        raise _rate_limited(retry_after)
    try:
        svc.notifier.deliver(Message(vid, req.to, req.channel, code))
    except BaseException:
        svc.store.abort_send(pending)
        raise
    log.info("sent %s to %s by %s", vid, mask(req.to), req.channel)
    return _pending_body(vid, req.to, req.channel, cfg.code_ttl)


def send_once(
    svc: Services, req: SendRequest, key: str, fingerprint: str, *, dry_run: bool = False
) -> tuple[StoredResponse, bool]:
    """`send` under an Idempotency-Key: (response, whether it is a replay)."""
    if dry_run:
        record = svc.store.peek_key(SEND_SCOPE, key, fingerprint)
        if record is not None and record.state is not IdempotencyState.IN_FLIGHT:
            return _replay(record), True
        return StoredResponse(201, send(svc, req, dry_run=True)), False
    record = _reserve(svc.store, key, fingerprint)
    if record.state is not IdempotencyState.RESERVED:
        return _replay(record), True
    try:
        response = StoredResponse(201, send(svc, req))
    except BaseException:
        svc.store.release_key(SEND_SCOPE, key)
        raise
    svc.store.complete_key(SEND_SCOPE, key, response)
    return response, False


def _reserve(store: Store, key: str, fingerprint: str) -> IdempotencyRecord:
    # A concurrent request with the same key is waited for, so that exactly one sends.
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    while True:
        record = store.reserve_key(SEND_SCOPE, key, fingerprint)
        if record.state is not IdempotencyState.IN_FLIGHT:
            return record
        if time.monotonic() > deadline:
            raise errors.IdempotencyKeyBusy("a request with this Idempotency-Key is still running")
        time.sleep(0.05)


def _replay(record: IdempotencyRecord) -> StoredResponse:
    if record.state is IdempotencyState.CONFLICT or record.response is None:
        raise errors.IdempotencyKeyReused("the key came with another body")
    return record.response


def _rfc3339(timestamp: float) -> str:
    """RFC 3339 UTC to the second, the shape of every timestamp the monolith shows."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(svc: Services, req: CheckRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """Check `req.code` against the pending code for `req.to`; the 200 body."""
    max_attempts = svc.config.max_attempts
    for _ in range(REPLACED_RETRIES):
        code = svc.store.pending(req.to, svc.clock())
        if code is None:
            break
        matched = _matches(svc, code, req.code)
        if dry_run:
            return _would_be(code, matched, max_attempts)
        event = ApprovalEvent(code.id, code.to, code.channel, _rfc3339(svc.clock()))
        result = svc.store.record_check(code, matched, max_attempts, event)
        if result.outcome is Outcome.REPLACED:
            continue  # a newer send won the race: check against that code instead
        log.info("check of %s for %s: %s", code.id, mask(code.to), result.outcome.value)
        return _verdict(code, result.outcome, max_attempts - result.attempts)
    raise errors.NotFound("no pending verification for this address")


def _would_be(code: PendingCode, matched: bool, max_attempts: int) -> dict[str, Any]:
    if code.attempts >= max_attempts:
        return _verdict(code, Outcome.EXHAUSTED, 0)
    if matched:
        return _verdict(code, Outcome.APPROVED, 0)
    return _verdict(code, Outcome.WRONG, max_attempts - code.attempts - 1)


def _verdict(code: PendingCode, outcome: Outcome, remaining: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": code.id, "to": code.to, "channel": code.channel}
    if outcome is Outcome.APPROVED:
        return {**body, "status": "approved", "valid": True}
    if outcome is Outcome.WRONG:
        return {**body, "status": "pending", "valid": False, "attempts_remaining": remaining}
    if outcome is Outcome.EXHAUSTED:
        raise errors.MaxAttemptsReached("too many wrong codes; send a new one")
    raise errors.NotFound("no pending verification for this address")
