"""The running data plane's record: written whole, found while it runs, stale once it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strangler.control import dataplane
from strangler.control.dataplane import DataPlane, RecordError
from tests.integration.polling import wait_for


def ours(tmp_path: Path, **extra: str) -> DataPlane:
    return DataPlane.of_this_process(
        "embedded", tmp_path / "routes.yaml", "http://127.0.0.1:8000", "http://127.0.0.1:8009",
        **extra,
    )  # fmt: skip


def exited_pid() -> int:
    """The pid of a process that ran and was reaped: nobody has it (for now)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_a_record_reads_back_as_written_and_is_found_while_its_process_runs(tmp_path):
    plane = ours(tmp_path)
    path = dataplane.record(tmp_path / "var", plane)
    assert path == tmp_path / "var" / "dataplane.json"
    assert dataplane.load(tmp_path / "var") == plane
    document = json.loads(path.read_text())
    assert document["kind"] == "embedded" and document["pid"] == os.getpid()
    assert document["admin_url"] == "http://127.0.0.1:8009"
    assert document["routes"] == str((tmp_path / "routes.yaml").resolve())
    assert [p.name for p in path.parent.iterdir()] == ["dataplane.json"]  # no partial left


def test_a_kind_keeps_fields_of_its_own_beside_the_common_ones(tmp_path):
    plane = replace(
        ours(tmp_path, runtime_socket="/run/haproxy.sock", stats_url="http://127.0.0.1:8404"),
        kind="haproxy",
        admin_url=None,
    )
    dataplane.record(tmp_path, plane)
    document = json.loads(dataplane.path(tmp_path).read_text())
    assert document["runtime_socket"] == "/run/haproxy.sock" and document["admin_url"] is None
    again = dataplane.load(tmp_path)
    assert again is not None and again.extra["stats_url"] == "http://127.0.0.1:8404"


def test_no_record_is_no_data_plane(tmp_path):
    assert dataplane.load(tmp_path / "var") is None
    assert dataplane.clear(tmp_path / "var") is False


def test_a_record_whose_process_is_gone_is_stale(tmp_path):
    dataplane.record(tmp_path, replace(ours(tmp_path), pid=exited_pid()))
    assert dataplane.read(tmp_path) is not None
    assert dataplane.load(tmp_path) is None


def test_a_record_whose_process_exited_unreaped_is_stale(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        plane = replace(ours(tmp_path), pid=child.pid, started_at=started)
        dataplane.record(tmp_path, plane)
        stat = Path(f"/proc/{child.pid}/stat")
        wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "the exit")
        assert dataplane.load(tmp_path) is None  # a zombie runs nothing
    finally:
        child.wait()


def test_a_pid_reused_by_a_later_process_is_stale(tmp_path):
    # This process started after the record's time: it got the pid by reuse.
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    dataplane.record(tmp_path, replace(ours(tmp_path), started_at=long_ago))
    assert dataplane.load(tmp_path) is None


def test_clear_removes_only_the_record_of_the_process_that_wrote_it(tmp_path):
    other = exited_pid()
    dataplane.record(tmp_path, replace(ours(tmp_path), pid=other))
    assert dataplane.clear(tmp_path) is False
    assert dataplane.path(tmp_path).exists()
    assert dataplane.clear(tmp_path, pid=other) is True
    assert not dataplane.path(tmp_path).exists()


def test_a_new_record_replaces_a_stale_one(tmp_path):
    dataplane.record(tmp_path, replace(ours(tmp_path), pid=exited_pid()))
    dataplane.record(tmp_path, ours(tmp_path))
    found = dataplane.load(tmp_path)
    assert found is not None and found.pid == os.getpid()


GOOD = {
    "kind": "embedded", "pid": 1, "started_at": "2026-01-01T00:00:00Z",
    "routes": "/r.yaml", "public_url": "http://127.0.0.1:8000", "admin_url": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a data plane record"),
        (json.dumps({**GOOD, "kind": "nginx"}), "kind: 'nginx' is not one of embedded, haproxy"),
        (json.dumps({**GOOD, "pid": "12"}), "pid: missing or not a whole number"),
        (json.dumps({**GOOD, "pid": True}), "pid: missing or not a whole number"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "routes"}), "routes: missing"),
        (json.dumps({**GOOD, "started_at": "yesterday"}), "started_at: not a time"),
        (json.dumps({**GOOD, "admin_url": 8009}), "admin_url: not a string"),
    ],
)
def test_an_unreadable_record_is_refused_naming_the_file_and_field(tmp_path, text, message):
    dataplane.path(tmp_path).write_text(text)
    with pytest.raises(RecordError) as refused:
        dataplane.load(tmp_path)
    assert str(dataplane.path(tmp_path)) in str(refused.value)
    assert message in str(refused.value)
