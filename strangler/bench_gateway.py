"""The `gateway` case of `strangler bench`: what a limit and a cache cost per request.

One proxy on one Redis serves three routes to the same upstream (nginx `return 200`): the
route as today (no duty), a throttled route whose limit is never reached (every request
one EVALSHA on one hot bucket, the client's address), and a cached route (after the first
request per worker, every answer comes from that worker's cache).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from strangler.stack import specs as stack

if TYPE_CHECKING:
    from strangler.stack.supervisor import Supervisor

TITLE = "GET through the gateway duties (nginx return 200), one proxy on one Redis"
GATEWAY_ROUTES = """
backends:
  fast: {{url: "http://127.0.0.1:{fast}", health: /}}
default_backend: fast
routes:
  - name: today
    match: {{prefix: /today/}}
    split: {{fast: 100}}
  - name: throttled
    match: {{prefix: /throttled/}}
    split: {{fast: 100}}
    limit: {{key: client_ip, rate: 1000000/s, burst: 1000000}}
  - name: cached
    match: {{prefix: /cached/, methods: [GET]}}
    split: {{fast: 100}}
    cache: {{ttl: 3600}}
"""
COMPARED = (("throttled", "proxy"), ("cached", "proxy"))


def gateway_targets(
    sup: Supervisor, tmp: Path, fast: int, workers: int
) -> list[tuple[str, str, int | None]]:
    """(name, url, measured pid): the upstream direct, then the proxy's three routes."""
    redis_cfg = stack.StackConfig.on_free_ports(tmp / "gateway-redis")
    sup.start(stack.redis_spec(redis_cfg, persist=False))
    routes = tmp / "gateway-routes.yaml"
    routes.write_text(GATEWAY_ROUTES.format(fast=fast))
    env = {"REDIS_URL": redis_cfg.effective_redis_url}
    cfg = replace(stack.StackConfig.on_free_ports(tmp / "gateway"), workers=workers, env=env)
    spec = stack.proxy_spec(cfg, routes)
    spec.name = "proxy-gateway"
    pid = sup.start(spec, timeout=60).process.pid
    return [
        ("direct", f"http://127.0.0.1:{fast}/today/x", None),
        ("proxy", cfg.proxy_url + "/today/x", pid),  # the route as today: no duty
        ("throttled", cfg.proxy_url + "/throttled/x", pid),
        ("cached", cfg.proxy_url + "/cached/x", pid),
    ]
