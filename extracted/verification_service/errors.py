"""Domain exceptions of the verification service; the HTTP layer maps each to a JSON error."""

from __future__ import annotations


class VerificationError(Exception):
    """Base of every error a client can see; `code` is the contract's machine code."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(VerificationError):
    """The request is malformed; `code` names which rule it broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ShadowNotAllowed(VerificationError):
    code = "shadow_not_allowed"


class NotFound(VerificationError):
    code = "not_found"


class IdempotencyKeyReused(VerificationError):
    code = "idempotency_key_reused"


class RateLimited(VerificationError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MaxAttemptsReached(VerificationError):
    code = "max_attempts_reached"


class DeliveryFailed(VerificationError):
    code = "delivery_failed"


class StoreUnavailable(VerificationError):
    code = "unavailable"
    retry_after: int | None = None


class IdempotencyKeyBusy(StoreUnavailable):
    """The first request with this key is still running after the retry waited for it."""

    retry_after = 1
