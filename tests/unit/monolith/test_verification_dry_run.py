"""Dry runs (X-Strangler-Shadow: 1): only with the internal token; they write and send nothing."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from strangler.monolith import create_app
from tests.unit.monolith.conftest import PHONE, TOKEN, RecordingNotifier

SHADOW = {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": TOKEN}
SEND_BODY = {"to": PHONE, "channel": "sms"}


def send(client: FlaskClient, headers: dict[str, str] | None = None):
    return client.post("/api/verification/send", json=SEND_BODY, headers=headers or {})


def check(client: FlaskClient, code: str, headers: dict[str, str] | None = None):
    return client.post("/api/verification/check", json={"to": PHONE, "code": code},
                       headers=headers or {})  # fmt: skip


def test_dry_send_answers_like_a_send_but_stores_and_sends_nothing(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    response = send(client, SHADOW)
    assert response.status_code == 201
    assert response.headers["X-Strangler-Shadow"] == "1"
    assert response.json["status"] == "pending"
    assert notifier.messages == []
    assert check(client, "100000").status_code == 404


def test_dry_sends_do_not_count_towards_the_limit(client: FlaskClient) -> None:
    for _ in range(6):
        assert send(client, SHADOW).status_code == 201
    for _ in range(5):
        assert send(client).status_code == 201
    dry = send(client, SHADOW)
    assert (dry.status_code, dry.json["error"]) == (429, "rate_limited")  # the would-be verdict
    assert dry.headers["X-Strangler-Shadow"] == "1"


def test_dry_check_gives_the_verdict_but_spends_nothing(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    user = client.post("/api/users", json={"name": "a", "phone": PHONE}).json
    send(client)
    code = notifier.latest_code(PHONE)
    for _ in range(7):
        wrong = check(client, "999999", SHADOW)
        assert wrong.json["attempts_remaining"] == 4
    assert check(client, code, SHADOW).json["status"] == "approved"
    assert client.get(f"/api/users/{user['id']}").json["phone_verified"] is False
    assert check(client, code).json["status"] == "approved"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Strangler-Shadow": "1"},
        {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": ""},
        {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": TOKEN + "x"},
    ],
    ids=["no-token", "empty-token", "wrong-token"],
)
def test_dry_run_without_the_right_token_is_refused(
    client: FlaskClient, notifier: RecordingNotifier, headers: dict[str, str]
) -> None:
    send(client)
    code = notifier.latest_code(PHONE)
    for response in (send(client, headers), check(client, code, headers)):
        assert (response.status_code, response.json["error"]) == (403, "shadow_not_allowed")
    assert len(notifier.messages) == 1
    assert check(client, code).json["valid"] is True


def test_without_a_configured_token_every_dry_run_is_refused(app_config) -> None:
    client = create_app({**app_config, "STRANGLER_INTERNAL_TOKEN": None}).test_client()
    headers = {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": ""}
    assert send(client, headers).status_code == 403
