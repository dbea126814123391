"""Discussion threads: create, list newest first, show."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, current_app, request

from strangler.monolith.db import get_db
from strangler.monolith.inputs import (
    MAX_ID,
    ApiError,
    id_field,
    page,
    parse_json_object,
    text_field,
)
from strangler.monolith.timestamps import rfc3339
from strangler.monolith.users import find_user

bp = Blueprint("threads", __name__, url_prefix="/api/threads")


def thread_json(row: sqlite3.Row) -> dict[str, Any]:
    # The columns are the API fields, in the order the table declares them.
    return dict(row)


def find_thread(conn: sqlite3.Connection, thread_id: int) -> sqlite3.Row:
    """The thread, or a 404 for the client."""
    row = None
    if thread_id <= MAX_ID:
        row = conn.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if row is None:
        raise ApiError(404, "not_found", f"no thread with id {thread_id}")
    return row


def require_author(conn: sqlite3.Connection, author_id: int) -> None:
    if find_user(conn, author_id) is None:
        raise ApiError(422, "unknown_author", f"no user with id {author_id}")


@bp.post("")
def create_thread() -> tuple[dict[str, Any], int]:
    body = parse_json_object(request.get_data())
    title = text_field(body, "title", 200)
    author_id = id_field(body, "author_id")
    db = get_db()
    require_author(db, author_id)
    cursor = db.execute(
        "INSERT INTO threads (title, author_id, created_at) VALUES (?, ?, ?)",
        (title, author_id, rfc3339(current_app.config["CLOCK"]())),
    )
    return thread_json(find_thread(db, cursor.lastrowid)), 201


@bp.get("")
def list_threads() -> dict[str, Any]:
    window = page(request.args)
    # Ids grow with time, and unlike created_at they never tie: newest first by id.
    rows = get_db().execute(
        "SELECT * FROM threads ORDER BY id DESC LIMIT ? OFFSET ?",
        (window.limit + 1, window.offset),
    )
    return window.envelope("threads", [thread_json(row) for row in rows])


@bp.get("/<int:thread_id>")
def show_thread(thread_id: int) -> dict[str, Any]:
    return thread_json(find_thread(get_db(), thread_id))
