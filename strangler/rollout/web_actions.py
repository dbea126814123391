"""`python -m strangler.rollout.web_actions`: the dashboard's view of rollouts and its verbs.

Like `strangler.control.web_actions` (the data plane imports nothing of the toolkit, so the
admin listener runs this module as a process of its own): one JSON request on stdin, one JSON
answer on stdout, exit 0 when done, 1 when refused (the answer says why), 2 on a request this
module cannot read. The verbs are `strangler rollout pause|resume|abort ROUTE --reason`'s
own functions, under the state's lock and audited; what they print becomes the "message".

    {"verb": "rollouts"} -> {"var": DIR, "rollouts": {ROUTE: STATE}}
    {"verb": "pause"|"resume"|"abort", "routes": PATH, "route": NAME, "reason": TEXT,
     "user": WHO} -> {"action": VERB, "route": NAME, "message": TEXT, "rollout": STATE}
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any

from strangler.control import project
from strangler.control.dataplane import RecordError
from strangler.control.shift import ControlError
from strangler.control.web_actions import serve_one
from strangler.rollout import cli, commands
from strangler.rollout.state import RolloutError, RolloutState, StateFiles
from strangler.routing.records import RoutingConfigError

VERBS = ("pause", "resume", "abort")


def summary(state: RolloutState, files: StateFiles) -> dict[str, Any]:
    """What the page shows of one rollout: phase, step, plan, the last analysis."""
    last = state.analyses[-1] if state.analyses else None
    return {
        "route": state.route,
        "state": state.phase,
        "step": state.step + 1,
        "steps": list(state.plan["steps"]),
        "percent": state.percent,
        "entered_at": state.entered_at,
        "due_at": state.due_at,
        "interval": state.plan.get("interval"),
        "failed": state.failed,
        "failed_checks": state.plan.get("failed_checks"),
        "reason": state.reason,
        "verdict": last and last["verdict"],
        "reasons": last["reasons"] if last else [],
        "analysed_at": last and last.get("time"),
        "controller": files.controller_running(),
        "updated_at": state.updated_at,
    }


def rollouts(var: Path) -> dict[str, Any]:
    """Every route's rollout under `var`/rollout/; an unreadable state is named, not skipped."""
    found: dict[str, Any] = {}
    for path in sorted((var / "rollout").glob("*.json")):
        files = StateFiles(var, path.stem)
        try:
            state = files.load()
        except RolloutError as exc:
            found[path.stem] = {"route": path.stem, "state": "unreadable", "reason": str(exc)}
            continue
        if state is not None:
            found[path.stem] = summary(state, files)
    return {"var": str(var), "rollouts": found}


def act(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    verb, route = request["verb"], request["route"]
    if not isinstance(route, str) or not route or "/" in route or route.startswith("."):
        return 1, {"error": "refused", "message": f"route must be a route's name, got {route!r}"}
    args = argparse.Namespace(routes=request["routes"], admin=None, reason=request["reason"],
                              user=request.get("user"), json=False)  # fmt: skip
    printed = io.StringIO()
    try:
        session = cli.session_from(args, route)
        with contextlib.redirect_stdout(printed):
            commands.COMMANDS[verb](session, args)
        state = session.files.load()
    except (RolloutError, ControlError, RoutingConfigError, RecordError, OSError) as exc:
        return 1, {"error": "refused", "message": str(exc).replace("\n", " ")}
    assert state is not None  # the command just wrote it
    return 0, {
        "action": verb,
        "route": route,
        "message": " ".join(printed.getvalue().split()),
        "rollout": summary(state, session.files),
    }


def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(exit status, answer) for one request."""
    verb = request.get("verb")
    if verb == "rollouts":
        try:
            return 0, rollouts(project.load().var)
        except (project.ProjectError, OSError) as exc:
            return 1, {"error": "refused", "message": str(exc)}
    if verb not in VERBS:
        return 2, {"error": "bad_request", "message": f"unknown verb {verb!r}"}
    try:
        return act(request)
    except KeyError as exc:
        return 2, {"error": "bad_request", "message": f"missing {exc.args[0]!r}"}


def main() -> int:
    return serve_one(answer)


if __name__ == "__main__":
    sys.exit(main())
