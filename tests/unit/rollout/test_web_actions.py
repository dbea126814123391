"""The dashboard's rollout verbs and states in the toolkit: the CLI's own pause/resume/abort.

Real routing file, state files and audit log; the data plane is never asked (these verbs
read the split from the file and shift it there).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from strangler.control.shift import shift
from strangler.haproxy.dashboard_side import AgentSide
from strangler.loadtests.rollout_run import RolloutPlan, write_rollout
from strangler.rollout import web_actions
from strangler.rollout.state import (
    ABORTED,
    PAUSED,
    PROMOTED,
    RUNNING,
    RolloutState,
    StateFiles,
    plan_of,
)
from strangler.routing.table import load_table
from strangler.stack.specs import DEMO_ROUTES

WHO = "ann via dashboard from 127.0.0.1"
ANALYSIS = {"time": 1000.0, "step": 2, "percent": 50, "verdict": "failed",
            "reasons": ["error rate 3.0% > 1%"], "figures": {}}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    routes = tmp_path / "routes.yaml"
    routes.write_bytes(DEMO_ROUTES.read_bytes())
    write_rollout(routes, RolloutPlan(steps=(10, 50, 100), interval="60s"))
    monkeypatch.setenv("STRANGLER_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(tmp_path / "audit.log"))
    monkeypatch.setenv("STRANGLER_ADMIN_BIND", "127.0.0.1:9")  # never asked
    return tmp_path


def persist(project: Path, phase: str, step: int = 1) -> StateFiles:
    """A rollout of the demo's verification route at `step` (0-based), the split there."""
    files = StateFiles(project / "var", "verification")
    rollout = load_table(project / "routes.yaml").route("verification").rollout
    state = RolloutState("verification", plan_of(rollout), phase=phase, step=step, shifted=True,
                         entered_at=990.0, failed=1, analyses=[ANALYSIS])  # fmt: skip
    files.save(state)
    percent = 0 if phase == ABORTED else state.percent
    shift(project / "routes.yaml", "verification", percent, "setup", audit_path=project / "x.log")
    return files


def request(project: Path, verb: str, **fields) -> dict:
    return {"verb": verb, "routes": str(project / "routes.yaml"), "route": "verification",
            "reason": "p99 looks odd", "user": WHO, **fields}  # fmt: skip


def split(project: Path) -> int:
    return dict(load_table(project / "routes.yaml").route("verification").split)["verification"]


def audit(project: Path) -> list[dict]:
    path = project / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_states_of_every_rollout_under_var_with_the_last_analysis(project: Path):
    persist(project, RUNNING)
    (project / "var" / "rollout" / "broken.json").write_text("{not json")
    status, body = web_actions.answer({"verb": "rollouts"})
    assert status == 0 and body["var"] == str(project / "var")
    got = body["rollouts"]["verification"]
    assert {k: got[k] for k in ("state", "step", "steps", "percent", "entered_at", "verdict",
                                "reasons", "failed", "failed_checks", "controller")} == {
        "state": "running", "step": 2, "steps": [10, 50, 100], "percent": 50,
        "entered_at": 990.0, "verdict": "failed", "reasons": ["error rate 3.0% > 1%"],
        "failed": 1, "failed_checks": 2, "controller": False,
    }  # fmt: skip
    broken = body["rollouts"]["broken"]
    assert broken["state"] == "unreadable" and "broken.json" in broken["reason"]


def test_no_rollout_directory_is_no_rollouts(project: Path):
    assert web_actions.answer({"verb": "rollouts"}) == (
        0, {"var": str(project / "var"), "rollouts": {}},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("before", "verb", "after", "percent", "said"),
    [
        (RUNNING, "pause", PAUSED, 50, "paused at step 2 (50%)"),
        (PAUSED, "resume", RUNNING, 50, "running at step 2 (50%)"),
        (ABORTED, "resume", RUNNING, 0, "running at step 1 (10%)"),
        (RUNNING, "abort", ABORTED, 0, "aborted at step 2 (50%): p99 looks odd"),
        (PAUSED, "abort", ABORTED, 0, "aborted at step 2 (50%)"),
    ],
)
def test_a_verb_changes_the_state_and_audits_who_and_why(project, before, verb, after,
                                                         percent, said):  # fmt: skip
    files = persist(project, before)
    status, body = web_actions.answer(request(project, verb))
    assert status == 0, body
    assert body["rollout"]["state"] == after == files.load().phase
    assert said in body["message"] and split(project) == percent
    line = audit(project)[-1]
    assert line["user"] == WHO and "p99 looks odd" in line["reason"]
    assert line["action"] == {"abort": "rollback"}.get(verb, f"rollout-{verb}")
    assert line["route"] == "verification" and line["rollout"]["steps"] == [10, 50, 100]


@pytest.mark.parametrize(
    ("before", "fields", "status", "needle"),
    [
        (PAUSED, {"verb": "pause"}, 1, "cannot pause a rollout that is paused"),
        (RUNNING, {"verb": "resume"}, 1, "cannot resume a rollout that is running"),
        (PROMOTED, {"verb": "abort"}, 1, "cannot abort a rollout that is promoted"),
        (RUNNING, {"verb": "pause", "route": "checkout"}, 1, "checkout: no rollout to pause"),
        (RUNNING, {"verb": "pause", "route": "../verification"}, 1, "must be a route's name"),
        (RUNNING, {"verb": "promote"}, 2, "unknown verb"),
        (RUNNING, {"verb": "pause", "reason": None, "route": None}, 1, "must be a route"),
    ],
)
def test_refused_verbs_change_nothing(project, before, fields, status, needle):
    files = persist(project, before)
    state, routes = files.path.read_bytes(), (project / "routes.yaml").read_bytes()
    got, body = web_actions.answer(request(project, **fields))
    assert got == status and needle in body["message"]
    assert files.path.read_bytes() == state and (project / "routes.yaml").read_bytes() == routes
    assert audit(project) == []


def test_a_request_missing_a_field_is_a_bad_request(project: Path):
    persist(project, RUNNING)
    body = request(project, "pause")
    del body["reason"]
    assert web_actions.answer(body) == (2, {"error": "bad_request", "message": "missing 'reason'"})


def test_the_module_answers_in_a_process_of_its_own(project: Path):
    persist(project, PAUSED)
    module = [sys.executable, "-m", "strangler.rollout.web_actions"]
    done = subprocess.run(module, input=b'{"verb": "rollouts"}', capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rollouts"]["verification"]["state"] == "paused"
    bad = subprocess.run(module, input=b"[", capture_output=True, check=False)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "bad_request"


def test_the_haproxy_agent_reads_and_pauses_through_the_same_process(project: Path):
    persist(project, RUNNING)
    plane = types.SimpleNamespace(watcher=types.SimpleNamespace(path=project / "routes.yaml"))
    side = AgentSide(plane, None)  # type: ignore[arg-type]
    status, body = asyncio.run(side.rollouts())
    assert status == 0 and body["rollouts"]["verification"]["state"] == "running"
    asked = {"verb": "pause", "route": "verification", "percent": None, "reason": "hold",
             "user": WHO}  # fmt: skip
    status, body = asyncio.run(side.act(asked))
    assert status == 0 and body["rollout"]["state"] == "paused"
    assert asyncio.run(side.rollouts())[1]["rollouts"]["verification"]["state"] == "paused"


def test_an_unwritable_audit_log_refuses_the_pause_and_changes_nothing(project, monkeypatch):
    files = persist(project, RUNNING)
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(project / "routes.yaml" / "audit.log"))
    before = files.path.read_bytes()
    status, body = web_actions.answer(request(project, "pause"))
    assert status == 1 and "cannot open the audit log" in body["message"]
    assert files.path.read_bytes() == before and files.load().phase == RUNNING
