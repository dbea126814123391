"""Dockerfile.proxy: lint-clean, holds what the embedded proxy imports, and its CMD serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.stack.supervisor import ChildSpec, Supervisor, free_port
from tests.integration.dockerfiles import (
    REPO,
    assert_imports_from,
    exec_form,
    instructions,
    lay_out_image,
)
from tests.integration.polling import wait_for
from tests.integration.proxy_support import admin_status

pytestmark = pytest.mark.docker
DOCKERFILE = REPO / "Dockerfile.proxy"
VENV_BIN = Path(sys.executable).parent


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_proxy_extra_and_runs_as_a_plain_user() -> None:
    steps = instructions(DOCKERFILE)
    assert dict(steps)["FROM"].startswith("python:3.11-slim")
    assert dict(steps)["USER"] not in ("root", "0")
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    assert any("optional-dependencies']['proxy']" in run for run in runs)


def test_the_image_holds_everything_the_proxy_imports(tmp_path: Path) -> None:
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    assert_imports_from(app, "import strangler.proxy.server")


@pytest.mark.live
def test_cmd_serves_the_table_it_was_given(tmp_path: Path, supervisor: Supervisor) -> None:
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    routes = app / "rootfs" / "etc" / "strangler" / "routes.yaml"
    assert routes.read_bytes() == (REPO / "proxy" / "routes.yaml").read_bytes()
    argv = [str(routes) if a == "/etc/strangler/routes.yaml" else a for a in exec_form(
        DOCKERFILE, "CMD")]  # fmt: skip
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    public, admin = free_port(), free_port()
    env = {
        "STRANGLER_PROXY_BIND": f"127.0.0.1:{public}",
        "STRANGLER_ADMIN_BIND": f"127.0.0.1:{admin}",
        "STRANGLER_RUN_DIR": str(tmp_path / "run"),
        "STRANGLER_WORKERS": "1",
        "PYTHONSAFEPATH": "",
    }
    supervisor.start(ChildSpec("proxy-image-cmd", argv, env=env, cwd=str(app)))
    status = wait_for(lambda: _status(f"http://127.0.0.1:{admin}"), what="the proxy's status")
    assert status["source"] == str(routes) and len(status["workers"]) == 1
    healthcheck = exec_form(DOCKERFILE, "HEALTHCHECK")
    healthcheck[0] = sys.executable
    checked = subprocess.run(healthcheck, env={**os.environ, **env}, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def _status(admin_url: str) -> dict | None:
    try:
        return admin_status(admin_url, token=None)
    except OSError:
        return None
