"""Every malformed verification request, through HTTP, with its status and machine code."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from tests.unit.monolith.conftest import RecordingNotifier

SEND = "/api/verification/send"
CHECK = "/api/verification/check"
PHONE = "+15551234567"


def j(**fields: object) -> bytes:
    return json.dumps(fields).encode()


OK_SEND = j(to=PHONE, channel="sms")

CASES = [
    # (id, path, raw body, extra headers, status, error)
    ("send-empty", SEND, b"", {}, 400, "invalid_json"),
    ("send-garbage", SEND, b"to=+15551234567", {}, 400, "invalid_json"),
    ("send-array", SEND, b'[{"to": "+15551234567"}]', {}, 400, "invalid_json"),
    ("send-string", SEND, b'"hello"', {}, 400, "invalid_json"),
    ("send-bad-utf8", SEND, b'{"to": "\xff"}', {}, 400, "invalid_json"),
    ("send-nan", SEND, b'{"to": "+15551234567", "channel": "sms", "n": NaN}', {}, 400,
     "invalid_json"),
    ("send-infinity", SEND, b'{"to": "+15551234567", "channel": "sms", "n": Infinity}', {},
     400, "invalid_json"),
    ("send-minus-infinity", SEND, b'{"to": "+15551234567", "channel": "sms", "n": -Infinity}',
     {}, 400, "invalid_json"),
    ("send-no-to", SEND, j(channel="sms"), {}, 400, "missing_field"),
    ("send-null-channel", SEND, j(to=PHONE, channel=None), {}, 400, "missing_field"),
    ("send-to-int", SEND, j(to=15551234567, channel="sms"), {}, 400, "invalid_to"),
    ("send-to-short", SEND, j(to="+1234", channel="sms"), {}, 400, "invalid_to"),
    ("send-to-email-sms", SEND, j(to="a@b.example", channel="sms"), {}, 400, "invalid_to"),
    ("send-channel-fax", SEND, j(to=PHONE, channel="fax"), {}, 400, "invalid_channel"),
    ("send-channel-list", SEND, j(to=PHONE, channel=["sms"]), {}, 400, "invalid_channel"),
    ("send-key-empty", SEND, OK_SEND, {"Idempotency-Key": ""}, 400, "invalid_idempotency_key"),
    ("send-key-long", SEND, OK_SEND, {"Idempotency-Key": "k" * 256}, 400,
     "invalid_idempotency_key"),
    ("check-empty", CHECK, b"", {}, 400, "invalid_json"),
    ("check-null", CHECK, b"null", {}, 400, "invalid_json"),
    ("check-code-nan", CHECK, b'{"to": "+15551234567", "code": NaN}', {}, 400, "invalid_json"),
    ("check-code-infinity", CHECK, b'{"to": "+15551234567", "code": Infinity}', {}, 400,
     "invalid_json"),
    ("check-no-code", CHECK, j(to=PHONE), {}, 400, "missing_field"),
    ("check-no-to", CHECK, j(code="123456"), {}, 400, "missing_field"),
    ("check-to-bad", CHECK, j(to="phone", code="123456"), {}, 400, "invalid_to"),
    ("check-code-int", CHECK, j(to=PHONE, code=123456), {}, 400, "invalid_code"),
    ("check-code-alpha", CHECK, j(to=PHONE, code="12345a"), {}, 400, "invalid_code"),
    ("check-code-long", CHECK, j(to=PHONE, code="12345678901"), {}, 400, "invalid_code"),
    ("check-code-float", CHECK, j(to=PHONE, code=1.5), {}, 400, "invalid_code"),
    ("send-shadow-no-token", SEND, OK_SEND, {"X-Strangler-Shadow": "1"}, 403, "shadow_not_allowed"),
    ("check-shadow-bad-token", CHECK, b"{}",
     {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": "guess"}, 403,
     "shadow_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_request(
    client: FlaskClient, notifier: RecordingNotifier, path: str, body: bytes,
    headers: dict[str, str], status: int, error: str,
) -> None:  # fmt: skip
    # The body is JSON whatever the Content-Type, so a form type changes nothing.
    response = client.post(path, data=body, headers=headers, content_type="text/plain")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.json["error"] == error
    assert response.json["message"]
    assert notifier.messages == []


def test_missing_field_message_names_the_field(client: FlaskClient) -> None:
    response = client.post(CHECK, json={"to": "+15551234567"})
    assert "code" in response.json["message"]


def test_json_is_read_whatever_the_content_type(client: FlaskClient) -> None:
    response = client.post(SEND, data=OK_SEND, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201
