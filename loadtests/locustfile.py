"""Locust entry point: the forum and verification personas, acting through the one public URL.

Run it with `strangler load` (starts a stack and a webhook sink, writes reports), or by hand
against a running stack whose backends deliver codes to a sink:

    locust --config loadtests/locust.conf --host http://127.0.0.1:8000 \
           --sink-url http://127.0.0.1:8025
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import requests
from locust import events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from strangler.loadtests.personas import ForumReader, ForumWriter, PhoneVerifier
from strangler.loadtests.stats import within_failure_ratio

__all__ = ["ForumReader", "ForumWriter", "PhoneVerifier"]

SEED_THREADS = 10  # readers need something to open on an empty forum


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--sink-url",
        default=os.environ.get("LOADTEST_SINK_URL", ""),
        help="base URL of the webhook sink both backends deliver codes to "
        "(python -m strangler.stack.sink); default $LOADTEST_SINK_URL",
    )
    parser.add_argument(
        "--max-failure-ratio",
        type=float,
        default=0.01,
        help="exit 1 when more than this share of requests failed (default 0.01)",
    )


@events.quitting.add_listener
def _verdict(environment: Any, **kwargs: Any) -> None:
    """Exit 1 above the failure ratio, or when nothing was measured (locust's documented hook)."""
    total = environment.stats.total
    limit = environment.parsed_options.max_failure_ratio
    ok = within_failure_ratio(total.num_requests, total.fail_ratio, limit)
    environment.process_exit_code = 0 if ok else 1
    print(
        f"failure ratio {total.fail_ratio:.2%} of {total.num_requests} requests "
        f"(allowed {limit:.2%}): {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    if environment.parsed_options.csv_prefix:
        write_final_csv(environment, environment.parsed_options.csv_prefix)


def write_final_csv(environment: Any, prefix: str) -> None:
    """Rewrite `_stats.csv` and `_failures.csv` with the final figures.

    Locust's CSV writer runs once a second and is not run again at exit, so its files can miss
    the last second. Each file is replaced whole: the writer's handle keeps the old inode.
    """
    report = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (("stats", report.requests_csv), ("failures", report.failures_csv)):
        target = Path(f"{prefix}_{suffix}.csv")
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", newline="") as out:
            write(csv.writer(out))
        partial.replace(target)


@events.test_start.add_listener
def _seed_forum(environment: Any, **kwargs: Any) -> None:
    """Give readers threads with posts to open, unless the forum has some already."""
    host = (environment.host or "").rstrip("/")
    if not host:
        return
    with requests.Session() as http:
        listed = http.get(f"{host}/api/threads", params={"limit": 1}, timeout=10)
        listed.raise_for_status()
        if listed.json()["threads"]:
            return
        user = http.post(f"{host}/api/users", json={"name": "load test seeder"}, timeout=10)
        user.raise_for_status()
        author_id = user.json()["id"]
        for n in range(SEED_THREADS):
            thread = http.post(
                f"{host}/api/threads",
                json={"title": f"seeded thread {n}", "author_id": author_id},
                timeout=10,
            )
            thread.raise_for_status()
            for p in range(3):
                http.post(
                    f"{host}/api/threads/{thread.json()['id']}/posts",
                    json={"author_id": author_id, "body": f"seeded post {p}"},
                    timeout=10,
                ).raise_for_status()
