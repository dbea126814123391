"""The proxy's settings from the environment: the affinity store's deadline, writes, queue."""

from __future__ import annotations

import pytest

from strangler.proxy.settings import ProxySettings


def test_the_defaults_confirm_placements_and_wait_a_second() -> None:
    settings = ProxySettings.from_env({})
    assert (settings.store_timeout, settings.confirm_placements, settings.placement_queue) == (
        1.0, True, 50_000,
    )  # fmt: skip


def test_the_environment_sets_them() -> None:
    settings = ProxySettings.from_env(
        {
            "STRANGLER_STORE_TIMEOUT": "2.5",
            "STRANGLER_AFFINITY_WRITES": "queued",
            "STRANGLER_AFFINITY_QUEUE": "1000",
        }
    )
    assert (settings.store_timeout, settings.confirm_placements, settings.placement_queue) == (
        2.5, False, 1000,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STRANGLER_STORE_TIMEOUT", "soon", "expected a number"),
        ("STRANGLER_STORE_TIMEOUT", "0", "must be positive"),
        ("STRANGLER_STORE_TIMEOUT", "61", "at most 60 s"),
        ("STRANGLER_AFFINITY_WRITES", "lazy", "expected one of confirmed, queued"),
        ("STRANGLER_AFFINITY_QUEUE", "-5", "must be positive"),
        ("STRANGLER_AFFINITY_QUEUE", "1.5", "expected a number"),
        ("STRANGLER_HEADER_TIMEOUT", "0", "must be positive"),
        ("STRANGLER_HEADER_TIMEOUT", "ten", "expected a number"),
        ("STRANGLER_MAX_CLIENTS", "0", "must be positive"),
        ("STRANGLER_MAX_CLIENTS", "many", "expected a number"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ProxySettings.from_env({name: value})
    assert name in str(caught.value)


def test_the_edge_limits_default_to_10_s_and_1024_clients_and_can_be_set() -> None:
    defaults = ProxySettings.from_env({})
    assert (defaults.header_timeout, defaults.max_clients) == (10.0, 1024)
    given = ProxySettings.from_env(
        {"STRANGLER_HEADER_TIMEOUT": "2.5", "STRANGLER_MAX_CLIENTS": "64"}
    )
    assert (given.header_timeout, given.max_clients) == (2.5, 64)
