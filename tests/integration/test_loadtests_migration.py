"""Migration under load, smoke-sized: shifting the verification route breaks no user's flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.loadtests.migration import Plan, migrate_under_load
from strangler.loadtests.migration_report import passed
from tests.integration.haproxy.support import needs_haproxy

pytestmark = [pytest.mark.live, pytest.mark.slow]

STEPS = [0, 10, 50, 100, 0]


@pytest.mark.parametrize("data_plane", ["embedded", pytest.param("haproxy", marks=needs_haproxy)])
def test_shifting_0_10_50_100_0_under_load_breaks_no_flow(tmp_path: Path, data_plane) -> None:
    plan = Plan(steps=STEPS, users=8, step_seconds=3.0, think=1.0, data_plane=data_plane)
    figures, flows = migrate_under_load(tmp_path / "var", plan)
    failed = [(f.to, f.phase, f.error) for f in flows if f.broken or not f.sent]
    assert failed == []
    assert passed(figures)
    assert all(f.flows > 0 for f in figures), [f.flows for f in figures]
    assert sum(f.crossed for f in figures) == 0  # every check reached its send's backend
    assert sum(f.across_shift for f in figures) > 0  # some flows really straddled a shift

    served = {f.step.index: {s.backend: s.requests for s in f.shares} for f in figures}
    assert served[2]["monolith"] > 0 and served[2]["verification"] > 0  # the 50 % step
    for at_zero in (0, 4):
        assert served[at_zero]["verification"] == 0, served[at_zero]
    assert served[3]["monolith"] == 0, served[3]  # 100 %: new keys all go to the service
