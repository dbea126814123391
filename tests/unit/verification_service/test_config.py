"""Settings from the environment: defaults, bounds, and messages that name the culprit."""

from __future__ import annotations

import pytest

from strangler.extracted.verification_service import create_app
from strangler.extracted.verification_service.config import Config, ConfigError


def test_defaults_are_the_products():
    config = Config.from_env({})
    assert (config.code_ttl, config.code_length, config.max_attempts) == (600, 6, 5)
    assert (config.max_sends, config.send_window) == (5, 600)
    assert config.webhook_url is None
    assert config.internal_token is None
    assert config.redis_url == "redis://127.0.0.1:6380/0"


def test_values_within_bounds_are_taken():
    config = Config.from_env({
        "VERIFICATION_CODE_TTL": "1", "VERIFICATION_CODE_LENGTH": "10",
        "VERIFICATION_MAX_ATTEMPTS": "10", "VERIFICATION_MAX_SENDS": "100",
        "VERIFICATION_SEND_WINDOW": "86400", "VERIFICATION_WEBHOOK_URL": "https://gw.example/x",
        "REDIS_URL": "redis://127.0.0.1:7000/1", "STRANGLER_INTERNAL_TOKEN": "t",
    })  # fmt: skip
    assert (config.code_ttl, config.code_length, config.max_attempts) == (1, 10, 10)
    assert (config.max_sends, config.send_window) == (100, 86400)
    assert config.webhook_url == "https://gw.example/x"
    assert config.redis_url == "redis://127.0.0.1:7000/1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VERIFICATION_CODE_TTL", "601"),
        ("VERIFICATION_CODE_TTL", "0"),
        ("VERIFICATION_CODE_LENGTH", "5"),
        ("VERIFICATION_CODE_LENGTH", "11"),
        ("VERIFICATION_MAX_ATTEMPTS", "0"),
        ("VERIFICATION_MAX_ATTEMPTS", "11"),
        ("VERIFICATION_MAX_SENDS", "101"),
        ("VERIFICATION_SEND_WINDOW", "86401"),
        ("VERIFICATION_SEND_WINDOW", "ten"),
        ("VERIFICATION_WEBHOOK_URL", "ftp://gw.example/x"),
        ("VERIFICATION_WEBHOOK_URL", "gw.example"),
    ],
)
def test_out_of_bounds_value_stops_the_app_naming_variable_and_value(name, value):
    with pytest.raises(ConfigError) as caught:
        create_app({name: value})
    assert name in str(caught.value)
    assert value in str(caught.value)
