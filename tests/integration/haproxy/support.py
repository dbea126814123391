"""Real HAProxy for the tests: the exported data plane, and a tiny answering upstream."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.haproxy import files
from strangler.haproxy.agent import HAProxyPlane, serve_status
from strangler.proxy.reload import TableWatcher
from strangler.proxy.settings import ProxySettings
from strangler.stack.supervisor import free_port, tcp_ready
from tests.integration.polling import wait_for

# Skipped on a laptop without HAProxy; never in CI, where scripts/setup installs it.
needs_haproxy = pytest.mark.skipif(
    not files.installed() and not os.environ.get("CI"),
    reason="haproxy is not installed (scripts/setup installs it)",
)

UPSTREAM = """
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
{frontends}
"""
FRONTEND = """
frontend {name}
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string "{name}"
"""


@contextlib.contextmanager
def answering_upstream(tmp: Path, names: list[str]) -> Iterator[dict[str, int]]:
    """One HAProxy answering 200 on a port per name: backends that cost next to nothing."""
    ports = {name: free_port() for name in names}
    config = tmp / "upstream.cfg"
    frontends = "".join(FRONTEND.format(name=n, port=p) for n, p in ports.items())
    config.write_text(UPSTREAM.format(frontends=frontends))
    process = subprocess.Popen(
        [files.haproxy_binary(), "-db", "-f", str(config)], stdout=subprocess.DEVNULL
    )
    try:
        for port in ports.values():
            wait_for(tcp_ready("127.0.0.1", port), what="the answering upstream")
        yield ports
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def running_plane(
    routes: Path, state_dir: Path, environ: dict[str, str] | None = None
) -> Iterator[HAProxyPlane]:
    """The HAProxy data plane on free ports for `routes`, as the agent runs it."""
    env = {
        "STRANGLER_PROXY_BIND": f"127.0.0.1:{free_port()}",
        "STRANGLER_ADMIN_BIND": f"127.0.0.1:{free_port()}",
        "STRANGLER_WORKERS": "2",
        **(environ or {}),
    }
    settings = ProxySettings.from_env(env)
    plane = HAProxyPlane(settings, TableWatcher.load(str(routes)), state_dir)
    server = serve_status(plane, None)
    try:
        plane.start(server.server_address[:2])
        wait_for(tcp_ready(*settings.bind), what="haproxy's public listener")
        yield plane
    finally:
        plane.stop()
        server.shutdown()
        server.server_close()
