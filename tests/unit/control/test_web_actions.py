"""The dashboard's actions in the toolkit: the same validated, audited edit as `strangler shift`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.control import web_actions
from strangler.stack.running import DEMO_ROUTES


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_bytes(DEMO_ROUTES.read_bytes())
    return path


def request(path: Path, **fields) -> dict:
    return {"verb": "shift", "routes": str(path), "route": "verification", "percent": 50,
            "reason": "ramp", "user": "ann via dashboard from 127.0.0.1", **fields}  # fmt: skip


def test_a_shift_edits_the_file_and_audits_who_and_why(routes: Path, tmp_path: Path, monkeypatch):
    audit = tmp_path / "audit.log"
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(audit))
    status, answer = web_actions.answer(request(routes))
    assert status == 0 and answer["changed"]
    assert answer["new_split"] == {"monolith": 50, "verification": 50}
    assert "verification: 50" in routes.read_text()
    line = json.loads(audit.read_text())
    assert (line["user"], line["reason"], line["action"]) == (
        "ann via dashboard from 127.0.0.1", "ramp", "shift",
    )  # fmt: skip
    status, answer = web_actions.answer({**request(routes), "verb": "rollback"})
    assert (status, answer["new_split"]["verification"]) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "status", "needle"),
    [
        ({"route": "nope"}, 1, "no route 'nope'"),
        ({"percent": 101}, 1, "percent must be a whole number"),
        ({"verb": "delete"}, 2, "unknown verb"),
        ({"routes": "/no/such/routes.yaml"}, 1, "no such routing file"),
    ],
)
def test_refused_edits_write_nothing(routes, tmp_path, monkeypatch, fields, status, needle):
    audit = tmp_path / "audit.log"
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(audit))
    before = routes.read_bytes()
    got, answer = web_actions.answer(request(routes, **fields))
    assert got == status and needle in answer["message"]
    assert routes.read_bytes() == before and not audit.exists()


def test_the_module_speaks_json_on_stdin_and_stdout(tmp_path: Path):
    env = {"STRANGLER_AUDIT_LOG": str(tmp_path / "a.log"), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-m", web_actions.__name__], input='{"verb": "where"}',
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert (where.returncode, json.loads(where.stdout)) == (
        0,
        {"audit_log": str(tmp_path / "a.log")},
    )
    bad = subprocess.run(
        [sys.executable, "-m", web_actions.__name__], input="nope", capture_output=True,
        text=True, env=env, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "bad_request"
