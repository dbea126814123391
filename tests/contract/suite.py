"""Where this repository's contract suite lives: its scenarios and their recordings."""

from __future__ import annotations

from pathlib import Path

from strangler.stack.running import DEMO_ROUTES, MIGRATED_ROUTE

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
RECORDINGS = HERE / "recordings"
ROUTES_FILE = DEMO_ROUTES  # the table the proxy target runs, at the split asked for
__all__ = ["MIGRATED_ROUTE", "RECORDINGS", "ROUTES_FILE", "SCENARIOS"]
