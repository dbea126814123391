"""Fixtures for the service's unit tests: the app and service functions wired to fakes."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.extracted.verification_service import create_app
from strangler.extracted.verification_service.config import Config
from strangler.extracted.verification_service.service import Services
from tests.unit.fake_clock import FakeClock
from tests.unit.verification_service.fakes import (
    FakeNotifier,
    FakeStore,
    SequentialCodes,
)

TOKEN = "internal-token-for-tests"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def config() -> Config:
    return Config(internal_token=TOKEN)


@pytest.fixture
def services(config, store, clock, notifier) -> Services:
    return Services(config, store, notifier, clock, SequentialCodes())


@pytest.fixture
def app(config, store, clock, notifier) -> Flask:
    return create_app(
        config, store=store, clock=clock, code_generator=SequentialCodes(), notifier=notifier
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
