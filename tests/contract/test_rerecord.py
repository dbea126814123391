"""Re-recording an unchanged monolith gives byte-identical files: the committed ones."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from strangler.contracts import recording
from strangler.contracts.model import RecordMode, Target, load_scenarios
from strangler.contracts.recorder import record_all
from strangler.contracts.runner import Endpoints
from tests.contract.conftest import contract_target
from tests.contract.suite import RECORDINGS, SCENARIOS
from tests.repository import REPO


def _first_difference(left: Path, right: Path) -> str:
    diff = difflib.unified_diff(
        left.read_text().splitlines(), right.read_text().splitlines(),
        str(left), str(right), lineterm="", n=2,
    )  # fmt: skip
    return "\n".join(list(diff)[:40])


@pytest.mark.live
@pytest.mark.slow
def test_recording_twice_gives_the_committed_bytes(
    request: pytest.FixtureRequest, contract_endpoints: Endpoints, tmp_path: Path
) -> None:
    if contract_target(request.config) is not Target.MONOLITH:
        pytest.skip("recordings come from the monolith")
    if request.config.getoption("base_url", default=None):
        pytest.skip("only a monolith started with the contract settings records the same bytes")
    scenarios = load_scenarios(SCENARIOS)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        record_all(scenarios, contract_endpoints, out, RecordMode.ALL, root=REPO)
    for scenario in scenarios:
        a, b = recording.path_for(scenario.name, first), recording.path_for(scenario.name, second)
        assert a.read_bytes() == b.read_bytes(), _first_difference(a, b)
        committed = recording.path_for(scenario.name, RECORDINGS)
        assert committed.read_bytes() == a.read_bytes(), (
            f"{committed.name} is not what the monolith records now "
            f"(run `strangler record --scenario {scenario.name}` and review the diff):\n"
            + _first_difference(committed, a)
        )
