"""Every malformed input with the error the contract gives it, in the contract's order."""

from __future__ import annotations

import json
import re

import pytest

from strangler.extracted.verification_service.errors import InvalidRequest
from strangler.extracted.verification_service.validation import (
    fingerprint,
    mask,
    normalise_to,
    parse_idempotency_key,
)

PHONE = "+15551234567"
LONG_EMAIL = "a" * 243 + "@b.example"  # 253 characters

SEND_CASES = [
    (b"", "invalid_json"),
    (b"{", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'"to"', "invalid_json"),
    (b"null", "invalid_json"),
    (b"[" * 100_000, "invalid_json"),
    (b'{"to": "+15551234567", "channel": "sms", "n": NaN}', "invalid_json"),
    (b'{"to": "+15551234567", "channel": "sms", "n": Infinity}', "invalid_json"),
    (b'{"to": "+15551234567", "channel": "sms", "n": [-Infinity]}', "invalid_json"),
    ({}, "missing_field"),
    ({"channel": "sms"}, "missing_field"),
    ({"to": PHONE}, "missing_field"),
    ({"to": None, "channel": "sms"}, "missing_field"),
    ({"to": PHONE, "channel": None}, "missing_field"),
    ({"to": 15551234567, "channel": "sms"}, "invalid_to"),
    ({"to": ["+15551234567"], "channel": "sms"}, "invalid_to"),
    ({"to": "15551234567", "channel": "sms"}, "invalid_to"),
    ({"to": "+05551234567", "channel": "sms"}, "invalid_to"),
    ({"to": "+1555123", "channel": "sms"}, "invalid_to"),
    ({"to": "+1555123456789012", "channel": "sms"}, "invalid_to"),
    ({"to": " +15551234567", "channel": "sms"}, "invalid_to"),
    ({"to": "+15551234567\n", "channel": "sms"}, "invalid_to"),
    ({"to": "+1555\uff11234567", "channel": "sms"}, "invalid_to"),
    ({"to": "a@b", "channel": "email"}, "invalid_to"),
    ({"to": "a@@b.example", "channel": "email"}, "invalid_to"),
    ({"to": "a b@c.example", "channel": "email"}, "invalid_to"),
    ({"to": "@b.example", "channel": "email"}, "invalid_to"),
    ({"to": "a" * 250 + "@b.example", "channel": "email"}, "invalid_to"),
    ({"to": PHONE, "channel": "email"}, "invalid_to"),
    ({"to": "a@b.example", "channel": "sms"}, "invalid_to"),
    ({"to": "not a destination", "channel": "fax"}, "invalid_to"),
    ({"to": PHONE, "channel": "fax"}, "invalid_channel"),
    ({"to": PHONE, "channel": "SMS"}, "invalid_channel"),
    ({"to": PHONE, "channel": 1}, "invalid_channel"),
]

CHECK_CASES = [
    (b"not json", "invalid_json"),
    (b"42", "invalid_json"),
    (b'{"to": "+15551234567", "code": NaN}', "invalid_json"),
    (b'{"to": "+15551234567", "code": -Infinity}', "invalid_json"),
    ({"code": "123456"}, "missing_field"),
    ({"to": PHONE}, "missing_field"),
    ({"to": PHONE, "code": None}, "missing_field"),
    ({"to": "nobody", "code": "123456"}, "invalid_to"),
    ({"to": PHONE, "code": 123456}, "invalid_code"),
    ({"to": PHONE, "code": True}, "invalid_code"),
    ({"to": PHONE, "code": ""}, "invalid_code"),
    ({"to": PHONE, "code": "12345a"}, "invalid_code"),
    ({"to": PHONE, "code": " 123456"}, "invalid_code"),
    ({"to": PHONE, "code": "12345678901"}, "invalid_code"),
    ({"to": PHONE, "code": "\uff11\uff12\uff13\uff14\uff15\uff16"}, "invalid_code"),
]


def _raw(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize(("body", "error"), SEND_CASES)
def test_send_refuses_malformed_input(client, notifier, body, error):
    resp = client.post("/api/verification/send", data=_raw(body))
    assert resp.status_code == 400
    assert resp.content_type == "application/json"
    assert resp.get_json()["error"] == error
    assert resp.get_json()["message"]
    assert notifier.messages == []


@pytest.mark.parametrize(("body", "error"), CHECK_CASES)
def test_check_refuses_malformed_input(client, body, error):
    resp = client.post("/api/verification/check", data=_raw(body))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == error


def test_missing_field_message_names_the_field(client):
    resp = client.post("/api/verification/send", json={"to": PHONE})
    assert "channel" in resp.get_json()["message"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (PHONE, (PHONE, "sms")),
        ("  Ann@Example.COM ", ("ann@example.com", "email")),
        (LONG_EMAIL, (LONG_EMAIL, "email")),
    ],
)
def test_destinations_are_normalised(given, stored):
    assert normalise_to(given) == stored


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_key_must_be_1_to_255_characters(key):
    with pytest.raises(InvalidRequest) as caught:
        parse_idempotency_key(key)
    assert caught.value.code == "invalid_idempotency_key"


def test_idempotency_key_of_255_characters_is_taken():
    assert parse_idempotency_key("k" * 255) == "k" * 255


def test_fingerprint_ignores_spacing_and_key_order():
    assert fingerprint({"to": PHONE, "channel": "sms"}) == fingerprint(
        json.loads('{ "channel" : "sms",  "to": "+15551234567" }')
    )
    assert fingerprint({"to": PHONE, "channel": "sms"}) != fingerprint({"to": PHONE})


def test_fingerprint_is_a_sha256_digest_whatever_the_body_size():
    big = {"to": PHONE, "channel": "sms", "pad": "x" * 1_000_000}
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(big))
    assert fingerprint(big) != fingerprint({**big, "pad": "y" * 1_000_000})


@pytest.mark.parametrize(
    ("to", "masked"),
    [
        ("+15551234567", "+1555***4567"),
        ("a@b.example", "a***@b.example"),
        ("ann@b.example", "a***@b.example"),
        ("+12345678", "+1***78"),
    ],
)
def test_mask_hides_the_middle_of_destinations(to, masked):
    assert mask(to) == masked
