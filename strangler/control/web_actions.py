"""`python -m strangler.control.web_actions`: the dashboard's actions, through `shift`'s own path.

The data plane (`strangler.proxy`) sits below the toolkit and imports none of it, so the admin
listener runs this module as a process of its own, as if an engineer had typed `strangler
shift`: one JSON request on stdin, one JSON answer on stdout, exit 0 when done, 1 when the
edit was refused (the answer says why), 2 on a request this module cannot read.

    {"verb": "where"}  -> {"audit_log": PATH}
    {"verb": "shift", "routes": PATH, "route": NAME, "percent": N, "reason": TEXT, "user": WHO}
    {"verb": "rollback", "routes": PATH, "route": NAME, "reason": TEXT, "user": WHO}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from strangler.control.shift import (
    ControlError,
    ShiftResult,
    default_audit_path,
    rollback,
    shift,
)
from strangler.routing.records import RoutingConfigError


def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(exit status, answer) for one request."""
    verb = request.get("verb")
    if verb == "where":
        return 0, {"audit_log": str(default_audit_path())}
    if verb not in ("shift", "rollback"):
        return 2, {"error": "bad_request", "message": f"unknown verb {verb!r}"}
    try:
        if verb == "rollback":
            result = rollback(
                request["routes"], request["route"], request["reason"], request["user"]
            )
        else:
            result = shift(
                request["routes"], request["route"], request["percent"], request["reason"],
                request["user"],
            )  # fmt: skip
    except KeyError as exc:
        return 2, {"error": "bad_request", "message": f"missing {exc.args[0]!r}"}
    except (ControlError, RoutingConfigError, OSError) as exc:
        return 1, {"error": "refused", "message": str(exc).replace("\n", " ")}
    return 0, _result(verb, result)


def _result(verb: str, result: ShiftResult) -> dict[str, Any]:
    return {
        "action": verb,
        "route": result.route,
        "old_split": result.old_split,
        "new_split": result.new_split,
        "changed": result.changed,
        "file": str(result.path),
        "audit_log": str(result.audit_path),
    }


def serve_one(answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]) -> int:
    """One JSON request on stdin answered on stdout by `answer`; its exit status."""
    try:
        request = json.loads(sys.stdin.read())
        if not isinstance(request, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(json.dumps({"error": "bad_request", "message": f"the request is not JSON: {exc}"}))
        return 2
    status, body = answer(request)
    print(json.dumps(body))
    return status


def main() -> int:
    return serve_one(answer)


if __name__ == "__main__":
    sys.exit(main())
