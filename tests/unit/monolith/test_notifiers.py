"""Notifiers: the webhook against the real sink, the console line, and the app's choice of one."""

from __future__ import annotations

import io

import pytest

from strangler.monolith import create_app
from strangler.monolith.notifiers import ConsoleNotifier, DeliveryError, Message, WebhookNotifier
from strangler.stack.sink import WebhookSink
from strangler.stack.supervisor import free_port
from tests.unit.monolith.conftest import PHONE

MESSAGE = Message("VE" + "0" * 32, PHONE, "sms", "123456")


def test_webhook_posts_the_gateway_payload(sink: WebhookSink) -> None:
    WebhookNotifier(sink.url).deliver(MESSAGE)
    [received] = sink.log.messages(PHONE)
    assert {k: received[k] for k in ("id", "to", "channel", "code")} == {
        "id": MESSAGE.id, "to": PHONE, "channel": "sms", "code": "123456",
    }  # fmt: skip


def test_webhook_refusal_is_a_delivery_error(sink: WebhookSink) -> None:
    sink.log.fail_next(1)
    with pytest.raises(DeliveryError, match="503"):
        WebhookNotifier(sink.url).deliver(MESSAGE)


def test_unreachable_webhook_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError):
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/messages", timeout=2).deliver(MESSAGE)


def test_console_prints_one_line_with_the_code_and_a_masked_destination() -> None:
    out = io.StringIO()
    ConsoleNotifier(out).deliver(MESSAGE)
    [line] = out.getvalue().splitlines()
    assert "123456" in line
    assert "+1555***4567" in line and PHONE not in line


def app_without_notifier(app_config: dict, **overrides: object):
    config = {k: v for k, v in app_config.items() if k != "NOTIFIER"}
    return create_app({**config, **overrides})


def test_the_app_sends_through_the_webhook_when_set(
    app_config: dict, sink: WebhookSink, capsys: pytest.CaptureFixture
) -> None:
    client = app_without_notifier(app_config, VERIFICATION_WEBHOOK_URL=sink.url).test_client()
    assert (
        client.post("/api/verification/send", json={"to": PHONE, "channel": "sms"}).status_code
        == 201
    )
    code = sink.latest_code(PHONE)
    assert code is not None
    assert code not in capsys.readouterr().out  # the console notifier is off
    check = client.post("/api/verification/check", json={"to": PHONE, "code": code})
    assert check.json["status"] == "approved"


def test_the_app_answers_502_when_the_webhook_refuses(app_config: dict, sink: WebhookSink) -> None:
    client = app_without_notifier(app_config, VERIFICATION_WEBHOOK_URL=sink.url).test_client()
    sink.log.fail_next(1)
    response = client.post("/api/verification/send", json={"to": PHONE, "channel": "sms"})
    assert (response.status_code, response.json["error"]) == (502, "delivery_failed")


def test_without_a_webhook_the_code_goes_to_the_console(
    app_config: dict, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VERIFICATION_WEBHOOK_URL", raising=False)
    client = app_without_notifier(app_config).test_client()
    client.post("/api/verification/send", json={"to": PHONE, "channel": "sms"})
    assert "your code is 100000" in capsys.readouterr().out
