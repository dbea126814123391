"""Delivery of codes: a webhook (the SMS/e-mail gateway's shape) or the development console."""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass
from typing import Protocol, TextIO

import requests

from strangler.extracted.verification_service.errors import DeliveryFailed
from strangler.extracted.verification_service.validation import mask

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Message:
    id: str
    to: str
    channel: str
    code: str


class Notifier(Protocol):
    def deliver(self, message: Message) -> None:
        """Hand the message over, or raise DeliveryFailed."""


class WebhookNotifier:
    """POSTs `{"id", "to", "channel", "code"}` as JSON; any 2xx is success."""

    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        # One pooled session per process: gateway calls reuse connections.
        self._session = requests.Session()

    def deliver(self, message: Message) -> None:
        try:
            resp = self._session.post(
                self.url, json=asdict(message), timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            # The exception text is about the connection, never the body: safe to log.
            log.warning("delivery to %s failed: %s", mask(message.to), type(exc).__name__)
            raise DeliveryFailed("the message could not be delivered") from None
        if not 200 <= resp.status_code < 300:
            log.warning("delivery to %s refused: HTTP %s", mask(message.to), resp.status_code)
            raise DeliveryFailed("the message could not be delivered")


class ConsoleNotifier:
    """Development default: one line with the code on stdout (the only place a code shows).

    The line is the monolith's console notifier's, destination masked like in every log.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def deliver(self, message: Message) -> None:
        stream = self._stream or sys.stdout
        print(
            f"[console notifier] {message.channel} to {mask(message.to)} ({message.id}): "
            f"your code is {message.code}",
            file=stream,
            flush=True,
        )


def notifier_for(webhook_url: str | None) -> Notifier:
    return WebhookNotifier(webhook_url) if webhook_url else ConsoleNotifier()
