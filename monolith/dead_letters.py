"""The dead-letter stream of verification events: its entries, their listing and their replay."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

import redis

from strangler.monolith.timestamps import rfc3339

DEAD_STREAM = "verification.events.dead"
DEAD_FIELDS = ("dead_original_id", "dead_attempts", "dead_last_error", "dead_at")


def entry(fields: Mapping[str, str], msg_id: str, attempts: int, error: str) -> dict[str, str]:
    """The dead letter kept for an event that failed its last try: the event and why."""
    dead_at = rfc3339(time.time())
    return {
        **fields, "dead_original_id": msg_id, "dead_attempts": str(attempts),
        "dead_last_error": error, "dead_at": dead_at,
    }  # fmt: skip


def _event(fields: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in DEAD_FIELDS}


def dead_letters(client: redis.Redis) -> list[dict]:
    """Every dead letter: its id, the event's fields, tries, last error."""
    letters = []
    for dead_id, fields in client.xrange(DEAD_STREAM, "-", "+"):
        letters.append({
            "id": dead_id, "original_id": fields.get("dead_original_id"), "event": _event(fields),
            "attempts": int(fields.get("dead_attempts", 0)),
            "last_error": fields.get("dead_last_error", ""),
        })  # fmt: skip
    return letters


def replay(client: redis.Redis, dead_ids: list[str], stream: str) -> list[tuple[str, str]]:
    """Move dead letters back to `stream`: [(dead id, new id)]; KeyError if unknown."""
    moved = []
    for dead_id in dead_ids:
        found = client.xrange(DEAD_STREAM, dead_id, dead_id)
        if not found:
            raise KeyError(dead_id)
        with client.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, _event(found[0][1])).xdel(DEAD_STREAM, dead_id)
            new_id, _ = pipe.execute()
        moved.append((dead_id, new_id))
    return moved


def list_command(client: redis.Redis, as_json: bool) -> int:
    """`strangler events list`: every dead letter, as text or one JSON document."""
    letters = dead_letters(client)
    if as_json:
        print(json.dumps({"dead_letters": letters}, indent=2))
        return 0
    if not letters:
        print(f"no dead letters in {DEAD_STREAM}")
    for letter in letters:
        event = " ".join(f"{k}={v}" for k, v in letter["event"].items())
        print(f"{letter['id']}  attempts={letter['attempts']}  last_error={letter['last_error']}")
        print(f"    {event}")
    return 0


def replay_command(client: redis.Redis, ids: list[str], replay_all: bool, stream: str) -> int:
    """`strangler events replay`: the given dead letters, or all, back to `stream`."""
    if replay_all:
        ids = [letter["id"] for letter in dead_letters(client)]
    if not ids:
        print("strangler events replay: give dead letter IDs or --all", file=sys.stderr)
        return 2
    try:
        for dead_id, new_id in replay(client, ids, stream):
            print(f"replayed {dead_id} as {new_id}")
    except KeyError as exc:
        print(f"strangler events replay: no dead letter {exc.args[0]}", file=sys.stderr)
        return 1
    return 0
