"""The checkout the tests run from: children that import `tests.*` modules must start there."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
