"""The monolith's configuration read from the environment, with the bounds the contract sets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strangler.monolith.db import database_path

# name: (default, lowest, highest); the bounds keep ASVS's floor (≥ 6 digits, ≤ 10 minutes).
BOUNDED_INTS: dict[str, tuple[int, int, int]] = {
    "VERIFICATION_CODE_TTL": (600, 1, 600),
    "VERIFICATION_CODE_LENGTH": (6, 6, 10),
    "VERIFICATION_MAX_ATTEMPTS": (5, 1, 10),
    "VERIFICATION_MAX_SENDS": (5, 1, 100),
    "VERIFICATION_SEND_WINDOW": (600, 1, 86400),
}
STRINGS = ("VERIFICATION_SECRET", "VERIFICATION_WEBHOOK_URL", "STRANGLER_INTERNAL_TOKEN")


class ConfigError(ValueError):
    """A setting is out of bounds; the message names the variable and the value."""


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Raw settings from the environment (strings), defaults for what is unset."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {"DATABASE": str(database_path(environ))}
    for name, (default, _lo, _hi) in BOUNDED_INTS.items():
        config[name] = environ.get(name) or default
    for name in STRINGS:
        config[name] = environ.get(name) or None
    return config


def validated(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings checked and converted: integers in bounds, a usable webhook URL."""
    checked = {name: _bounded(name, config[name]) for name in BOUNDED_INTS}
    url = config.get("VERIFICATION_WEBHOOK_URL")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"VERIFICATION_WEBHOOK_URL={url!r} is not an http(s) URL")
    checked["DATABASE"] = str(Path(config["DATABASE"]))
    return checked


def _bounded(name: str, raw: Any) -> int:
    _default, lo, hi = BOUNDED_INTS[name]
    try:
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else int(str(raw))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of bounds ({lo}..{hi})")
    return value
