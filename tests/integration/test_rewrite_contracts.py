"""The contract suite through the proxy passes against the real service mounted under another
prefix: the route's `rewrite` maps `/api/verification/` to the service's `/v1/verify/`."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.contracts import recording
from strangler.contracts.model import Target, load_scenarios
from strangler.contracts.replay import replay
from strangler.contracts.runner import Endpoints
from strangler.contracts.stacks import CODE_TTL
from strangler.stack.running import DEMO_ROUTES, running_stack
from strangler.stack.specs import SERVICE_GUNICORN_CONF, gunicorn_argv
from strangler.stack.supervisor import ChildSpec, free_port, http_ready
from tests.contract.suite import RECORDINGS, SCENARIOS
from tests.repository import REPO

from .proxy_support import admin_status

pytestmark = [pytest.mark.live, pytest.mark.redis]


def rewritten_routes(path: Path) -> Path:
    """The demo table with every verification request on the mounted service, rewritten."""
    text = DEMO_ROUTES.read_text()
    for old, new in (
        ("${VERIFICATION_URL:-http://127.0.0.1:8002}", "${MOUNTED_URL}"),
        ("split: {monolith: 100, verification: 0}", "split: {monolith: 0, verification: 100}"),
    ):
        assert old in text
        text = text.replace(old, new)
    path.write_text(
        text + "    backends:\n      verification:\n        rewrite: {prefix: /v1/verify/}\n"
    )
    return path


def test_the_contract_suite_passes_through_the_proxy_against_the_mounted_service(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    template = rewritten_routes(tmp_path / "routes-template.yaml")
    env = {"MOUNTED_URL": url, "VERIFICATION_CODE_TTL": str(CODE_TTL)}
    with running_stack(tmp_path / "var", routes_template=template, env=env) as stack:
        argv = gunicorn_argv(
            SERVICE_GUNICORN_CONF, "tests.integration.mounted_service:create_app()"
        )
        child_env = {**stack.cfg.common_env(), "VERIFICATION_BIND": f"127.0.0.1:{port}"}
        stack.supervisor.start(
            ChildSpec("mounted", argv, env=child_env, ready=http_ready(url + "/healthz"),
                      url=url, cwd=str(REPO)),
            timeout=60,
        )  # fmt: skip
        endpoints = Endpoints(stack.proxy_url, stack.proxy_url, stack.sink.base_url)
        failures = []
        scenarios = [s for s in load_scenarios(SCENARIOS) if s.applies_to(Target.PROXY)]
        assert len(scenarios) > 10
        for scenario in scenarios:
            report = replay(scenario, recording.read(scenario.name, RECORDINGS), endpoints)
            if report.failed:
                failures.append(report.render())
        assert not failures, "\n\n".join(failures)
        status = admin_status(stack.cfg.admin_url, token=None)
    assert status["backends"]["verification"]["requests"] > 0  # the mounted service answered
    assert status["backends"]["verification"]["url"] == url
