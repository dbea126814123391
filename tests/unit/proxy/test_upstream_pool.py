"""Idle keep-alive connections per backend."""

from __future__ import annotations

from strangler.proxy.upstream_pool import Pool


class Conn:
    def __init__(self, key: str = "http://127.0.0.1:8001") -> None:
        self.pool_key = key
        self.idle_since = 0.0
        self.usable = True
        self.closed = False
        self.peer_closed = False

    def alive(self) -> bool:
        return self.usable and not self.peer_closed

    def close(self) -> None:
        self.closed = True
        self.usable = False


def test_newest_idle_connection_is_reused_first():
    pool = Pool()
    a, b = Conn(), Conn()
    pool.release(a, 1.0)
    pool.release(b, 2.0)
    assert pool.acquire(a.pool_key) is b
    assert pool.acquire(a.pool_key) is a
    assert pool.acquire(a.pool_key) is None


def test_closed_connections_are_skipped_and_the_cap_holds():
    pool = Pool(max_idle=1)
    a, b = Conn(), Conn()
    pool.release(a, 1.0)
    pool.release(b, 1.0)
    assert b.closed and pool.size() == 1
    a.usable = False
    assert pool.acquire(a.pool_key) is None


def test_connections_the_backend_closed_are_not_reused():
    pool = Pool()
    stale, good = Conn(), Conn()
    pool.release(good, 1.0)
    pool.release(stale, 2.0)
    stale.peer_closed = True
    assert pool.acquire(good.pool_key) is good
    assert stale.closed


def test_idle_connections_expire_and_removed_backends_are_closed():
    pool = Pool()
    old, fresh, other = Conn(), Conn(), Conn("http://127.0.0.1:8002")
    pool.release(old, 0.0)
    pool.release(fresh, 9.5)
    pool.release(other, 9.5)
    assert pool.expire(now=10.0, idle_timeout=1.0) == 1
    assert old.closed and not fresh.closed
    pool.retain({"http://127.0.0.1:8001"})
    assert other.closed and pool.size() == 1
