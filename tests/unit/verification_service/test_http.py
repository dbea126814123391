"""The HTTP layer with fakes behind it: statuses, headers and JSON errors of the contract."""

from __future__ import annotations

import io
import json

import pytest

from tests.unit.verification_service.conftest import TOKEN

PHONE = "+15551234567"
SEND = "/api/verification/send"
CHECK = "/api/verification/check"
SHADOW = {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": TOKEN}


def send(client, headers=None, **body):
    return client.post(SEND, json={"to": PHONE, "channel": "sms", **body}, headers=headers or {})


def test_send_then_check_over_http(client, notifier):
    sent = send(client)
    assert sent.status_code == 201
    assert list(sent.get_json()) == ["id", "to", "channel", "status", "expires_in"]
    checked = client.post(CHECK, json={"to": PHONE, "code": notifier.code_for(PHONE)})
    assert checked.status_code == 200
    assert checked.get_json()["status"] == "approved"
    again = client.post(CHECK, json={"to": PHONE, "code": notifier.code_for(PHONE)})
    assert (again.status_code, again.get_json()["error"]) == (404, "not_found")


def test_body_is_json_whatever_the_content_type(client):
    body = json.dumps({"to": "Ann@B.Example", "channel": "email"})
    resp = client.post(SEND, data=body, content_type="text/plain")
    assert resp.status_code == 201
    assert resp.get_json()["to"] == "ann@b.example"


def test_exhausted_code_answers_429_then_404(client, notifier):
    send(client)
    for _ in range(5):
        assert client.post(CHECK, json={"to": PHONE, "code": "000000"}).status_code == 200
    right = {"to": PHONE, "code": notifier.code_for(PHONE)}
    exhausted = client.post(CHECK, json=right)
    assert (exhausted.status_code, exhausted.get_json()["error"]) == (429, "max_attempts_reached")
    assert client.post(CHECK, json=right).status_code == 404


def test_rate_limited_send_carries_retry_after(client):
    for _ in range(5):
        send(client)
    resp = send(client)
    assert (resp.status_code, resp.get_json()["error"]) == (429, "rate_limited")
    assert resp.headers["Retry-After"] == "600"


def test_failed_delivery_is_502(client, notifier):
    notifier.failing = True
    resp = send(client)
    assert (resp.status_code, resp.get_json()["error"]) == (502, "delivery_failed")


def test_store_down_is_503_json_on_api_and_healthz(client, store):
    assert client.get("/healthz").status_code == 200
    store.down = True
    for resp in (send(client), client.post(CHECK, json={"to": PHONE, "code": "1"})):
        assert resp.status_code == 503
        assert resp.get_json()["error"] == "unavailable"
    assert client.get("/healthz").status_code == 503


def test_unknown_url_and_wrong_method_answer_json(client):
    missing = client.get("/nothing/here")
    assert (missing.status_code, missing.get_json()["error"]) == (404, "not_found")
    wrong = client.get(SEND)
    assert (wrong.status_code, wrong.get_json()["error"]) == (405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    assert wrong.content_type == "application/json"


def test_body_over_one_mebibyte_is_413_and_exactly_one_is_taken(client):
    body = json.dumps({"to": PHONE, "channel": "sms"}).encode()
    exact = body + b" " * (1_048_576 - len(body))
    assert client.post(SEND, data=exact).status_code == 201
    over = client.post(SEND, data=exact + b" ")
    assert (over.status_code, over.get_json()["error"]) == (413, "payload_too_large")


def post_chunked(client, path, body: bytes):
    """As gunicorn hands over a chunked body: no Content-Length, a stream the server ends."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize(("path", "status"), [(SEND, 201), (CHECK, 404)])
def test_chunked_body_over_one_mebibyte_is_413_and_exactly_one_is_taken(client, path, status):
    body = json.dumps({"to": PHONE, "channel": "sms", "code": "123456"}).encode()
    exact = body + b" " * (1_048_576 - len(body))
    assert post_chunked(client, path, exact).status_code == status  # read whole: valid JSON
    over = post_chunked(client, path, exact + b" ")
    assert (over.status_code, over.get_json()["error"]) == (413, "payload_too_large")


def test_unexpected_failure_is_500_json_without_trace(client, notifier, caplog):
    def explode(message):
        raise RuntimeError("bug in the gateway client")

    notifier.deliver = explode
    resp = send(client)
    assert resp.status_code == 500
    assert resp.get_json() == {"error": "internal_error", "message": "internal error"}
    assert "Traceback" not in resp.get_data(as_text=True)
    assert "bug in the gateway client" in caplog.text


def test_idempotent_retry_replays_the_same_response(client, notifier):
    first = send(client, {"Idempotency-Key": "k1"})
    again = client.post(
        SEND, data='{"channel": "sms", "to": "+15551234567"}', headers={"Idempotency-Key": "k1"}
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(notifier.messages) == 1


def test_idempotency_key_with_another_body_is_422(client):
    send(client, {"Idempotency-Key": "k1"})
    resp = client.post(
        SEND, json={"to": "a@b.example", "channel": "email"}, headers={"Idempotency-Key": "k1"}
    )
    assert (resp.status_code, resp.get_json()["error"]) == (422, "idempotency_key_reused")


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_idempotency_key_is_400(client, key):
    resp = send(client, {"Idempotency-Key": key})
    assert (resp.status_code, resp.get_json()["error"]) == (400, "invalid_idempotency_key")


@pytest.mark.parametrize(
    "headers",
    [{"X-Strangler-Shadow": "1"}, {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": "no"}],
)
def test_dry_run_without_the_token_is_403(client, notifier, headers):
    resp = send(client, headers)
    assert (resp.status_code, resp.get_json()["error"]) == (403, "shadow_not_allowed")
    assert notifier.messages == []


def test_dry_run_is_refused_when_no_token_is_configured(store, clock, notifier):
    from strangler.extracted.verification_service import create_app
    from strangler.extracted.verification_service.config import Config

    app = create_app(Config(), store=store, clock=clock, notifier=notifier)
    resp = app.test_client().post(
        SEND, json={"to": PHONE, "channel": "sms"},
        headers={"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": ""},
    )  # fmt: skip
    assert resp.status_code == 403


def test_dry_run_with_the_token_answers_like_the_real_request_and_changes_nothing(
    client, store, notifier
):
    send(client)
    code = notifier.code_for(PHONE)
    dry_send = send(client, SHADOW)
    assert dry_send.status_code == 201
    assert dry_send.headers["X-Strangler-Shadow"] == "1"
    dry_check = client.post(CHECK, json={"to": PHONE, "code": code}, headers=SHADOW)
    assert dry_check.get_json()["status"] == "approved"
    assert dry_check.headers["X-Strangler-Shadow"] == "1"
    assert len(notifier.messages) == 1
    real = client.post(CHECK, json={"to": PHONE, "code": code})
    assert real.get_json()["status"] == "approved"
    assert "X-Strangler-Shadow" not in real.headers


def test_dry_run_errors_carry_the_shadow_header_too(client):
    resp = client.post(CHECK, json={"to": PHONE, "code": "123456"}, headers=SHADOW)
    assert resp.status_code == 404
    assert resp.headers["X-Strangler-Shadow"] == "1"
