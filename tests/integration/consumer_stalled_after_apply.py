"""Test-only: the real consumer, whose apply step commits, says so, then stalls before XACK.

`python -m tests.integration.consumer_stalled_after_apply [consume options]`, with the
consumer's usual environment and `STALL_MARKER`, a file written once the event is applied.
The test SIGKILLs the process while it stalls: a crash between the commit and the ack,
without a test hook in the production consumer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from strangler.monolith import events


class StallAfterApply:
    """Applies through the real applier, writes the marker, then never returns."""

    def __init__(self, apply: events.SqliteApplier, marker: Path) -> None:
        self.apply, self.marker = apply, marker

    def __call__(self, fields: events.Fields) -> int:
        changed = self.apply(fields)
        self.marker.write_text(f"{fields['id']} {changed}")
        threading.Event().wait()  # the XACK that would follow never comes
        raise AssertionError("unreachable")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO)
    cli = argparse.ArgumentParser(prog=__name__)
    events.add_arguments("events", cli)
    args = cli.parse_args(["consume", *argv])
    apply = StallAfterApply(events.SqliteApplier(args.database), Path(os.environ["STALL_MARKER"]))
    client = events.connect(args.redis_url, args.block_ms)
    consumer = events.Consumer(
        client, apply, args.consumer, block_ms=args.block_ms, claim_idle_ms=args.claim_idle_ms
    )
    consumer.run(threading.Event())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
