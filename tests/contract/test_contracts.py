"""Every recorded scenario replayed against the chosen backend; each scenario is one test."""

from __future__ import annotations

import pytest

from tests.contract import recording
from tests.contract.model import Scenario
from tests.contract.replay import replay
from tests.contract.runner import Endpoints


@pytest.mark.live
def test_scenario_matches_its_recording(
    contract_scenario: Scenario, contract_endpoints: Endpoints, contract_label: str
) -> None:
    scenario = contract_scenario
    report = replay(scenario, recording.read(scenario.name), contract_endpoints)
    report.target = contract_label
    if report.failed:
        pytest.fail(report.render(), pytrace=False)
