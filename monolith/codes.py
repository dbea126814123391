"""Framework-free pieces of verification: codes, ids, keyed hashes, masking, request checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from strangler.monolith.inputs import bad_request, is_phone, normalise_email, require

CHANNELS = ("sms", "email")
CODE_PATTERN_MAX = 10
MAX_IDEMPOTENCY_KEY = 255


def generate_code(length: int) -> str:
    """A code of `length` decimal digits from the OS CSPRNG (leading zeros allowed)."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def new_verification_id() -> str:
    return "VE" + secrets.token_hex(16)


def code_hash(secret: bytes, verification_id: str, code: str) -> str:
    """HMAC-SHA256 over `id:code`: binding the id means a hash is useless for any other send."""
    message = f"{verification_id}:{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def code_matches(secret: bytes, verification_id: str, code: str, stored_hash: str) -> bool:
    candidate = code_hash(secret, verification_id, code)
    return hmac.compare_digest(candidate.encode(), stored_hash.encode())


def mask(to: str) -> str:
    """A destination fit for logs: +1555***4567, a***@b.example."""
    if "@" in to:
        local, _, domain = to.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return f"{to[:5]}***{to[-4:]}" if len(to) > 9 else f"{to[:2]}***{to[-2:]}"


def body_fingerprint(body: dict[str, Any]) -> str:
    """Equal for bodies that are the same JSON, whatever their spacing or key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SendRequest:
    to: str
    channel: str


@dataclass(frozen=True)
class CheckRequest:
    to: str
    code: str


def _destination(value: Any) -> str:
    if isinstance(value, str):
        if is_phone(value):
            return value
        email = normalise_email(value)
        if email is not None:
            return email
    raise bad_request("invalid_to", "'to' must be an E.164 phone number or an e-mail address")


def parse_send(body: dict[str, Any]) -> SendRequest:
    """Checks in the contract's order: presence of every field, then each field's shape."""
    require(body, "to", "channel")
    to = _destination(body["to"])
    channel = body["channel"]
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise bad_request("invalid_channel", "'channel' must be 'sms' or 'email'")
    if (channel == "sms") != is_phone(to):
        raise bad_request("invalid_to", f"'to' does not fit the channel '{channel}'")
    return SendRequest(to, channel)


def parse_check(body: dict[str, Any]) -> CheckRequest:
    require(body, "to", "code")
    to = _destination(body["to"])
    code = body["code"]
    # str.isdigit() would take other scripts' digits; only ASCII 0-9 make a code.
    if not isinstance(code, str) or not (
        1 <= len(code) <= CODE_PATTERN_MAX and code.isascii() and code.isdigit()
    ):
        raise bad_request("invalid_code", "'code' must be a string of 1 to 10 digits")
    return CheckRequest(to, code)


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY:
        raise bad_request("invalid_idempotency_key", "Idempotency-Key must be 1-255 characters")
    return value
