"""`strangler status`: the running proxy's routes, splits and per-backend figures as a table."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strangler.control import dataplane, project

DEFAULT_ADMIN_BIND = "127.0.0.1:8009"


def default_admin_url(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return "http://" + environ.get("STRANGLER_ADMIN_BIND", DEFAULT_ADMIN_BIND)


@dataclass(frozen=True)
class Admin:
    """The admin URL the CLI talks to, and where that came from (for its messages)."""

    url: str
    recorded: dataplane.DataPlane | None = None  # set when the project's record named it

    def where(self) -> str:
        if self.recorded is None:
            return self.url
        plane = self.recorded
        return f"{self.url} (the {plane.kind} data plane of pid {plane.pid}, recorded)"


def find_admin(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    var: Path | None = None,
) -> Admin:
    """`--admin`, else $STRANGLER_ADMIN_BIND, else the project's running data plane, else 8009.

    Raises dataplane.RecordError when the project's record cannot be read.
    """
    environ = os.environ if environ is None else environ
    if explicit:
        return Admin(explicit)
    if environ.get("STRANGLER_ADMIN_BIND"):
        return Admin(default_admin_url(environ))
    plane = dataplane.load(project.load(environ=environ).var if var is None else var)
    if plane is not None and plane.admin_url:
        return Admin(plane.admin_url, plane)
    return Admin(default_admin_url(environ))


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin",
        default=None,
        help="admin URL (default: http:// + $STRANGLER_ADMIN_BIND, else the data plane that "
        "`strangler serve` or `strangler up` recorded in the project's var/, else :8009)",
    )
    parser.add_argument(
        "--token", default=None, help="admin token (default: $STRANGLER_ADMIN_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw status JSON")


def fetch(admin_url: str, token: str | None, timeout: float = 5) -> dict[str, Any]:
    if not admin_url.startswith(("http://", "https://")):
        raise ValueError(f"not an http URL: {admin_url!r}")
    headers = {"X-Strangler-Admin-Token": token} if token else {}
    url = admin_url.rstrip("/") + "/_strangler/status"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http checked above)
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (operator's URL)
        return json.loads(resp.read())


class NotApplied(RuntimeError):
    """The running proxy did not report the expected routing table in time."""


def wait_applied(
    admin_url: str, digest: str, token: str | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll the admin status until every worker runs the table with `digest`; that status.

    Workers publish their state about once a second, so this can trail the real switch
    (DESIGN.md promises it within 1 s) by up to that long.
    """
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while True:
        try:
            status = fetch(admin_url, token)
        except (OSError, ValueError):
            status = {}
        if status.get("digest") == digest and status.get("converged"):
            return status
        if time.monotonic() > deadline:
            raise NotApplied(
                f"the proxy at {admin_url} still runs generation {status.get('generation')} "
                f"{timeout:.0f}s after the change (last reload error: "
                f"{status.get('last_reload_error')})"
            )
        time.sleep(0.05)


def confirm_applied(routes: Path, verb: str, timeout: float = 5.0) -> int:
    """After an edit of `routes`: wait until the running proxy serves it, and say so.

    0 when it does, or when no proxy runs (the file is read at start); 1 when a proxy
    that runs this file did not take it up in time (say, its environment differs).
    """
    try:
        admin = find_admin()
    except dataplane.RecordError as exc:
        print(f"strangler {verb}: cannot confirm: {exc}", file=sys.stderr)
        return 0
    url = admin.url
    token = os.environ.get("STRANGLER_ADMIN_TOKEN")
    try:
        running = fetch(url, token)
    except urllib.error.HTTPError as exc:
        print(f"strangler {verb}: cannot confirm: the proxy admin at {url} answered {exc.code}")
        return 0
    except (OSError, ValueError):
        print(f"no proxy answers at {url}: the change applies when the proxy starts")
        return 0
    if Path(running.get("source", "")).resolve() != routes.resolve():
        print(f"the proxy at {url} runs {running.get('source')}, not this file: not waiting")
        return 0
    digest = hashlib.sha256(routes.read_bytes()).hexdigest()
    try:
        applied = wait_applied(url, digest, token, timeout)
    except NotApplied as exc:
        print(f"strangler {verb}: warning: {exc}", file=sys.stderr)
        return 1
    workers = len(applied.get("workers", []))
    generation = applied["generation"]
    if applied.get("data_plane") == "haproxy":
        print(f"live: HAProxy at {url} serves generation {generation}")
    else:
        print(f"live: the proxy at {url} runs generation {generation} in all {workers} workers")
    return 0


def main(verb: str, args: argparse.Namespace) -> int:
    try:
        admin = find_admin(args.admin)
    except dataplane.RecordError as exc:
        print(f"strangler status: {exc}", file=sys.stderr)
        return 1
    token = args.token or os.environ.get("STRANGLER_ADMIN_TOKEN")
    try:
        doc = fetch(admin.url, token)
    except urllib.error.HTTPError as exc:
        hint = " (set STRANGLER_ADMIN_TOKEN or pass --token)" if exc.code == 401 else ""
        print(f"strangler status: {admin.where()} answered {exc.code}{hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(
            f"strangler status: cannot reach the proxy admin at {admin.where()}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _sticky(sticky: dict[str, Any] | None) -> str:
    if not sticky:
        return "-"
    wait = sticky.get("store_timeout")
    return f"{sticky['key']} {sticky['ttl']}s" + (f" wait {wait:g}s" if wait else "")


def _affinity_lines(doc: dict[str, Any]) -> list[str]:
    """What the affinity did lately: `ok` means no flow was placed blind in the last minute."""
    if doc.get("affinity") == "disabled" or "affinity_last_minute" not in doc:
        return []
    recent, totals = doc["affinity_last_minute"], doc["affinity_totals"]
    names = ("misses", "queued_writes", "failed_recalls", "lost_writes")
    since = ", ".join(str(totals.get(name, 0)) for name in names)
    retries = doc.get("retries") or {}
    return [
        f"affinity store: {doc.get('affinity_store')}, {doc.get('affinity_backlog', 0)} "
        f"placements not stored yet; {retries.get('last_minute', 0)} retries on the fallback "
        f"in the last minute ({retries.get('total', 0)} in all)",
        f"affinity last minute: {recent['misses']} misses, {recent['queued_writes']} queued "
        f"writes, {recent['failed_recalls']} failed recalls, {recent['lost_writes']} lost "
        f"writes (since start: {since})",
    ]


def _limit(limit: dict[str, Any]) -> str:
    return f"limit {limit['key']} {limit['rate']} burst {limit['burst']}"


def _duties(duties: dict[str, Any]) -> str:
    """A route's gateway duties in one cell: `limit json:to 20/s burst 40; verification: ...`."""
    parts = []
    if duties.get("match_header"):
        parts.append("header " + ",".join(f"{k}={v}" for k, v in duties["match_header"].items()))
    if duties.get("limit"):
        parts.append(_limit(duties["limit"]))
    for name, rules in (duties.get("backends") or {}).items():
        rewrite = rules.get("rewrite")
        said = [f"rewrite to {rewrite['prefix']}" if rewrite and rewrite["prefix"] else ""]
        if rewrite and not rewrite["prefix"]:
            said = ["rewrite headers"]
        said += [_limit(rules["limit"])] if rules.get("limit") else []
        parts.append(f"{name}: " + ", ".join(p for p in said if p))
    if duties.get("cache"):
        parts.append(f"cache ttl {duties['cache']['ttl']}s")
    return "; ".join(parts) or "-"


def _gateway_lines(doc: dict[str, Any]) -> list[str]:
    """The throttle's state, its refusals and the caches' figures (embedded proxy only)."""
    gateway = doc.get("gateway")
    if not gateway:
        return []
    limited, local, cache = gateway["limited"], gateway["throttle_local"], gateway["cache"]
    lookups = cache["hits"] + cache["misses"]
    ratio = f" ({cache['hits'] / lookups * 100:.0f}% hits)" if lookups else ""
    return [
        f"throttle: {gateway['throttle']}; {limited['last_minute']} requests limited in the "
        f"last minute ({limited['total']} in all); {local['last_minute']} decided without "
        f"Redis in the last minute ({local['total']} in all)",
        f"cache: {cache['hits']} hits, {cache['misses']} misses{ratio}; {cache['entries']} "
        f"answers, {cache['bytes'] / 1024:.1f} KiB held (bound {cache['max_bytes'] >> 20} MiB "
        "over all workers)",
    ]


def render(doc: dict[str, Any]) -> str:
    """The status as text a migration engineer reads at a glance."""
    workers = doc.get("workers", [])
    if not workers:
        return "proxy: no worker has reported yet"
    state = "converged" if doc.get("converged") else "RELOADING (workers disagree)"
    if doc.get("data_plane") == "haproxy":
        processes = f"{doc.get('threads', '?')} threads"
        affinity = f"stick table, {doc.get('affinity_entries', 0)} keys"
        first = f"haproxy: generation {doc['generation']}  table {doc['digest'][:12]}  "
    else:
        processes = f"{len(workers)} workers"
        affinity = doc["affinity"]
        first = f"proxy: generation {doc['generation']}  table {doc['digest'][:12]}  "
    lines = [
        f"{first}{processes}, {state}  affinity {affinity}",
        *_affinity_lines(doc),
        *_gateway_lines(doc),
        f"routes file: {doc['source']}",
        f"last reload error: {doc.get('last_reload_error') or 'none'}",
        "",
    ]
    rows = [["ROUTE", "PREFIX", "METHODS", "SPLIT", "STICKY", "FALLBACK", "RETRY", "GATEWAY"]]
    duties = any(route.get("gateway") for route in doc["routes"])  # else no GATEWAY column
    for route in doc["routes"]:
        split = " / ".join(f"{name} {pct}%" for name, pct in route["split"].items())
        retry = route.get("retry")
        rows.append(
            [
                route["name"],
                route["prefix"],
                ",".join(route["methods"] or ["*"]),
                split,
                _sticky(route["sticky"]),
                route["fallback"] or "-",
                f"{retry['status']} {retry['error']}" if retry else "-",
                _duties(route.get("gateway") or {}),
            ]
        )
    default = f"{doc['default_backend']} 100%"
    rows.append(["(default)", "anything else", "*", default, "-", "-", "-", "-"])
    if not duties:
        rows = [row[:-1] for row in rows]
    lines += [*_table(rows), ""]
    rows = [["BACKEND", "CIRCUIT", "REQUESTS", "LAST MIN", "RATE/s", "ERRORS", "P50 ms", "P99 ms"]]
    for name, info in doc["backends"].items():
        last = info["last_minute"]
        rows.append(
            [
                name,
                info["circuit"],
                str(info["requests"]),
                str(last["requests"]),
                f"{last['requests'] / 60:.1f}",
                f"{last['error_rate'] * 100:.1f}%",
                _ms(last["p50_ms"]),
                _ms(last["p99_ms"]),
            ]
        )
    return "\n".join([*lines, *_table(rows)])
