"""Dockerfile.service: hadolint-clean, and its CMD serves /healthz when run from the repo root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from proxy.stack import PACKAGE_ROOT, StackConfig
from proxy.supervisor import ChildSpec, Supervisor, http_ready

pytestmark = pytest.mark.docker
DOCKERFILE = PACKAGE_ROOT / "Dockerfile.service"
VENV_BIN = Path(sys.executable).parent


def instruction(name: str) -> str:
    """The last `name` instruction's arguments (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    found = [line[len(name) :].strip() for line in lines if line.startswith(name + " ")]
    assert found, f"no {name} in {DOCKERFILE.name}"
    return found[-1]


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_a_non_root_user_with_a_healthcheck():
    assert instruction("USER") not in ("root", "0")
    assert "/healthz" in instruction("HEALTHCHECK")


@pytest.mark.redis
@pytest.mark.live
def test_cmd_serves_healthz_against_a_real_redis(
    supervisor: Supervisor, stack_config: StackConfig, redis_url: str
):
    argv = json.loads(instruction("CMD"))
    assert argv[0] == "gunicorn"
    env = {
        # The image has gunicorn on PATH; here it is the virtualenv's.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "VERIFICATION_BIND": f"127.0.0.1:{stack_config.service_port}",
        "WEB_CONCURRENCY": "1",
    }
    url = stack_config.service_url + "/healthz"
    spec = ChildSpec(
        "service-image-cmd", argv, env=env, ready=http_ready(url), cwd=str(PACKAGE_ROOT)
    )
    supervisor.start(spec)
    resp = requests.get(url, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
