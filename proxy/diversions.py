"""Diversions, shared by a proxy's workers: keys sent away from their backend are looked up.

A request whose backend could not take it (its circuit open, no connection, or a retried
`unavailable` answer) is served by the fallback, which is then remembered for its key. But
outside a flip window the proxy routes on the hash alone: once the first backend is back, the
key's next request (the check of a code the fallback sent) would go to it. So a diversion of
route R away from backend B opens a window, like a flip: until the route's ttl has passed,
keys of R placed on B are looked up in the affinity store.

The next request of that flow may reach any worker, at once, so the windows live in a small
file in the run directory that every worker maps into memory: one worker's write is seen by
the others at their next request, and reading costs no system call.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

FILE = "diversions.bin"
SLOT = struct.Struct("=16sd")  # blake2b(route NUL backend), diverted until (time.time())
SLOTS = 256  # (route, backend) pairs; an expired pair's slot is taken over
SIZE = SLOT.size * SLOTS
FRESH = 1.0  # seconds: a window ending this close to the new end is not rewritten
EMPTY = bytes(16)


def _digest(route: str, backend: str) -> bytes:
    return hashlib.blake2b(f"{route}\0{backend}".encode(), digest_size=16).digest()


class Diversions:
    """The windows of one proxy; `path` None keeps them in this process only (tests)."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.fd: int | None = None
        if path is None:
            self.buf: bytearray | mmap.mmap = bytearray(SIZE)
        else:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._locked():
                if os.fstat(self.fd).st_size < SIZE:
                    os.ftruncate(self.fd, SIZE)
            self.buf = mmap.mmap(self.fd, SIZE, mmap.MAP_SHARED)
        self.slots: dict[tuple[str, str], tuple[bytes, int]] = {}  # pair -> (digest, slot)

    def until(self, route: str, backend: str) -> float:
        """When the window of keys of `route` placed on `backend` ends (0: there is none)."""
        for _ in range(2):  # a slot taken over by another pair since: look once more
            digest, slot = self._slot(route, backend)
            if slot < 0:
                return 0.0
            found, until = SLOT.unpack_from(self.buf, slot * SLOT.size)
            if found == digest:
                return until
            self.slots[(route, backend)] = (digest, -1)
        return 0.0

    def mark(self, route: str, backend: str, until: float) -> None:
        """Keep the window of (route, backend) open until at least `until`."""
        if self.until(route, backend) >= until - FRESH:
            return  # marked a moment ago (an outage diverts every request): no write
        digest = _digest(route, backend)
        with self._locked():
            slot = self._probe(digest, claim=True)
            if slot < 0:
                return  # every slot holds a live window of another pair: cannot happen by much
            offset = slot * SLOT.size
            found, current = SLOT.unpack_from(self.buf, offset)
            keep = current if found == digest else 0.0
            SLOT.pack_into(self.buf, offset, digest, max(keep, until))
        self.slots[(route, backend)] = (digest, slot)

    def _slot(self, route: str, backend: str) -> tuple[bytes, int]:
        digest, slot = self.slots.get((route, backend)) or (_digest(route, backend), -1)
        if slot < 0:  # not found before: another worker may have marked it since
            slot = self._probe(digest, claim=False)
            self.slots[(route, backend)] = (digest, slot)
        return digest, slot

    def _probe(self, digest: bytes, claim: bool) -> int:
        """The pair's slot; with `claim`, else the first free or expired one; -1 if none."""
        start = int.from_bytes(digest[:4], "big") % SLOTS
        now = self.clock()
        free = -1
        for step in range(SLOTS):
            slot = (start + step) % SLOTS
            found, until = SLOT.unpack_from(self.buf, slot * SLOT.size)
            if found == digest:
                return slot
            if found == EMPTY:
                return slot if claim and free < 0 else free if claim else -1
            if claim and free < 0 and until < now:
                free = slot
        return free

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.fd is None:
            yield
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
