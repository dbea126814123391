"""The monolith's consumer of verification events (Redis stream) and the `strangler events` verb."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

from strangler.monolith import db, users
from strangler.monolith.codes import mask
from strangler.monolith.dead_letters import DEAD_STREAM, entry, list_command, replay_command

log = logging.getLogger("monolith.events")

STREAM = "verification.events"
GROUP = "monolith"
# hash: "<message id>" -> failed tries so far, "<message id>:error" -> the last error
FAILURES = "verification.events.failures"
MAX_TRIES = 5
EVENT_TYPE = "verification.approved"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6380/0"
BATCH = 100

Fields = Mapping[str, str]

# KEYS: stream, dead stream, failures. ARGV: group, id, dead letter fields...
# The XACK gates the move: two consumers racing on one message bury it once.
BURY = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('HDEL', KEYS[3], ARGV[2], ARGV[2] .. ':error')
return 1
"""


class InvalidEvent(ValueError):
    """The event cannot be applied as it is (wrong type, missing field)."""


def apply_event(conn: sqlite3.Connection, fields: Fields) -> int:
    """Mark the user of an approved verification verified; committed; the rows changed."""
    if fields.get("type") != EVENT_TYPE:
        raise InvalidEvent(f"unknown event type {fields.get('type')!r}")
    missing = [name for name in ("id", "to", "channel") if not fields.get(name)]
    if missing:
        raise InvalidEvent(f"missing field(s): {', '.join(missing)}")
    # Idempotent: only users not yet verified change, so a redelivery changes nothing.
    return users.mark_verified(conn, fields["channel"], fields["to"])


class SqliteApplier:
    """Applies events to the monolith's database through one long-lived connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __call__(self, fields: Fields) -> int:
        if self._conn is None:
            self._conn = db.connect(self.path)
            db.init_schema(self._conn)  # the consumer may start before the monolith
        try:
            return apply_event(self._conn, fields)
        except sqlite3.Error:
            self.close()  # a fresh connection for the retry
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def retry_delay(failures: int) -> float:
    """Seconds before the next try of an event that failed `failures` times."""
    return min(2.0, 0.1 * 2 ** max(0, failures - 1))


class Consumer:
    """One member of the `monolith` consumer group: apply, then XACK (at least once)."""

    def __init__(
        self, client: redis.Redis, apply: Callable[[Fields], object], name: str, *,
        block_ms: int = 200, claim_idle_ms: int = 10_000, max_tries: int = MAX_TRIES,
    ) -> None:  # fmt: skip
        self.client, self.apply, self.name = client, apply, name
        self.block_ms, self.claim_idle_ms, self.max_tries = block_ms, claim_idle_ms, max_tries
        self._retry_at: dict[str, tuple[float, dict[str, str]]] = {}
        self._next_claim = 0.0
        self._ready = False
        self._bury = client.register_script(BURY)

    def ensure_group(self) -> None:
        if self._ready:
            return
        try:
            # From "0": events published before the first consumer started are applied too.
            self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Our own history first: with a stable --consumer name, resume what we left.
        self._handle_all(self.client.xreadgroup(GROUP, self.name, {STREAM: "0"}, count=BATCH))
        self._ready = True

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; a Redis outage is waited out with backoff."""
        delay = 0.1
        while not stop.is_set():
            try:
                self.ensure_group()
                self.step()
                delay = 0.1
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 5.0)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._ready = False  # Redis came back empty: make the group again
        self._leave()

    def step(self) -> None:
        self._retry_due()
        self._claim_abandoned()
        block = self._block_ms()
        got = self.client.xreadgroup(GROUP, self.name, {STREAM: ">"}, count=BATCH, block=block)
        self._handle_all(got)

    def _block_ms(self) -> int | None:
        if not self._retry_at:
            return self.block_ms
        wait = min(at for at, _ in self._retry_at.values()) - time.monotonic()
        return None if wait <= 0.001 else min(self.block_ms, int(wait * 1000) + 1)

    def _handle_all(self, reply: list) -> None:
        for _stream, entries in reply or []:
            for msg_id, fields in entries:
                self.handle(msg_id, fields)

    def _retry_due(self) -> None:
        now = time.monotonic()
        for msg_id, (at, fields) in list(self._retry_at.items()):
            if at <= now:
                del self._retry_at[msg_id]
                self.handle(msg_id, fields)

    def _claim_abandoned(self) -> None:
        # Messages a dead consumer read but never acked: take them over once they idle.
        if time.monotonic() < self._next_claim:
            return
        self._next_claim = time.monotonic() + min(1.0, self.claim_idle_ms / 2000)
        start = "0-0"
        while True:
            reply = self.client.xautoclaim(
                STREAM, GROUP, self.name, self.claim_idle_ms, start_id=start, count=BATCH
            )
            start, claimed = reply[0], reply[1]
            for msg_id, fields in claimed:
                if msg_id not in self._retry_at:
                    self.handle(msg_id, fields)
            if start == "0-0":
                return

    def handle(self, msg_id: str, fields: dict[str, str] | None) -> None:
        if not fields:  # trimmed from the stream while pending: nothing left to apply
            self.client.xack(STREAM, GROUP, msg_id)
            return
        try:
            self.apply(fields)
        # Any failure to apply counts as a try; it is recorded and, after the last try,
        # kept in the dead-letter stream with its error: nothing is hidden.
        except Exception as exc:  # noqa: BLE001
            self._failed(msg_id, fields, f"{type(exc).__name__}: {exc}")
            return
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, msg_id).hdel(FAILURES, msg_id, f"{msg_id}:error").execute()
        log.info("applied %s %s for %s", msg_id, fields.get("id"), mask(fields.get("to", "?")))

    def _failed(self, msg_id: str, fields: dict[str, str], error: str) -> None:
        # Counted in Redis, not in memory: tries survive restarts and hand-overs.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(FAILURES, msg_id, 1).hset(FAILURES, f"{msg_id}:error", error)
            attempts, _ = pipe.execute()
        log.warning("event %s failed (try %d of %d): %s", msg_id, attempts, self.max_tries, error)
        if attempts < self.max_tries:
            self._retry_at[msg_id] = (time.monotonic() + retry_delay(attempts), fields)
            return
        flat = [item for pair in entry(fields, msg_id, attempts, error).items() for item in pair]
        if self._bury(keys=[STREAM, DEAD_STREAM, FAILURES], args=[GROUP, msg_id, *flat]):
            log.error("event %s moved to %s after %d tries", msg_id, DEAD_STREAM, attempts)

    def _leave(self) -> None:
        # A clean exit with nothing pending removes our name, so the group does not fill
        # up with the names of past processes; anything pending stays for a live consumer.
        try:
            mine = self.client.xpending_range(STREAM, GROUP, "-", "+", 1, consumername=self.name)
            if not mine:
                self.client.xgroup_delconsumer(STREAM, GROUP, self.name)
        except redis.RedisError as exc:
            log.warning("could not leave the consumer group cleanly: %s", exc)


def connect(url: str, block_ms: int = 0) -> redis.Redis:
    # The socket must outwait a blocking read; connecting fails fast so outages show early.
    return redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=2, socket_timeout=block_ms / 1000 + 5
    )


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    consume = sub.add_parser("consume", parents=[common], help="run the consumer")
    _consumer_options(consume)
    listing = sub.add_parser("list", parents=[common], help="show dead letters, last errors")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    again = sub.add_parser("replay", parents=[common], help="move dead letters back")
    again.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids (from `list`)")
    again.add_argument("--all", action="store_true", help="replay every dead letter")


def _consumer_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument("--database", default=str(db.database_path(env)))
    name = env.get("EVENTS_CONSUMER") or f"{socket.gethostname()}-{os.getpid()}"
    parser.add_argument("--consumer", default=name, help="this member's name in the group")
    parser.add_argument("--block-ms", type=int, default=int(env.get("EVENTS_BLOCK_MS", 200)))
    parser.add_argument(
        "--claim-idle-ms", type=int, default=int(env.get("EVENTS_CLAIM_IDLE_MS", 10_000)),
        help="take over another consumer's message after it idles this long",
    )  # fmt: skip


def main(verb: str, args: argparse.Namespace) -> int:
    if args.action == "consume":
        return consume(args)
    client = connect(args.redis_url)
    if args.action == "list":
        return list_command(client, args.json)
    return replay_command(client, args.ids, args.all, STREAM)


def consume(args: argparse.Namespace) -> int:
    """Run one consumer until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    applier = SqliteApplier(args.database)
    client = connect(args.redis_url, args.block_ms)
    consumer = Consumer(
        client, applier, args.consumer, block_ms=args.block_ms, claim_idle_ms=args.claim_idle_ms
    )
    log.info("consumer %s reading %s as group %s", args.consumer, STREAM, GROUP)
    try:
        consumer.run(stop)
    finally:
        applier.close()
    log.info("consumer %s stopped", args.consumer)
    return 0


if __name__ == "__main__":
    # `python -m strangler.monolith.events [OPTIONS]` is `strangler events consume [OPTIONS]`.
    cli = argparse.ArgumentParser(prog="python -m strangler.monolith.events")
    add_arguments("events", cli)
    sys.exit(consume(cli.parse_args(["consume", *sys.argv[1:]])))
