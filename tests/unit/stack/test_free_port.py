"""free_port: the kernel's pick, or a test lane's own range with no port handed out twice."""

from __future__ import annotations

import socket

import pytest

from strangler.stack.supervisor import PORT_RANGE, free_port


def test_without_a_range_the_kernel_picks_a_free_port(monkeypatch) -> None:
    monkeypatch.delenv(PORT_RANGE, raising=False)
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free indeed


def test_in_a_range_each_port_is_handed_out_once_and_a_listened_one_is_skipped(
    monkeypatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        low = max(1024, busy - 3)
        monkeypatch.setenv(PORT_RANGE, f"{low}-{low + 7}")
        ports = []
        with pytest.raises(OSError, match="no free port left"):
            for _ in range(9):
                ports.append(free_port())
    assert len(set(ports)) == len(ports) and busy not in ports
    assert all(low <= p <= low + 7 for p in ports)


@pytest.mark.parametrize("text", ["20000", "b-a", "0-10", "30000-20000", "1-70000"])
def test_a_malformed_range_is_refused_by_name(monkeypatch, text: str) -> None:
    monkeypatch.setenv(PORT_RANGE, text)
    with pytest.raises(ValueError, match=PORT_RANGE):
        free_port()
