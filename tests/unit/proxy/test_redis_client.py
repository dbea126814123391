"""The affinity store: RESP encoding, reply parsing, and what a silent Redis looks like."""

from __future__ import annotations

import asyncio

import pytest

from strangler.proxy.redis_client import (
    RECALL_TIMEOUT,
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
    store.conn = _Connection(store._lost, clock)
    store.conn.connection_made(transport)
    return store, transport


def test_a_redis_that_stops_answering_is_degraded_until_its_answers_come_back():
    now = [100.0]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        store, transport = connected(loop, lambda: now[0])
        loop.call_soon(store.conn.data_received, b"$1\r\nb\r\n")
        assert await store.recall("k1") == "b"
        assert store.healthy and store.failed_recalls == 0

        assert await store.recall("k2") is None  # hung: the GET times out
        now[0] += 2 * RECALL_TIMEOUT
        assert not store.healthy and store.failed_recalls == 1
        sent = len(transport.written)
        store.remember("k2", "a", 60)
        assert await store.recall("k3") is None  # no second wait on a hung Redis
        assert len(transport.written) == sent and store.failed_recalls == 2

        store.conn.data_received(b"$-1\r\n")  # it answers again (the late GET)
        assert store.healthy
        loop.call_soon(store.conn.data_received, b"$1\r\na\r\n")
        assert await store.recall("k4") == "a"
        assert store.failed_recalls == 2

    asyncio.run(scenario())


def test_without_a_connection_every_recall_fails_and_is_counted():
    async def scenario() -> None:
        store = RedisAffinityStore("redis://127.0.0.1:6379/0", asyncio.get_running_loop())
        assert not store.healthy
        assert await store.recall("k") is None
        assert store.failed_recalls == 1

    asyncio.run(scenario())
