"""Start the stack a load test needs on free ports, with a webhook sink, and stop it after.

`running_stack(var_dir)` gives Redis, the monolith, the verification service, the monolith's
event consumer and the proxy (reading its own copy of `proxy/routes.yaml`, so shifting it
leaves the repository's table alone), with both backends delivering codes to an in-process
WebhookSink.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from proxy import stack
from proxy.sink import WebhookSink
from proxy.supervisor import Supervisor

DEFAULT_ROUTES = stack.PACKAGE_ROOT / "proxy" / "routes.yaml"
START_TIMEOUT = 60.0  # seconds per child: gunicorn boots slowly on a busy shared machine


@dataclass(frozen=True)
class RunningStack:
    """Where a started stack listens, its routing table copy and its webhook sink."""

    cfg: stack.StackConfig
    sink: WebhookSink
    routes: Path | None  # the proxy's routes file (edit it to shift); None without a proxy
    log_dir: Path

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


@contextmanager
def running_stack(
    var_dir: Path,
    *,
    service: bool = True,
    proxy: bool = True,
    workers: int | None = None,
    routes_template: Path = DEFAULT_ROUTES,
) -> Iterator[RunningStack]:
    """The stack on free ports under `var_dir`; every child stopped on exit.

    `service=False` starts the monolith alone (no Redis); `proxy` needs the service.
    """
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir = var_dir / "logs"
    with WebhookSink() as sink:
        env = {
            "VERIFICATION_WEBHOOK_URL": sink.url,
            # The proxy and both backends share it, so dry runs stay possible under load.
            "STRANGLER_INTERNAL_TOKEN": secrets.token_urlsafe(24),
        }
        cfg = stack.StackConfig.on_free_ports(var_dir, workers=workers, env=env)
        routes = None
        specs = [stack.monolith_spec(cfg)]
        if service or proxy:
            specs = [stack.redis_spec(cfg, persist=False), *specs]
            specs += [stack.service_spec(cfg), stack.consumer_spec(cfg)]
        if proxy:
            # Backend URLs in the table are ${MONOLITH_URL}/${VERIFICATION_URL}: the free ports.
            routes = Path(shutil.copyfile(routes_template, var_dir / "routes.yaml"))
            specs.append(stack.proxy_spec(cfg, routes))
        with Supervisor(log_dir=log_dir) as supervisor:
            for spec in specs:
                supervisor.start(spec, timeout=START_TIMEOUT)
            yield RunningStack(cfg, sink, routes, log_dir)
