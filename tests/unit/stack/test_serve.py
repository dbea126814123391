"""`strangler serve` refuses what it cannot serve before it starts anything, naming why."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler import cli
from strangler.control import dataplane
from strangler.stack.supervisor import free_port

TABLE = """\
backends:
  legacy: {url: "http://127.0.0.1:9001"}
  new: {url: "http://127.0.0.1:9002"}
default_backend: legacy
routes:
  - name: orders
    match: {prefix: /api/orders/}
    split: {legacy: 100, new: 0}
    fallback: legacy
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("STRANGLER_ROUTES", "STRANGLER_VAR", "STRANGLER_PROXY_BIND",
                 "STRANGLER_ADMIN_BIND", "STRANGLER_DATA_PLANE", "REDIS_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "routes.yaml").write_text(TABLE)
    return tmp_path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def serve(*flags: str) -> int:
    binds = ["--bind", f"127.0.0.1:{free_port()}", "--admin-bind", f"127.0.0.1:{free_port()}"]
    return cli.main(["serve", *binds, *flags])


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (["--bind", "8000"], "--bind: expected HOST:PORT with a port 1-65535, got '8000'"),
        (["--bind", "127.0.0.1:0"], "--bind: expected HOST:PORT"),
        (["--admin-bind", "localhost:http"], "--admin-bind: expected HOST:PORT"),
        (["--bind", "127.0.0.1:7001", "--admin-bind", "127.0.0.1:7001"], "is the public address"),
        (["--data-plane", "nginx"], "--data-plane: 'nginx' is not one of: embedded"),
        (["--workers", "0"], "--workers: must be 1 or more"),
        (["--routes", "missing.yaml"], "missing.yaml: (file): cannot be read"),
    ],
)
def test_a_bad_flag_or_table_is_refused_with_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], flags: list[str], refusal: str
) -> None:
    assert serve(*flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("strangler serve: ") and refusal in err, err
    assert not (project / "var").exists()  # nothing started, nothing recorded


def test_an_invalid_table_is_refused_naming_the_file_the_route_and_the_value(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "routes.yaml").write_text(TABLE.replace("new: 0", "new: 10"))
    assert serve() == 2
    err = capsys.readouterr().err
    assert f"{project / 'routes.yaml'}: routes[0] (orders).split: percentages sum to 110" in err


def test_an_address_in_use_is_named(
    project: Path, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--bind", f"127.0.0.1:{taken_port}"]) == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}" in capsys.readouterr().err


def test_a_data_plane_already_running_for_the_project_is_not_started_twice(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = dataplane.DataPlane.of_this_process(
        "embedded", project / "routes.yaml", "http://127.0.0.1:8000", "http://127.0.0.1:8009"
    )
    dataplane.record(project / "var", running)
    assert serve() == 1
    err = capsys.readouterr().err
    assert "a data plane already runs for this project: embedded, pid" in err
    assert dataplane.load(project / "var") == running  # left as it was
