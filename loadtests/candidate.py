"""The real verification service behind a fault-injecting WSGI wrapper: a bad candidate on cue.

Served by gunicorn like the service itself (`strangler.loadtests.candidate:create_app()`), so
the rollout is tested against real processes. `STRANGLER_CANDIDATE_FAULT` picks the fault:

- `none`: the service as it is (a faithful candidate);
- `errors`: a share of requests answered 500 `{"error": "internal"}` (the service not called);
- `slow`: every answer delayed by `STRANGLER_CANDIDATE_DELAY` seconds (its p99 goes up);
- `invalid`: a share of right codes answered 200 `{"status": "pending", "valid": false}`,
  no 5xx at all (the code is spent: the user's flow fails; only outcome drift shows it).

`STRANGLER_CANDIDATE_SHARE` is the share (0-1, default 0.3), and with
`STRANGLER_CANDIDATE_ABOVE=N` the fault starts only once the routing file
(`STRANGLER_CANDIDATE_ROUTES`) gives the route (`STRANGLER_CANDIDATE_ROUTE`) more than N %.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from strangler.extracted.verification_service import create_app as create_service
from strangler.routing.table import load_table

FAULTS = ("none", "errors", "slow", "invalid")
RECHECK = 0.2  # seconds between looks at the routing file


class ShareWatch:
    """The route's share of the new backend in the routing file, re-read at most every 0.2 s."""

    def __init__(self, path: Path, route: str) -> None:
        self.path, self.route = path, route
        self.checked, self.share = 0.0, 0
        self.lock = threading.Lock()

    def current(self) -> int:
        with self.lock:
            if time.monotonic() - self.checked > RECHECK:
                self.checked = time.monotonic()
                found = load_table(self.path).route(self.route)
                if found is not None and found.new_backend is not None:
                    self.share = dict(found.split)[found.new_backend]
            return self.share


class Candidate:
    """WSGI middleware around the service app injecting one fault."""

    def __init__(self, app: Callable, environ: Mapping[str, str]) -> None:
        self.app = app
        self.fault = environ.get("STRANGLER_CANDIDATE_FAULT", "none")
        if self.fault not in FAULTS:
            raise ValueError(f"STRANGLER_CANDIDATE_FAULT={self.fault!r} (known: {FAULTS})")
        self.share = float(environ.get("STRANGLER_CANDIDATE_SHARE", "0.3"))
        self.delay = float(environ.get("STRANGLER_CANDIDATE_DELAY", "0.05"))
        above = environ.get("STRANGLER_CANDIDATE_ABOVE")
        self.above = int(above) if above else None
        self.watch = None
        if self.above is not None:
            routes = Path(environ["STRANGLER_CANDIDATE_ROUTES"])
            self.watch = ShareWatch(
                routes, environ.get("STRANGLER_CANDIDATE_ROUTE", "verification")
            )

    def active(self, path: str) -> bool:
        if self.fault == "none" or not path.startswith("/api/"):
            return False  # health checks stay healthy: the circuit must not hide the fault
        return self.watch is None or self.watch.current() > (self.above or 0)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.active(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        if self.fault == "errors" and random.random() < self.share:
            body = {"error": "internal", "message": "injected fault"}
            return Response(json.dumps(body), 500, mimetype="application/json")(
                environ, start_response
            )
        if self.fault == "slow":
            time.sleep(self.delay)
            return self.app(environ, start_response)
        if self.fault == "invalid":
            response = Response.from_app(self.app, environ)
            if response.is_json and random.random() < self.share:
                body: Any = response.get_json()
                if isinstance(body, dict) and body.get("status") == "approved":
                    body.update(status="pending", valid=False)
                    response.set_data(json.dumps(body))
            return response(environ, start_response)
        return self.app(environ, start_response)


def create_app(environ: Mapping[str, str] | None = None) -> Candidate:
    """The service app (configured from the environment as usual) wrapped with the fault."""
    return Candidate(create_service(), os.environ if environ is None else environ)
