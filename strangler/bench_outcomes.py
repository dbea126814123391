"""The bench's `outcomes` case: what a route under a rollout's analysis costs per request.

Two embedded proxies in front of one nginx answering a verification-shaped JSON body, both
splitting 50/50 between two names of that nginx: `plain` without a `rollout:` block, and
`outcomes` with one (`outcome: [error, status]`), so each of its answers is counted with its
body read (up to 2 KiB) and its outcome label parsed. The same requests, the same upstream.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from strangler.bench_setup import Target, nginx_spec
from strangler.stack import specs as stack
from strangler.stack.supervisor import Supervisor, free_port

JSON_SERVER = """
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            default_type application/json;
            return 200 '{{"id": "0f3c", "to": "+15551234567", "channel": "sms", "status": "approved", "valid": true}}';
        }}
    }}
"""  # noqa: E501 (one JSON answer, as the service gives it)
ROUTES = """
backends:
  legacy: {{url: "http://127.0.0.1:{port}", health: /}}
  candidate: {{url: "http://127.0.0.1:{port}", health: /}}
default_backend: legacy
routes:
  - name: verification
    match: {{prefix: /api/verification/}}
    split: {{legacy: 50, candidate: 50}}
    fallback: legacy
{rollout}"""
ROLLOUT = "    rollout: {steps: [50, 100], outcome: [error, status]}\n"
TITLE = "GET a JSON answer (nginx return 200), 50/50 split: outcomes counted or not"


def outcome_targets(sup: Supervisor, tmp: Path, workers: int) -> list[Target]:
    """nginx direct, the plain proxy and the proxy that counts outcomes, in that order."""
    port = free_port()
    sup.start(nginx_spec("json", JSON_SERVER.format(port=port), port, 1, tmp))
    targets = [Target("direct", f"http://127.0.0.1:{port}/api/verification/check")]
    for name, rollout in (("plain", ""), ("outcomes", ROLLOUT)):
        routes = tmp / f"{name}-routes.yaml"
        routes.write_text(ROUTES.format(port=port, rollout=rollout))
        cfg = replace(stack.StackConfig.on_free_ports(tmp / name), workers=workers)
        spec = stack.proxy_spec(cfg, routes)
        spec.name = f"proxy-{name}"
        proxy = sup.start(spec, timeout=60)
        targets.append(Target(name, cfg.proxy_url + "/api/verification/check", proxy.process.pid))
    return targets
