"""Run a load-test module as `python -m strangler.loadtests.X`, like a `strangler` verb."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

DEFAULT_HELP = " (default %(default)s)"  # appended to an option's help text


def run_module(module: ModuleType, verb: str, argv: list[str] | None = None) -> int:
    """Parse with the module's `add_arguments(verb, parser)`, then call its `main(verb, args)`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module.__spec__.name if module.__spec__ else verb}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(verb, parser)
    try:
        return module.main(verb, parser.parse_args(argv))
    except KeyboardInterrupt:
        print(f"{verb}: interrupted; every process of the stack stopped", file=sys.stderr)
        return 130
