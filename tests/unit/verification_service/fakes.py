"""In-memory stand-ins built on the service's real interfaces: store, clock, codes, notifier."""

from __future__ import annotations

import math
from dataclasses import replace

from strangler.extracted.verification_service.errors import DeliveryFailed, StoreUnavailable
from strangler.extracted.verification_service.notifier import Message
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


class FakeStore(Store):
    """The Store contract in dicts; `down = True` makes every call fail like a dead Redis."""

    def __init__(self) -> None:
        self.codes: dict[str, PendingCode] = {}
        self.sends: dict[str, list[tuple[float, str]]] = {}
        self.keys: dict[tuple[str, str], dict] = {}
        self.events: list[dict[str, str]] = []
        self.secret: str | None = None
        self.down = False

    def _up(self) -> None:
        if self.down:
            raise StoreUnavailable("the verification store is unavailable")

    def shared_secret(self, candidate: str) -> str:
        self._up()
        if self.secret is None:
            self.secret = candidate
        return self.secret

    def retry_after(self, to: str, now: float, max_sends: int, window: int) -> int | None:
        self._up()
        live = [sent for sent in self.sends.get(to, []) if sent[0] > now - window]
        self.sends[to] = live
        if len(live) < max_sends:
            return None
        return max(1, math.ceil(live[0][0] + window - now))

    def begin_send(self, code: PendingCode, now: float, max_sends: int, window: int) -> int | None:
        retry_after = self.retry_after(code.to, now, max_sends, window)
        if retry_after is not None:
            return retry_after
        self.sends[code.to].append((now, code.id))
        self.codes[code.to] = code
        return None

    def abort_send(self, code: PendingCode) -> None:
        self._up()
        if code.to in self.codes and self.codes[code.to].id == code.id:
            del self.codes[code.to]
        self.sends[code.to] = [sent for sent in self.sends.get(code.to, []) if sent[1] != code.id]

    def pending(self, to: str, now: float) -> PendingCode | None:
        self._up()
        code = self.codes.get(to)
        return code if code is not None and code.expires_at > now else None

    def record_check(
        self, code: PendingCode, matched: bool, max_attempts: int, event: ApprovalEvent
    ) -> CheckResult:
        self._up()
        current = self.codes.get(code.to)
        if current is None:
            return CheckResult(Outcome.GONE)
        if current.id != code.id:
            return CheckResult(Outcome.REPLACED)
        if current.attempts >= max_attempts:
            del self.codes[code.to]
            return CheckResult(Outcome.EXHAUSTED, current.attempts)
        if matched:
            del self.codes[code.to]
            self.events.append(event.fields())
            return CheckResult(Outcome.APPROVED, current.attempts)
        self.codes[code.to] = replace(current, attempts=current.attempts + 1)
        return CheckResult(Outcome.WRONG, current.attempts + 1)

    def reserve_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord:
        record = self.peek_key(scope, key, fingerprint)
        if record is None:
            self.keys[scope, key] = {"fp": fingerprint, "response": None}
            return IdempotencyRecord(IdempotencyState.RESERVED)
        return record

    def peek_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        self._up()
        raw = self.keys.get((scope, key))
        if raw is None:
            return None
        if raw["fp"] != fingerprint:
            return IdempotencyRecord(IdempotencyState.CONFLICT)
        if raw["response"] is None:
            return IdempotencyRecord(IdempotencyState.IN_FLIGHT)
        return IdempotencyRecord(IdempotencyState.DONE, raw["response"])

    def complete_key(self, scope: str, key: str, response: StoredResponse) -> None:
        self._up()
        self.keys[scope, key]["response"] = response

    def release_key(self, scope: str, key: str) -> None:
        self._up()
        self.keys.pop((scope, key), None)

    def ping(self) -> None:
        self._up()


class SequentialCodes:
    """Predictable codes: 000001, 000002, ... (length as asked)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, length: int) -> str:
        self.count += 1
        return f"{self.count:0{length}d}"


class FakeNotifier:
    """Records deliveries; `failing = True` refuses them like a broken gateway."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.failing = False

    def deliver(self, message: Message) -> None:
        if self.failing:
            raise DeliveryFailed("the message could not be delivered")
        self.messages.append(message)

    def code_for(self, to: str) -> str:
        return [m for m in self.messages if m.to == to][-1].code
