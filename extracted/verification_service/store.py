"""The store interface the service logic depends on, and the records it keeps."""

from __future__ import annotations

import abc
import enum
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PendingCode:
    """One code waiting to be checked; only the keyed hash of the code is kept."""

    id: str
    to: str
    channel: str
    mac: str
    attempts: int
    expires_at: float


@dataclass(frozen=True)
class ApprovalEvent:
    """What the monolith learns about an approval (stream `verification.events`)."""

    id: str
    to: str
    channel: str
    approved_at: str

    def fields(self) -> dict[str, str]:
        return {"type": "verification.approved", **asdict(self)}


class Outcome(enum.Enum):
    APPROVED = "approved"
    WRONG = "wrong"
    EXHAUSTED = "exhausted"  # the check after the last allowed wrong one: the code is removed
    GONE = "gone"  # nothing pending (never sent, expired, spent, exhausted)
    REPLACED = "replaced"  # a newer send replaced the code between read and update


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    attempts: int = 0


@dataclass(frozen=True)
class StoredResponse:
    """The first response given for an Idempotency-Key."""

    status: int
    body: dict


class IdempotencyState(enum.Enum):
    RESERVED = "reserved"  # the caller owns the key and must complete or release it
    IN_FLIGHT = "in_flight"  # another request with the key is running
    DONE = "done"
    CONFLICT = "conflict"  # the key was used with another body


@dataclass(frozen=True)
class IdempotencyRecord:
    state: IdempotencyState
    response: StoredResponse | None = None


class Store(abc.ABC):
    """Persistence of codes, send windows and idempotency keys; every method is atomic.

    Implementations raise `StoreUnavailable` when the backing server cannot be reached.
    """

    @abc.abstractmethod
    def shared_secret(self, candidate: str) -> str:
        """The development secret: `candidate` if none exists yet, else the existing one."""

    @abc.abstractmethod
    def retry_after(self, to: str, now: float, max_sends: int, window: int) -> int | None:
        """Seconds until a send to `to` is allowed again, or None if one is allowed now."""

    @abc.abstractmethod
    def begin_send(self, code: PendingCode, now: float, max_sends: int, window: int) -> int | None:
        """Count a send and make `code` the only pending one for its `to`.

        Returns None on success, or the Retry-After seconds if the limit is reached (then
        nothing changes).
        """

    @abc.abstractmethod
    def abort_send(self, code: PendingCode) -> None:
        """Undo `begin_send` after a failed delivery; the replaced code stays gone."""

    @abc.abstractmethod
    def pending(self, to: str, now: float) -> PendingCode | None:
        """The pending code for `to`, if any."""

    @abc.abstractmethod
    def record_check(
        self, code: PendingCode, matched: bool, max_attempts: int, event: ApprovalEvent
    ) -> CheckResult:
        """Apply one check of `code` and, on approval, publish `event` in the same step."""

    @abc.abstractmethod
    def reserve_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord:
        """Claim an Idempotency-Key for a request whose body has `fingerprint`."""

    @abc.abstractmethod
    def peek_key(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """The key's record without claiming it (dry runs); None if it is unused."""

    @abc.abstractmethod
    def complete_key(self, scope: str, key: str, response: StoredResponse) -> None:
        """Store the first response for a reserved key."""

    @abc.abstractmethod
    def release_key(self, scope: str, key: str) -> None:
        """Give a reserved key back after a failure, so that a retry runs again."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
