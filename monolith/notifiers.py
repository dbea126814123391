"""How a code leaves the monolith: a webhook (the SMS/e-mail gateway call) or the console."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol, TextIO

import requests

from strangler.monolith.codes import mask

WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Message:
    id: str
    to: str
    channel: str
    code: str


class DeliveryError(Exception):
    """The gateway did not accept the message."""


class Notifier(Protocol):
    def deliver(self, message: Message) -> None: ...


class WebhookNotifier:
    """POSTs {"id", "to", "channel", "code"} as JSON; any 2xx is success."""

    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout

    def deliver(self, message: Message) -> None:
        payload = {"id": message.id, "to": message.to, "channel": message.channel,
                   "code": message.code}  # fmt: skip
        try:
            response = requests.post(self.url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            # The exception text can hold the URL but never the payload: safe to keep.
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook answered {response.status_code}")


class ConsoleNotifier:
    """Development default: one line with the code on stdout (the only place a code shows)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def deliver(self, message: Message) -> None:
        stream = self.stream or sys.stdout
        print(
            f"[console notifier] {message.channel} to {mask(message.to)} ({message.id}): "
            f"your code is {message.code}",
            file=stream,
            flush=True,
        )


def notifier_for(webhook_url: str | None) -> Notifier:
    return WebhookNotifier(webhook_url) if webhook_url else ConsoleNotifier()
