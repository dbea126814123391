"""Pure request validation: JSON bodies to typed send/check requests, in the contract's order."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from strangler.extracted.verification_service.errors import InvalidRequest

E164 = re.compile(r"\+[1-9][0-9]{7,14}")
CODE = re.compile(r"[0-9]{1,10}")
# One @, a dot inside the domain, no white space: the same rule as the monolith's.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CHANNELS = ("sms", "email")
MAX_EMAIL_LENGTH = 254
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class SendRequest:
    to: str
    channel: str


@dataclass(frozen=True)
class CheckRequest:
    to: str
    code: str


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type said."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and NaN/Infinity; RecursionError a deeply
        # nested document.
        raise InvalidRequest("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_json", "the body must be a JSON object")
    return body


def _refuse_constant(name: str) -> NoReturn:
    # Python's json takes NaN, Infinity and -Infinity, which JSON (RFC 8259) does not have.
    raise ValueError(f"{name} is not JSON")


def _require(body: dict[str, Any], *fields: str) -> None:
    for name in fields:
        if body.get(name) is None:
            raise InvalidRequest("missing_field", f"the field '{name}' is required")


def normalise_to(value: Any) -> tuple[str, str]:
    """(`to` as stored, the channel it can be reached on); e-mail addresses are lower-cased."""
    if not isinstance(value, str):
        raise InvalidRequest(
            "invalid_to", "'to' must be an E.164 phone number or an e-mail address"
        )
    # Fullmatch, not `$`: a trailing newline must not slip through.
    if E164.fullmatch(value):
        return value, "sms"
    email = value.strip().lower()
    if _is_email(email):
        return email, "email"
    raise InvalidRequest("invalid_to", "'to' must be an E.164 phone number or an e-mail address")


def _is_email(text: str) -> bool:
    return len(text) <= MAX_EMAIL_LENGTH and EMAIL.fullmatch(text) is not None


def parse_send(body: dict[str, Any]) -> SendRequest:
    _require(body, "to", "channel")
    to, reachable_on = normalise_to(body["to"])
    channel = body["channel"]
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise InvalidRequest("invalid_channel", "'channel' must be 'sms' or 'email'")
    if channel != reachable_on:
        raise InvalidRequest("invalid_to", f"'to' does not fit the channel '{channel}'")
    return SendRequest(to, channel)


def parse_check(body: dict[str, Any]) -> CheckRequest:
    _require(body, "to", "code")
    to, _ = normalise_to(body["to"])
    code = body["code"]
    # A JSON number is refused on purpose: "012345" and 12345 are different codes.
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise InvalidRequest("invalid_code", "'code' must be a string of 1 to 10 digits")
    return CheckRequest(to, code)


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequest("invalid_idempotency_key", "Idempotency-Key must be 1-255 characters")
    return value


def fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of the body in canonical JSON: equal for requests with 'the same body'.

    A digest, not the JSON itself: it is kept in Redis for 24 h per Idempotency-Key, and a
    body may be up to 1 MiB.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def mask(to: str) -> str:
    """A destination fit for logs: `+1555***4567`, `a***@b.example`."""
    if "@" in to:
        local, _, domain = to.rpartition("@")
        return f"{local[:1]}***@{domain}"
    # A short number would be shown almost whole by the long form.
    return f"{to[:5]}***{to[-4:]}" if len(to) > 9 else f"{to[:2]}***{to[-2:]}"
