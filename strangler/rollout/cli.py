"""`strangler rollout ROUTE` (the controller, in the foreground) and its status/pause/... verbs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from strangler.control import project
from strangler.control.shift import ControlError, default_audit_path, default_routes_path
from strangler.control.status import find_admin
from strangler.rollout.commands import COMMANDS, Session, start
from strangler.rollout.controller import Controller, Target
from strangler.rollout.state import PROMOTED, RolloutError, StateFiles
from strangler.routing.records import RoutingConfigError

OVERRIDES = (  # flag -> Rollout field, parsed by the routing model's own parsers
    ("--steps", "steps", "percentages, e.g. 1,5,25,50,100"),
    ("--interval", "interval", "time at each step before its analysis, e.g. 60s"),
    ("--min-requests", "min_requests", "per backend per window; fewer: wait"),
    ("--max-error-rate", "max_error_rate", "of the new backend, e.g. 1%%"),
    ("--max-latency-ratio", "max_latency_ratio", "new p99 / old p99, e.g. 1.5"),
    ("--outcome", "outcome", "JSON fields naming an outcome, e.g. error,status"),
    ("--max-outcome-drift", "max_outcome_drift", "e.g. 2%%"),
    ("--failed-checks", "failed_checks", "consecutive failed analyses that abort"),
    ("--gate", "gate", "command run before the first step"),
)


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "words", nargs="+", metavar="[status|pause|resume|abort|promote] ROUTE",
        help="ROUTE alone runs the rollout's controller in the foreground",
    )  # fmt: skip
    for flag, _, text in OVERRIDES:
        parser.add_argument(flag, default=None, help=f"{text} (default: the route's rollout:)")
    parser.add_argument("--reason", default=None, help="why (pause, resume, abort, promote)")
    parser.add_argument("--routes", type=Path, default=None, help="routing file")
    parser.add_argument("--admin", default=None, help="the data plane's admin URL")
    parser.add_argument("--json", action="store_true", help="status: print the state as JSON")
    parser.add_argument(
        "--follow", action="store_true",
        help="never exit: after a promotion or an abort, wait for `resume` (strangler up)",
    )  # fmt: skip


def main(verb: str, args: argparse.Namespace) -> int:
    words = args.words
    command = words[0] if len(words) == 2 and words[0] in COMMANDS else None
    if len(words) != (2 if command else 1):
        print(
            f"strangler rollout: expected ROUTE or one of {', '.join(COMMANDS)} then ROUTE, "
            f"got {' '.join(words)!r}",
            file=sys.stderr,
        )
        return 2
    try:
        session = session_from(args, words[-1])
        if command is not None:
            return COMMANDS[command](session, args)
        overrides = {
            field: getattr(args, flag[2:].replace("-", "_")) for flag, field, _ in OVERRIDES
        }
        try:
            state = start(session, {k: v for k, v in overrides.items() if v is not None})
        except RolloutError as exc:
            if not args.follow or session.files.load() is None:
                raise
            print(f"strangler rollout: {exc}; waiting for `resume`", flush=True)
        else:
            if state.phase not in ("running", "paused") and not args.follow:
                return 0 if state.phase == PROMOTED else 1
        phase = Controller(session.files, session.target).run(follow=args.follow)
    except (RolloutError, ControlError, RoutingConfigError, OSError) as exc:
        print(f"strangler rollout: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    return 0 if phase == PROMOTED else 1


def session_from(args: argparse.Namespace, route: str) -> Session:
    """Where the route's routing file, audit log, state and data plane are (read here)."""
    routes = Path(args.routes or default_routes_path())
    var = project.load().var  # $STRANGLER_VAR, else the project's var/
    admin = find_admin(args.admin)
    target = Target(
        routes=routes,
        audit=default_audit_path(),
        admin_url=admin.url,
        token=os.environ.get("STRANGLER_ADMIN_TOKEN") or None,
    )
    return Session(StateFiles(var, route), target)
