"""What `strangler bench` measures, started on free loopback ports: the monolith with seeded
threads, the embedded proxy and HAProxy exported from the same table, with the verification
split active, nginx (a proxy with upstream keep-alive, and a `return 200` upstream), and for
the placements case Redis and three proxies on the sticky `json:to` route.
"""

from __future__ import annotations

import argparse
import json
import shutil
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from strangler import bench_gateway
from strangler.haproxy import files as haproxy_files
from strangler.haproxy.config import ExportOptions
from strangler.routing.table import load_table
from strangler.stack import specs as stack
from strangler.stack.supervisor import ChildSpec, Supervisor, free_port, tcp_ready

NGINX_CONF = """
worker_processes {workers};
pid {dir}/nginx-{name}.pid;
error_log {dir}/nginx-{name}.error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body-{name};
    proxy_temp_path {dir}/proxy-{name};
    fastcgi_temp_path {dir}/fcgi-{name};
    uwsgi_temp_path {dir}/uwsgi-{name};
    scgi_temp_path {dir}/scgi-{name};
    keepalive_requests 100000;
    {body}
}}
"""

PROXY_SERVER = """
    upstream monolith {{ server 127.0.0.1:{monolith}; keepalive 64; }}
    upstream fast {{ server 127.0.0.1:{fast}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location /ka/ {{
            proxy_pass http://fast; proxy_http_version 1.1; proxy_set_header Connection "";
        }}
        location / {{
            proxy_pass http://monolith; proxy_http_version 1.1; proxy_set_header Connection "";
        }}
    }}
"""

FAST_SERVER = """
    server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200 "ok"; }} }}
"""


def nginx_spec(name: str, body: str, port: int, workers: int, tmp: Path) -> ChildSpec:
    conf = tmp / f"nginx-{name}.conf"
    text = NGINX_CONF.format(workers=workers, dir=tmp, name=name, body=body)
    conf.write_text(text)
    argv = [shutil.which("nginx") or "nginx", "-p", str(tmp), "-c", str(conf)]
    return ChildSpec(f"nginx-{name}", argv, ready=tcp_ready("127.0.0.1", port))


ROUTES = """
backends:
  monolith: {{url: "http://127.0.0.1:{monolith}", health: /healthz}}
  verification: {{url: "http://127.0.0.1:{service}", health: /healthz}}
  fast_a: {{url: "http://127.0.0.1:{fast}", health: /}}
  fast_b: {{url: "http://127.0.0.1:{fast}", health: /}}
default_backend: monolith
routes:
  - name: verification
    match: {{prefix: /api/verification/, methods: [POST]}}
    split: {{monolith: 50, verification: 50}}
    sticky: {{key: "json:to", ttl: 600}}
    fallback: monolith
  - name: keepalive
    match: {{prefix: /ka/}}
    split: {{fast_a: 50, fast_b: 50}}
    fallback: fast_a
  - name: sticky
    match: {{prefix: /sticky/, methods: [POST]}}
    split: {{fast_a: 50, fast_b: 50}}
    sticky: {{key: "json:to", ttl: 600, normalize: [strip, lower]}}
    fallback: fast_a
  - name: plain
    match: {{prefix: /plain/, methods: [POST]}}
    split: {{fast_a: 50, fast_b: 50}}
    fallback: fast_a
"""
# Sends for fresh users, as real traffic does: every key new to the stick table.
SENDS_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"to": "+1555%07d", "channel": "sms"}', counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def haproxy_spec(routes: Path, tmp: Path, workers: int) -> tuple[ChildSpec, int]:
    """HAProxy exported from the same table as the proxy, run from its files."""
    port, admin = free_port(), free_port()
    options = ExportOptions(
        state_dir=tmp / "haproxy", bind=("127.0.0.1", port), admin_bind=("127.0.0.1", admin),
        threads=workers, peer_bind=("127.0.0.1", free_port()),
    )  # fmt: skip
    written = haproxy_files.write(load_table(routes), options)
    argv = haproxy_files.master_argv(written.config, options.state_dir)
    return ChildSpec("haproxy", argv, ready=tcp_ready("127.0.0.1", port)), port


def seed(monolith_url: str, threads: int = 20) -> None:
    def post(path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        url = monolith_url + path  # our own loopback monolith
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())

    author = post("/api/users", {"name": "bench seeder"})["id"]
    for n in range(threads):
        post("/api/threads", {"title": f"bench thread {n}", "author_id": author})


@dataclass
class Target:
    name: str
    url: str
    root: int | None = None  # process tree whose CPU is measured
    script: Path | None = None  # wrk's Lua script (the requests it sends)


CASES = ("threads", "keepalive", "json", "placements", "gateway", "outcomes")
STICKY_POST = """
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"to": "+1555%07d%d"}', n, math.random(0, 9999))
    return wrk.format("POST", "/api/verification/send",
                      {["Content-Type"] = "application/json"}, body)
end
"""
STICKY_ROUTES = """
backends:
  fast: {{url: "http://127.0.0.1:{fast}", health: /}}
  also_fast: {{url: "http://127.0.0.1:{fast}", health: /}}
default_backend: fast
routes:
  - name: verification
    match: {{prefix: /api/verification/, methods: [POST]}}
    split: {{fast: 50, also_fast: 50}}
    sticky: {{key: "json:to", ttl: 600}}
    fallback: fast
"""


def placement_targets(sup: Supervisor, tmp: Path, fast: int, workers: int) -> list[Target]:
    """Three proxies on one upstream and one Redis: no store, queued, confirmed placements."""
    redis_cfg = stack.StackConfig.on_free_ports(tmp / "redis")
    sup.start(stack.redis_spec(redis_cfg, persist=False))
    routes = tmp / "sticky-routes.yaml"
    routes.write_text(STICKY_ROUTES.format(fast=fast))
    script = tmp / "sticky-post.lua"
    script.write_text(STICKY_POST)
    targets = []
    for name, redis_url, writes in (
        ("no store", "", "confirmed"),
        ("queued", redis_cfg.effective_redis_url, "queued"),
        ("confirmed", redis_cfg.effective_redis_url, "confirmed"),
    ):
        env = {"STRANGLER_AFFINITY_WRITES": writes, "REDIS_URL": redis_url}
        cfg = replace(stack.StackConfig.on_free_ports(tmp / name), workers=workers, env=env)
        spec = stack.proxy_spec(cfg, routes)
        spec.name = f"proxy-{name.replace(' ', '-')}"
        proxy = sup.start(spec, timeout=60)
        targets.append(Target(name, cfg.proxy_url + "/api/verification/send", proxy.process.pid,
                              script))  # fmt: skip
    return targets


def start_all(
    sup: Supervisor, tmp: Path, args: argparse.Namespace
) -> tuple[int, dict[str, list[Target]]]:
    """Start everything; the main proxy's pid and, per case, its targets in order."""
    cfg = replace(stack.StackConfig.on_free_ports(tmp / "var"), workers=args.workers)
    cfg = replace(cfg, env={"MONOLITH_ACCESS_LOG": "", "MONOLITH_LOG_LEVEL": "warning"})
    sup.start(stack.redis_spec(cfg, persist=False))  # the main proxy's affinity store
    sup.start(stack.monolith_spec(cfg), timeout=60)
    seed(cfg.monolith_url)
    fast = free_port()
    use_nginx = shutil.which("nginx") is not None and not args.no_nginx
    if use_nginx:
        sup.start(nginx_spec("upstream", FAST_SERVER.format(port=fast), fast, 1, tmp))
    routes = tmp / "routes.yaml"
    routes.write_text(ROUTES.format(monolith=cfg.monolith_port, service=free_port(), fast=fast))
    proxy = sup.start(stack.proxy_spec(cfg, routes), timeout=60)
    threads = "/api/threads?limit=20"
    cases: dict[str, list[Target]] = {}
    haproxy_url, haproxy = None, None
    if haproxy_files.installed() and not args.no_haproxy:
        spec, haproxy_port = haproxy_spec(routes, tmp, args.workers)
        haproxy = sup.start(spec, timeout=30)
        haproxy_url = f"http://127.0.0.1:{haproxy_port}"
    if "threads" in args.cases:
        cases["GET /api/threads (gthread monolith)"] = [
            Target("direct", cfg.monolith_url + threads),
            Target("proxy", cfg.proxy_url + threads, proxy.process.pid),
        ]
        if haproxy is not None:
            cases["GET /api/threads (gthread monolith)"].append(
                Target("haproxy", haproxy_url + threads, haproxy.process.pid)
            )
    if use_nginx:
        port = free_port()
        body = PROXY_SERVER.format(monolith=cfg.monolith_port, fast=fast, port=port)
        nginx = sup.start(nginx_spec("proxy", body, port, args.workers, tmp))
        if "threads" in args.cases:
            cases["GET /api/threads (gthread monolith)"].append(
                Target("nginx", f"http://127.0.0.1:{port}{threads}", nginx.process.pid)
            )
        if "keepalive" in args.cases:
            keepalive = cases["keep-alive upstream (nginx return 200), 50/50 split"] = [
                Target("direct", f"http://127.0.0.1:{fast}/ka/x"),
                Target("proxy", cfg.proxy_url + "/ka/x", proxy.process.pid),
                Target("nginx", f"http://127.0.0.1:{port}/ka/x", nginx.process.pid),
            ]
            if haproxy is not None:
                keepalive.append(Target("haproxy", haproxy_url + "/ka/x", haproxy.process.pid))
        if "json" in args.cases and haproxy is not None:
            sends = tmp / "sends.lua"
            sends.write_text(SENDS_LUA)
            # HAProxy's json:to key and stick table (sticky) against the same route without.
            cases["POST sends for fresh users (nginx return 200), 50/50 split"] = [
                Target("direct", f"http://127.0.0.1:{fast}/sticky/x", script=sends),
                Target("plain", haproxy_url + "/plain/x", haproxy.process.pid, sends),
                Target("sticky", haproxy_url + "/sticky/x", haproxy.process.pid, sends),
                Target("proxy", cfg.proxy_url + "/sticky/x", proxy.process.pid, sends),
            ]
        if "placements" in args.cases:
            title = "POST json:to, a new key per request (nginx return 200), placements in Redis"
            cases[title] = placement_targets(sup, tmp, fast, args.workers)
        if "gateway" in args.cases:
            started = bench_gateway.gateway_targets(sup, tmp, fast, args.workers)
            cases[bench_gateway.TITLE] = [Target(*target) for target in started]
    elif "placements" in args.cases or "gateway" in args.cases:
        print("strangler bench: the placements and gateway cases need nginx (their upstream)")
    return proxy.process.pid, cases
