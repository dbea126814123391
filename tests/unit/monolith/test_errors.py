"""Every error a client can meet is JSON with a machine code, never HTML or a trace."""

from __future__ import annotations

import io
import sqlite3

import pytest
from flask import Flask
from flask.testing import FlaskClient


def assert_json_error(response, status: int, error: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.json["error"] == error
    assert isinstance(response.json["message"], str) and response.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/api/users/abc", 404, "not_found"),
        ("GET", "/api/users/99", 404, "not_found"),
        ("GET", "/api/users/" + "9" * 25, 404, "not_found"),
        ("GET", "/api/threads/99", 404, "not_found"),
        ("GET", "/api/threads/" + "9" * 25, 404, "not_found"),
        ("GET", "/api/threads/99/posts", 404, "not_found"),
        ("DELETE", "/api/users", 405, "method_not_allowed"),
        ("GET", "/api/verification/send", 405, "method_not_allowed"),
        ("PUT", "/api/verification/check", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
    ],
)
def test_unknown_urls_and_methods(
    client: FlaskClient, method: str, path: str, status: int, error: str
) -> None:
    assert_json_error(client.open(path, method=method), status, error)


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.get("/api/verification/send")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    "path", ["/api/users", "/api/threads", "/api/verification/send", "/api/verification/check"]
)
def test_bodies_over_one_mib_are_413(client: FlaskClient, path: str) -> None:
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    assert_json_error(client.post(path, data=body), 413, "payload_too_large")


def test_a_body_of_exactly_one_mib_is_read(client: FlaskClient) -> None:
    prefix, suffix = b'{"to": "+15551234567", "channel": "sms", "pad": "', b'"}'
    body = prefix + b"x" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body) == 1024 * 1024
    assert client.post("/api/verification/send", data=body).status_code == 201


def post_chunked(client: FlaskClient, path: str, body: bytes):
    """As gunicorn hands over a chunked body: no Content-Length, a stream the server ends."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize(
    "path", ["/api/users", "/api/threads", "/api/verification/send", "/api/verification/check"]
)
def test_chunked_bodies_over_one_mib_are_413(client: FlaskClient, path: str) -> None:
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    assert_json_error(post_chunked(client, path, body), 413, "payload_too_large")


def test_a_chunked_body_of_exactly_one_mib_is_read(client: FlaskClient) -> None:
    prefix, suffix = b'{"to": "+15551234567", "channel": "sms", "pad": "', b'"}'
    body = prefix + b"x" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
    assert post_chunked(client, "/api/verification/send", body).status_code == 201


def test_a_bug_is_a_json_500_without_the_trace(app: Flask, client: FlaskClient, caplog) -> None:
    def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", explode)
    app.testing = False  # testing mode would re-raise instead of answering
    response = client.get("/boom")
    assert_json_error(response, 500, "internal_error")
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    assert "secret internals" in caplog.text  # the log keeps the trace


def test_healthz_reports_the_database_and_worker(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert isinstance(response.json["pid"], int)


def test_healthz_fails_as_json_when_the_database_is_gone(app: Flask, client: FlaskClient) -> None:
    app.config["DATABASE"] = "/proc/no-such-dir/monolith.sqlite3"
    assert_json_error(client.get("/healthz"), 503, "unavailable")


def test_a_locked_database_is_503_not_a_hang(app: Flask, client: FlaskClient) -> None:
    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    app.add_url_rule("/locked", "locked", locked)
    assert_json_error(client.get("/locked"), 503, "unavailable")
