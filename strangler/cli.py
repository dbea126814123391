"""`strangler`: the command line of the toolkit; each verb lives in the module that owns it."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# verb -> (module, one-line help). Each module provides
#   add_arguments(verb: str, parser: argparse.ArgumentParser) -> None
#   main(verb: str, args: argparse.Namespace) -> int
VERBS: dict[str, tuple[str, str]] = {
    "up": ("strangler.stack.up", "run the whole stack in the foreground; Ctrl-C stops it"),
    "init": (
        "strangler.control.init",
        "write a routing file for your legacy backend and its replacement",
    ),
    "serve": (
        "strangler.stack.serve",
        "run the data plane alone in front of the routing file's backends; Ctrl-C stops it",
    ),
    "shift": (
        "strangler.control.shift_cli",
        "send PERCENT of a route's traffic to its new backend",
    ),
    "rollback": (
        "strangler.control.shift_cli",
        "send all of a route's traffic back to its fallback",
    ),
    "rollout": (
        "strangler.rollout.cli",
        "step a route to its new backend under analysis of live traffic, rolling back on "
        "errors, latency or outcome drift (also: status|pause|resume|abort|promote ROUTE)",
    ),
    "status": (
        "strangler.control.status",
        "routes, splits and per-backend figures from the running proxy",
    ),
    "events": ("strangler.monolith.events", "list or replay dead-lettered verification events"),
    "record": ("strangler.contracts.recorder", "record contract scenarios from the legacy backend"),
    "verify": (
        "strangler.contracts.verify",
        "replay recorded contracts against a base URL; exit 1 on any difference",
    ),
    "fuzz": (
        "strangler.contracts.fuzz",
        "generated requests and flows to the legacy backend and the candidate; "
        "exit 1 on any difference or 5xx",
    ),
    "export": (
        "strangler.haproxy.export_cli",
        "render routes.yaml as a complete config for a data plane: haproxy",
    ),
    "bench": ("strangler.bench", "benchmark: direct vs through the proxy (and nginx)"),
    "load": ("strangler.loadtests.run", "headless locust run through the proxy, CSV/HTML reports"),
    "load-migration": (
        "strangler.loadtests.migration",
        "shift a route 0->10->50->100->0 % under load (--fault: under real faults); "
        "fails on a broken flow",
    ),
    "load-rollout": (
        "strangler.loadtests.rollout",
        "a whole rollout under load (--fault: with a faulty candidate); fails on a broken flow",
    ),
    "load-compare": ("strangler.loadtests.compare", "benchmark: the verification flow per backend"),
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strangler", description=__doc__)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (module_name, help_text) in VERBS.items():
        # `help` is %-formatted by argparse, `description` is not.
        verb_parser = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        if name == verb:
            importlib.import_module(module_name).add_arguments(name, verb_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if a in VERBS), None)
    args = build_parser(verb).parse_args(argv)
    module = importlib.import_module(VERBS[args.verb][0])
    try:
        return module.main(args.verb, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
