"""Settings of the verification service, parsed from the environment with ASVS bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6380/0"
MAX_BODY_BYTES = 1_048_576

# variable -> (field, default, lowest, highest)
_BOUNDED = {
    "VERIFICATION_CODE_TTL": ("code_ttl", 600, 1, 600),
    "VERIFICATION_CODE_LENGTH": ("code_length", 6, 6, 10),
    "VERIFICATION_MAX_ATTEMPTS": ("max_attempts", 5, 1, 10),
    "VERIFICATION_MAX_SENDS": ("max_sends", 5, 1, 100),
    "VERIFICATION_SEND_WINDOW": ("send_window", 600, 1, 86400),
}


class ConfigError(ValueError):
    """A setting is out of bounds; the message names the variable and the value."""


@dataclass(frozen=True)
class Config:
    """Every knob of the service; the defaults are the product's."""

    code_ttl: int = 600
    code_length: int = 6
    max_attempts: int = 5
    max_sends: int = 5
    send_window: int = 600
    webhook_url: str | None = None
    internal_token: str | None = None
    secret: str | None = None
    redis_url: str = DEFAULT_REDIS_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        values: dict[str, object] = {}
        for name, (attr, default, low, high) in _BOUNDED.items():
            values[attr] = _bounded_int(name, environ.get(name), default, low, high)
        webhook = environ.get("VERIFICATION_WEBHOOK_URL") or None
        if webhook is not None:
            _check_url("VERIFICATION_WEBHOOK_URL", webhook)
        return cls(
            **values,
            webhook_url=webhook,
            internal_token=environ.get("STRANGLER_INTERNAL_TOKEN") or None,
            secret=environ.get("VERIFICATION_SECRET") or None,
            redis_url=environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        )


def _bounded_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer (allowed {low}..{high})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of bounds (allowed {low}..{high})")
    return value


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={url!r} is not an http(s) URL")
