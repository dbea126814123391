"""Fixtures shared by every test tree: free ports, a real redis-server, process supervision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.stack.sink import WebhookSink
from strangler.stack.specs import StackConfig, redis_spec
from strangler.stack.supervisor import Supervisor


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    """Children started through it are stopped (whole process groups) after the test."""
    with Supervisor(log_dir=tmp_path / "logs") as sup:
        yield sup


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    """The stand-in SMS/e-mail gateway, in this process: VERIFICATION_WEBHOOK_URL=sink.url."""
    with WebhookSink() as running:
        yield running


@pytest.fixture
def stack_config(tmp_path: Path) -> StackConfig:
    """A stack on free ports with its state under the test's tmp dir."""
    return StackConfig.on_free_ports(tmp_path / "var")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port for the whole session; yields its URL."""
    cfg = StackConfig.on_free_ports(tmp_path_factory.mktemp("redis"))
    with Supervisor(log_dir=cfg.var_dir / "logs") as sup:
        sup.start(redis_spec(cfg, persist=False))
        yield cfg.effective_redis_url


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The session's Redis, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server
