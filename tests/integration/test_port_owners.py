"""One owner per port: a second stack or proxy on taken ports refuses; readiness proves identity."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from strangler.stack.listeners import Port
from strangler.stack.specs import StackConfig, proxy_spec
from strangler.stack.supervisor import ChildSpec, StartError, free_port, python_module
from tests.integration.polling import wait_for
from tests.integration.processes import alive, descendants
from tests.repository import REPO

from .proxy_support import Load, echo_spec, routes_text, write_atomically

pytestmark = pytest.mark.live

VARIABLES = {
    "proxy": "STRANGLER_PROXY_BIND",
    "admin": "STRANGLER_ADMIN_BIND",
    "monolith": "MONOLITH_BIND",
    "service": "VERIFICATION_BIND",
    "redis": "STRANGLER_REDIS_BIND",
}


def up(tmp_path: Path, name: str, ports: dict[str, int]) -> tuple[subprocess.Popen, Path]:
    """`strangler up` in a project directory of its own (its own var/), on `ports`."""
    home = tmp_path / name
    home.mkdir()
    routes = home / "routes.yaml"
    shutil.copy(REPO / "proxy" / "routes.yaml", routes)
    env = {**os.environ, "STRANGLER_VAR": str(home / "var")}
    env.update({VARIABLES[k]: f"127.0.0.1:{port}" for k, port in ports.items()})
    env.pop("REDIS_URL", None)
    argv = [sys.executable, "-m", "strangler.cli", "up", "--workers", "1", "--routes", str(routes)]
    log = home / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    return process, log


@pytest.fixture
def first(tmp_path: Path) -> Iterator[tuple[dict[str, int], subprocess.Popen]]:
    ports = {name: free_port() for name in VARIABLES}
    process, log = up(tmp_path, "first", ports)
    try:
        wait_for(lambda: "<- point clients here" in log.read_text(), "the banner", timeout=90)
        yield ports, process
    finally:
        process.terminate()
        process.wait(60)


@pytest.mark.redis
def test_a_second_stack_on_the_same_ports_refuses_while_the_first_serves(tmp_path, first):
    ports, first_process = first
    public = f"http://127.0.0.1:{ports['proxy']}"
    with Load(lambda session, i: session.get(public + "/healthz", timeout=10)) as load:
        wait_for(lambda: load.total() > 5, "the first stack serving")
        second, log = up(tmp_path, "second", ports)
        assert second.wait(60) == 1
        tree = descendants(second.pid)
        served_during = load.total()
    text = log.read_text()
    assert "point clients here" not in text
    for name, variable in VARIABLES.items():  # every taken port is named, with its variable
        assert f"port {ports[name]} (127.0.0.1:{ports[name]}) is taken by pid" in text, text
        assert f"move this one with {variable}=HOST:PORT" in text
    assert "another strangler stack seems to run there" in text
    assert not tree
    assert load.failures == [] and served_during > 5
    assert set(load.statuses) == {200}
    assert first_process.poll() is None


def test_a_port_held_by_an_unrelated_listener_is_named(tmp_path):
    ports = {name: free_port() for name in VARIABLES}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["admin"]))
        squatter.listen()
        process, log = up(tmp_path, "lone", ports)
        assert process.wait(60) == 1
        assert not descendants(process.pid)
    text = log.read_text()
    assert f"proxy: port {ports['admin']} (127.0.0.1:{ports['admin']}) is taken by pid" in text
    assert f"pid {os.getpid()}" in text
    assert "move this one with STRANGLER_ADMIN_BIND=HOST:PORT" in text
    assert "another strangler stack" not in text  # the test's python is no stack
    assert "point clients here" not in text


@pytest.fixture
def proxy(tmp_path: Path, supervisor) -> StackConfig:
    backend = free_port()
    routes = tmp_path / "routes.yaml"
    url = f"http://127.0.0.1:{backend}"
    write_atomically(routes, routes_text({"a": url, "b": url}))
    cfg = replace(StackConfig.on_free_ports(tmp_path / "var"), workers=2)
    supervisor.start(echo_spec("a", backend, "gthread"))
    supervisor.start(proxy_spec(cfg, routes))
    return cfg


def test_a_second_proxy_on_the_same_port_stops_at_once_with_the_address(tmp_path, proxy):
    routes = tmp_path / "routes.yaml"
    env = {
        **os.environ,
        "STRANGLER_PROXY_BIND": f"127.0.0.1:{proxy.proxy_port}",
        "STRANGLER_ADMIN_BIND": f"127.0.0.1:{free_port()}",
    }
    argv = python_module("strangler.proxy.server", "--routes", str(routes))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (
        f"cannot listen on 127.0.0.1:{proxy.proxy_port} (STRANGLER_PROXY_BIND): "
        "Address already in use: another process listens there; stop it, or set "
        "STRANGLER_PROXY_BIND to a free address"
    ) in done.stderr
    assert requests.get(proxy.proxy_url + "/x", timeout=10).json()["backend"] == "a"


def test_no_process_can_join_the_admin_port_with_so_reuseport(proxy):
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError, match="in use"):
            intruder.bind(("127.0.0.1", proxy.admin_port))


def test_a_process_joining_the_public_port_with_so_reuseport_gets_no_connection(proxy):
    """The workers' SO_REUSEPORT group is steered to the workers' own sockets only."""
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        intruder.bind(("127.0.0.1", proxy.proxy_port))  # the kernel lets the same user join...
        intruder.listen()
        intruder.setblocking(False)
        backends = []
        for _ in range(60):  # a new connection each: each is placed by the kernel anew
            resp = requests.get(proxy.proxy_url + "/x", headers={"Connection": "close"}, timeout=10)
            backends.append(resp.headers["X-Strangler-Backend"])
        assert backends == ["a"] * 60  # ...but every connection reached the proxy
        with pytest.raises(BlockingIOError):
            intruder.accept()


def test_readiness_answered_by_another_process_is_not_readiness(supervisor):
    """A probe that succeeds while someone else holds the port (a stack that grabbed it
    between the check and the start) fails the start, naming the holder."""
    port = free_port()
    squatter = socket.socket()

    def answered_by_someone_else() -> bool:
        if not squatter.getsockname()[1]:  # not bound yet: grab the port now
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        return True

    spec = ChildSpec(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
        ready=answered_by_someone_else, ports=(Port("127.0.0.1", port, "SLEEPER_BIND"),),
    )  # fmt: skip
    with squatter, pytest.raises(StartError) as caught:
        supervisor.start(spec, timeout=10)
    assert f"sleeper: port {port} (SLEEPER_BIND) is held by pid {os.getpid()}" in str(caught.value)
    assert "not by the process started" in str(caught.value)


def test_readiness_waits_for_the_child_to_hold_its_port(supervisor):
    port = free_port()
    code = (
        "import socket, time\n"
        "time.sleep(0.3)\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "time.sleep(60)\n"
    )
    spec = ChildSpec(
        "listener", [sys.executable, "-c", code], ready=lambda: True,
        ports=(Port("127.0.0.1", port, "LISTENER_BIND"),),
    )  # fmt: skip
    child = supervisor.start(spec, timeout=30)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert alive(child.process.pid)
