"""Users: create, list, show; and `mark_verified`, the one write verification makes to them."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, current_app, request

from strangler.monolith.db import get_db
from strangler.monolith.inputs import (
    MAX_ID,
    ApiError,
    optional_email,
    optional_phone,
    page,
    parse_json_object,
    text_field,
)
from strangler.monolith.timestamps import rfc3339

bp = Blueprint("users", __name__, url_prefix="/api/users")

VERIFIED_COLUMN = {"sms": ("phone_verified", "phone"), "email": ("email_verified", "email")}


def apply_verified(conn: sqlite3.Connection, channel: str, to: str) -> int:
    """Mark matching users verified without committing (for use inside a transaction)."""
    if channel not in VERIFIED_COLUMN:
        raise ValueError(f"unknown channel {channel!r}")
    flag, column = VERIFIED_COLUMN[channel]
    address = to.strip().lower() if channel == "email" else to
    # Only rows not yet verified change, so a replayed event reports 0: idempotent apply.
    cursor = conn.execute(
        f"UPDATE users SET {flag} = 1 WHERE {column} = ? AND {flag} = 0",  # noqa: S608 (fixed names)
        (address,),
    )
    return cursor.rowcount


def mark_verified(conn: sqlite3.Connection, channel: str, to: str) -> int:
    """Mark the users with this phone ("sms") or e-mail ("email") verified; commit; rows changed."""
    changed = apply_verified(conn, channel, to)
    if conn.in_transaction:
        conn.commit()
    return changed


def user_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "email_verified": bool(row["email_verified"]),
        "phone_verified": bool(row["phone_verified"]),
        "created_at": row["created_at"],
    }


@bp.post("")
def create_user() -> tuple[dict[str, Any], int]:
    body = parse_json_object(request.get_data())
    name = text_field(body, "name", 100)
    email = optional_email(body)
    phone = optional_phone(body)
    db = get_db()
    try:
        cursor = db.execute(
            "INSERT INTO users (name, email, phone, created_at) VALUES (?, ?, ?, ?)",
            (name, email, phone, rfc3339(current_app.config["CLOCK"]())),
        )
    except sqlite3.IntegrityError as exc:
        field = "email" if "users.email" in str(exc) else "phone"
        raise ApiError(409, f"duplicate_{field}", f"a user with that {field} exists") from None
    return user_json(find_user(db, cursor.lastrowid)), 201


@bp.get("")
def list_users() -> dict[str, Any]:
    window = page(request.args)
    rows = get_db().execute(
        "SELECT * FROM users ORDER BY id LIMIT ? OFFSET ?", (window.limit + 1, window.offset)
    )
    return window.envelope("users", [user_json(row) for row in rows])


@bp.get("/<int:user_id>")
def show_user(user_id: int) -> dict[str, Any]:
    row = find_user(get_db(), user_id)
    if row is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
    return user_json(row)


def find_user(conn: sqlite3.Connection, user_id: int) -> sqlite3.Row | None:
    if user_id > MAX_ID:
        return None
    return conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
