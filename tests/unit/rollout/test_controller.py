"""The controller on a fake data plane: steps, waits, aborts, resumes, refuses a second run.

The routing file, the state and the audit log are real files; only the admin status is a
fake (counts that grow with the split, from a candidate that behaves as each test says).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strangler.control.shift import shift
from strangler.loadtests.rollout_run import RolloutPlan, write_rollout
from strangler.proxy.metrics import BOUNDS
from strangler.rollout import commands
from strangler.rollout.commands import Session
from strangler.rollout.controller import Controller, Target
from strangler.rollout.state import ABORTED, PAUSED, PROMOTED, RolloutError, StateFiles
from strangler.stack.specs import DEMO_ROUTES

FAST, SLOW = BOUNDS.index(0.01), BOUNDS.index(0.1)


@dataclass
class FakePlane:
    """The admin status of a data plane serving `rate` requests per tick at the file's split."""

    routes: Path
    rate: int = 200
    errors: float = 0.0  # share of the new backend's answers that are 500
    slot: int = FAST  # latency bucket of the new backend
    counts: dict = field(default_factory=dict)

    def serve(self) -> None:
        text = self.routes.read_text()
        share = int(
            text.split("verification: ", 2)[2].split("}")[0]
        )  # split: {..., verification: N}
        for backend, n in (("monolith", self.rate * (100 - share) // 100),
                           ("verification", self.rate * share // 100)):  # fmt: skip
            bad = int(n * self.errors) if backend == "verification" else 0
            series = self.counts.setdefault(backend, {
                "requests": 0, "errors": 0, "connect_failures": 0,
                "buckets": [0] * (len(BOUNDS) + 1), "outcomes": {}})  # fmt: skip
            series["requests"] += n
            series["errors"] += bad
            series["buckets"][self.slot if backend == "verification" else FAST] += n
            outcomes = series["outcomes"]
            outcomes["200 status=approved"] = outcomes.get("200 status=approved", 0) + n - bad
            outcomes["500"] = outcomes.get("500", 0) + bad

    def fetch(self, admin_url: str, token: str | None, timeout: float = 5) -> dict:
        digest = hashlib.sha256(self.routes.read_bytes()).hexdigest()
        doc = {"digest": digest, "converged": True, "analysis": {"verification": self.counts}}
        return json.loads(json.dumps(doc))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(tmp_path: Path):
    routes = tmp_path / "routes.yaml"
    routes.write_bytes(DEMO_ROUTES.read_bytes())
    write_rollout(routes, RolloutPlan(steps=(10, 50, 100), interval="2s", min_requests=20))
    plane, clock = FakePlane(routes), Clock()
    target = Target(routes, tmp_path / "audit.log", "http://127.0.0.1:9")
    files = StateFiles(tmp_path / "var", "verification")
    session = Session(files, target)
    lines: list[str] = []

    def controller() -> Controller:
        return Controller(files, target, lines.append, clock, plane.fetch)

    return argparse.Namespace(routes=routes, plane=plane, clock=clock, files=files,
                              session=session, controller=controller, lines=lines,
                              audit=target.audit)  # fmt: skip


def share(rig) -> int:
    return int(rig.routes.read_text().split("verification: ", 2)[2].split("}")[0])


def run(rig, controller: Controller, seconds: float, serve: bool = True) -> str:
    """Tick every 0.5 s of fake time for `seconds`, traffic flowing between ticks."""
    phase = ""
    for _ in range(int(seconds / 0.5)):
        phase = controller.tick()
        if phase in (PROMOTED, ABORTED):
            break
        if serve:
            rig.plane.serve()
        rig.clock.now += 0.5
    return phase


def audit(rig) -> list[dict]:
    return [json.loads(line) for line in rig.audit.read_text().splitlines()]


def start(rig) -> None:
    commands.start(rig.session, {})


def test_a_faithful_candidate_is_promoted_through_every_step_each_audited(rig) -> None:
    start(rig)
    assert run(rig, rig.controller(), 60) == PROMOTED
    assert share(rig) == 100
    lines = audit(rig)
    assert [line["new_split"]["verification"] for line in lines] == [10, 50, 100]
    assert [line["rollout"]["step"] for line in lines] == [1, 2, 3]
    passed = lines[1]["rollout"]
    assert passed["verdict"] == "passed" and passed["figures"]["new_requests"] >= 100
    assert "step 1 passed" in lines[1]["reason"]


def test_errors_abort_after_failed_checks_back_to_0_with_reason_and_figures(rig) -> None:
    start(rig)
    rig.plane.errors = 0.2
    assert run(rig, rig.controller(), 60) == ABORTED
    assert share(rig) == 0
    last = audit(rig)[-1]
    assert last["action"] == "rollback" and "above max_error_rate" in last["reason"]
    assert last["rollout"]["figures"]["new_error_rate"] == pytest.approx(0.2, abs=0.01)
    state = rig.files.load()
    assert state.phase == ABORTED and state.failed == 2 and "max_error_rate" in state.reason
    judged = [a["verdict"] for a in state.analyses if a["verdict"] != "waiting"]
    assert judged[-2:] == ["failed", "failed"]  # consecutive: a window too small to judge waits


def test_a_slow_candidate_is_rolled_back(rig) -> None:
    start(rig)
    rig.plane.slot = SLOW
    assert run(rig, rig.controller(), 60) == ABORTED
    assert "max_latency_ratio" in rig.files.load().reason


def test_no_traffic_means_no_promotion(rig) -> None:
    start(rig)
    assert run(rig, rig.controller(), 60, serve=False) == "running"
    state = rig.files.load()
    assert state.step == 0 and share(rig) == 10
    assert {a["verdict"] for a in state.analyses} == {"waiting"}


def test_a_new_controller_resumes_at_the_same_step(rig) -> None:
    start(rig)
    run(rig, rig.controller(), 3)  # at step 1, its window started
    before = rig.files.load()
    assert before.step == 0 and before.baseline is not None
    assert run(rig, rig.controller(), 60) == PROMOTED  # a fresh controller: same files
    assert [line["new_split"]["verification"] for line in audit(rig)] == [10, 50, 100]


def test_a_step_decided_but_not_shifted_is_entered_never_skipped(rig) -> None:
    start(rig)
    run(rig, rig.controller(), 1)
    state = rig.files.load()
    state.step, state.shifted = 1, False  # killed after writing the decision, before the shift
    rig.files.save(state)
    rig.controller().tick()
    assert share(rig) == 50 and rig.files.load().shifted


def test_two_controllers_refuse_to_run_together(rig) -> None:
    start(rig)
    held = rig.files.hold_run_lock()
    try:
        with pytest.raises(RolloutError, match="another controller runs"):
            StateFiles(rig.files.dir.parent, "verification").hold_run_lock()
        with pytest.raises(RolloutError, match="another controller runs"):
            commands.start(rig.session, {})
    finally:
        os.close(held)


def test_pause_stops_the_steps_and_resume_goes_on(rig) -> None:
    start(rig)
    args = argparse.Namespace(reason=None, json=False)
    commands.pause(rig.session, args)
    assert run(rig, rig.controller(), 20) == PAUSED and share(rig) == 0
    commands.resume(rig.session, args)
    assert run(rig, rig.controller(), 60) == PROMOTED


def test_abort_and_promote_apply_at_once_without_a_controller(rig) -> None:
    start(rig)
    run(rig, rig.controller(), 1)
    commands.abort(rig.session, argparse.Namespace(reason="looks wrong", json=False))
    assert share(rig) == 0 and audit(rig)[-1]["reason"] == "rollout aborted: looks wrong"
    with pytest.raises(RolloutError, match="aborted"):
        commands.start(rig.session, {})
    commands.resume(rig.session, argparse.Namespace(reason=None, json=False))
    assert rig.files.load().step == 0
    run(rig, rig.controller(), 1)
    assert share(rig) == 10
    commands.promote(rig.session, argparse.Namespace(reason=None, json=False))
    assert share(rig) == 100 and rig.files.load().phase == PROMOTED


def test_a_split_changed_by_hand_pauses_the_rollout(rig) -> None:
    start(rig)
    run(rig, rig.controller(), 1)
    shift(rig.routes, "verification", 0, "by hand", audit_path=rig.audit)
    assert rig.controller().tick() == PAUSED
    assert "changed to 0% outside the rollout" in rig.files.load().reason
    assert share(rig) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"steps": "5,1,100"}, "--steps: steps must rise strictly"),
     ({"interval": "soon"}, "--interval: must be a duration"),
     ({"min_requests": "many"}, "--min-requests: must be a whole number"),
     ({"max_latency_ratio": "0.5"}, "--max-latency-ratio: must be a number of at least 1")],
)  # fmt: skip
def test_bad_overrides_are_refused_by_flag(rig, overrides: dict, message: str) -> None:
    with pytest.raises(RolloutError, match=message):
        commands.start(rig.session, overrides)


def test_overrides_replace_the_block_s_values(rig) -> None:
    commands.start(rig.session, {"steps": "20,100", "interval": "1s"})
    state = rig.files.load()
    assert state.plan["steps"] == [20, 100] and state.plan["interval"] == 1.0
