"""flaskr-style fixtures: an app on a temporary database, a fake clock, a recording notifier."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.monolith import create_app, settings
from strangler.monolith.notifiers import DeliveryError, Message
from tests.unit.fake_clock import FakeClock

PHONE = "+15551234567"
EMAIL = "ada@example.org"
TOKEN = "internal-test-token"


class RecordingNotifier:
    """Keeps every delivered message; `failing = True` makes deliveries fail like a dead gateway."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.failing = False

    def deliver(self, message: Message) -> None:
        if self.failing:
            raise DeliveryError("gateway down")
        self.messages.append(message)

    def latest_code(self, to: str) -> str:
        return [m for m in self.messages if m.to == to][-1].code


def sequential_codes() -> Callable[[int], str]:
    """Predictable, distinct codes: 100000, 100001, …"""
    counter = itertools.count(100000)
    return lambda length: str(next(counter)).zfill(length)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def app_config(tmp_path: Path, clock: FakeClock, notifier: RecordingNotifier) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE": str(tmp_path / "var" / "monolith.sqlite3"),
        "CLOCK": clock,
        "CODE_GENERATOR": sequential_codes(),
        "NOTIFIER": notifier,
        "VERIFICATION_SECRET": "unit-test-secret",
        "STRANGLER_INTERNAL_TOKEN": TOKEN,
    }


@pytest.fixture
def app(app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Flask:
    # The developer's shell must not leak into the tests' configuration.
    for name in ("MONOLITH_DATABASE", *settings.BOUNDED_INTS, *settings.STRINGS):
        monkeypatch.delenv(name, raising=False)
    return create_app(app_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
