"""Database helpers used outside requests too: pragmas, schema, the shared secret, mark_verified."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from strangler.monolith import create_app
from strangler.monolith.db import connect, init_schema, transaction
from strangler.monolith.users import mark_verified


@pytest.fixture
def conn(tmp_path: Path):
    connection = connect(tmp_path / "sub" / "db.sqlite3")
    init_schema(connection)
    yield connection
    connection.close()


def add_user(conn: sqlite3.Connection, email: str | None, phone: str | None) -> int:
    cursor = conn.execute(
        "INSERT INTO users (name, email, phone, created_at) VALUES ('u', ?, ?, 'now')",
        (email, phone),
    )
    return cursor.lastrowid


def flags(conn: sqlite3.Connection, user_id: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT phone_verified, email_verified FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return row[0], row[1]


def test_connection_uses_wal_and_waits_for_locks(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_schema_creation_is_idempotent(conn: sqlite3.Connection) -> None:
    add_user(conn, "a@b.example", None)
    init_schema(conn)
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1


def test_mark_verified_sms_and_email_idempotently(conn: sqlite3.Connection) -> None:
    phone_user = add_user(conn, None, "+15551234567")
    email_user = add_user(conn, "ada@example.org", None)
    assert mark_verified(conn, "sms", "+15551234567") == 1
    assert mark_verified(conn, "sms", "+15551234567") == 0
    assert mark_verified(conn, "email", " Ada@Example.ORG") == 1
    assert flags(conn, phone_user) == (1, 0)
    assert flags(conn, email_user) == (0, 1)
    assert mark_verified(conn, "sms", "+19999999999") == 0


def test_mark_verified_commits_an_open_transaction(conn: sqlite3.Connection, tmp_path) -> None:
    user = add_user(conn, None, "+15551234567")
    conn.execute("BEGIN")
    mark_verified(conn, "sms", "+15551234567")
    other = connect(tmp_path / "sub" / "db.sqlite3")
    assert flags(other, user) == (1, 0)
    other.close()


def test_mark_verified_refuses_an_unknown_channel(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="fax"):
        mark_verified(conn, "fax", "x")


def test_transaction_rolls_back_on_error_and_when_asked(conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), transaction(conn):
        add_user(conn, "a@b.example", None)
        raise RuntimeError("boom")
    with transaction(conn, commit=False):
        add_user(conn, "c@d.example", None)
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_dev_secret_is_made_once_and_shared(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("VERIFICATION_SECRET", raising=False)
    path = str(tmp_path / "db.sqlite3")
    first = create_app({"DATABASE": path}).config["VERIFICATION_SECRET"]
    second = create_app({"DATABASE": path}).config["VERIFICATION_SECRET"]
    assert first == second
    assert len(first) >= 32
    other = create_app({"DATABASE": str(tmp_path / "other.sqlite3")})
    assert other.config["VERIFICATION_SECRET"] != first
