"""`strangler shift`/`rollback`: only the numbers change, invalid edits never land, all audited."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest

from strangler import cli
from strangler.control.shift import (
    ControlError,
    default_audit_path,
    default_routes_path,
    edit_split,
    rollback,
    shift,
)
from strangler.routing.records import RoutingConfigError
from strangler.routing.table import load_table, parse_text
from strangler.stack.running import DEMO_ROUTES
from strangler.stack.supervisor import free_port

SHIPPED = DEMO_ROUTES

BLOCK_STYLE = """\
# hand-written, with odd spacing that a YAML dumper would normalise
backends:
  monolith: {url: "http://127.0.0.1:8001"}
  verification:
      url: 'http://127.0.0.1:8002'    # quoted differently
default_backend: monolith
routes:
  # the first route
  - name: verification   # trailing comment
    match:
      prefix: /api/verification/
    split:
      monolith:     100   # old
      verification:   0   # new
    fallback: monolith
  - {name: other, match: {prefix: /api/other/}, split: {monolith: 100}}
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_bytes(SHIPPED.read_bytes())
    return path


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    return tmp_path / "var" / "audit.log"


def audit_lines(audit: Path) -> list[dict]:
    return [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []


def test_shift_changes_only_the_split_numbers_of_the_shipped_file(routes: Path, audit: Path):
    before = routes.read_text()
    result = shift(routes, "verification", 25, "first step", audit_path=audit)
    expected = before.replace(
        "split: {monolith: 100, verification: 0}", "split: {monolith: 75, verification: 25}"
    )
    assert expected != before
    assert routes.read_text() == expected
    assert load_table(routes).routes[0].split == (("monolith", 75), ("verification", 25))
    assert (result.old_split, result.new_split, result.changed) == (
        {"monolith": 100, "verification": 0},
        {"monolith": 75, "verification": 25},
        True,
    )


def test_shift_keeps_block_style_comments_spacing_and_quotes(tmp_path: Path, audit: Path):
    path = tmp_path / "routes.yaml"
    path.write_text(BLOCK_STYLE)
    shift(path, "verification", 5, audit_path=audit)
    assert path.read_text() == BLOCK_STYLE.replace("monolith:     100", "monolith:     95").replace(
        "verification:   0", "verification:   5"
    )


def test_an_audit_line_records_who_what_why_and_when(routes: Path, audit: Path) -> None:
    shift(routes, "verification", 50, "canary looks good", user="alice", audit_path=audit)
    rollback(routes, "verification", "errors up", user="bob", audit_path=audit)
    first, second = audit_lines(audit)
    assert datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0
    assert first["time"].endswith("Z")
    assert {k: v for k, v in first.items() if k != "time"} == {
        "user": "alice",
        "action": "shift",
        "route": "verification",
        "old_split": {"monolith": 100, "verification": 0},
        "new_split": {"monolith": 50, "verification": 50},
        "changed": True,
        "reason": "canary looks good",
        "file": str(routes.resolve()),
    }
    assert (second["user"], second["action"], second["reason"]) == ("bob", "rollback", "errors up")
    assert second["new_split"] == {"monolith": 100, "verification": 0}


def test_a_shift_to_the_current_split_is_audited_but_rewrites_nothing(
    routes: Path, audit: Path
) -> None:
    stat_before = routes.stat()
    result = rollback(routes, "verification", "make sure", audit_path=audit)
    assert not result.changed
    assert (routes.stat().st_ino, routes.stat().st_mtime_ns) == (
        stat_before.st_ino,
        stat_before.st_mtime_ns,
    )
    (line,) = audit_lines(audit)
    assert line["changed"] is False and line["reason"] == "make sure"


def test_the_file_mode_is_kept(routes: Path, audit: Path) -> None:
    routes.chmod(0o640)
    shift(routes, "verification", 1, audit_path=audit)
    assert routes.stat().st_mode & 0o777 == 0o640
    assert not [p for p in routes.parent.iterdir() if p.name.endswith(".tmp")]


ANCHORED = BLOCK_STYLE.replace("    split:\n", "    split: &half\n").replace(
    "split: {monolith: 100}}",
    "split: *half, fallback: monolith}",
)


@pytest.mark.parametrize(
    ("text", "route", "percent", "error", "message"),
    [
        (None, "verification", 101, ControlError, "101"),
        (None, "verification", -1, ControlError, "-1"),
        (None, "verification", True, ControlError, "True"),
        (None, "verification", 5.0, ControlError, "5.0"),
        (None, "verification", "5", ControlError, "'5'"),
        (None, "verificaton", 5, ControlError, "'verificaton'"),
        (BLOCK_STYLE, "other", 5, ControlError, "'other'"),
        (ANCHORED, "verification", 5, ControlError, "more than that split"),
        ("routes: [\n", "verification", 5, RoutingConfigError, "line 2"),
        (
            BLOCK_STYLE.replace("verification:   0", "verification:  10"),
            "verification",
            5,
            RoutingConfigError,
            "sum to 110",
        ),
    ],
    ids=[
        "above 100",
        "negative",
        "bool",
        "float",
        "string",
        "unknown route",
        "no new backend",
        "shared anchor",
        "broken yaml",
        "invalid table",
    ],
)
def test_a_refused_shift_leaves_file_and_audit_untouched(
    tmp_path: Path, audit: Path, text, route, percent, error, message
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text if text is not None else SHIPPED.read_text())
    before = path.read_bytes()
    with pytest.raises(error) as caught:
        shift(path, route, percent, audit_path=audit)
    assert message in str(caught.value)
    assert path.read_bytes() == before
    assert audit_lines(audit) == []


def test_an_unwritable_audit_log_stops_the_edit(routes: Path, tmp_path: Path) -> None:
    before = routes.read_bytes()
    with pytest.raises(ControlError, match="audit log"):
        shift(routes, "verification", 5, audit_path=tmp_path)  # a directory
    assert routes.read_bytes() == before


def assert_serialised(routes: Path, audit: Path, count: int) -> None:
    """Each edit saw the previous one's result: the audit log is one unbroken chain."""
    lines = audit_lines(audit)
    assert len(lines) == count
    for earlier, later in itertools.pairwise(lines):
        assert later["old_split"] == earlier["new_split"]
    final = dict(load_table(routes).routes[0].split)
    assert final == lines[-1]["new_split"]


def test_concurrent_shifts_from_threads_are_serialised(routes: Path, audit: Path) -> None:
    def worker(seed: int) -> None:
        for step in range(6):
            shift(routes, "verification", (seed * 7 + step * 13) % 101, audit_path=audit)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_serialised(routes, audit, 36)


def _process_worker(path: str, audit: str, seed: int) -> None:
    for step in range(5):
        shift(path, "verification", (seed * 11 + step * 17) % 101, audit_path=audit)


def test_concurrent_shifts_from_processes_are_serialised(routes: Path, audit: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_process_worker, args=(str(routes), str(audit), n)) for n in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert_serialised(routes, audit, 15)


def test_cli_shift_and_rollback(routes: Path, audit: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(audit))
    # No proxy listens there: the CLI says the change applies when one starts.
    monkeypatch.setenv("STRANGLER_ADMIN_BIND", f"127.0.0.1:{free_port()}")
    assert (
        cli.main(["shift", "verification", "25%", "--routes", str(routes), "--reason", "go"]) == 0
    )
    out = capsys.readouterr().out
    assert "verification 0% -> 25%" in out and "applies when the proxy starts" in out
    assert cli.main(["rollback", "verification", "--routes", str(routes)]) == 0
    assert "verification 25% -> 0%" in capsys.readouterr().out
    assert [line["reason"] for line in audit_lines(audit)] == ["go", None]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["shift", "verification", "half"], "'half'"),
        (["shift", "verification", "150"], "150"),
        (["shift", "nope", "5"], "'nope'"),
        (["rollback", "verification", "--routes", "/nonexistent/routes.yaml"], "no such"),
    ],
)
def test_cli_errors_are_one_line_on_stderr_with_exit_2(
    routes: Path, audit: Path, monkeypatch, capsys, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(audit))
    monkeypatch.setenv("STRANGLER_ROUTES", str(routes))
    before = routes.read_bytes()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert err.startswith(f"strangler {argv[0]}: ")
    assert routes.read_bytes() == before


def test_default_paths_follow_the_environment_then_the_project(monkeypatch) -> None:
    repository = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(repository / "tests")  # the project file is found from below, too
    assert default_routes_path({}) == repository / "proxy" / "routes.yaml"
    assert default_routes_path({"STRANGLER_ROUTES": "/x/r.yaml"}) == Path("/x/r.yaml")
    assert default_audit_path({}) == repository / "var" / "audit.log"
    assert default_audit_path({"STRANGLER_VAR": "/v"}) == Path("/v/audit.log")
    assert default_audit_path({"STRANGLER_AUDIT_LOG": "/a.log", "STRANGLER_VAR": "/v"}) == Path(
        "/a.log"
    )
    assert os.fspath(default_routes_path()).endswith("routes.yaml")


def test_edit_split_is_pure_and_usable_for_copies_of_the_table() -> None:
    raw = SHIPPED.read_bytes()
    edit = edit_split(raw, "copy.yaml", "verification", 50)
    assert edit.changed and SHIPPED.read_bytes() == raw
    assert parse_text(edit.text, "copy.yaml").routes[0].split == (
        ("monolith", 50),
        ("verification", 50),
    )
    assert edit_split(edit.text, "copy.yaml", "verification", 50).text == edit.text


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_change_whose_audit_line_cannot_be_written_is_undone(routes: Path) -> None:
    before = routes.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        shift(routes, "verification", 25, audit_path="/dev/full")
    assert routes.read_bytes() == before
