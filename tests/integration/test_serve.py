"""`strangler serve`: one data plane per project, found through its record, stale once killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from strangler.control import dataplane
from strangler.stack.supervisor import free_port
from tests.integration.polling import wait_for
from tests.integration.processes import alive, descendants

pytestmark = [pytest.mark.live, pytest.mark.redis]

BANNER_END = "Ctrl-C stops it."


class NamedBackend(ThreadingHTTPServer):
    """Someone else's backend: answers every GET with its name."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    legacy, new = NamedBackend("legacy"), NamedBackend("new")
    flags = ["--legacy", legacy.url, "--new", new.url, "--route", "things"]
    flags += ["--prefix", "/things/", "--sticky", "header:X-User"]
    subprocess.run([sys.executable, "-m", "strangler.cli", "init", *flags],
                   cwd=tmp_path, env=environment(), check=True, timeout=60)  # fmt: skip
    yield tmp_path
    for server in (legacy, new):
        server.shutdown()
        server.server_close()


def environment(**extra: str) -> dict[str, str]:
    """This environment without the settings that would point `serve` elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_")}
    env.pop("REDIS_URL", None)
    return {**env, **extra}


@dataclass
class Served:
    process: subprocess.Popen
    log: Path
    public_url: str
    admin_url: str

    def output(self) -> str:
        return self.log.read_text()


def start(project: Path, name: str, **env: str) -> Served:
    ports = free_port(), free_port()
    argv = [sys.executable, "-m", "strangler.cli", "serve", "--workers", "1",
            "--bind", f"127.0.0.1:{ports[0]}", "--admin-bind", f"127.0.0.1:{ports[1]}"]  # fmt: skip
    log = project / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=project, env=environment(**env), stdout=out, stderr=subprocess.STDOUT
        )
    return Served(process, log, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")


@pytest.fixture
def started() -> Iterator[list[Served]]:
    """Every `serve` a test starts is killed (with its children) if the test did not stop it."""
    processes: list[Served] = []
    yield processes
    for served in processes:
        tree = descendants(served.process.pid)
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait(30)
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_one_data_plane_per_project_and_a_killed_ones_record_is_replaced(
    project: Path, started: list[Served], redis_url: str
) -> None:
    var = project / "var"
    first = start(project, "first", REDIS_URL=redis_url)
    started.append(first)
    wait_for(lambda: BANNER_END in first.output(), "the first banner", timeout=90)
    assert f"redis         {redis_url}\n" in first.output()  # the given one: none of its own
    assert not any("redis-server" in Path(f"/proc/{pid}/cmdline").read_text()
                   for pid in descendants(first.process.pid) if alive(pid))  # fmt: skip
    plane = dataplane.load(var)
    assert plane is not None and (plane.pid, plane.admin_url) == (
        first.process.pid,
        first.admin_url,
    )
    answer = requests.get(first.public_url + "/things/1", headers={"X-User": "ann"}, timeout=10)
    assert (answer.text, answer.headers["X-Strangler-Backend"]) == ("legacy", "legacy")

    second = start(project, "second", REDIS_URL=redis_url)
    started.append(second)
    assert second.process.wait(60) == 1
    assert "a data plane already runs for this project" in second.output()
    assert dataplane.load(var) == plane  # the running one's record is left alone

    tree = descendants(first.process.pid)
    first.process.kill()  # no clean stop: the record stays behind, naming a dead process
    first.process.wait(30)
    wait_for(lambda: not any(alive(pid) for pid in tree), "the killed serve's children to exit")
    assert dataplane.read(var) == plane and dataplane.load(var) is None

    third = start(project, "third")  # and a redis-server of its own this time
    started.append(third)
    wait_for(lambda: BANNER_END in third.output(), "the third banner", timeout=90)
    assert "(its own)" in third.output()
    replaced = dataplane.load(var)
    assert replaced is not None and replaced.pid == third.process.pid
    shift = subprocess.run(
        [sys.executable, "-m", "strangler.cli", "shift", "things", "100"],
        cwd=project, env=environment(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shift.returncode == 0, shift.stderr
    assert f"live: the proxy at {third.admin_url} runs generation 2" in shift.stdout
    answer = requests.get(third.public_url + "/things/1", headers={"X-User": "bob"}, timeout=10)
    assert answer.headers["X-Strangler-Backend"] == "new"

    tree = descendants(third.process.pid)
    third.process.send_signal(signal.SIGINT)
    assert third.process.wait(60) == 0
    assert "strangler serve: every process stopped" in third.output()
    assert not dataplane.path(var).exists()
    wait_for(lambda: not any(alive(pid) for pid in tree), "every child to exit")
