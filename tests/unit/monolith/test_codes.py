"""Pure verification pieces: codes, keyed hashes, masking, request parsing."""

from __future__ import annotations

from typing import Any

import pytest

from strangler.monolith.codes import (
    body_fingerprint,
    code_hash,
    code_matches,
    generate_code,
    mask,
    new_verification_id,
    parse_check,
    parse_idempotency_key,
    parse_send,
)
from strangler.monolith.inputs import ApiError


@pytest.mark.parametrize("length", [6, 8, 10])
def test_generated_codes_are_digits_of_the_asked_length(length: int) -> None:
    codes = {generate_code(length) for _ in range(200)}
    assert all(len(c) == length and c.isdigit() for c in codes)
    assert len(codes) > 190  # a CSPRNG practically never repeats in 200 draws of 10**6


def test_ids_are_ve_and_32_hex_digits() -> None:
    ids = {new_verification_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("VE") and len(i) == 34 and int(i[2:], 16) >= 0 for i in ids)
    assert all(i[2:] == i[2:].lower() for i in ids)


def test_hash_is_keyed_and_bound_to_the_id() -> None:
    stored = code_hash(b"secret", "VE1", "123456")
    assert "123456" not in stored
    assert code_matches(b"secret", "VE1", "123456", stored)
    assert not code_matches(b"secret", "VE1", "123457", stored)
    assert not code_matches(b"other", "VE1", "123456", stored)
    assert not code_matches(b"secret", "VE2", "123456", stored)


@pytest.mark.parametrize(
    ("to", "masked"),
    [
        ("+15551234567", "+1555***4567"),
        ("a@b.example", "a***@b.example"),
        ("ada.lovelace@example.org", "a***@example.org"),
        ("+12345678", "+1***78"),
    ],
)
def test_mask(to: str, masked: str) -> None:
    assert mask(to) == masked


def test_fingerprint_ignores_key_order_only() -> None:
    a = body_fingerprint({"to": "x", "channel": "sms"})
    assert a == body_fingerprint({"channel": "sms", "to": "x"})
    assert a != body_fingerprint({"to": "y", "channel": "sms"})


SEND_CASES: list[tuple[str, Any, str]] = [
    ("no-to", {"channel": "sms"}, "missing_field"),
    ("null-to", {"to": None, "channel": "sms"}, "missing_field"),
    ("no-channel", {"to": "+15551234567"}, "missing_field"),
    ("both-missing-bad-to-first", {"to": 5}, "missing_field"),
    ("to-number", {"to": 15551234567, "channel": "sms"}, "invalid_to"),
    ("to-list", {"to": ["+15551234567"], "channel": "sms"}, "invalid_to"),
    ("to-no-plus", {"to": "15551234567", "channel": "sms"}, "invalid_to"),
    ("to-letters", {"to": "+1555CALLNOW", "channel": "sms"}, "invalid_to"),
    ("to-bad-email", {"to": "a@b", "channel": "email"}, "invalid_to"),
    ("bad-to-before-bad-channel", {"to": "nope", "channel": "fax"}, "invalid_to"),
    ("channel-unknown", {"to": "+15551234567", "channel": "fax"}, "invalid_channel"),
    ("channel-case", {"to": "+15551234567", "channel": "SMS"}, "invalid_channel"),
    ("channel-number", {"to": "+15551234567", "channel": 1}, "invalid_channel"),
    ("sms-to-email", {"to": "a@b.example", "channel": "sms"}, "invalid_to"),
    ("email-to-phone", {"to": "+15551234567", "channel": "email"}, "invalid_to"),
]


@pytest.mark.parametrize(
    ("body", "error"), [c[1:] for c in SEND_CASES], ids=[c[0] for c in SEND_CASES]
)
def test_parse_send_refuses(body: dict[str, Any], error: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_send(body)
    assert (caught.value.status, caught.value.error) == (400, error)


def test_parse_send_normalises_email_and_keeps_phone() -> None:
    assert parse_send({"to": " Ada@Example.ORG ", "channel": "email"}).to == "ada@example.org"
    assert parse_send({"to": "+15551234567", "channel": "sms"}).to == "+15551234567"


CHECK_CASES: list[tuple[str, Any, str]] = [
    ("no-code", {"to": "+15551234567"}, "missing_field"),
    ("null-code", {"to": "+15551234567", "code": None}, "missing_field"),
    ("no-to", {"code": "123456"}, "missing_field"),
    ("to-bad", {"to": "x", "code": "123456"}, "invalid_to"),
    ("code-int", {"to": "+15551234567", "code": 123456}, "invalid_code"),
    ("code-letters", {"to": "+15551234567", "code": "12a456"}, "invalid_code"),
    ("code-empty", {"to": "+15551234567", "code": ""}, "invalid_code"),
    ("code-11-digits", {"to": "+15551234567", "code": "12345678901"}, "invalid_code"),
    ("code-arabic-digits", {"to": "+15551234567", "code": "\u0661\u0662\u0663"}, "invalid_code"),
    ("code-space", {"to": "+15551234567", "code": " 123456"}, "invalid_code"),
    ("code-negative", {"to": "+15551234567", "code": "-12345"}, "invalid_code"),
]


@pytest.mark.parametrize(
    ("body", "error"), [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES]
)
def test_parse_check_refuses(body: dict[str, Any], error: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_check(body)
    assert (caught.value.status, caught.value.error) == (400, error)


def test_parse_check_keeps_leading_zeros() -> None:
    assert parse_check({"to": "+15551234567", "code": "000123"}).code == "000123"


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_idempotency_keys(key: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_idempotency_key(key)
    assert caught.value.error == "invalid_idempotency_key"


def test_good_idempotency_keys() -> None:
    assert parse_idempotency_key(None) is None
    assert parse_idempotency_key("k" * 255) == "k" * 255
