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
    "up": ("proxy.up", "run the whole stack in the foreground; Ctrl-C stops it"),
    "shift": ("proxy.control_cli", "send PERCENT of a route's traffic to its new backend"),
    "rollback": ("proxy.control_cli", "send all of a route's traffic back to its fallback"),
    "status": ("proxy.status", "routes, splits and per-backend figures from the running proxy"),
    "events": ("monolith.events", "list or replay dead-lettered verification events"),
    "record": ("tests.contract.recorder", "record contract scenarios from the monolith"),
    "bench": ("proxy.bench", "benchmark: direct vs through the proxy (and nginx)"),
    "load": ("loadtests.run", "headless locust run through the proxy, CSV/HTML reports"),
    "load-migration": (
        "loadtests.migration",
        "shift a route 0->10->50->100->0 % under load; fails on a broken flow",
    ),
    "load-compare": ("loadtests.compare", "benchmark: the verification flow per backend"),
}
# Verbs whose code lives in the source tree beside its data, not in the installed packages.
SOURCE_TREE_PACKAGES = ("tests.", "loadtests.")


def _import_verb_module(module_name: str):
    if module_name.startswith(SOURCE_TREE_PACKAGES):
        from proxy.stack import PACKAGE_ROOT

        if str(PACKAGE_ROOT) not in sys.path:
            sys.path.insert(0, str(PACKAGE_ROOT))
    return importlib.import_module(module_name)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strangler", description=__doc__)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (module_name, help_text) in VERBS.items():
        # `help` is %-formatted by argparse, `description` is not.
        verb_parser = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        if name == verb:
            _import_verb_module(module_name).add_arguments(name, verb_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if a in VERBS), None)
    args = build_parser(verb).parse_args(argv)
    module = _import_verb_module(VERBS[args.verb][0])
    try:
        return module.main(args.verb, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
