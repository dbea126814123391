"""Dockerfile.monolith: lint-clean, and its CMD (and HEALTHCHECK) really serve the monolith."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.supervisor import ChildSpec, Supervisor, free_port, http_ready

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.monolith"
VENV_BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(keyword: str) -> list[str]:
    [args] = [rest for kw, rest in instructions() if kw == keyword]
    if keyword == "HEALTHCHECK":
        args = args[args.index("CMD") + len("CMD") :]
    return json.loads(args)


def test_hadolint_is_clean() -> None:
    hadolint = VENV_BIN / "hadolint"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_image_shape() -> None:
    steps = instructions()
    args = dict(steps)
    assert args["FROM"].startswith("python:3.11-slim")
    assert args["USER"].split(":")[0] not in ("root", "0")
    pip_layer = next(i for i, (_, rest) in enumerate(steps) if "pip install" in rest)
    source = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and "monolith" in rest)
    assert pip_layer < source, "dependencies must be installed before the source"
    assert "optional-dependencies']['backend']" in steps[pip_layer][1]
    assert exec_form("CMD") == [
        "gunicorn", "--config", "monolith/gunicorn.conf.py", "monolith:create_app()",
    ]  # fmt: skip


@pytest.mark.live
def test_cmd_serves_healthz_and_healthcheck_passes(supervisor: Supervisor, tmp_path: Path) -> None:
    port = free_port()
    env = {
        # The image has gunicorn on PATH; here the virtual environment provides it.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MONOLITH_BIND": f"127.0.0.1:{port}",
        "MONOLITH_DATABASE": str(tmp_path / "var" / "monolith.sqlite3"),
        "WEB_CONCURRENCY": "1",
    }
    url = f"http://127.0.0.1:{port}/healthz"
    spec = ChildSpec("docker-cmd", exec_form("CMD"), env=env, ready=http_ready(url), cwd=str(ROOT))
    supervisor.start(spec)
    assert http_ready(url)()
    healthcheck = exec_form("HEALTHCHECK")
    healthcheck[0] = sys.executable if healthcheck[0] == "python" else healthcheck[0]
    result = subprocess.run(healthcheck, env={**os.environ, **env}, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
