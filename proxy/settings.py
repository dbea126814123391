"""The proxy's settings, read from the environment once when the server starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from strangler.routing.records import MAX_STORE_TIMEOUT


def _address(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{what}={value!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


WRITES = ("confirmed", "queued")  # STRANGLER_AFFINITY_WRITES


def _writes(value: str) -> bool:
    """True for `confirmed` (a response waits for its placement), False for `queued`."""
    if value not in WRITES:
        choices = ", ".join(WRITES)
        raise ValueError(f"STRANGLER_AFFINITY_WRITES={value!r}: expected one of {choices}")
    return value == "confirmed"


@dataclass(frozen=True)
class ProxySettings:
    bind: tuple[str, int] = ("127.0.0.1", 8000)
    admin_bind: tuple[str, int] = ("127.0.0.1", 8009)
    workers: int = 1
    redis_url: str | None = None
    admin_token: str | None = None
    internal_token: str | None = None
    connect_timeout: float = 1.0  # seconds to open an upstream connection, then failover
    read_timeout: float = 30.0  # seconds of upstream silence before 504
    max_body: int = 1024 * 1024  # request bodies over this answer 413
    idle_timeout: float = 1.0  # pooled upstream connections idle longer are closed
    client_idle_timeout: float = 75.0  # keep-alive clients silent longer are disconnected
    header_timeout: float = 10.0  # seconds from a connection (or a request's first byte) to
    # the end of its head; a slower client gets 408 and is disconnected
    max_clients: int = 1024  # client connections per worker; beyond, idle ones are closed to
    # make room, and when none is idle a new connection gets 503
    pool_size: int = 64  # idle upstream connections kept per backend and worker
    circuit_threshold: int = 3  # consecutive connect failures that open a circuit
    circuit_cooldown: float = 0.5  # seconds before an open circuit's backend is probed
    run_dir: str | None = None  # where workers share their figures; a temp dir when unset
    store_timeout: float = 1.0  # seconds a request may wait on the affinity store (a route's
    # sticky.store_timeout overrides it): a recall, or its placement being stored
    confirm_placements: bool = True  # a response waits until the store has its placement
    placement_queue: int = 50_000  # placements waiting for the store at once, per worker
    cache_bytes: int = 64 * 1024 * 1024  # the response cache's bound, per worker

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        env = os.environ if environ is None else environ

        def number(name: str, default: float, kind: type = float):
            raw = env.get(name)
            try:
                value = kind(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected a number") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r}: must be positive")
            return value

        store_timeout = number("STRANGLER_STORE_TIMEOUT", 1.0)
        if store_timeout > MAX_STORE_TIMEOUT:
            raise ValueError(
                f"STRANGLER_STORE_TIMEOUT={store_timeout:g}: at most {MAX_STORE_TIMEOUT:g} s"
            )
        return cls(
            bind=_address(
                env.get("STRANGLER_PROXY_BIND", "127.0.0.1:8000"), "STRANGLER_PROXY_BIND"
            ),
            admin_bind=_address(
                env.get("STRANGLER_ADMIN_BIND", "127.0.0.1:8009"), "STRANGLER_ADMIN_BIND"
            ),
            workers=number("STRANGLER_WORKERS", os.cpu_count() or 1, int),
            redis_url=env.get("REDIS_URL") or None,
            admin_token=env.get("STRANGLER_ADMIN_TOKEN") or None,
            internal_token=env.get("STRANGLER_INTERNAL_TOKEN") or None,
            connect_timeout=number("STRANGLER_CONNECT_TIMEOUT", 1.0),
            read_timeout=number("STRANGLER_READ_TIMEOUT", 30.0),
            max_body=number("STRANGLER_MAX_BODY", 1024 * 1024, int),
            idle_timeout=number("STRANGLER_UPSTREAM_IDLE_TIMEOUT", 1.0),
            client_idle_timeout=number("STRANGLER_CLIENT_IDLE_TIMEOUT", 75.0),
            header_timeout=number("STRANGLER_HEADER_TIMEOUT", 10.0),
            max_clients=number("STRANGLER_MAX_CLIENTS", 1024, int),
            pool_size=number("STRANGLER_UPSTREAM_POOL", 64, int),
            circuit_threshold=number("STRANGLER_CIRCUIT_THRESHOLD", 3, int),
            circuit_cooldown=number("STRANGLER_CIRCUIT_COOLDOWN", 0.5),
            run_dir=env.get("STRANGLER_RUN_DIR") or None,
            store_timeout=store_timeout,
            confirm_placements=_writes(env.get("STRANGLER_AFFINITY_WRITES") or "confirmed"),
            placement_queue=number("STRANGLER_AFFINITY_QUEUE", 50_000, int),
            cache_bytes=number("STRANGLER_CACHE_BYTES", 64 * 1024 * 1024, int),
        )
