"""SQLite access for the monolith: connections, schema, transactions, the per-request handle."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, g

DEFAULT_DATABASE = Path("var") / "monolith.sqlite3"
# Several gunicorn workers write to one file: wait for a lock instead of failing at once.
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    phone_verified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    author_id INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    author_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_by_thread ON posts (thread_id, id);
CREATE TABLE IF NOT EXISTS verifications (
    to_addr TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS verification_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    to_addr TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sends_by_to ON verification_sends (to_addr, sent_at);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    route TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (route, key)
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def database_path(environ: os._Environ | dict | None = None) -> Path:
    """MONOLITH_DATABASE, or var/monolith.sqlite3 relative to the working directory."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("MONOLITH_DATABASE") or DEFAULT_DATABASE)


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with the monolith's pragmas; usable outside a Flask request.

    Autocommit mode (isolation_level=None): every write either stands alone or runs inside
    an explicit `transaction()`, so no implicit BEGIN ever holds a lock by surprise.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    _enable_wal(conn)
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    # WAL lets readers run beside the one writer; the mode is stored in the file, so only
    # the first connection really switches it.
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        conn.execute("PRAGMA journal_mode = WAL")


def init_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index that is missing; safe to run again and concurrently."""
    with transaction(conn):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


@contextmanager
def transaction(conn: sqlite3.Connection, commit: bool = True) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT (or ROLLBACK when `commit` is false or the block raises).

    IMMEDIATE takes the write lock up front, so a read-then-write in the block cannot
    interleave with another worker's: that is what keeps attempt counts exact.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    if commit:
        conn.commit()
    else:
        conn.rollback()


def get_db() -> sqlite3.Connection:
    """The current request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Create the schema now and close each request's connection on teardown."""
    conn = connect(app.config["DATABASE"])
    try:
        init_schema(conn)
    finally:
        conn.close()
    app.teardown_appcontext(close_db)
