"""Dockerfile.monolith: lint-clean, and its CMD (and HEALTHCHECK) really serve the monolith."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.stack.supervisor import ChildSpec, Supervisor, free_port, http_ready
from tests.integration.dockerfiles import (
    REPO,
    assert_imports_from,
    exec_form,
    instructions,
    lay_out_image,
)

pytestmark = pytest.mark.docker

DOCKERFILE = REPO / "Dockerfile.monolith"
VENV_BIN = Path(sys.executable).parent


def test_hadolint_is_clean() -> None:
    hadolint = VENV_BIN / "hadolint"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_image_shape() -> None:
    steps = instructions(DOCKERFILE)
    args = dict(steps)
    assert args["FROM"].startswith("python:3.11-slim")
    assert args["USER"].split(":")[0] not in ("root", "0")
    pip_layer = next(i for i, (_, rest) in enumerate(steps) if "pip install" in rest)
    source = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and "monolith" in rest)
    assert pip_layer < source, "dependencies must be installed before the source"
    assert "optional-dependencies']['backend']" in steps[pip_layer][1]
    assert exec_form(DOCKERFILE, "CMD") == [
        "gunicorn", "--config", "strangler/monolith/gunicorn.conf.py",
        "strangler.monolith:create_app()",
    ]  # fmt: skip


def test_the_image_holds_everything_the_monolith_and_its_consumer_import(tmp_path: Path) -> None:
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    assert_imports_from(
        app, "from strangler.monolith import create_app, events; create_app({'TESTING': True})"
    )


@pytest.mark.live
def test_cmd_serves_healthz_and_healthcheck_passes(supervisor: Supervisor, tmp_path: Path) -> None:
    app = lay_out_image(DOCKERFILE, tmp_path / "app")
    port = free_port()
    env = {
        # The image has gunicorn on PATH; here the virtual environment provides it.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MONOLITH_BIND": f"127.0.0.1:{port}",
        "MONOLITH_DATABASE": str(tmp_path / "var" / "monolith.sqlite3"),
        "WEB_CONCURRENCY": "1",
    }
    url = f"http://127.0.0.1:{port}/healthz"
    cmd = exec_form(DOCKERFILE, "CMD")
    spec = ChildSpec("docker-cmd", cmd, env=env, ready=http_ready(url), cwd=str(app))
    supervisor.start(spec)
    assert http_ready(url)()
    healthcheck = exec_form(DOCKERFILE, "HEALTHCHECK")
    healthcheck[0] = sys.executable if healthcheck[0] == "python" else healthcheck[0]
    result = subprocess.run(healthcheck, env={**os.environ, **env}, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
