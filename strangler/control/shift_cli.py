"""`strangler shift` and `strangler rollback`: the command line over `strangler.control.shift`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from strangler.control.shift import ControlError, ShiftResult, default_routes_path, rollback, shift
from strangler.control.status import confirm_applied
from strangler.routing.records import RoutingConfigError


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("route", help="route name in routes.yaml, e.g. verification")
    if verb == "shift":
        parser.add_argument("percent", help="share for the new backend, 0-100 (50 or 50%%)")
    parser.add_argument("--reason", default=None, help="why; recorded in the audit log")
    parser.add_argument(
        "--routes",
        type=Path,
        default=None,
        help="routing file (default: $STRANGLER_ROUTES or the project's, see strangler.toml)",
    )


def main(verb: str, args: argparse.Namespace) -> int:
    path = args.routes or default_routes_path()
    try:
        if verb == "rollback":
            result = rollback(path, args.route, args.reason)
        else:
            result = shift(path, args.route, _percent_argument(args.percent), args.reason)
    except (ControlError, RoutingConfigError, OSError) as exc:
        print(f"strangler {verb}: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    print(_summary(result, path))
    if not result.changed:
        return 0
    return confirm_applied(Path(path), verb)


def _percent_argument(text: str) -> int:
    try:
        return int(text.strip().removesuffix("%"))
    except ValueError:
        raise ControlError(f"percent must be a whole number 0-100, got {text!r}") from None


def _summary(result: ShiftResult, path: str | os.PathLike[str]) -> str:
    if not result.changed:
        split = ", ".join(f"{name} {p}%" for name, p in result.new_split.items())
        return f"{result.route}: already {split}; {path} unchanged (audited in {result.audit_path})"
    moves = ", ".join(
        f"{name} {result.old_split[name]}% -> {p}%" for name, p in result.new_split.items()
    )
    return f"{result.route}: {moves} in {path} (audited in {result.audit_path})"
