"""Posts in a thread: reply, and read the conversation oldest first."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, current_app, request

from strangler.monolith.db import get_db
from strangler.monolith.inputs import id_field, page, parse_json_object, text_field
from strangler.monolith.threads import find_thread, require_author
from strangler.monolith.timestamps import rfc3339

bp = Blueprint("posts", __name__, url_prefix="/api/threads/<int:thread_id>/posts")

MAX_BODY = 10_000


def post_json(row: sqlite3.Row) -> dict[str, Any]:
    # The columns are the API fields, in the order the table declares them.
    return dict(row)


@bp.post("")
def create_post(thread_id: int) -> tuple[dict[str, Any], int]:
    db = get_db()
    find_thread(db, thread_id)
    body = parse_json_object(request.get_data())
    text = text_field(body, "body", MAX_BODY)
    author_id = id_field(body, "author_id")
    require_author(db, author_id)
    cursor = db.execute(
        "INSERT INTO posts (thread_id, author_id, body, created_at) VALUES (?, ?, ?, ?)",
        (thread_id, author_id, text, rfc3339(current_app.config["CLOCK"]())),
    )
    row = db.execute("SELECT * FROM posts WHERE id = ?", (cursor.lastrowid,)).fetchone()
    return post_json(row), 201


@bp.get("")
def list_posts(thread_id: int) -> dict[str, Any]:
    window = page(request.args)
    db = get_db()
    find_thread(db, thread_id)
    rows = db.execute(
        "SELECT * FROM posts WHERE thread_id = ? ORDER BY id LIMIT ? OFFSET ?",
        (thread_id, window.limit + 1, window.offset),
    )
    return window.envelope("posts", [post_json(row) for row in rows])
