"""`strangler status`: the running proxy's routes, splits and per-backend figures as a table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def default_admin_url(environ: dict[str, str] | os._Environ | None = None) -> str:
    environ = os.environ if environ is None else environ
    return "http://" + environ.get("STRANGLER_ADMIN_BIND", "127.0.0.1:8009")


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin", default=None, help="admin URL (default: http:// + $STRANGLER_ADMIN_BIND)"
    )
    parser.add_argument(
        "--token", default=None, help="admin token (default: $STRANGLER_ADMIN_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw status JSON")


def fetch(admin_url: str, token: str | None) -> dict[str, Any]:
    if not admin_url.startswith(("http://", "https://")):
        raise ValueError(f"not an http URL: {admin_url!r}")
    headers = {"X-Strangler-Admin-Token": token} if token else {}
    url = admin_url.rstrip("/") + "/_strangler/status"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http checked above)
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (the operator's URL)
        return json.loads(resp.read())


def main(verb: str, args: argparse.Namespace) -> int:
    url = args.admin or default_admin_url()
    token = args.token or os.environ.get("STRANGLER_ADMIN_TOKEN")
    try:
        doc = fetch(url, token)
    except urllib.error.HTTPError as exc:
        hint = " (set STRANGLER_ADMIN_TOKEN or pass --token)" if exc.code == 401 else ""
        print(f"strangler status: {url} answered {exc.code}{hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"strangler status: cannot reach the proxy admin at {url}: {exc}", file=sys.stderr)
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


def render(doc: dict[str, Any]) -> str:
    """The status as text a migration engineer reads at a glance."""
    workers = doc.get("workers", [])
    if not workers:
        return "proxy: no worker has reported yet"
    state = "converged" if doc.get("converged") else "RELOADING (workers disagree)"
    lines = [
        f"proxy: generation {doc['generation']}  table {doc['digest'][:12]}  "
        f"{len(workers)} workers, {state}  affinity {doc['affinity']}",
        f"routes file: {doc['source']}",
        f"last reload error: {doc.get('last_reload_error') or 'none'}",
        "",
    ]
    rows = [["ROUTE", "PREFIX", "METHODS", "SPLIT", "STICKY", "FALLBACK"]]
    for route in doc["routes"]:
        split = " / ".join(f"{name} {pct}%" for name, pct in route["split"].items())
        sticky = route["sticky"]
        rows.append(
            [
                route["name"],
                route["prefix"],
                ",".join(route["methods"] or ["*"]),
                split,
                f"{sticky['key']} {sticky['ttl']}s" if sticky else "-",
                route["fallback"] or "-",
            ]
        )
    rows.append(["(default)", "anything else", "*", f"{doc['default_backend']} 100%", "-", "-"])
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
