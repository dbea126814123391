"""The Store on a real Redis: one Lua script per operation, so each one is atomic."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from strangler.extracted.verification_service import redis_scripts
from strangler.extracted.verification_service.errors import StoreUnavailable
from strangler.extracted.verification_service.store import (
    ApprovalEvent,
    CheckResult,
    IdempotencyRecord,
    IdempotencyState,
    Outcome,
    PendingCode,
    Store,
    StoredResponse,
)

EVENTS_STREAM = "verification.events"
EVENTS_MAXLEN = 100_000
PREFIX = "verification:"
SECRET_KEY = PREFIX + "secret"
RESERVATION_MS = 30_000  # a crashed request frees its Idempotency-Key after this
IDEMPOTENCY_MS = 24 * 3600 * 1000
# Short timeouts and no retries: with Redis gone a request must fail fast (503 within 2 s),
# and a retried script could count an attempt twice. The pool reconnects stale sockets.
SOCKET_TIMEOUT = 0.5

P = ParamSpec("P")
R = TypeVar("R")


def connect(url: str) -> redis.Redis:
    """A client for the service: fails fast, recovers by itself when Redis returns."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable("the verification store is unavailable") from exc

    return wrapper


def _seconds(raw: str | float) -> int:
    """Retry-After: whole seconds, at least 1."""
    return max(1, math.ceil(float(raw)))


class RedisStore(Store):
    """Keys: `verification:code:<to>` (hash), `verification:sends:<to>` (sorted set of send
    ids by time), `verification:idem:<scope>:<sha256 of key>` (hash), `verification:secret`."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._begin_send = client.register_script(redis_scripts.BEGIN_SEND)
        self._abort_send = client.register_script(redis_scripts.ABORT_SEND)
        self._record_check = client.register_script(redis_scripts.RECORD_CHECK)
        self._reserve_key = client.register_script(redis_scripts.RESERVE_KEY)
        self._shared_secret = client.register_script(redis_scripts.SET_ONCE_GET)

    @staticmethod
    def _code_key(to: str) -> str:
        return f"{PREFIX}code:{to}"

    @staticmethod
    def _sends_key(to: str) -> str:
        return f"{PREFIX}sends:{to}"

    @staticmethod
    def _idem_key(scope: str, key: str) -> str:
        # Hashed: a client-chosen key of up to 255 characters never becomes a raw Redis key.
        return f"{PREFIX}idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"

    @_translated
    def shared_secret(self, candidate: str) -> str:
        return self._shared_secret(keys=[SECRET_KEY], args=[candidate])

    @_translated
    def retry_after(self, to: str, now: float, max_sends: int, window: int) -> int | None:
        live = self.client.zrangebyscore(
            self._sends_key(to), f"({now - window!r}", "+inf", withscores=True
        )
        if len(live) < max_sends:
            return None
        return _seconds(live[0][1] + window - now)

    @_translated
    def begin_send(self, code: PendingCode, now: float, max_sends: int, window: int) -> int | None:
        ttl_ms = max(1, math.ceil((code.expires_at - now) * 1000))
        keys = [self._code_key(code.to), self._sends_key(code.to)]
        args = [repr(now), max_sends, window, code.id, code.channel, code.mac]
        result = self._begin_send(keys=keys, args=[*args, repr(code.expires_at), ttl_ms])
        return None if result is None else _seconds(result)

    @_translated
    def abort_send(self, code: PendingCode) -> None:
        keys = [self._code_key(code.to), self._sends_key(code.to)]
        self._abort_send(keys=keys, args=[code.id])

    @_translated
    def pending(self, to: str, now: float) -> PendingCode | None:
        raw = self.client.hgetall(self._code_key(to))
        if not raw or float(raw["expires_at"]) <= now:
            return None
        return PendingCode(
            raw["id"], to, raw["channel"], raw["mac"], int(raw["attempts"]),
            float(raw["expires_at"]),
        )  # fmt: skip

    @_translated
    def record_check(
        self, code: PendingCode, matched: bool, max_attempts: int, event: ApprovalEvent
    ) -> CheckResult:
        keys = [self._code_key(code.to), EVENTS_STREAM]
        args = [code.id, int(matched), max_attempts, EVENTS_MAXLEN]
        event_args = [event.id, event.to, event.channel, event.approved_at]
        outcome, attempts = self._record_check(keys=keys, args=args + event_args)
        return CheckResult(Outcome(outcome), int(attempts))

    @_translated
    def reserve_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord:
        existing = self._reserve_key(
            keys=[self._idem_key(scope, key)], args=[fingerprint, RESERVATION_MS]
        )
        if existing is None:
            return IdempotencyRecord(IdempotencyState.RESERVED)
        return _record_from(dict(zip(existing[::2], existing[1::2], strict=True)), fingerprint)

    @_translated
    def peek_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        raw = self.client.hgetall(self._idem_key(scope, key))
        return _record_from(raw, fingerprint) if raw else None

    @_translated
    def complete_key(self, scope: str, key: str, response: StoredResponse) -> None:
        name = self._idem_key(scope, key)
        with self.client.pipeline(transaction=True) as pipe:
            body = json.dumps(response.body)
            pipe.hset(name, mapping={"state": "done", "status": response.status, "body": body})
            pipe.pexpire(name, IDEMPOTENCY_MS)
            pipe.execute()

    @_translated
    def release_key(self, scope: str, key: str) -> None:
        self.client.delete(self._idem_key(scope, key))

    @_translated
    def ping(self) -> None:
        self.client.ping()


def _record_from(raw: dict[str, Any], fingerprint: str) -> IdempotencyRecord:
    if raw.get("fp") != fingerprint:
        return IdempotencyRecord(IdempotencyState.CONFLICT)
    if raw.get("state") != "done":
        return IdempotencyRecord(IdempotencyState.IN_FLIGHT)
    response = StoredResponse(int(raw["status"]), json.loads(raw["body"]))
    return IdempotencyRecord(IdempotencyState.DONE, response)
