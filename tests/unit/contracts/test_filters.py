"""Filters: volatile headers dropped, secrets replaced by their shape."""

from __future__ import annotations

from strangler.contracts.filters import headers_to_keep, redact, redact_request_headers


def test_secret_fields_and_digests_keep_only_their_shape() -> None:
    message = {
        "id": "VE" + "0" * 32,
        "code": "012345",
        "code_hash": "ab" * 32,
        "note": "f" * 64,
        "nested": [{"token": "t0k3n"}],
        "password": None,
    }
    assert redact(message) == {
        "id": "VE" + "0" * 32,
        "code": {"$redacted": "^[0-9]{6}$"},
        "code_hash": {"$redacted": "str"},
        "note": {"$redacted": "str"},
        "nested": [{"token": {"$redacted": "str"}}],
        "password": None,
    }


def test_volatile_headers_are_dropped_and_names_lower_cased() -> None:
    headers = {
        "Date": "Sun, 22 Nov 2026 22:29:00 GMT",
        "Server": "gunicorn",
        "Content-Length": "114",
        "X-Request-Id": "abc",
        "X-Strangler-Backend": "verification",
        "Content-Type": "application/json",
        "Retry-After": "600",
        "Set-Cookie": "session=secret",
    }
    assert headers_to_keep(headers) == {
        "content-type": "application/json",
        "retry-after": "600",
        "set-cookie": {"$redacted": "str"},
    }


def test_literal_secrets_in_request_headers_are_hidden_but_placeholders_kept() -> None:
    headers = {"Authorization": "Bearer s3cret", "X-Strangler-Internal-Token": "{{token}}"}
    assert redact_request_headers(headers) == {
        "Authorization": "(redacted)",
        "X-Strangler-Internal-Token": "{{token}}",
    }
