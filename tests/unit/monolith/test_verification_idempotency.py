"""Idempotency-Key on send: replay the first answer, refuse another body, send nothing twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.monolith import create_app, verification
from strangler.monolith.codes import body_fingerprint
from strangler.monolith.db import connect
from strangler.monolith.notifiers import Message
from strangler.monolith.verifications import IDEMPOTENCY_PENDING_TTL
from tests.unit.monolith.conftest import PHONE, FakeClock, RecordingNotifier

SEND = "/api/verification/send"
BODY = {"to": PHONE, "channel": "sms"}


def send(client: FlaskClient, key: str, body: dict | None = None):
    return client.post(SEND, json=body or BODY, headers={"Idempotency-Key": key})


def test_a_retry_replays_the_first_answer_and_sends_nothing(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    first = send(client, "k1")
    again = client.post(SEND, data='{ "channel":"sms",  "to":"+15551234567" }',
                        headers={"Idempotency-Key": "k1"})  # fmt: skip
    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(notifier.messages) == 1


def test_replays_do_not_count_towards_the_send_limit(client: FlaskClient) -> None:
    for _ in range(10):
        assert send(client, "same").status_code == 201
    for n in range(4):
        assert send(client, f"other-{n}").status_code == 201
    assert send(client, "sixth").status_code == 429


def test_same_key_other_body_is_422(client: FlaskClient, notifier: RecordingNotifier) -> None:
    send(client, "k1")
    response = send(client, "k1", {"to": "+15557654321", "channel": "sms"})
    assert (response.status_code, response.json["error"]) == (422, "idempotency_key_reused")
    assert len(notifier.messages) == 1


def test_keys_are_kept_for_a_day(client: FlaskClient, clock: FakeClock) -> None:
    first = send(client, "k1").json
    clock.advance(24 * 3600 - 1)
    assert send(client, "k1").json["id"] == first["id"]
    clock.advance(1)
    assert send(client, "k1").json["id"] != first["id"]


def test_a_failed_delivery_frees_the_key_for_a_retry(
    client: FlaskClient, notifier: RecordingNotifier
) -> None:
    notifier.failing = True
    assert send(client, "k1").status_code == 502
    notifier.failing = False
    retried = send(client, "k1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert len(notifier.messages) == 1


class GatedNotifier(RecordingNotifier):
    """Holds the first delivery until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def deliver(self, message: Message) -> None:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super().deliver(message)


def test_a_retry_racing_the_first_request_waits_and_replays(
    app_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = GatedNotifier()
    app: Flask = create_app({**app_config, "NOTIFIER": notifier})
    retry_waiting = threading.Event()

    def note_wait(seconds: float) -> None:
        retry_waiting.set()
        time.sleep(seconds)

    monkeypatch.setattr(verification, "sleep", note_wait)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(send, app.test_client(), "k1")
        assert notifier.entered.wait(10)
        retry = pool.submit(send, app.test_client(), "k1")
        # Only once the retry has found the key busy may the first request finish.
        assert retry_waiting.wait(10)
        notifier.gate.set()
        first_response, retry_response = first.result(10), retry.result(10)
    assert first_response.status_code == retry_response.status_code == 201
    assert retry_response.json == first_response.json
    assert retry_response.headers["Idempotent-Replayed"] == "true"
    assert len(notifier.messages) == 1


def test_a_retry_that_outwaits_its_first_request_is_503(
    app_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = GatedNotifier()
    app: Flask = create_app({**app_config, "NOTIFIER": notifier})
    monkeypatch.setattr(verification, "BUSY_KEY_WAIT", 0.0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(send, app.test_client(), "k1")
        assert notifier.entered.wait(10)
        busy = send(app.test_client(), "k1")
        notifier.gate.set()
        assert first.result(10).status_code == 201
    assert (busy.status_code, busy.json["error"]) == (503, "unavailable")
    assert busy.headers["Retry-After"] == "1"
    assert len(notifier.messages) == 1


def test_a_key_left_by_a_dead_worker_is_freed_after_a_while(
    app: Flask, client: FlaskClient, clock: FakeClock, notifier: RecordingNotifier
) -> None:
    conn = connect(app.config["DATABASE"])
    conn.execute(
        "INSERT INTO idempotency_keys (route, key, body_hash, created_at) VALUES (?, ?, ?, ?)",
        (verification.SEND_ROUTE, "k1", body_fingerprint(BODY), clock()),
    )
    conn.close()
    clock.advance(IDEMPOTENCY_PENDING_TTL)
    assert send(client, "k1").status_code == 201
    assert len(notifier.messages) == 1
