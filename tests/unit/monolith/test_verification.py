"""The verification routes over HTTP: every rule of docs/verification-api.md but dry runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.monolith.conftest import EMAIL, PHONE, FakeClock, RecordingNotifier


def send(client: FlaskClient, to: str = PHONE, channel: str = "sms", **headers: str):
    return client.post(
        "/api/verification/send", json={"to": to, "channel": channel}, headers=headers
    )


def check(client: FlaskClient, code: str, to: str = PHONE):
    return client.post("/api/verification/check", json={"to": to, "code": code})


def test_send_answers_201_and_delivers_the_code(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    response = send(client)
    assert response.status_code == 201
    body = response.json
    assert re.fullmatch(r"VE[0-9a-f]{32}", body["id"])
    assert body == {"id": body["id"], "to": PHONE, "channel": "sms", "status": "pending",
                    "expires_in": 600}  # fmt: skip
    [message] = notifier.messages
    assert (message.id, message.to, message.channel) == (body["id"], PHONE, "sms")
    assert re.fullmatch(r"[0-9]{6}", message.code)


def test_only_a_keyed_hash_of_the_code_is_stored(
    app: Flask, client: FlaskClient, notifier: RecordingNotifier
) -> None:
    send(client)
    code = notifier.latest_code(PHONE)
    assert code.encode() not in Path(app.config["DATABASE"]).read_bytes()


def test_right_code_approves_once_and_marks_the_user(client: FlaskClient, notifier) -> None:
    user = client.post("/api/users", json={"name": "a", "phone": PHONE}).json
    sent = send(client).json
    response = check(client, notifier.latest_code(PHONE))
    assert response.status_code == 200
    assert response.json == {"id": sent["id"], "to": PHONE, "channel": "sms",
                             "status": "approved", "valid": True}  # fmt: skip
    assert client.get(f"/api/users/{user['id']}").json["phone_verified"] is True
    assert check(client, notifier.latest_code(PHONE)).status_code == 404


def test_email_is_normalised_and_marks_email_verified(client: FlaskClient, notifier) -> None:
    user = client.post("/api/users", json={"name": "a", "email": EMAIL}).json
    assert send(client, " Ada@Example.ORG", "email").json["to"] == EMAIL
    assert check(client, notifier.latest_code(EMAIL), to="ADA@example.org ").json["valid"] is True
    shown = client.get(f"/api/users/{user['id']}").json
    assert (shown["email_verified"], shown["phone_verified"]) == (True, False)


def test_five_wrong_checks_then_429_then_404(client: FlaskClient, notifier) -> None:
    send(client)
    right = notifier.latest_code(PHONE)
    remaining = []
    for _ in range(5):
        response = check(client, "000000")
        assert response.status_code == 200
        assert (response.json["status"], response.json["valid"]) == ("pending", False)
        remaining.append(response.json["attempts_remaining"])
    assert remaining == [4, 3, 2, 1, 0]
    exhausted = check(client, right)
    assert (exhausted.status_code, exhausted.json["error"]) == (429, "max_attempts_reached")
    assert (check(client, right).status_code, check(client, "1").status_code) == (404, 404)


def test_max_attempts_is_configurable(app_config, monkeypatch) -> None:
    monkeypatch.delenv("VERIFICATION_MAX_ATTEMPTS", raising=False)
    from strangler.monolith import create_app

    client = create_app({**app_config, "VERIFICATION_MAX_ATTEMPTS": 1}).test_client()
    send(client)
    assert check(client, "1").json["attempts_remaining"] == 0
    assert check(client, "1").status_code == 429


def test_code_expires_after_its_lifetime(client: FlaskClient, clock: FakeClock, notifier) -> None:
    send(client)
    clock.advance(599)
    assert check(client, "1").status_code == 200
    clock.advance(1)
    response = check(client, notifier.latest_code(PHONE))
    assert (response.status_code, response.json["error"]) == (404, "not_found")


def test_short_lifetime_from_config(app_config, clock: FakeClock, notifier) -> None:
    from strangler.monolith import create_app

    client = create_app({**app_config, "VERIFICATION_CODE_TTL": 30}).test_client()
    assert send(client).json["expires_in"] == 30
    clock.advance(30)
    assert check(client, notifier.latest_code(PHONE)).status_code == 404


def test_never_sent_is_404(client: FlaskClient) -> None:
    response = check(client, "123456")
    assert (response.status_code, response.json["error"]) == (404, "not_found")


def test_a_new_send_replaces_the_code_and_resets_attempts(client: FlaskClient, notifier) -> None:
    first = send(client).json
    old = notifier.latest_code(PHONE)
    for _ in range(4):
        check(client, "999999")
    second = send(client).json
    assert second["id"] != first["id"]
    assert check(client, old).json["attempts_remaining"] == 4
    approved = check(client, notifier.latest_code(PHONE)).json
    assert (approved["id"], approved["valid"]) == (second["id"], True)


def test_leading_zeros_matter(app_config) -> None:
    from strangler.monolith import create_app

    client = create_app({**app_config, "CODE_GENERATOR": lambda n: "000123"}).test_client()
    send(client)
    assert check(client, "123").json["valid"] is False
    assert check(client, "000123").json["valid"] is True


def test_sixth_send_in_the_window_is_rate_limited(client: FlaskClient, clock: FakeClock) -> None:
    for _ in range(5):
        assert send(client).status_code == 201
        clock.advance(10)
    refused = send(client)
    assert (refused.status_code, refused.json["error"]) == (429, "rate_limited")
    # The first send (at t=0) leaves the 600 s window at t=600; it is now t=50.
    assert refused.headers["Retry-After"] == "550"
    assert send(client, "+15557654321").status_code == 201  # another address is unaffected
    clock.advance(549)
    assert send(client).status_code == 429  # refused sends do not count, but 1 s remains
    clock.advance(1)
    assert send(client).status_code == 201


def test_retry_after_is_at_least_one_second(client: FlaskClient, clock: FakeClock) -> None:
    for _ in range(5):
        send(client)
    clock.advance(599.5)
    assert send(client).headers["Retry-After"] == "1"


def test_failed_delivery_is_502_leaves_nothing_valid_and_does_not_count(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    send(client)
    old = notifier.latest_code(PHONE)
    notifier.failing = True
    response = send(client)
    assert (response.status_code, response.json["error"]) == (502, "delivery_failed")
    assert check(client, old).status_code == 404
    notifier.failing = False
    for _ in range(4):
        assert send(client).status_code == 201  # 1 earlier + 4 = the limit; the failure is free
    assert send(client).status_code == 429


def test_codes_and_full_destinations_never_reach_the_logs(
    client: FlaskClient, notifier: RecordingNotifier, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    caplog.set_level("DEBUG")
    send(client)
    code = notifier.latest_code(PHONE)
    check(client, "000000")
    check(client, code)
    notifier.failing = True
    send(client)
    logged = caplog.text + capsys.readouterr().err
    assert "+1555***4567" in logged
    assert code not in logged
    assert PHONE not in logged
