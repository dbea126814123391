"""docker-compose.yml: every service runs a command the tests run for real, and HAProxy's
files are the export of today's routes.yaml, which real HAProxy starts from.

There is no Docker engine here, so the compose file is held to what is tested: the images'
CMDs (the Dockerfile tests run them), the consumer and Redis as the stack runs them, and
HAProxy's exact command on a copy of deploy/haproxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from strangler.haproxy import files
from strangler.haproxy.runtime import RuntimeAPI
from strangler.stack.specs import StackConfig, consumer_spec, redis_spec
from strangler.stack.supervisor import free_port
from tests.integration.dockerfiles import REPO, exec_form
from tests.integration.haproxy.support import needs_haproxy
from tests.integration.polling import wait_for

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
STATE = "/var/lib/strangler-haproxy"


def command_of(service: dict) -> list[str]:
    if "command" in service:
        return service["command"]
    return exec_form(REPO / service["build"]["dockerfile"], "CMD")


def test_every_service_is_known_and_the_images_are_ours() -> None:
    assert set(SERVICES) == {"redis", "monolith", "consumer", "verification", "haproxy", "proxy"}
    assert SERVICES["monolith"]["build"]["dockerfile"] == "Dockerfile.monolith"
    assert SERVICES["verification"]["build"]["dockerfile"] == "Dockerfile.service"
    assert SERVICES["proxy"]["build"]["dockerfile"] == "Dockerfile.proxy"
    assert SERVICES["proxy"]["profiles"] == ["embedded"]


def test_the_consumer_and_redis_run_as_the_stack_runs_them(tmp_path: Path) -> None:
    cfg = StackConfig.on_free_ports(tmp_path)
    consumer = consumer_spec(cfg).argv
    assert command_of(SERVICES["consumer"]) == ["python", *consumer[consumer.index("-m") :]]
    redis = command_of(SERVICES["redis"])
    stack_redis = redis_spec(cfg).argv
    assert redis[0] == "redis-server"
    for flag, value in zip(redis[1::2], redis[2::2], strict=True):
        assert stack_redis[stack_redis.index(flag) + 1] == value, flag


def test_deploy_haproxy_is_the_export_of_todays_routes_file(tmp_path: Path) -> None:
    strangler = Path(sys.executable).with_name("strangler")
    result = subprocess.run(
        [str(REPO / "deploy" / "export-haproxy"), str(tmp_path)],
        env={**os.environ, "STRANGLER": str(strangler)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("haproxy.cfg", "splits.map", "json_key.lua"):
        fresh = (tmp_path / name).read_text().replace(str(tmp_path), "deploy/haproxy")
        committed = (REPO / "deploy" / "haproxy" / name).read_text()
        assert fresh == committed, f"deploy/haproxy/{name} is stale: run deploy/export-haproxy"


@needs_haproxy
@pytest.mark.live
def test_haproxys_command_starts_real_haproxy_from_those_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REPO / "deploy" / "haproxy", state)
    config = state / "haproxy.cfg"
    text = config.read_text().replace(STATE, str(state))
    for address in ("0.0.0.0:8000", "0.0.0.0:8009", "127.0.0.1:10000"):
        text = text.replace(address, f"127.0.0.1:{free_port()}")
    config.write_text(text)
    command = [a.replace(STATE, str(state)) for a in command_of(SERVICES["haproxy"])]
    assert command == [Path(files.haproxy_binary()).name, *files.master_argv(config, state)[1:]]
    files.check(config)
    process = subprocess.Popen([files.haproxy_binary(), *command[1:]], stdout=subprocess.DEVNULL)
    try:
        api = RuntimeAPI(state / "haproxy.sock")
        wait_for(api.alive, what="haproxy's runtime API")
        # The containers' names do not resolve here: their servers wait, HAProxy runs.
        assert {row["pxname"] for row in api.stats()} >= {"public", "b:monolith"}
    finally:
        process.terminate()
        process.wait(10)
