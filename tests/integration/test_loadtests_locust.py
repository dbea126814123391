"""The locust personas against the real monolith: every business check passes, reports exist."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repository import REPO

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_a_short_headless_run_writes_reports_and_passes(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "strangler.loadtests.run", "--no-proxy", "--users", "5",
         "--spawn-rate", "5", "--run-time", "5s", "--reports", str(reports)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (stats,) = reports.glob("*_stats.csv")
    assert list(reports.glob("*.html"))
    rows = {row["Name"]: row for row in csv.DictReader(stats.read_text().splitlines())}
    for name in ("/api/threads", "/api/threads/[id]", "/api/users", "/api/verification/check"):
        assert name in rows, sorted(rows)
    assert rows["Aggregated"]["Failure Count"] == "0"
    assert int(rows["sign up → phone verified"]["Request Count"]) > 0
