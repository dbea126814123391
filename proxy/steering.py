"""A classic BPF socket filter that steers a `SO_REUSEPORT` group's connections (Linux).

The program reads the client's TCP source port (ports of `connect()` are even, so it is
halved first) and answers `port // 2 % count`: always an index among the first `count`
members of the group, the proxy's own workers. Without a filter the kernel would hash over
every member, a later intruder's socket too.
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>
SKF_NET_OFF = -0x100000  # loads relative to the network header
_LD_H_ABS, _RSH_K, _MOD_K, _RET_A = 0x28, 0x74, 0x94, 0x16
_IP_HEADER = {socket.AF_INET: 20, socket.AF_INET6: 40}  # where the TCP header starts


class SteeringUnavailable(OSError):
    """This system cannot attach the filter (not Linux, or a kernel before 4.5)."""


def program(count: int, family: int) -> bytes:
    """The filter's instructions, as `struct sock_filter` records."""
    source_port = (SKF_NET_OFF + _IP_HEADER[family]) & 0xFFFFFFFF
    instructions = [(_LD_H_ABS, source_port), (_RSH_K, 1), (_MOD_K, count), (_RET_A, 0)]
    return b"".join(struct.pack("HBBI", code, 0, 0, k) for code, k in instructions)


def attach(sock: socket.socket, count: int, family: int) -> None:
    """Attach the filter to the group `sock` belongs to."""
    if count == 1:
        return  # nothing to choose: the one socket takes every connection anyway
    instructions = program(count, family)
    code = ctypes.create_string_buffer(instructions, len(instructions))
    fprog = struct.pack("HL", len(instructions) // 8, ctypes.addressof(code))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        raise SteeringUnavailable(exc.errno, f"cannot steer connections: {exc.strerror}") from exc
