"""The legacy Flask monolith: users, threads, posts and verification codes over SQLite."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from strangler import apidoc
from strangler.bodylimit import ChunkedBodyLimit
from strangler.monolith import db, errors, posts, settings, threads, users, verification
from strangler.monolith.codes import generate_code
from strangler.monolith.inputs import ApiError
from strangler.monolith.notifiers import notifier_for

MAX_CONTENT_LENGTH = 1024 * 1024


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; settings come from the environment, `test_config` overrides them."""
    app = Flask(__name__)
    raw = {**settings.from_environ(), **(test_config or {})}
    app.config.from_mapping(raw)
    app.config.update(settings.validated(raw))
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_CONTENT_LENGTH)
    app.config.setdefault("CLOCK", time.time)
    app.config.setdefault("CODE_GENERATOR", generate_code)
    app.config.setdefault("NOTIFIER", notifier_for(app.config["VERIFICATION_WEBHOOK_URL"]))
    app.json.sort_keys = False
    app.logger.setLevel(logging.INFO)

    db.init_app(app)
    if not app.config["VERIFICATION_SECRET"]:
        # Kept beside the hashes it protects: fine for development, not for production.
        app.logger.warning(
            "VERIFICATION_SECRET is not set: using a development secret stored in the database"
        )
        app.config["VERIFICATION_SECRET"] = shared_dev_secret(app.config["DATABASE"])
    errors.register(app)
    for blueprint in (users.bp, threads.bp, posts.bp, verification.bp):
        app.register_blueprint(blueprint)
    apidoc.register(app)
    app.add_url_rule("/healthz", "healthz", healthz)
    return app


def shared_dev_secret(path: str) -> str:
    """A random secret made once and kept in the database, so every worker uses the same one."""
    conn = db.connect(path)
    try:
        conn.execute(
            "INSERT OR IGNORE INTO settings (name, value) VALUES ('verification_secret', ?)",
            (secrets.token_hex(32),),
        )
        row = conn.execute("SELECT value FROM settings WHERE name = 'verification_secret'")
        return row.fetchone()[0]
    finally:
        conn.close()


def healthz() -> dict[str, Any]:
    """200 when the database answers; the worker pid shows which process served."""
    try:
        db.get_db().execute("SELECT 1 FROM users LIMIT 1").fetchall()
    except (sqlite3.Error, OSError) as exc:
        current_app.logger.warning("healthz: database unavailable: %s", exc)
        raise ApiError(503, "unavailable", "the database is unavailable") from exc
    return {"status": "ok", "pid": os.getpid()}
