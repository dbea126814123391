"""Configuration: defaults, bounds, and an app that refuses to start on a bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strangler.monolith import create_app
from strangler.monolith.settings import ConfigError, from_environ, validated


def test_defaults_are_the_contracts() -> None:
    config = validated(from_environ({}))
    assert config["VERIFICATION_CODE_TTL"] == 600
    assert config["VERIFICATION_CODE_LENGTH"] == 6
    assert config["VERIFICATION_MAX_ATTEMPTS"] == 5
    assert config["VERIFICATION_MAX_SENDS"] == 5
    assert config["VERIFICATION_SEND_WINDOW"] == 600
    assert config["DATABASE"] == str(Path("var") / "monolith.sqlite3")


def test_environment_values_are_read() -> None:
    config = validated(from_environ({"VERIFICATION_CODE_TTL": "30", "MONOLITH_DATABASE": "/x.db"}))
    assert (config["VERIFICATION_CODE_TTL"], config["DATABASE"]) == (30, "/x.db")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VERIFICATION_CODE_TTL", "0"),
        ("VERIFICATION_CODE_TTL", "601"),
        ("VERIFICATION_CODE_LENGTH", "5"),
        ("VERIFICATION_CODE_LENGTH", "11"),
        ("VERIFICATION_MAX_ATTEMPTS", "0"),
        ("VERIFICATION_MAX_ATTEMPTS", "11"),
        ("VERIFICATION_MAX_SENDS", "101"),
        ("VERIFICATION_SEND_WINDOW", "86401"),
        ("VERIFICATION_SEND_WINDOW", "ten"),
        ("VERIFICATION_WEBHOOK_URL", "ftp://gateway.example/"),
        ("VERIFICATION_WEBHOOK_URL", "gateway.example"),
    ],
)
def test_out_of_bounds_stops_the_app_naming_variable_and_value(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        create_app({"DATABASE": str(tmp_path / "db.sqlite3")})
    assert name in str(caught.value)
    assert value in str(caught.value)


def test_test_config_is_held_to_the_same_bounds(tmp_path: Path) -> None:
    config: dict[str, Any] = {"DATABASE": str(tmp_path / "db"), "VERIFICATION_CODE_LENGTH": 4}
    with pytest.raises(ConfigError, match="VERIFICATION_CODE_LENGTH"):
        create_app(config)


def test_database_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "monolith.sqlite3"
    create_app({"DATABASE": str(path), "VERIFICATION_SECRET": "s"})
    assert path.exists()
