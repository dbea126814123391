"""`strangler bench`: wrk against the monolith directly, through both data planes and nginx.

It starts what it needs on free loopback ports (the monolith under gunicorn with seeded
threads, the embedded proxy and HAProxy exported from the same table with the verification
split active, nginx with upstream keep-alive when installed, and an nginx `return 200`
upstream for the keep-alive cases), then runs wrk in alternating rounds so that noise from a
shared machine hits every target alike. The last case prices HAProxy's `json:to` key and
stick table: the verification route with them against the same route without. A
benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from strangler.haproxy import files as haproxy_files
from strangler.haproxy.config import ExportOptions
from strangler.routing.table import load_table
from strangler.stack import specs as stack
from strangler.stack.supervisor import ChildSpec, Supervisor, free_port, tcp_ready

CLK_TCK = os.sysconf("SC_CLK_TCK")


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="proxy workers")
    parser.add_argument("--no-nginx", action="store_true", help="skip nginx even if installed")
    parser.add_argument("--no-haproxy", action="store_true", help="skip HAProxy even if installed")


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us: float | None = None  # the measured process tree's CPU per request


# Sends for fresh users, as real traffic does: every key new to the stick table.
SENDS_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"to": "+1555%07d", "channel": "sms"}', counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


# Ratios printed for each case that has both: HAProxy against nginx, and the price of the
# json:to key and the stick table (sticky) against the same route without them (plain).
COMPARED = (("haproxy", "nginx"), ("proxy", "nginx"), ("sticky", "plain"), ("proxy", "sticky"))


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> Run:
    threads = min(2, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(script)] if script else []
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Run(
        rps, latency("50"), latency("99"), requests, errors + int(non2xx[1] if non2xx else 0)
    )


def tree_pids(root: int) -> list[int]:
    """`root` and its children (the proxy's master and its forked workers)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == root:
                pids.append(int(entry.name))
    return pids


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measured(
    url: str, seconds: int, connections: int, root: int | None, script: Path | None = None
) -> Run:
    pids = tree_pids(root) if root else []
    before = cpu_ticks(pids)
    run = wrk(url, seconds, connections, script)
    if root:
        run.cpu_us = (cpu_ticks(pids) - before) / CLK_TCK / max(run.requests, 1) * 1e6
    return run


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
    script: Path | None = None  # a wrk script (the fresh sends of the sticky case)


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


def start_all(sup: Supervisor, tmp: Path, args: argparse.Namespace) -> dict[str, list[Target]]:
    cfg = replace(stack.StackConfig.on_free_ports(tmp / "var"), workers=args.workers)
    cfg = replace(cfg, env={"MONOLITH_ACCESS_LOG": "", "MONOLITH_LOG_LEVEL": "warning"})
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
    cases = {
        "GET /api/threads (gthread monolith)": [
            Target("direct", cfg.monolith_url + threads),
            Target("proxy", cfg.proxy_url + threads, proxy.process.pid),
        ],
    }
    haproxy_url = None
    if haproxy_files.installed() and not args.no_haproxy:
        spec, haproxy_port = haproxy_spec(routes, tmp, args.workers)
        haproxy = sup.start(spec, timeout=30)
        haproxy_url = f"http://127.0.0.1:{haproxy_port}"
        cases["GET /api/threads (gthread monolith)"].append(
            Target("haproxy", haproxy_url + threads, haproxy.process.pid)
        )
    if use_nginx:
        port = free_port()
        body = PROXY_SERVER.format(monolith=cfg.monolith_port, fast=fast, port=port)
        nginx = sup.start(nginx_spec("proxy", body, port, args.workers, tmp))
        cases["GET /api/threads (gthread monolith)"].append(
            Target("nginx", f"http://127.0.0.1:{port}{threads}", nginx.process.pid)
        )
        keepalive = [
            Target("direct", f"http://127.0.0.1:{fast}/ka/x"),
            Target("proxy", cfg.proxy_url + "/ka/x", proxy.process.pid),
            Target("nginx", f"http://127.0.0.1:{port}/ka/x", nginx.process.pid),
        ]
        if haproxy_url:
            keepalive.append(Target("haproxy", haproxy_url + "/ka/x", haproxy.process.pid))
            sends = tmp / "sends.lua"
            sends.write_text(SENDS_LUA)
            cases["POST sends for fresh users (nginx return 200), 50/50 split"] = [
                Target("direct", f"http://127.0.0.1:{fast}/sticky/x", script=sends),
                Target("plain", haproxy_url + "/plain/x", haproxy.process.pid, sends),
                Target("sticky", haproxy_url + "/sticky/x", haproxy.process.pid, sends),
                Target("proxy", cfg.proxy_url + "/sticky/x", proxy.process.pid, sends),
            ]
        cases["keep-alive upstream (nginx return 200), 50/50 split"] = keepalive
    return cases


def run_case(targets: list[Target], args: argparse.Namespace) -> dict[str, list[Run]]:
    for target in targets:  # warm-up: pools filled, code paths hot
        wrk(target.url, 1, args.connections, target.script)
    runs: dict[str, list[Run]] = {t.name: [] for t in targets}
    for round_no in range(args.rounds):
        order = targets[round_no % len(targets) :] + targets[: round_no % len(targets)]
        for target in order:
            run = measured(target.url, args.duration, args.connections, target.root, target.script)
            runs[target.name].append(run)
            cpu = f"  cpu {run.cpu_us:6.1f} us/req" if run.cpu_us is not None else ""
            print(
                f"  round {round_no + 1} {target.name:7} {run.rps:9.0f} req/s  "
                f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}{cpu}",
                flush=True,
            )
    return runs


def summarize(targets: list[Target], runs: dict[str, list[Run]]) -> None:
    direct = statistics.median(r.rps for r in runs["direct"])
    print(
        f"  {'median':9} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11}"
    )
    for target in targets:
        rs = runs[target.name]
        cpu = [r.cpu_us for r in rs if r.cpu_us is not None]
        rps = statistics.median(r.rps for r in rs)
        print(
            f"  {target.name:9} {rps:9.0f} {rps / direct:6.2f} "
            f"{statistics.median(r.p50_ms for r in rs):8.2f} "
            f"{statistics.median(r.p99_ms for r in rs):8.2f} "
            f"{f'{statistics.median(cpu):.1f}' if cpu else '-':>11}"
        )
    medians = {
        t.name: (
            statistics.median(r.rps for r in runs[t.name]),
            statistics.median([r.cpu_us for r in runs[t.name] if r.cpu_us is not None] or [0]),
        )
        for t in targets
    }
    for mine, theirs in COMPARED:
        if mine in medians and theirs in medians and medians[theirs][0] and medians[theirs][1]:
            (rps, cpu), (their_rps, their_cpu) = medians[mine], medians[theirs]
            print(
                f"  {mine} vs {theirs}: {rps / their_rps:.2f}x the throughput at "
                f"{cpu / their_cpu:.2f}x the CPU per request"
            )
    for target in targets:  # added latency without queueing: one connection
        if target.name == "direct":
            base = wrk(target.url, 2, 1, target.script).p50_ms
        else:
            added = wrk(target.url, 2, 1, target.script).p50_ms - base
            print(f"  {target.name} p50 added latency at 1 connection: {added:.3f} ms")


def main(verb: str, args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("strangler bench: wrk is not installed (apt-get install wrk)")
        return 1
    with tempfile.TemporaryDirectory(prefix="strangler-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with Supervisor(log_dir=tmp / "logs") as sup:
            cases = start_all(sup, tmp, args)
            proxy_root = next(t.root for t in next(iter(cases.values())) if t.name == "proxy")
            print(
                f"wrk -c{args.connections}, {args.rounds} alternating rounds of "
                f"{args.duration}s; proxy workers {args.workers}, cores {os.cpu_count()}"
            )
            for title, targets in cases.items():
                print(f"\n{title}")
                runs = run_case(targets, args)
                summarize(targets, runs)
            workers = [p for p in tree_pids(proxy_root) if p != proxy_root]
            sizes = ", ".join(f"{rss_mb(p):.1f}" for p in workers)
            print(f"\nproxy RSS per worker (MB): {sizes}; master {rss_mb(proxy_root):.1f}")
    return 0
