"""Every failure becomes JSON `{"error", "message"}`: no HTML page or trace reaches a client."""

from __future__ import annotations

import sqlite3

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from strangler.monolith.inputs import ApiError

# werkzeug's names for the statuses the contract gives machine codes of its own.
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    500: "internal_error",
}
MESSAGES = {
    404: "no such resource",
    405: "method not allowed here",
    413: "the body is over 1 MiB",
    500: "internal error",
}

DRAIN_LIMIT = 4 * 1024 * 1024  # bytes of an oversized body read to keep the connection
STORE_DOWN = ("database is locked", "unable to open", "disk I/O error", "readonly database")


def error_response(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    error = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    message = MESSAGES.get(status) or exc.description or error
    response = error_response(ApiError(status, error, message))
    # Keep what the exception knew about the protocol (Allow on 405, for one).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if status == 413:
        _drain_body()
    return response


def _drain_body() -> None:
    """Read and drop an oversized body that is not much over the limit.

    gunicorn drains at most 64 KiB of an unread body and otherwise closes the connection
    right after a response that promised keep-alive: a client (or the proxy's pool)
    reusing it would fail. Reading the rest keeps the connection usable; a body far
    over the limit is left to that close rather than read.
    """
    remaining = request.content_length or 0
    if remaining > DRAIN_LIMIT:
        return
    stream = request.environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            return
        remaining -= len(chunk)


def internal_error(exc: InternalServerError) -> Response:
    # Flask has already logged the original exception with its trace; the client gets none.
    original = getattr(exc, "original_exception", None)
    if original is not None:
        current_app.logger.error("unhandled %s answered 500", type(original).__name__)
    return error_response(ApiError(500, "internal_error", "internal error"))


def store_error(exc: sqlite3.OperationalError) -> Response:
    """A locked or unreachable database is an outage (503); any other SQL failure is a bug."""
    current_app.logger.error("database error", exc_info=exc)
    if any(sign in str(exc) for sign in STORE_DOWN):
        return error_response(ApiError(503, "unavailable", "the database is unavailable"))
    return error_response(ApiError(500, "internal_error", "internal error"))


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(sqlite3.OperationalError, store_error)
    app.register_error_handler(InternalServerError, internal_error)
    app.register_error_handler(HTTPException, http_error)
