"""Verification state in SQLite: sends, checks, the send window and idempotency records.

Framework-free: each function takes a connection and the current time, runs one
BEGIN IMMEDIATE transaction, and (for a dry run) rolls it back so nothing is written.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from strangler.monolith.codes import code_hash, code_matches
from strangler.monolith.db import transaction
from strangler.monolith.users import apply_verified

IDEMPOTENCY_TTL = 24 * 3600
# A reserved key whose owner never finished (a worker died mid-request) is given up after this.
IDEMPOTENCY_PENDING_TTL = 30


@dataclass(frozen=True)
class Limits:
    ttl: int
    max_attempts: int
    max_sends: int
    send_window: int
    secret: bytes


class VerificationError(Exception):
    """A verification request the rules refuse."""


class RateLimited(VerificationError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class NoPendingCode(VerificationError):
    """Never sent, expired, spent or exhausted."""


class AttemptsExhausted(VerificationError):
    """The check after the last allowed wrong one: the code is now gone."""


class IdempotencyKeyReused(VerificationError):
    """The key was first used with another body."""


class IdempotencyKeyBusy(Exception):
    """The first request with this key is still running."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IdempotencyClaim:
    route: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Pending:
    id: str
    to: str
    channel: str


def start_send(
    conn: sqlite3.Connection, limits: Limits, pending: Pending, code: str, now: float,
    claim: IdempotencyClaim | None = None, dry_run: bool = False,
) -> Replay | None:  # fmt: skip
    """Store `code` as the only valid one for `pending.to`, or say why not.

    Returns the stored response when `claim` replays an earlier request; raises
    RateLimited, IdempotencyKeyReused or IdempotencyKeyBusy; otherwise None.
    """
    with transaction(conn, commit=not dry_run):
        if claim is not None:
            replay = _claim(conn, claim, now)
            if replay is not None:
                return replay
        _enforce_window(conn, limits, pending.to, now)
        conn.execute(
            "INSERT INTO verification_sends (to_addr, verification_id, sent_at) VALUES (?, ?, ?)",
            (pending.to, pending.id, now),
        )
        conn.execute(
            "INSERT OR REPLACE INTO verifications"
            " (to_addr, id, channel, code_hash, expires_at, attempts) VALUES (?, ?, ?, ?, ?, 0)",
            (pending.to, pending.id, pending.channel, code_hash(limits.secret, pending.id, code),
             now + limits.ttl),
        )  # fmt: skip
    return None


def _enforce_window(conn: sqlite3.Connection, limits: Limits, to: str, now: float) -> None:
    window_start = now - limits.send_window
    conn.execute(
        "DELETE FROM verification_sends WHERE to_addr = ? AND sent_at <= ?", (to, window_start)
    )
    count, oldest = conn.execute(
        "SELECT COUNT(*), MIN(sent_at) FROM verification_sends WHERE to_addr = ?", (to,)
    ).fetchone()
    if count >= limits.max_sends:
        raise RateLimited(max(1, math.ceil(oldest + limits.send_window - now)))


def _claim(conn: sqlite3.Connection, claim: IdempotencyClaim, now: float) -> Replay | None:
    conn.execute(
        "DELETE FROM idempotency_keys WHERE route = ? AND key = ?"
        " AND (created_at <= ? OR (status IS NULL AND created_at <= ?))",
        (claim.route, claim.key, now - IDEMPOTENCY_TTL, now - IDEMPOTENCY_PENDING_TTL),
    )
    row = conn.execute(
        "SELECT body_hash, status, response FROM idempotency_keys WHERE route = ? AND key = ?",
        (claim.route, claim.key),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO idempotency_keys (route, key, body_hash, created_at) VALUES (?, ?, ?, ?)",
            (claim.route, claim.key, claim.fingerprint, now),
        )
        return None
    if row["body_hash"] != claim.fingerprint:
        raise IdempotencyKeyReused()
    if row["status"] is None:
        raise IdempotencyKeyBusy()
    return Replay(row["status"], json.loads(row["response"]))


def finish_send(
    conn: sqlite3.Connection, claim: IdempotencyClaim | None, status: int, body: dict[str, Any]
) -> None:
    """Record the response the key will replay."""
    if claim is not None:
        conn.execute(
            "UPDATE idempotency_keys SET status = ?, response = ? WHERE route = ? AND key = ?",
            (status, json.dumps(body), claim.route, claim.key),
        )


def cancel_send(conn: sqlite3.Connection, pending: Pending, claim: IdempotencyClaim | None) -> None:
    """Undo a send whose delivery failed: no code stays valid, the send does not count,
    and the key is free for a retry."""
    with transaction(conn):
        conn.execute("DELETE FROM verifications WHERE id = ?", (pending.id,))
        conn.execute("DELETE FROM verification_sends WHERE verification_id = ?", (pending.id,))
        if claim is not None:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE route = ? AND key = ? AND status IS NULL",
                (claim.route, claim.key),
            )


def check_code(
    conn: sqlite3.Connection, limits: Limits, to: str, code: str, now: float,
    dry_run: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The verdict for `code`: approved (spent, user marked) or wrong (one attempt used).

    Raises NoPendingCode or AttemptsExhausted; those changes are committed too.
    """
    with transaction(conn, commit=not dry_run):
        row = conn.execute("SELECT * FROM verifications WHERE to_addr = ?", (to,)).fetchone()
        verdict = _verdict(conn, limits, row, code, now)
    if isinstance(verdict, Exception):
        raise verdict
    return verdict


def _verdict(
    conn: sqlite3.Connection, limits: Limits, row: sqlite3.Row | None, code: str, now: float
) -> dict[str, Any] | Exception:
    if row is None:
        return NoPendingCode()
    found = {"id": row["id"], "to": row["to_addr"], "channel": row["channel"]}
    if row["expires_at"] <= now or row["attempts"] >= limits.max_attempts:
        conn.execute("DELETE FROM verifications WHERE id = ?", (row["id"],))
        return NoPendingCode() if row["expires_at"] <= now else AttemptsExhausted()
    if code_matches(limits.secret, row["id"], code, row["code_hash"]):
        conn.execute("DELETE FROM verifications WHERE id = ?", (row["id"],))
        apply_verified(conn, row["channel"], row["to_addr"])
        return {**found, "status": "approved", "valid": True}
    attempts = row["attempts"] + 1
    conn.execute("UPDATE verifications SET attempts = ? WHERE id = ?", (attempts, row["id"]))
    remaining = limits.max_attempts - attempts
    return {**found, "status": "pending", "valid": False, "attempts_remaining": remaining}
