"""A worker's answers to the dashboard: its page and reads, and its actions run by the toolkit.

An action (shift, rollback) goes through `strangler.control.shift`, the CLI's validated, locked
and audited edit of routes.yaml, run as a process of its own (`strangler.control.web_actions`)
because the data plane imports nothing of the toolkit. The running workers then apply the
edited file like any other edit; the page sees it in the status. A rollout's verbs (pause,
resume, abort) and the rollouts' states are `strangler.rollout.web_actions`'s, the same way;
the states are cached for `ROLLOUTS_TTL` seconds, since each look is a Python process started
(about 0.15 s of CPU, measured), and dropped after a rollout verb so the page sees it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from strangler.proxy import admin, dashboard, history
from strangler.routing.dispatch import HeaderLookup

if TYPE_CHECKING:
    from strangler.proxy.plane import Plane

log = logging.getLogger("strangler.proxy")
TOOLKIT = "strangler.control.web_actions"
ROLLOUT_TOOLKIT = "strangler.rollout.web_actions"
ROLLOUTS_TTL = 4.0  # seconds; the page asks every 5 s
TOOLKIT_TIMEOUT = 30.0  # seconds: the edit waits up to 10 s for the file's lock


@dataclass(frozen=True)
class AdminRequest:
    method: str
    path: str
    query: dict[str, str]
    lookup: HeaderLookup
    client_ip: str
    body: bytes
    too_large: bool


class Toolkit:
    """Calls into `strangler.control.web_actions`; the audit log's path is asked once."""

    def __init__(self, module: str = TOOLKIT) -> None:
        self.module = module
        self.audit_log: Path | None = None

    async def call(self, request: dict) -> tuple[int, dict]:
        # The proxy's own image installs the data plane alone: no toolkit, no actions there.
        if importlib.util.find_spec(self.module.rpartition(".")[0]) is None:
            message = (
                f"this installation has no {self.module} (the proxy alone): "
                "use `strangler shift` where the routes file is edited"
            )
            return -1, {"error": "actions_unavailable", "message": message}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(
                process.communicate(json.dumps(request).encode()), TOOLKIT_TIMEOUT
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            message = f"{self.module} did not answer in {TOOLKIT_TIMEOUT:g} s"
            return -1, {"error": "action_failed", "message": message}
        try:
            return process.returncode or 0, json.loads(out)
        except ValueError:
            lines = err.decode(errors="replace").strip().splitlines()
            message = lines[-1] if lines else f"exit status {process.returncode}"
            return -1, {"error": "action_failed", "message": f"{self.module}: {message}"}

    async def audit_path(self) -> Path | None:
        if self.audit_log is None:
            status, body = await self.call({"verb": "where"})
            if status == 0:
                self.audit_log = Path(body["audit_log"])
            else:
                log.warning("the dashboard cannot find the audit log: %s", body.get("message"))
        return self.audit_log


class Rollouts:
    """The rollouts' states from `strangler.rollout.web_actions`, one process per `ttl`."""

    def __init__(self, toolkit: Toolkit, ttl: float = ROLLOUTS_TTL) -> None:
        self.toolkit, self.ttl = toolkit, ttl
        self.cached: tuple[float, tuple[int, dict]] | None = None
        self.lock = asyncio.Lock()  # pages polling together share one process

    async def get(self) -> tuple[int, dict]:
        async with self.lock:
            now = asyncio.get_running_loop().time()
            if self.cached is None or now - self.cached[0] >= self.ttl:
                self.cached = (now, await self.toolkit.call({"verb": "rollouts"}))
            return self.cached[1]

    def forget(self) -> None:
        self.cached = None


class Side(Protocol):
    """What a data plane gives the dashboard (the embedded proxy's below, HAProxy's agent)."""

    token: str | None

    def other(self, req: AdminRequest, lookup: HeaderLookup) -> admin.Reply:
        """Any admin path that is not the dashboard's (status, metrics, a 404)."""

    def history(self, since: float | None) -> dict: ...

    async def audit_path(self) -> Path | None: ...

    async def act(self, request: dict) -> tuple[int, dict]:
        """`strangler.control.web_actions` on `request` (a rollout's verb: `strangler.rollout.
        web_actions`): (exit status, answer)."""

    async def rollouts(self) -> tuple[int, dict]:
        """`strangler.rollout.web_actions`'s states of the project's rollouts."""


class EmbeddedSide:
    """A worker of the embedded proxy: its plane, and the toolkit in a process of its own."""

    def __init__(self, plane: Plane, toolkit: Toolkit, rollouts: Rollouts) -> None:
        self.plane, self.toolkit, self.states = plane, toolkit, rollouts
        self.token = plane.settings.admin_token

    def other(self, req: AdminRequest, lookup: HeaderLookup) -> admin.Reply:
        return self.plane.admin_reply(req.method, req.path, lookup, req.client_ip)

    def history(self, since: float | None) -> dict:
        return history.read(self.plane.run_dir / history.FILE, since)

    async def audit_path(self) -> Path | None:
        return await self.toolkit.audit_path()

    async def act(self, request: dict) -> tuple[int, dict]:
        request = {**request, "routes": str(self.plane.watcher.path)}
        if request["verb"] not in dashboard.ROLLOUT_VERBS:
            return await self.toolkit.call(request)
        try:
            return await self.states.toolkit.call(request)
        finally:
            self.states.forget()

    async def rollouts(self) -> tuple[int, dict]:
        return await self.states.get()


async def answer(side: Side, req: AdminRequest) -> admin.Reply:
    """Any admin request: the dashboard's paths here, the others by the side."""
    lookup = dashboard.credentials(req.lookup, req.path, req.query)
    if req.path not in dashboard.PATHS:
        return side.other(req, lookup)
    refusal = admin.authorize(lookup, req.client_ip, side.token)
    if refusal is not None:
        return refusal
    if req.path == dashboard.ACTIONS:
        if req.method != "POST":
            return dashboard.error(405, "method_not_allowed", "actions are POST")
        return await _act(side, req)
    if req.method not in ("GET", "HEAD"):
        return dashboard.error(405, "method_not_allowed", f"{req.path} is GET")
    if req.path == dashboard.HISTORY:
        return dashboard.ok(side.history(_number(req.query.get("since"))))
    if req.path == dashboard.AUDIT:
        return dashboard.ok(dashboard.audit_lines(await side.audit_path()))
    if req.path == dashboard.ROLLOUTS:
        return _toolkit_reply(*await side.rollouts())
    return dashboard.page_reply(req.query, side.token)


async def _act(side: Side, req: AdminRequest) -> admin.Reply:
    refusal = dashboard.cross_site(req.lookup)
    if refusal is not None:
        return refusal
    if req.too_large:
        return dashboard.error(413, "too_large", f"an action is at most {dashboard.MAX_BODY} bytes")
    action = dashboard.parse_action(req.body, req.lookup("content-type"))
    if isinstance(action, admin.Reply):
        return action
    who = f"{action.user} via dashboard" if action.user else "dashboard"
    status, body = await side.act(
        {
            "verb": action.verb,
            "route": action.route,
            "percent": action.percent,
            "reason": action.reason,
            "user": f"{who} from {req.client_ip}",
        }
    )
    if status == 0:
        log.info("dashboard %s of %s: %s", action.verb, action.route,
                 body.get("new_split") or body.get("message"))  # fmt: skip
    return _toolkit_reply(status, body)


def _toolkit_reply(status: int, body: dict) -> admin.Reply:
    if status == 0:
        return dashboard.ok(body)
    if status == 1:
        return dashboard.error(409, "refused", body["message"])
    code = body.get("error", "action_failed")
    return dashboard.error(501 if code == "actions_unavailable" else 500, code, body["message"])


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
