"""`strangler status` renders the admin status as a readable table."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from strangler import cli
from strangler.control import dataplane, status
from strangler.proxy import admin
from strangler.stack.supervisor import free_port
from tests.unit.proxy.test_admin import events, snapshot


def test_the_table_shows_routes_splits_and_backend_figures():
    doc = admin.status_document([snapshot(0), snapshot(1)], now=1000.0)
    text = status.render(doc)
    assert "generation 1" in text and "2 workers, converged" in text and "affinity ok" in text
    route_line = next(line for line in text.splitlines() if line.startswith("verification "))
    assert "/api/verification/" in route_line
    assert "monolith 75% / verification 25%" in route_line and "json:to 600s" in route_line
    monolith = next(line for line in text.splitlines() if line.startswith("monolith "))
    assert monolith.split()[:4] == ["monolith", "closed", "2", "2"]
    assert "last reload error: none" in text


def test_a_degraded_affinity_shows_its_counts_and_routes_their_retry_rule():
    doc = admin.status_document(
        [snapshot(0, events=events(995.0, misses=3, queued_writes=12, retries=2), backlog=5)],
        now=1000.0,
    )
    doc["routes"][0]["retry"] = {"status": 503, "error": "unavailable"}
    doc["routes"][0]["sticky"]["store_timeout"] = 1.5
    text = status.render(doc)
    assert "affinity degraded" in text
    assert "5 placements not stored yet; 2 retries on the fallback in the last minute" in text
    assert "last minute: 3 misses, 12 queued writes, 0 failed recalls, 0 lost writes" in text
    assert "(since start: 3, 12, 0, 0)" in text
    route_line = next(line for line in text.splitlines() if line.startswith("verification "))
    assert "json:to 600s wait 1.5s" in route_line and route_line.endswith("503 unavailable")


def test_a_reload_error_and_disagreeing_workers_are_shown():
    doc = admin.status_document(
        [snapshot(0), snapshot(1, generation=2, error="routes.yaml: split: bad")], now=1000.0
    )
    text = status.render(doc)
    assert "RELOADING" in text and "last reload error: routes.yaml: split: bad" in text


def test_no_workers_yet():
    assert "no worker" in status.render({"workers": []})


class FakeAdmin:
    """An admin listener that answers /_strangler/status with whatever the test sets."""

    def __init__(self) -> None:
        self.document: dict = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(fake.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def bind(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"


@pytest.fixture
def fake_admin(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAdmin]:
    admin_server = FakeAdmin()
    monkeypatch.setenv("STRANGLER_ADMIN_BIND", admin_server.bind)
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN", raising=False)
    yield admin_server
    admin_server.server.shutdown()
    admin_server.server.server_close()


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text("# a routing table\\n")
    return path


def running(routes: Path, digest: str, converged: bool = True) -> dict:
    workers = [{"index": 0}, {"index": 1}]
    return {"source": str(routes), "digest": digest, "converged": converged,
            "generation": 7, "workers": workers}  # fmt: skip


def test_a_shift_is_confirmed_once_every_worker_runs_the_new_file(
    fake_admin: FakeAdmin, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = hashlib.sha256(routes_file.read_bytes()).hexdigest()
    fake_admin.document = running(routes_file, digest)
    assert status.confirm_applied(routes_file, "shift", timeout=2) == 0
    assert "generation 7 in all 2 workers" in capsys.readouterr().out


def test_a_proxy_that_keeps_the_old_table_is_reported(
    fake_admin: FakeAdmin, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_admin.document = running(routes_file, "0" * 64)
    assert status.confirm_applied(routes_file, "shift", timeout=0.3) == 1
    assert "still runs generation 7" in capsys.readouterr().err


def test_workers_that_disagree_are_not_yet_applied(
    fake_admin: FakeAdmin, routes_file: Path
) -> None:
    digest = hashlib.sha256(routes_file.read_bytes()).hexdigest()
    fake_admin.document = running(routes_file, digest, converged=False)
    assert status.confirm_applied(routes_file, "shift", timeout=0.3) == 1


def test_a_proxy_running_another_file_is_not_waited_for(
    fake_admin: FakeAdmin, routes_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_admin.document = running(routes_file.with_name("other.yaml"), "0" * 64)
    assert status.confirm_applied(routes_file, "shift", timeout=2) == 0
    assert "not waiting" in capsys.readouterr().out


def recorded(var: Path, admin_url: str, pid: int | None = None) -> None:
    plane = dataplane.DataPlane.of_this_process(
        "embedded", var / "routes.yaml", "http://127.0.0.1:8000", admin_url
    )
    dataplane.record(var, plane if pid is None else replace(plane, pid=pid))


@pytest.mark.parametrize(
    ("flag", "env", "record", "expected"),
    [
        ("http://flag:1", {"STRANGLER_ADMIN_BIND": "env:2"}, "http://rec:3", "http://flag:1"),
        (None, {"STRANGLER_ADMIN_BIND": "env:2"}, "http://rec:3", "http://env:2"),
        (None, {}, "http://rec:3", "http://rec:3"),
        (None, {}, None, "http://127.0.0.1:8009"),
        (None, {}, "stale", "http://127.0.0.1:8009"),
    ],
)
def test_the_admin_url_is_the_flag_else_the_env_else_the_record_else_8009(
    tmp_path: Path, flag, env, record, expected
) -> None:
    if record == "stale":
        recorded(tmp_path, "http://rec:3", pid=2**22 + 1)  # above pid_max: never a process
    elif record:
        recorded(tmp_path, record)
    assert status.find_admin(flag, env, tmp_path).url == expected


def test_status_and_shift_find_the_recorded_data_plane_with_no_port_given(
    fake_admin: FakeAdmin,
    routes_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STRANGLER_ADMIN_BIND")
    monkeypatch.setenv("STRANGLER_VAR", str(tmp_path / "var"))
    recorded(tmp_path / "var", f"http://{fake_admin.bind}")
    digest = hashlib.sha256(routes_file.read_bytes()).hexdigest()
    fake_admin.document = running(routes_file, digest)
    assert status.confirm_applied(routes_file, "shift", timeout=2) == 0
    assert f"the proxy at http://{fake_admin.bind} runs generation 7" in capsys.readouterr().out
    fake_admin.document = admin.status_document([snapshot(0)], now=1000.0)
    assert cli.main(["status"]) == 0
    assert "generation 1" in capsys.readouterr().out


def test_an_unreachable_recorded_data_plane_is_named_with_its_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRANGLER_ADMIN_BIND", raising=False)
    monkeypatch.setenv("STRANGLER_VAR", str(tmp_path))
    recorded(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert cli.main(["status"]) == 1
    assert f"(the embedded data plane of pid {os.getpid()}, recorded)" in capsys.readouterr().err


def test_an_unreadable_record_stops_status_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRANGLER_ADMIN_BIND", raising=False)
    monkeypatch.setenv("STRANGLER_VAR", str(tmp_path))
    dataplane.path(tmp_path).write_text("{not json")
    assert cli.main(["status"]) == 1
    assert f"{dataplane.path(tmp_path)}: not valid JSON" in capsys.readouterr().err
