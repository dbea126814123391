"""The demo stack on free ports, with a webhook sink, for tests, recordings and load runs.

`running_stack(var_dir)` starts Redis, the monolith, the verification service, the monolith's
event consumer and the proxy, reading its own copy of the demo routing table (so shifting it
leaves the project's table alone), with both backends delivering codes to an in-process
`WebhookSink`. Every child is stopped on exit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from strangler.control.shift import edit_split
from strangler.stack import specs
from strangler.stack.sink import WebhookSink
from strangler.stack.supervisor import Supervisor

DEMO_ROUTES = specs.DEMO_ROUTES
MIGRATED_ROUTE = "verification"
START_TIMEOUT = 60.0  # seconds per child: gunicorn boots slowly on a busy shared machine


@dataclass(frozen=True)
class RunningStack:
    """Where a started stack listens, its routing table copy, its sink and its processes."""

    cfg: specs.StackConfig
    sink: WebhookSink
    routes: Path | None  # the proxy's routes file (edit it to shift); None without a proxy
    log_dir: Path
    supervisor: Supervisor

    @property
    def proxy_url(self) -> str:
        return self.cfg.proxy_url

    @property
    def monolith_url(self) -> str:
        return self.cfg.monolith_url

    @property
    def service_url(self) -> str:
        return self.cfg.service_url

    def code_of(self, to: str) -> str | None:
        """The newest code delivered to `to` (read from the in-process sink)."""
        return self.sink.latest_code(to)


def write_routes(source: Path, target: Path, percent: int, route: str = MIGRATED_ROUTE) -> Path:
    """A copy of a routing table with `percent` of `route` going to its new backend.

    The same validated edit as `strangler shift`: only the split's numbers change, so the copy
    keeps the comments and layout of the original.
    """
    edit = edit_split(source.read_bytes(), str(source), route, percent)
    target.write_bytes(edit.text)
    return target


@contextmanager
def running_stack(
    var_dir: Path,
    *,
    service: bool = True,
    proxy: bool = True,
    workers: int | None = None,
    routes_template: Path = DEMO_ROUTES,
    split: int | None = None,
    env: Mapping[str, str] | None = None,
    data_plane: str = "embedded",
    persist_redis: bool = False,
    admin_host: str | None = None,
    service_app: str = specs.SERVICE_APP,
) -> Iterator[RunningStack]:
    """The stack on free ports under `var_dir`; every child stopped on exit.

    `service=False` starts the monolith alone (no Redis); `proxy` needs the service. `split`
    sets the migrated route's percentage in the proxy's copy of the table; `env` is added to
    every child's environment; `data_plane` serves the public URL (embedded or haproxy);
    `persist_redis` turns Redis's append-only file on, so a Redis
    killed and started again comes back with its data (the fault rehearsal does that);
    `admin_host` is where the admin listener binds (default loopback; "0.0.0.0" lets a test
    call it from another of this machine's addresses, as a remote client).
    `service_app` is the gunicorn app of the service (a wrapper of it, for a rollout test).
    """
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir = var_dir / "logs"
    with WebhookSink() as sink, Supervisor(log_dir=log_dir) as supervisor:
        child_env = {
            "VERIFICATION_WEBHOOK_URL": sink.url,
            # The proxy and both backends share it, so dry runs stay possible.
            "STRANGLER_INTERNAL_TOKEN": secrets.token_urlsafe(24),
            **(env or {}),
        }
        cfg = specs.StackConfig.on_free_ports(
            var_dir, workers=workers, env=child_env, admin_host=admin_host
        )
        routes = None
        plan = [specs.monolith_spec(cfg)]
        if service or proxy:
            plan = [specs.redis_spec(cfg, persist=persist_redis), *plan]
            plan += [specs.service_spec(cfg, service_app), specs.consumer_spec(cfg)]
        if proxy:
            # Backend URLs in the table are ${MONOLITH_URL}/${VERIFICATION_URL}: the free ports.
            routes = var_dir / "routes.yaml"
            if split is None:
                routes.write_bytes(routes_template.read_bytes())
            else:
                write_routes(routes_template, routes, split)
            plan.append(specs.data_plane_spec(cfg, routes, data_plane))
        for spec in plan:
            supervisor.start(spec, timeout=START_TIMEOUT)
        yield RunningStack(cfg, sink, routes, log_dir, supervisor)
