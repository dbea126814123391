"""The monolith's event consumer as a real process on Redis: claims, crashes, dead letters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from strangler.monolith import db
from strangler.monolith.events import DEAD_STREAM, FAILURES, GROUP, STREAM, apply_event
from strangler.stack.specs import StackConfig, consumer_spec
from strangler.stack.supervisor import Child, ChildSpec, Supervisor
from tests.integration.polling import wait_for
from tests.repository import REPO

pytestmark = [pytest.mark.redis, pytest.mark.live]

PHONE = "+15551234567"
CONSUMER = "consumer-under-test"


def event(to: str = PHONE, channel: str = "sms") -> dict[str, str]:
    return {"type": "verification.approved", "id": "VE" + "1" * 32, "to": to,
            "channel": channel, "approved_at": "2024-01-01T00:00:00Z"}  # fmt: skip


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> StackConfig:
    env = {"EVENTS_CLAIM_IDLE_MS": "300", "EVENTS_CONSUMER": CONSUMER}
    return StackConfig.on_free_ports(tmp_path / "var", redis_url=redis_url, env=env)


@pytest.fixture
def database(stack: StackConfig):
    """The monolith's database with Ada (+15551234567) and Bob (bob@example.org)."""
    conn = db.connect(stack.monolith_database)
    db.init_schema(conn)
    conn.execute(
        "INSERT INTO users (name, email, phone, created_at) VALUES"
        " ('Ada', NULL, ?, '2024-01-01T00:00:00Z'),"
        " ('Bob', 'bob@example.org', NULL, '2024-01-01T00:00:00Z')",
        (PHONE,),
    )
    yield conn
    conn.close()


def verified(conn) -> dict[str, tuple[int, int]]:
    rows = conn.execute("SELECT name, phone_verified, email_verified FROM users")
    return {row["name"]: (row["phone_verified"], row["email_verified"]) for row in rows}


def start_consumer(supervisor: Supervisor, stack: StackConfig, r: redis.Redis) -> Child:
    def joined() -> bool:
        try:
            return any(c["name"] == CONSUMER for c in r.xinfo_consumers(STREAM, GROUP))
        except redis.ResponseError:  # no stream or group yet
            return False

    spec = consumer_spec(stack)
    spec.ready = joined
    return supervisor.start(spec)


def pending_count(r: redis.Redis) -> int:
    return r.xpending(STREAM, GROUP)["pending"]


def strangler(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "strangler.cli", "events", *args, "--redis-url", redis_url]
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, timeout=60)


def test_consumer_applies_events_and_acks_them(supervisor, stack, r, database):
    start_consumer(supervisor, stack, r)
    r.xadd(STREAM, event())
    r.xadd(STREAM, event("bob@example.org", "email"))
    wait_for(lambda: verified(database) == {"Ada": (1, 0), "Bob": (0, 1)}, "both users verified")
    wait_for(lambda: pending_count(r) == 0, "acks")


def test_events_published_before_the_consumer_started_are_applied(supervisor, stack, r, database):
    r.xadd(STREAM, event())
    start_consumer(supervisor, stack, r)
    wait_for(lambda: verified(database)["Ada"] == (1, 0), "Ada verified")


def test_pending_messages_of_a_dead_consumer_are_claimed_by_a_live_one(
    supervisor, stack, r, database
):
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    r.xadd(STREAM, event())
    # A consumer that read the message and died before doing anything with it.
    r.xreadgroup(GROUP, "dead-consumer", {STREAM: ">"})
    assert pending_count(r) == 1
    start_consumer(supervisor, stack, r)
    wait_for(lambda: verified(database)["Ada"] == (1, 0), "Ada verified by the live consumer")
    wait_for(lambda: pending_count(r) == 0, "the claimed message acked")


def test_consumer_killed_between_apply_and_ack_reapplies_harmlessly(supervisor, stack, r, database):
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    r.xadd(STREAM, event())
    # Exactly what a consumer killed after its commit leaves behind: the user is updated,
    # the message is still pending for the dead consumer.
    [[_, [(_id, fields)]]] = r.xreadgroup(GROUP, "killed-consumer", {STREAM: ">"})
    apply_event(database, fields)
    start_consumer(supervisor, stack, r)
    wait_for(lambda: pending_count(r) == 0, "the re-applied message acked")
    assert verified(database) == {"Ada": (1, 0), "Bob": (0, 0)}
    assert r.xlen(DEAD_STREAM) == 0


def user_rows(conn) -> list[tuple]:
    return [tuple(row) for row in conn.execute("SELECT * FROM users ORDER BY id")]


@pytest.mark.parametrize(
    "stalled_name", [CONSUMER, "stalled-consumer"], ids=["restarted-same-name", "taken-over"]
)
def test_consumer_sigkilled_after_its_commit_before_its_ack_reapplies_harmlessly(
    supervisor, stack, r, database, tmp_path, stalled_name
):
    marker = tmp_path / "applied"
    env = {**stack.common_env(), "EVENTS_CONSUMER": stalled_name, "STALL_MARKER": str(marker)}
    argv = [sys.executable, "-m", "tests.integration.consumer_stalled_after_apply"]
    stalled = supervisor.start(ChildSpec("stalled-consumer", argv, env=env, cwd=str(REPO)))
    msg_id = r.xadd(STREAM, event())
    wait_for(marker.exists, "the stalled consumer's commit")
    assert marker.read_text() == f"{event()['id']} 1"  # it changed Ada's row
    applied = user_rows(database)
    assert verified(database)["Ada"] == (1, 0)
    [entry] = r.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert (entry["message_id"], entry["consumer"]) == (msg_id, stalled_name)  # not acked

    supervisor.kill(stalled)  # SIGKILL between the commit and the XACK
    fresh = start_consumer(supervisor, stack, r)
    wait_for(lambda: pending_count(r) == 0, "the redelivered message acked")
    assert f"applied {msg_id} " in fresh.log_path.read_text()  # redelivered, applied again
    assert user_rows(database) == applied  # the second apply changed nothing
    assert r.xlen(DEAD_STREAM) == 0
    assert r.hlen(FAILURES) == 0


def test_kill_9_of_the_consumer_loses_nothing(supervisor, stack, r, database):
    first = start_consumer(supervisor, stack, r)
    supervisor.kill(first)
    r.xadd(STREAM, event())
    start_consumer(supervisor, stack, r)
    wait_for(lambda: verified(database)["Ada"] == (1, 0), "Ada verified after the crash")


def test_sigterm_stops_the_consumer_cleanly(supervisor, stack, r, database):
    child = start_consumer(supervisor, stack, r)
    assert supervisor.stop(child, timeout=5) == 0
    names = [c["name"] for c in r.xinfo_consumers(STREAM, GROUP)]
    assert CONSUMER not in names  # left the group: nothing was pending


def test_poison_event_is_dead_lettered_after_five_tries_listed_and_replayed(
    supervisor, stack, r, database, redis_url
):
    start_consumer(supervisor, stack, r)
    poison_id = r.xadd(STREAM, event(channel="fax"))
    r.xadd(STREAM, event())  # behind the poison: must not be blocked by it
    wait_for(lambda: r.xlen(DEAD_STREAM) == 1, "the dead letter")
    assert verified(database)["Ada"] == (1, 0)
    wait_for(lambda: pending_count(r) == 0, "the poison acked")

    listed = strangler(redis_url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)["dead_letters"]
    assert letter["original_id"] == poison_id
    assert letter["attempts"] == 5
    assert "unknown channel" in letter["last_error"]
    assert letter["event"] == event(channel="fax")
    human = strangler(redis_url, "list")
    assert letter["id"] in human.stdout
    assert "attempts=5" in human.stdout

    replayed = strangler(redis_url, "replay", letter["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {letter['id']}" in replayed.stdout
    # Still poison: it goes round again and comes back as a new dead letter.
    wait_for(lambda: [i for i, _ in r.xrange(DEAD_STREAM)] not in ([], [letter["id"]]),
             "the replayed event dead-lettered again")  # fmt: skip
    assert r.xlen(STREAM) == 3


def test_replay_of_a_fixed_dead_letter_applies_it(supervisor, stack, r, database, redis_url):
    # As the consumer would have left it while the database refused the write.
    r.xadd(DEAD_STREAM, {**event(), "dead_original_id": "1-0", "dead_attempts": "5",
                         "dead_last_error": "OperationalError: disk I/O error",
                         "dead_at": "2024-01-01T00:00:00Z"})  # fmt: skip
    start_consumer(supervisor, stack, r)
    result = strangler(redis_url, "replay", "--all")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: verified(database)["Ada"] == (1, 0), "Ada verified by the replay")
    assert r.xlen(DEAD_STREAM) == 0
    [(_, fields)] = r.xrange(STREAM)
    assert fields == event()


def test_replay_of_an_unknown_id_fails_with_a_message(redis_url):
    result = strangler(redis_url, "replay", "12345-0")
    assert result.returncode == 1
    assert "no dead letter 12345-0" in result.stderr
