"""The consumer rides out a Redis outage: it retries with backoff and resumes when Redis is back."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from strangler.monolith import db
from strangler.monolith.events import STREAM
from strangler.stack.specs import StackConfig, consumer_spec, redis_spec
from strangler.stack.supervisor import Supervisor
from tests.integration.polling import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.live, pytest.mark.slow]

PHONE = "+15551234567"


@pytest.mark.parametrize(
    "persist", [True, False], ids=["redis-keeps-data", "redis-comes-back-empty"]
)
def test_consumer_survives_redis_restart(supervisor: Supervisor, tmp_path: Path, persist: bool):
    cfg = StackConfig.on_free_ports(tmp_path / "var")
    conn = db.connect(cfg.monolith_database)
    db.init_schema(conn)
    conn.execute(
        "INSERT INTO users (name, phone, created_at) VALUES ('Ada', ?, '2024-01-01T00:00:00Z')",
        (PHONE,),
    )
    redis_child = supervisor.start(redis_spec(cfg, persist=persist))
    consumer = supervisor.start(consumer_spec(cfg))

    supervisor.stop(redis_child)
    wait_for(lambda: "redis unavailable" in consumer.log_tail(), "the consumer to notice")
    assert consumer.alive()

    supervisor.start(redis_spec(cfg, persist=persist))
    r = redis.Redis.from_url(cfg.effective_redis_url, decode_responses=True)
    r.xadd(STREAM, {"type": "verification.approved", "id": "VE" + "2" * 32, "to": PHONE,
                    "channel": "sms", "approved_at": "2024-01-01T00:00:00Z"})  # fmt: skip
    row = "SELECT phone_verified FROM users WHERE phone = ?"
    wait_for(lambda: conn.execute(row, (PHONE,)).fetchone()[0] == 1, "Ada verified")
    assert consumer.alive()
    conn.close()
