"""Every recorded scenario replayed against the chosen backend; each scenario is one test.

Through the proxy, each answer's `X-Strangler-Backend` is checked too, and a last test checks
that a split strictly between 0 and 100 % sent answers to both backends over the session.
"""

from __future__ import annotations

import pytest
import requests

from strangler.contracts import recording
from strangler.contracts.backends import SplitCheck
from strangler.contracts.model import Scenario
from strangler.contracts.replay import replay
from strangler.contracts.runner import BACKEND_HEADER, REQUEST_TIMEOUT, Endpoints
from strangler.contracts.templating import VariableKind
from tests.contract.suite import RECORDINGS


@pytest.mark.live
def test_scenario_matches_its_recording(
    contract_scenario: Scenario,
    contract_endpoints: Endpoints,
    contract_label: str,
    contract_split_check: SplitCheck | None,
) -> None:
    scenario, recorded = contract_scenario, recording.read(contract_scenario.name, RECORDINGS)
    report = replay(scenario, recorded, contract_endpoints, contract_split_check)
    report.target = contract_label
    if report.failed:
        pytest.fail(report.render(), pytrace=False)


@pytest.mark.live
def test_the_split_sent_answers_to_both_backends(
    contract_split_check: SplitCheck | None, contract_label: str
) -> None:
    """Runs after every scenario (conftest): their answers, topped up by probes if need be."""
    check = contract_split_check
    if check is None:
        pytest.skip("only through the proxy (--backend proxy)")
    if not 0 < check.routing.percent < 100:
        pytest.skip("at 0 % and 100 % every answer's backend is checked with its scenario")
    url = check.proxy_url + check.routing.prefix + "check"
    with requests.Session() as session:

        def ask(body: dict) -> str | None:  # a check for a fresh address: 404 on either side
            response = session.post(url, json=body, timeout=REQUEST_TIMEOUT)
            return response.headers.get(BACKEND_HEADER)

        check.probe(ask, VariableKind.PHONE.generate)
    if (problem := check.problem()) is not None:
        pytest.fail(f"{contract_label}: {problem}", pytrace=False)
