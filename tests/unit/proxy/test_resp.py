"""The affinity store's RESP encoding and reply parsing."""

from __future__ import annotations

import pytest

from proxy.resp import RedisError, command, parse_reply


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
