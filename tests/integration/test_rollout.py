"""Progressive rollouts on real stacks: the real controller process, real load, real faults.

Each run starts Redis, the monolith, the service (behind `strangler.loadtests.candidate`, which
injects the fault), the consumer and the proxy on free ports, then `strangler rollout` with 2 s
intervals. Speed is counted in analyses, never asserted in seconds. The candidates that
answer wrongly are independent stacks: they run side by side, once for the module (not the
slow one: beside other stacks the busy machine's own queueing would hide its delay).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from strangler.control import status
from strangler.loadtests.rollout import CANDIDATE_APP, Load, RolloutRun, rollout_under_load
from strangler.loadtests.rollout_run import ControllerProcess, RolloutPlan, follow, write_rollout
from strangler.loadtests.shifting import wait_applied
from strangler.rollout.state import ABORTED, PROMOTED, RolloutState
from strangler.stack.running import running_stack
from tests.integration.polling import wait_for

pytestmark = [pytest.mark.live, pytest.mark.slow]

PLAN = RolloutPlan(steps=(20, 50, 100), interval="2s", min_requests=20, failed_checks=2)
FAULTY = {
    "errors": (PLAN, Load(fault="errors", share=0.3, above=20)),  # 500s once past 20 %
    # drift needs a few hundred answers per window to be significant
    "invalid": (
        replace(PLAN, steps=(25, 50, 100), min_requests=150),
        Load(fault="invalid", share=0.1),
    ),
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[RolloutRun, Path]]:
    """Every faulty candidate's rollout, run at once (each on a stack of its own)."""
    dirs = {name: tmp_path_factory.mktemp(name) / "var" for name in FAULTY}
    with ThreadPoolExecutor(len(FAULTY)) as pool:
        futures = {
            name: pool.submit(rollout_under_load, dirs[name], *FAULTY[name]) for name in FAULTY
        }
        return {name: (future.result(), dirs[name]) for name, future in futures.items()}


def judged(state: RolloutState, step: int) -> list[str]:
    """The verdicts of the step's analyses that had enough traffic to judge."""
    return [a["verdict"] for a in state.analyses if a["step"] == step and a["verdict"] != "waiting"]


def shifts(var_dir: Path) -> list[tuple[str, int, bool]]:
    lines = (var_dir / "audit.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["action"], r["new_split"]["verification"], r["changed"]) for r in records]


def rolled_back(run: RolloutRun) -> RolloutState:
    state = run.followed.state
    assert run.followed.phase == ABORTED and state is not None, run.lines
    assert run.returncode == 1  # the controller says so too
    return state


def test_load_rollout_promotes_a_faithful_candidate_breaking_no_flow() -> None:
    """The CI run of `strangler load-rollout`: exit 0 means promoted with no broken flow."""
    argv = [sys.executable, "-m", "strangler", "load-rollout", "--steps", "20,50,100"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    rows = [line.split() for line in out.splitlines() if line.startswith(("1/3", "2/3", "3/3"))]
    assert [row[1] for row in rows] == ["20%", "50%", "100%"], out
    assert all(int(row[2]) > 0 and row[3:6] == ["0", "0", "0"] for row in rows[:2]), out
    assert [row[-1] for row in rows] == ["passed", "passed", "promoted"], out
    assert "promoted: 100% to the new backend" in out
    assert "broken or unfinished: 0" in out


def test_500s_past_the_first_step_are_rolled_back_at_failed_checks(faulty) -> None:
    run, var = faulty["errors"]
    state = rolled_back(run)
    assert state.step == 1  # 20 % passed; at 50 % the candidate fails
    assert judged(state, 2) == ["failed", "failed"]  # the second failed analysis aborts
    assert "above max_error_rate" in (state.reason or "")
    assert shifts(var)[-1] == ("rollback", 0, True)


def test_a_candidate_whose_p99_triples_is_rolled_back(tmp_path: Path) -> None:
    state = rolled_back(rollout_under_load(tmp_path / "var", PLAN, Load(fault="slow", delay=0.3)))
    assert "above max_latency_ratio" in (state.reason or "")
    assert state.analyses[-1]["figures"]["latency_ratio"] > 1.5


def test_valid_false_for_right_codes_with_no_5xx_is_rolled_back_by_outcome_drift(faulty) -> None:
    state = rolled_back(faulty["invalid"][0])
    assert "above max_outcome_drift" in (state.reason or "")
    assert "max_error_rate" not in (state.reason or "")
    assert all(a["figures"].get("new_error_rate") == 0 for a in state.analyses)


def test_no_traffic_means_no_promotion(tmp_path: Path) -> None:
    with running_stack(tmp_path / "var", workers=1, service_app=CANDIDATE_APP) as running:
        assert running.routes is not None
        write_rollout(running.routes, PLAN)
        wait_applied(running.cfg.admin_url, running.routes)
        controller = ControllerProcess(running, PLAN.route).start()
        try:
            seen = follow(controller.files, 30, until=lambda s: len(s.analyses) >= 3)
        finally:
            controller.stop()
    state = seen.state
    assert state is not None and len(state.analyses) >= 3, controller.lines
    assert state.phase == "running" and state.step == 0
    assert {a["verdict"] for a in state.analyses} == {"waiting"}
    assert shifts(tmp_path / "var") == [("shift", 20, True)]


def unanalysed_after_promotion(admin_url: str, routes: Path) -> dict[str, object]:
    """The route's outcome counts once 100 % is served (and the answers under way at the
    switch are done), and again after 40 more answers of the new backend."""

    def served() -> int:
        return status.fetch(admin_url, None)["backends"]["verification"]["requests"]

    wait_applied(admin_url, routes)
    start = served()
    wait_for(lambda: served() > start + 40, "answers at 100 %", timeout=30)
    before, start = status.fetch(admin_url, None)["analysis"], served()
    wait_for(lambda: served() > start + 40, "answers at 100 %", timeout=30)
    return {"before": before, "after": status.fetch(admin_url, None)["analysis"]}


def test_sigkill_mid_rollout_then_restart_resumes_at_the_same_step(tmp_path: Path) -> None:
    from strangler.loadtests.flows import FlowLoad

    var = tmp_path / "var"
    with running_stack(var, workers=1, service_app=CANDIDATE_APP) as running:
        assert running.routes is not None
        write_rollout(running.routes, PLAN)
        wait_applied(running.cfg.admin_url, running.routes)
        with FlowLoad(running.proxy_url, running.code_of, 8, think=0.3):
            first = ControllerProcess(running, PLAN.route).start()
            at_step_2 = follow(first.files, 60, until=lambda s: s.step == 1 and s.shifted)
            assert at_step_2.state is not None and at_step_2.state.step == 1, first.lines
            second = ControllerProcess(running, PLAN.route).start()
            assert second.wait(30) == 2  # refused: the first one holds the run lock
            assert any("another controller runs" in line for line in second.lines)
            first.kill()
            assert first.files.load().step == 1  # type: ignore[union-attr]
            restarted = ControllerProcess(running, PLAN.route).start()
            try:
                done = follow(restarted.files, 60)
            finally:
                restarted.stop()
            counted = unanalysed_after_promotion(running.cfg.admin_url, running.routes)
    assert done.phase == PROMOTED, restarted.lines
    assert counted["before"] == counted["after"]  # at 100 % the route's answers are not read
    assert any("resuming at step 2 (50%)" in line for line in restarted.lines)
    assert shifts(var) == [("shift", 20, True), ("shift", 50, True), ("shift", 100, True)]
