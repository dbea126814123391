"""The processes of the stack (Redis, monolith, consumer, service, proxy) as child specs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from strangler.control import project, status
from strangler.stack.listeners import Port
from strangler.stack.supervisor import ChildSpec, free_port, http_ready, python_module, redis_ready


def package_dir(name: str) -> Path:
    """Where an import package's files are, found without importing it (no Flask at start)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


MONOLITH_GUNICORN_CONF = package_dir("strangler.monolith") / "gunicorn.conf.py"
SERVICE_GUNICORN_CONF = package_dir("strangler.extracted.verification_service") / "gunicorn.conf.py"
# The demo's routing table, installed with the package: copied, never edited in place.
DEMO_ROUTES = package_dir("strangler.proxy") / "routes.yaml"


WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # listen on every address: connect to loopback


@dataclass(frozen=True)
class StackConfig:
    """Addresses and shared settings of one stack; `from_env` gives DESIGN.md's defaults."""

    host: str = "127.0.0.1"
    proxy_port: int = 8000
    monolith_port: int = 8001
    service_port: int = 8002
    admin_port: int = 8009
    redis_port: int = 6380
    redis_url: str | None = None  # an existing server: then no redis-server is started
    var_dir: Path = Path("var")
    workers: int | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra env for every child
    # `strangler serve` may listen elsewhere than loopback; None: `host`, as `strangler up` does.
    proxy_host: str | None = None
    admin_host: str | None = None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> StackConfig:
        environ = os.environ if environ is None else environ

        def port(name: str, default: int) -> int:
            bind = environ.get(name)
            return int(bind.rsplit(":", 1)[1]) if bind else default

        return cls(
            proxy_port=port("STRANGLER_PROXY_BIND", 8000),
            admin_port=port("STRANGLER_ADMIN_BIND", 8009),
            monolith_port=port("MONOLITH_BIND", 8001),
            service_port=port("VERIFICATION_BIND", 8002),
            redis_port=port("STRANGLER_REDIS_BIND", 6380),
            redis_url=environ.get("REDIS_URL") or None,
            var_dir=project.load(environ=environ).var,
        )

    @classmethod
    def on_free_ports(cls, var_dir: Path, **overrides) -> StackConfig:
        """A stack for tests: every port picked by the kernel, state under `var_dir`."""
        ports = {
            name: free_port()
            for name in ("proxy_port", "monolith_port", "service_port", "admin_port", "redis_port")
        }
        return replace(cls(var_dir=var_dir), **{**ports, **overrides})

    def url(self, port: int, host: str | None = None) -> str:
        """Where to connect to a listener on `host` (a wildcard address: this machine)."""
        host = WILDCARDS.get(host or self.host, host or self.host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def monolith_url(self) -> str:
        return self.url(self.monolith_port)

    @property
    def service_url(self) -> str:
        return self.url(self.service_port)

    @property
    def proxy_bind(self) -> str:
        return f"{self.proxy_host or self.host}:{self.proxy_port}"

    @property
    def admin_bind(self) -> str:
        return f"{self.admin_host or self.host}:{self.admin_port}"

    @property
    def edge_ports(self) -> tuple[Port, ...]:
        """The data plane's public and admin listeners."""
        return (
            Port(self.proxy_host or self.host, self.proxy_port, "STRANGLER_PROXY_BIND"),
            Port(self.admin_host or self.host, self.admin_port, "STRANGLER_ADMIN_BIND"),
        )

    @property
    def proxy_url(self) -> str:
        return self.url(self.proxy_port, self.proxy_host)

    @property
    def admin_url(self) -> str:
        return self.url(self.admin_port, self.admin_host)

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://{self.host}:{self.redis_port}/0"

    @property
    def monolith_database(self) -> Path:
        return self.var_dir / "monolith.sqlite3"

    def common_env(self) -> dict[str, str]:
        env = {
            "REDIS_URL": self.effective_redis_url,
            "MONOLITH_DATABASE": str(self.monolith_database.resolve()),
            "MONOLITH_URL": self.monolith_url,
            "VERIFICATION_URL": self.service_url,
        }
        if self.workers is not None:
            env["WEB_CONCURRENCY"] = str(self.workers)
        return {**env, **self.env}


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise FileNotFoundError(
            "redis-server is not installed: run `apt-get install -y redis-server` "
            "(Debian/Ubuntu) or set REDIS_URL to an existing server"
        )
    return path


def redis_spec(cfg: StackConfig, persist: bool = True, quiet: bool = False) -> ChildSpec:
    """A redis-server of the stack's own; `quiet`: warnings only in its log."""
    data_dir = (cfg.var_dir / "redis").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_path(),
        "--bind", cfg.host,
        "--port", str(cfg.redis_port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--daemonize", "no",
        "--protected-mode", "yes",
        *(["--loglevel", "warning"] if quiet else []),
    ]  # fmt: skip
    port = Port(cfg.host, cfg.redis_port, "STRANGLER_REDIS_BIND")
    return ChildSpec("redis", argv, ready=redis_ready(cfg.host, cfg.redis_port), ports=(port,))


def monolith_spec(cfg: StackConfig) -> ChildSpec:
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(MONOLITH_GUNICORN_CONF, "strangler.monolith:create_app()")
    env = {**cfg.common_env(), "MONOLITH_BIND": f"{cfg.host}:{cfg.monolith_port}"}
    return ChildSpec(
        "monolith", argv, env=env, ready=http_ready(cfg.monolith_url + "/healthz"),
        url=cfg.monolith_url, ports=(Port(cfg.host, cfg.monolith_port, "MONOLITH_BIND"),),
    )  # fmt: skip


SERVICE_APP = "strangler.extracted.verification_service:create_app()"


def service_spec(cfg: StackConfig, app: str = SERVICE_APP) -> ChildSpec:
    """The verification service under gunicorn; `app` may wrap it (a rollout's candidate)."""
    argv = gunicorn_argv(SERVICE_GUNICORN_CONF, app)
    env = {**cfg.common_env(), "VERIFICATION_BIND": f"{cfg.host}:{cfg.service_port}"}
    return ChildSpec(
        "verification", argv, env=env, ready=http_ready(cfg.service_url + "/healthz"),
        url=cfg.service_url, ports=(Port(cfg.host, cfg.service_port, "VERIFICATION_BIND"),),
    )  # fmt: skip


def consumer_spec(cfg: StackConfig) -> ChildSpec:
    argv = python_module("strangler.monolith.events")
    return ChildSpec("consumer", argv, env=cfg.common_env())


def proxy_spec(
    cfg: StackConfig, routes_path: Path | str, base_env: Mapping[str, str] | None = None
) -> ChildSpec:
    """The proxy on `cfg.proxy_port` with its admin listener on `cfg.admin_port`.

    Ready once the admin status lists every worker, so no worker misses the first requests.
    `base_env` replaces the stack's environment (the demo backends' URLs, which its routing
    table names): `strangler serve` gives only Redis, in front of someone else's backends.
    """
    argv = python_module("strangler.proxy.server", "--routes", str(routes_path))
    env = {
        **(cfg.common_env() if base_env is None else base_env),
        "STRANGLER_PROXY_BIND": cfg.proxy_bind,
        "STRANGLER_ADMIN_BIND": cfg.admin_bind,
    }
    if cfg.workers is not None:
        env["STRANGLER_WORKERS"] = str(cfg.workers)
    workers = int(env.get("STRANGLER_WORKERS") or os.environ.get("STRANGLER_WORKERS") or 0)
    token = env.get("STRANGLER_ADMIN_TOKEN") or os.environ.get("STRANGLER_ADMIN_TOKEN")
    ready = _proxy_ready(cfg.admin_url, token, workers or os.cpu_count())
    return ChildSpec("proxy", argv, env=env, ready=ready, url=cfg.proxy_url, ports=cfg.edge_ports)


def rollout_spec(cfg: StackConfig, routes_path: Path | str, route: str) -> ChildSpec:
    """The route's rollout controller (`strangler rollout ROUTE --follow`), state in var/."""
    argv = python_module(
        "strangler", "rollout", route, "--follow", "--routes", str(routes_path),
        "--admin", cfg.admin_url,
    )  # fmt: skip
    env = {**cfg.common_env(), "STRANGLER_VAR": str(cfg.var_dir.resolve())}
    return ChildSpec(f"rollout-{route}", argv, env=env)


DATA_PLANES = ("embedded", "haproxy")


def data_plane_spec(
    cfg: StackConfig,
    routes_path: Path | str,
    data_plane: str,
    base_env: Mapping[str, str] | None = None,
) -> ChildSpec:
    """The public URL's process: the embedded proxy, or HAProxy run by its agent."""
    if data_plane == "embedded":
        return proxy_spec(cfg, routes_path, base_env)
    if data_plane == "haproxy":
        return haproxy_spec(cfg, routes_path, base_env)
    raise ValueError(f"unknown data plane {data_plane!r} (known: {', '.join(DATA_PLANES)})")


def haproxy_state_dir(cfg: StackConfig) -> Path:
    """Where the agent writes HAProxy's files and HAProxy its runtime API socket."""
    return (cfg.var_dir / "haproxy").resolve()


def haproxy_spec(
    cfg: StackConfig, routes_path: Path | str, base_env: Mapping[str, str] | None = None
) -> ChildSpec:
    """HAProxy (master-worker, under `strangler.haproxy.agent`) on the proxy's addresses.

    Ready once its admin status answers from HAProxy's own counters: HAProxy and the agent
    both run, and the table is applied.
    """
    state_dir = haproxy_state_dir(cfg)
    argv = python_module(
        "strangler.haproxy.agent", "--routes", str(routes_path), "--state-dir", str(state_dir)
    )
    env = {
        **(cfg.common_env() if base_env is None else base_env),
        "STRANGLER_PROXY_BIND": cfg.proxy_bind,
        "STRANGLER_ADMIN_BIND": cfg.admin_bind,
    }
    if cfg.workers is not None:
        env["STRANGLER_WORKERS"] = str(cfg.workers)
    token = env.get("STRANGLER_ADMIN_TOKEN") or os.environ.get("STRANGLER_ADMIN_TOKEN")
    ready = _proxy_ready(cfg.admin_url, token, 1)
    return ChildSpec("haproxy", argv, env=env, ready=ready, url=cfg.proxy_url, ports=cfg.edge_ports)


def _proxy_ready(admin_url: str, token: str | None, workers: int | None) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            doc = status.fetch(admin_url, token, timeout=1)
        except (OSError, ValueError):
            return False
        return len(doc.get("workers", [])) >= (workers or 1)

    return probe


def gunicorn_argv(conf: Path, app: str) -> list[str]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return [str(gunicorn), "--config", str(conf), app]
