"""Applying verification events to the monolith's database, and the `strangler events` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.cli import build_parser
from strangler.monolith import db
from strangler.monolith.events import InvalidEvent, SqliteApplier, apply_event, retry_delay

PHONE = "+15551234567"


@pytest.fixture
def conn(tmp_path: Path):
    conn = db.connect(tmp_path / "monolith.sqlite3")
    db.init_schema(conn)
    conn.execute(
        "INSERT INTO users (name, email, phone, created_at) VALUES"
        " ('Ada', 'ada@example.org', ?, '2024-01-01T00:00:00Z'),"
        " ('Bob', 'bob@example.org', '+15557654321', '2024-01-01T00:00:00Z')",
        (PHONE,),
    )
    yield conn
    conn.close()


def event(**fields: str) -> dict[str, str]:
    base = {"type": "verification.approved", "id": "VE" + "0" * 32, "to": PHONE,
            "channel": "sms", "approved_at": "2024-01-01T00:00:00Z"}  # fmt: skip
    return {**base, **fields}


def verified(conn) -> dict[str, tuple[int, int]]:
    rows = conn.execute("SELECT name, phone_verified, email_verified FROM users")
    return {row["name"]: (row["phone_verified"], row["email_verified"]) for row in rows}


def test_approved_sms_marks_only_the_matching_phone_verified(conn):
    assert apply_event(conn, event()) == 1
    assert verified(conn) == {"Ada": (1, 0), "Bob": (0, 0)}


def test_approved_email_marks_the_email_verified(conn):
    apply_event(conn, event(to="ada@example.org", channel="email"))
    assert verified(conn) == {"Ada": (0, 1), "Bob": (0, 0)}


def test_applying_twice_is_harmless(conn):
    apply_event(conn, event())
    assert apply_event(conn, event()) == 0
    assert verified(conn) == {"Ada": (1, 0), "Bob": (0, 0)}


def test_an_event_for_nobody_changes_nothing(conn):
    assert apply_event(conn, event(to="+15550000000")) == 0
    assert verified(conn) == {"Ada": (0, 0), "Bob": (0, 0)}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"type": "verification.sent"}, InvalidEvent),
        ({"to": ""}, InvalidEvent),
        ({"id": ""}, InvalidEvent),
        ({"channel": "fax"}, ValueError),
    ],
)
def test_malformed_events_are_refused(conn, fields, error):
    with pytest.raises(error):
        apply_event(conn, event(**fields))
    assert verified(conn) == {"Ada": (0, 0), "Bob": (0, 0)}


def test_applier_creates_the_schema_when_the_consumer_starts_first(tmp_path: Path):
    applier = SqliteApplier(tmp_path / "fresh.sqlite3")
    try:
        assert applier(event()) == 0
    finally:
        applier.close()


def test_retry_delay_grows_and_is_capped():
    delays = [retry_delay(n) for n in range(1, 8)]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.1)
    assert max(delays) == 2.0


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["events", "list"], "list"),
        (["events", "replay", "--all"], "replay"),
        (["events", "consume", "--block-ms", "50"], "consume"),
    ],
)
def test_events_verb_parses_its_actions(argv, action):
    args = build_parser("events").parse_args(argv)
    assert args.action == action


def test_events_verb_needs_an_action():
    with pytest.raises(SystemExit):
        build_parser("events").parse_args(["events"])
