"""Dockerfile.service: hadolint-clean, and its CMD serves /healthz from the image's layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from strangler.stack.specs import StackConfig
from strangler.stack.supervisor import ChildSpec, Supervisor, http_ready
from tests.integration.dockerfiles import (
    REPO,
    assert_imports_from,
    exec_form,
    instructions,
    lay_out_image,
)

pytestmark = pytest.mark.docker
DOCKERFILE = REPO / "Dockerfile.service"
VENV_BIN = Path(sys.executable).parent


def instruction(name: str) -> str:
    """The last `name` instruction's arguments."""
    found = [rest for keyword, rest in instructions(DOCKERFILE) if keyword == name]
    assert found, f"no {name} in {DOCKERFILE.name}"
    return found[-1]


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_holds_everything_the_service_imports(tmp_path: Path) -> None:
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    assert_imports_from(app, "from strangler.extracted.verification_service import create_app")


def test_image_runs_as_a_non_root_user_with_a_healthcheck():
    assert instruction("USER") not in ("root", "0")
    assert "/healthz" in instruction("HEALTHCHECK")


@pytest.mark.redis
@pytest.mark.live
def test_cmd_serves_healthz_against_a_real_redis(
    supervisor: Supervisor, stack_config: StackConfig, redis_url: str, tmp_path: Path
):
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    argv = exec_form(DOCKERFILE, "CMD")
    assert argv[0] == "gunicorn"
    env = {
        # The image has gunicorn on PATH; here it is the virtualenv's.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "VERIFICATION_BIND": f"127.0.0.1:{stack_config.service_port}",
        "WEB_CONCURRENCY": "1",
    }
    url = stack_config.service_url + "/healthz"
    spec = ChildSpec("service-image-cmd", argv, env=env, ready=http_ready(url), cwd=str(app))
    supervisor.start(spec)
    resp = requests.get(url, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
