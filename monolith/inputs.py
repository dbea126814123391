"""Framework-free input checks shared by every blueprint: JSON bodies, fields, pagination."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

E164 = re.compile(r"\+[1-9][0-9]{7,14}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ASCII_DIGITS = re.compile(r"[0-9]+")
MAX_EMAIL_LENGTH = 254
# SQLite integers are signed 64-bit: a bigger id cannot exist, and would overflow the driver.
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass
class ApiError(Exception):
    """A failure the client caused (or may see): HTTP status, machine code, human text."""

    status: int
    error: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.message}"

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def bad_request(error: str, message: str) -> ApiError:
    return ApiError(400, error, message)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type said."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and NaN/Infinity; RecursionError a deeply
        # nested document.
        raise bad_request("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    return body


def _refuse_constant(name: str) -> NoReturn:
    # Python's json takes NaN, Infinity and -Infinity, which JSON (RFC 8259) does not have.
    raise ValueError(f"{name} is not JSON")


def require(body: dict[str, Any], *names: str) -> None:
    """Every name is present and not null, checked in the order given."""
    for name in names:
        if body.get(name) is None:
            raise bad_request("missing_field", f"the field '{name}' is required")


def is_phone(value: str) -> bool:
    return E164.fullmatch(value) is not None


def normalise_email(value: str) -> str | None:
    """The e-mail address lower-cased and stripped, or None when it is not one."""
    candidate = value.strip().lower()
    if len(candidate) > MAX_EMAIL_LENGTH or EMAIL.fullmatch(candidate) is None:
        return None
    return candidate


def text_field(body: dict[str, Any], name: str, max_length: int) -> str:
    """A required string, stripped, 1..max_length characters."""
    require(body, name)
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"invalid_{name}", f"'{name}' must be a non-empty string")
    value = value.strip()
    if len(value) > max_length:
        raise bad_request(f"invalid_{name}", f"'{name}' must be at most {max_length} characters")
    return value


def id_field(body: dict[str, Any], name: str) -> int:
    """A required positive integer id (a JSON boolean is not one)."""
    require(body, name)
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise bad_request(f"invalid_{name}", f"'{name}' must be a positive integer")
    return value


def optional_email(body: dict[str, Any]) -> str | None:
    value = body.get("email")
    if value is None:
        return None
    email = normalise_email(value) if isinstance(value, str) else None
    if email is None:
        raise bad_request("invalid_email", "'email' must be an e-mail address")
    return email


def optional_phone(body: dict[str, Any]) -> str | None:
    value = body.get("phone")
    if value is None:
        return None
    if not isinstance(value, str) or not is_phone(value):
        raise bad_request("invalid_phone", "'phone' must be an E.164 number like +15551234567")
    return value


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def envelope(self, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The page's JSON; `rows` holds up to limit + 1 items, the extra one only says 'more'."""
        more = len(rows) > self.limit
        return {
            name: rows[: self.limit],
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.offset + self.limit if more else None,
        }


def page(args: dict[str, str]) -> Page:
    """?limit=1..100 (default 20) and ?offset>=0 (default 0) from a query string."""
    limit = _query_int(args, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request("invalid_limit", f"'limit' must be between 1 and {MAX_LIMIT}")
    return Page(limit, _query_int(args, "offset", 0))


def _query_int(args: dict[str, str], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    # int() would accept " 5", "+5", "1_0" and non-ASCII digits: only plain digits are asked for.
    if ASCII_DIGITS.fullmatch(raw) is None or int(raw) > MAX_ID:
        raise bad_request(f"invalid_{name}", f"'{name}' must be a non-negative integer")
    return int(raw)
