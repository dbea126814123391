"""The steering filter: every connection to one of the workers' sockets, none to an intruder."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from strangler.proxy import steering
from strangler.proxy.master import open_worker_listeners


@pytest.mark.parametrize("count", [2, 3])
def test_connections_spread_over_the_workers_sockets_and_never_reach_a_late_joiner(count):
    group = open_worker_listeners("127.0.0.1", 0, 1)  # a free port, then the group on it
    port = group[0].getsockname()[1]
    group[0].close()
    group = open_worker_listeners("127.0.0.1", port, count)
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    intruder.bind(("127.0.0.1", port))
    intruder.listen()
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
    accepted: Counter[int] = Counter()
    try:
        for index, sock in enumerate([*group, intruder]):
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted[index] += 1
    finally:
        for sock in [*group, intruder, *clients]:
            sock.close()
    assert accepted[count] == 0  # the intruder
    assert sum(accepted.values()) == 60
    assert all(accepted[i] > 0 for i in range(count))


def test_the_program_is_four_instructions_ending_in_a_return():
    code = steering.program(4, socket.AF_INET)
    assert len(code) == 4 * 8 and code[-8:-6] == b"\x16\x00"


def test_a_taken_port_names_its_variable():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port} \\(STRANGLER_PROXY_BIND\\)"):
            open_worker_listeners("127.0.0.1", port, 2, "STRANGLER_PROXY_BIND")
