"""Contract replay for pytest: `pytest tests/contract --backend monolith|service|proxy`.

The stack for the chosen backend is started once per session on free ports (or taken from
`--base-url` with `--sink-url`); each scenario is one test. Through the proxy, a session-level
test that runs after every scenario checks that the split used both backends.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from strangler.contracts.backends import Routing, SplitCheck
from strangler.contracts.choices import option_type
from strangler.contracts.model import Target, load_scenarios
from strangler.contracts.runner import Endpoints
from strangler.contracts.stacks import running
from strangler.stack.specs import DATA_PLANES
from tests.contract.suite import MIGRATED_ROUTE, ROUTES_FILE, SCENARIOS

# Tests that judge the whole session: they run after every other test, whatever the order.
SESSION_CHECKS = frozenset({"test_the_split_sent_answers_to_both_backends"})


def _percent(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100")
    return int(text)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "contract replay (tests/contract)")
    group.addoption(
        "--backend",
        type=option_type(Target),
        default=Target.MONOLITH,
        help="stack to replay the recordings against: monolith (default), service or proxy",
    )
    group.addoption(
        "--proxy-split",
        type=_percent,
        default=0,
        help="with --backend proxy: percent of the verification route sent to the service",
    )
    group.addoption(
        "--data-plane",
        choices=DATA_PLANES,
        default="embedded",
        help="with --backend proxy: what serves the public URL, embedded (default) or haproxy",
    )
    group.addoption("--base-url", help="replay against this running backend instead")
    group.addoption("--monolith-url", help="with --base-url: where `via: monolith` steps go")
    group.addoption("--sink-url", help="with --base-url: the webhook sink the backends post to")


def contract_target(config: pytest.Config) -> Target:
    # The defaults also hold when this conftest is not an initial one (plain `pytest`).
    return config.getoption("backend", default=None) or Target.MONOLITH


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_scenario" not in metafunc.fixturenames:
        return
    target = contract_target(metafunc.config)
    params = []
    for scenario in load_scenarios(SCENARIOS):
        skip = pytest.mark.skip(reason=f"{scenario.name} does not apply to {target.value}")
        marks = () if scenario.applies_to(target) else (skip,)
        params.append(pytest.param(scenario, id=scenario.name, marks=marks))
    metafunc.parametrize("contract_scenario", params)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [item for item in items if getattr(item, "originalname", None) in SESSION_CHECKS]
    if last:
        items[:] = [item for item in items if item not in last] + last


def proxy_split(config: pytest.Config) -> int:
    return config.getoption("proxy_split", default=0) or 0


def data_plane(config: pytest.Config) -> str:
    return config.getoption("data_plane", default=None) or "embedded"


@pytest.fixture(scope="session")
def contract_endpoints(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoints]:
    """Where every scenario of the session runs: a stack of our own, or the given URLs."""
    config = request.config
    base_url = config.getoption("base_url", default=None)
    if base_url:
        sink_url = config.getoption("sink_url", default=None)
        if not sink_url:
            pytest.fail("--base-url needs --sink-url (the webhook sink the backends post to)")
        monolith_url = config.getoption("monolith_url", default=None) or base_url
        yield Endpoints(base_url.rstrip("/"), monolith_url.rstrip("/"), sink_url.rstrip("/"))
        return
    target = contract_target(config)
    split = proxy_split(config)
    plane = data_plane(config)
    var_dir = tmp_path_factory.mktemp(f"contract-{target.value}")
    with running(target, var_dir, split, data_plane=plane) as endpoints:
        yield endpoints


@pytest.fixture
def contract_label(request: pytest.FixtureRequest, contract_endpoints: Endpoints) -> str:
    """How reports name the target: backend (and split) plus its URL."""
    target = contract_target(request.config)
    suffix = ""
    if target is Target.PROXY:
        plane = data_plane(request.config)
        suffix = f" at {proxy_split(request.config)}%" + (
            f" ({plane})" if plane != "embedded" else ""
        )
    return f"{target.value}{suffix} ({contract_endpoints.target})"


@pytest.fixture(scope="session")
def contract_split_check(
    request: pytest.FixtureRequest, contract_endpoints: Endpoints
) -> SplitCheck | None:
    """Through the proxy: who answered each step, and the session's tally (None otherwise).

    The promises come from `proxy/routes.yaml` at `--proxy-split` (with `--base-url`, the
    running proxy must use that table at that split).
    """
    if contract_target(request.config) is not Target.PROXY:
        return None
    routing = Routing.from_table(ROUTES_FILE, MIGRATED_ROUTE, proxy_split(request.config))
    return SplitCheck(routing, contract_endpoints.target)
