"""The stacks a recording or a replay runs against, on free ports, with the webhook sink."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

from proxy import stack
from proxy.sink import WebhookSink
from proxy.supervisor import Supervisor
from tests.contract.model import Target
from tests.contract.runner import Endpoints

ROUTES_FILE = stack.PACKAGE_ROOT / "proxy" / "routes.yaml"
MIGRATED_ROUTE = "verification"
# Short enough that the expiry scenario waits seconds, long enough for a slow CI machine to
# send and check well inside it. The recordings say `expires_in: 3`: keep them in step.
CODE_TTL = 3


def backend_env(sink: WebhookSink) -> dict[str, str]:
    """Environment for every backend of a contract stack."""
    return {
        "VERIFICATION_CODE_TTL": str(CODE_TTL),
        "VERIFICATION_WEBHOOK_URL": sink.url,
        "STRANGLER_INTERNAL_TOKEN": secrets.token_hex(16),
    }


def write_routes(source: Path, target: Path, percent: int, route: str = MIGRATED_ROUTE) -> Path:
    """A copy of the routing table with `percent` of `route` going to its new backend."""
    yaml = YAML()  # round trip: the copy keeps the comments and layout of the original
    table = yaml.load(source.read_text())
    entry = next((r for r in table["routes"] if r["name"] == route), None)
    if entry is None:
        raise LookupError(f"{source}: no route named {route!r}")
    fallback = entry["fallback"]
    new = next(name for name in entry["split"] if name != fallback)
    entry["split"][fallback] = 100 - percent
    entry["split"][new] = percent
    with target.open("w") as out:
        yaml.dump(table, out)
    return target


def _start_service_side(sup: Supervisor, cfg: stack.StackConfig) -> None:
    sup.start(stack.redis_spec(cfg, persist=False))
    sup.start(stack.monolith_spec(cfg))
    sup.start(stack.service_spec(cfg))
    sup.start(stack.consumer_spec(cfg))


@contextlib.contextmanager
def running(
    target: Target, var_dir: Path, split: int = 0, env: dict | None = None
) -> Iterator[Endpoints]:
    """Start the stack for `target`, yield where to reach it, stop every child after."""
    with WebhookSink() as sink, Supervisor(log_dir=var_dir / "logs") as sup:
        cfg = stack.StackConfig.on_free_ports(var_dir, env={**backend_env(sink), **(env or {})})
        if target is Target.MONOLITH:
            sup.start(stack.monolith_spec(cfg))
            yield Endpoints(cfg.monolith_url, cfg.monolith_url, sink.base_url)
        elif target is Target.SERVICE:
            _start_service_side(sup, cfg)
            yield Endpoints(cfg.service_url, cfg.monolith_url, sink.base_url)
        else:
            _start_service_side(sup, cfg)
            routes = write_routes(ROUTES_FILE, var_dir / "routes.yaml", split)
            sup.start(stack.proxy_spec(cfg, routes))
            yield Endpoints(cfg.proxy_url, cfg.proxy_url, sink.base_url)
