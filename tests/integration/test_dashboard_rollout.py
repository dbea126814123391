"""A rollout on the dashboard, in a real browser against a live stack: its state on the page,
paused and then aborted through the page, which `strangler rollout status` and the audit log
agree with. The real controller runs (a long interval: it stays at its first step)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.loadtests.rollout_run import ControllerProcess, RolloutPlan, write_rollout
from strangler.stack.running import MIGRATED_ROUTE, running_stack
from tests.integration.polling import wait_for
from tests.integration.test_dashboard_browser import (
    audit_records,
    browser_or_skip,
    new_percent,
    page_url,
    read,
)

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.slow]
PLAN = RolloutPlan(steps=(10, 50, 100), interval="600s")
BOX = f"#route-{MIGRATED_ROUTE} .rollout-controls"


def rollout_status(running, var: Path) -> str:
    strangler = str(Path(sys.executable).with_name("strangler"))
    argv = [strangler, "rollout", "status", MIGRATED_ROUTE, "--routes", str(running.routes),
            "--admin", running.cfg.admin_url]  # fmt: skip
    env = {**os.environ, "STRANGLER_VAR": str(var)}
    env.pop("STRANGLER_ADMIN_BIND", None)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def click(browser, verb: str, reason: str) -> str:
    """`verb` through the page, with `reason`; the result it shows."""
    card = browser.find_element("css selector", f"#route-{MIGRATED_ROUTE}")
    card.find_element("css selector", "form.act .reason").send_keys(reason)
    card.find_element("css selector", f".rollout-{verb}").click()
    output = card.find_element("css selector", "output.result")
    wait_for(lambda: "audited" in output.text or "refused" in output.text, f"the {verb}")
    return output.text


def test_a_rollout_is_shown_paused_and_aborted_through_the_page(tmp_path: Path) -> None:
    browser = browser_or_skip()
    var = tmp_path / "var"
    env = {"STRANGLER_VAR": str(var), "STRANGLER_AUDIT_LOG": str(var / "audit.log")}
    controller = None
    try:
        with running_stack(var, workers=1, env=env) as running:
            assert running.routes is not None
            write_rollout(running.routes, PLAN)
            controller = ControllerProcess(running, MIGRATED_ROUTE).start()
            browser.get(page_url(running))
            wait_for(lambda: "rollout running" in (read(browser, BOX) or ""),
                     "the page to show the rollout", 30)  # fmt: skip
            wait_for(lambda: new_percent(browser) == "10", "the first step served")
            text = read(browser, BOX)
            assert "step 1/3 (10 %) of [10] → 50 → 100 %" in text
            assert read(browser, BOX, "data-state") == "running"

            said = click(browser, "pause", "p99 looks odd, holding")
            assert "paused at step 1 (10%)" in said, said
            wait_for(lambda: "rollout paused" in read(browser, BOX), "the page to show it paused")
            assert "paused" in rollout_status(running, var).splitlines()[0]
            pause = audit_records(running)[-1]
            assert (pause["action"], pause["user"]) == ("rollout-pause", "dashboard from 127.0.0.1")
            assert pause["reason"] == "rollout pause: p99 looks odd, holding"
            wait_for(lambda: "rollout pause: p99 looks odd" in read(browser, "#audit tbody"),
                     "the audit line on the page")  # fmt: skip

            said = click(browser, "abort", "wrong answers reported")
            assert "aborted at step 1 (10%): wrong answers reported" in said, said
            wait_for(lambda: new_percent(browser) == "0", "the page to see the route at 0 %")
            assert "aborted" in rollout_status(running, var).splitlines()[0]
            abort = audit_records(running)[-1]
            assert (abort["action"], abort["new_split"]["verification"]) == ("rollback", 0)
            assert abort["user"] == "dashboard from 127.0.0.1"
            buttons = browser.execute_script(
                "return [...document.querySelectorAll(arguments[0] + ' button')]"
                ".map((b) => b.className + (b.disabled ? ':off' : ':on'))", BOX)  # fmt: skip
            assert buttons == ["rollout-pause:off", "rollout-resume:on", "rollout-abort:off"]
    finally:
        if controller is not None:
            controller.stop()
        browser.quit()
