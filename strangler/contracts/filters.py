"""What a recording leaves out: volatile headers, and secrets (codes, tokens, HMACs)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from strangler.contracts.matchers import json_type

# Differ per response, per server or per hop; never part of the contract.
VOLATILE_HEADERS = frozenset(
    {
        "date", "server", "x-request-id", "content-length", "x-strangler-backend",
        "connection", "keep-alive", "transfer-encoding", "via", "age", "etag",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
    }
)  # fmt: skip
SECRET_HEADERS = frozenset(
    {
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
        "x-strangler-internal-token", "x-strangler-admin-token",
    }
)  # fmt: skip
SECRET_KEYS = frozenset({"code", "secret", "token", "password", "hmac", "signature", "api_key"})
SECRET_SUFFIXES = ("_hash", "_hmac", "_token", "_secret", "_signature", "_password")


HEX_RUN = re.compile(r"[0-9a-fA-F]{40,}")


def looks_like_digest(value: Any) -> bool:
    """A long hex string (an HMAC or a hash) found anywhere is treated as a secret."""
    return isinstance(value, str) and HEX_RUN.fullmatch(value) is not None


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_KEYS or lowered.endswith(SECRET_SUFFIXES)


def redaction(value: Any) -> dict[str, str]:
    """The matcher standing for a secret: its shape, never its value."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return {"$redacted": f"^[0-9]{{{len(value)}}}$"}
    return {"$redacted": json_type(value)}


def redact(tree: Any) -> Any:
    """A copy of a JSON tree with secrets (secret keys' values, digests) replaced by redactions."""
    if isinstance(tree, dict):
        return {
            k: redaction(v) if is_secret_key(k) and v is not None else redact(v)
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [redact(item) for item in tree]
    return redaction(tree) if looks_like_digest(tree) else tree


def headers_to_keep(headers: Mapping[str, str]) -> dict[str, Any]:
    """Response headers for a contract: names lower-cased, volatile ones dropped, secrets hidden."""
    kept: dict[str, Any] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in VOLATILE_HEADERS:
            continue
        kept[key] = redaction(value) if key in SECRET_HEADERS else value
    return kept


def redact_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers as a recording shows them: literal secrets replaced by a marker."""
    return {
        name: "(redacted)" if name.lower() in SECRET_HEADERS and "{{" not in value else value
        for name, value in headers.items()
    }
