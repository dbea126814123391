"""The Redis transport of the affinity store: RESP, replies in order, and the states a faulty
Redis shows (stalled, refusing, unreachable)."""

from __future__ import annotations

import asyncio

import pytest

from strangler.proxy.placements import ANSWERING, REFUSING, STALLED, UNREACHABLE
from strangler.proxy.redis_client import (
    STALL_AFTER,
    RedisAffinityStore,
    RedisError,
    _Connection,
    command,
    parse_reply,
)


def test_commands_are_resp_arrays_of_bulk_strings():
    assert command(b"SET", "k", "v", b"EX", 60) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n60\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"+OK\r\n", (True, b"OK", 5)),
        (b":12\r\n", (True, b"12", 5)),
        (b"$-1\r\n", (True, None, 5)),
        (b"$5\r\nhello\r\n+OK\r\n", (True, b"hello", 11)),
        (b"$5\r\nhel", (False, None, 0)),
        (b"+O", (False, None, 0)),
    ],
)
def test_replies_parse_one_at_a_time(raw, expected):
    assert parse_reply(bytearray(raw)) == expected


def test_errors_are_values():
    complete, value, used = parse_reply(bytearray(b"-ERR wrong\r\n"))
    assert complete and used == 12 and isinstance(value, RedisError)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def connected(loop: asyncio.AbstractEventLoop, clock) -> tuple[RedisAffinityStore, FakeTransport]:
    store = RedisAffinityStore("redis://127.0.0.1:6379/0", loop)
    transport = FakeTransport()
    store.conn = _Connection(store, clock)
    store.conn.connection_made(transport)
    return store, transport


def test_commands_go_out_in_one_write_and_their_replies_come_back_in_order():
    now = [100.0]

    async def scenario() -> None:
        store, transport = connected(asyncio.get_running_loop(), lambda: now[0])
        got: list = []
        answers: list[str] = []
        store.listen(lambda: answers.append(store.state))
        assert store.write("k", "a", 600_000, got.append)
        assert store.read("k", lambda answered, value: got.append((answered, value)))
        assert transport.written == []  # written together, once this turn of the loop ends
        await asyncio.sleep(0)
        assert transport.written == [
            command(b"SET", "k", "a", b"PX", 600_000) + command(b"GET", "k")
        ]
        now[0] += 2 * STALL_AFTER  # no reply yet: a paused Redis
        assert store.state == STALLED
        store.conn.data_received(b"+OK\r\n$1\r\na\r\n")
        assert got == [True, (True, "a")] and answers == [ANSWERING]

    asyncio.run(scenario())


def test_an_error_reply_fails_its_command_and_the_store_refuses_for_a_moment():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        store, _ = connected(loop, loop.time)
        got: list = []
        store.write("k", "a", 1000, got.append)
        store.read("k", lambda answered, value: got.append((answered, value)))
        store.conn.data_received(b"-LOADING Redis is loading\r\n-LOADING again\r\n")
        assert got == [False, (False, None)] and store.state == REFUSING
        answered = loop.create_future()
        store.listen(lambda: answered.done() or answered.set_result(store.state))
        assert await asyncio.wait_for(answered, 5) == ANSWERING  # told once the refusal is over

    asyncio.run(scenario())


def test_a_lost_connection_fails_every_command_under_way():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        store, _ = connected(loop, loop.time)
        got: list = []
        store.write("k", "a", 1000, got.append)
        store.read("k", lambda answered, value: got.append((answered, value)))
        store.conn.connection_lost(None)
        assert got == [False, (False, None)]
        assert store.state == UNREACHABLE
        assert not store.write("k", "a", 1000, got.append)  # nothing sent into the void
        store.close()

    asyncio.run(scenario())
