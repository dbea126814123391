"""The dashboard's requests answered over a side (a fake one built on `Side`), and the
toolkit called as a process of its own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from strangler.proxy import admin, dashboard
from strangler.proxy.dashboard_server import AdminRequest, Rollouts, Toolkit, answer


class FakeSide:
    """A data plane as the dashboard sees it, answering actions with a canned exit status."""

    def __init__(self, status: int = 0, token: str | None = None) -> None:
        self.token = token
        self.status = status
        self.acted: list[dict] = []

    def other(self, req, lookup) -> admin.Reply:
        return admin.Reply(200, "text/plain", b"other " + req.path.encode())

    def history(self, since):
        return {"samples": [], "since": since}

    async def audit_path(self) -> Path | None:
        return None

    async def act(self, request: dict) -> tuple[int, dict]:
        self.acted.append(request)
        if self.status == 0:
            return 0, {"new_split": {"a": 50, "b": 50}}
        return self.status, {"error": "refused", "message": "no route 'x'"}

    async def rollouts(self) -> tuple[int, dict]:
        if self.status == 0:
            return 0, {"rollouts": {"r": {"state": "running", "step": 2}}}
        return self.status, {"error": "refused", "message": "var/rollout: unreadable"}


def request(path, method="GET", body=b"", headers=None, ip="127.0.0.1", url=None):
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return AdminRequest(method, path, dashboard.query_of(url or path), lowered.get, ip, body,
                        too_large=len(body) > dashboard.MAX_BODY)  # fmt: skip


ACTION = json.dumps({"action": "shift", "route": "r", "percent": 50, "reason": "why",
                     "user": "ana"}).encode()  # fmt: skip
BROWSER = {"Content-Type": "application/json", "Host": "127.0.0.1:8009",
           "Origin": "http://127.0.0.1:8009"}  # fmt: skip


def run(side, req) -> admin.Reply:
    return asyncio.run(answer(side, req))


def test_an_action_from_the_page_goes_to_the_side_with_who_and_where():
    side = FakeSide()
    reply = run(side, request(dashboard.ACTIONS, "POST", ACTION, BROWSER, ip="::1"))
    assert reply.status == 200 and json.loads(reply.body)["new_split"] == {"a": 50, "b": 50}
    assert side.acted == [{"verb": "shift", "route": "r", "percent": 50, "reason": "why",
                           "user": "ana via dashboard from ::1"}]  # fmt: skip


@pytest.mark.parametrize(
    ("req", "status", "code"),
    [
        (request(dashboard.ACTIONS, "GET"), 405, "method_not_allowed"),
        (
            request(dashboard.ACTIONS, "POST", ACTION, {**BROWSER, "Origin": "http://evil"}),
            403,
            "cross_site",
        ),
        (request(dashboard.ACTIONS, "POST", ACTION, BROWSER, ip="192.0.2.7"), 403, "forbidden"),
        (
            request(dashboard.ACTIONS, "POST", b"x" * (dashboard.MAX_BODY + 1), BROWSER),
            413,
            "too_large",
        ),
        (
            request(dashboard.ACTIONS, "POST", ACTION, {**BROWSER, "Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
        ),
        (request(dashboard.HISTORY, "POST"), 405, "method_not_allowed"),
    ],
)
def test_refused_requests_never_reach_the_side(req, status, code):
    side = FakeSide()
    reply = run(side, req)
    assert (reply.status, json.loads(reply.body)["error"]) == (status, code)
    assert side.acted == []


def test_a_refused_edit_is_409_with_the_edits_own_message():
    reply = run(FakeSide(status=1), request(dashboard.ACTIONS, "POST", ACTION, BROWSER))
    assert (reply.status, json.loads(reply.body)) == (
        409, {"error": "refused", "message": "no route 'x'"},
    )  # fmt: skip


def test_reads_and_other_paths():
    side = FakeSide()
    got = run(side, request(dashboard.HISTORY, url=dashboard.HISTORY + "?since=12.5"))
    assert json.loads(got.body)["since"] == 12.5
    assert run(side, request(admin.PREFIX + "status")).body == b"other /_strangler/status"
    page = run(side, request(dashboard.PAGE))
    assert page.content_type.startswith("text/html") and b"<svg" not in page.body[:100]
    assert json.loads(run(side, request(dashboard.AUDIT)).body) == {"audit_log": None, "lines": []}


def test_the_toolkit_answers_in_a_process_of_its_own(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STRANGLER_AUDIT_LOG", str(tmp_path / "audit.log"))
    assert asyncio.run(Toolkit().audit_path()) == tmp_path / "audit.log"


def test_a_proxy_installed_without_the_toolkit_says_so():
    status, body = asyncio.run(Toolkit("strangler.absent.web_actions").call({"verb": "where"}))
    assert (status, body["error"]) == (-1, "actions_unavailable")
    assert "strangler shift" in body["message"]


def test_a_toolkit_that_answers_no_json_is_reported_with_its_error():
    status, body = asyncio.run(Toolkit("strangler.proxy.server").call({"verb": "where"}))
    assert (status, body["error"]) == (-1, "action_failed")
    assert "--routes" in body["message"]  # argparse's complaint, the process's last line


@pytest.mark.parametrize("verb", ["pause", "resume", "abort"])
def test_a_rollout_verb_from_the_page_goes_to_the_side_like_a_shift(verb):
    side = FakeSide()
    body = json.dumps({"action": verb, "route": "r", "reason": "odd p99", "user": "ana"})
    reply = run(side, request(dashboard.ACTIONS, "POST", body.encode(), BROWSER))
    assert reply.status == 200
    assert side.acted == [{"verb": verb, "route": "r", "percent": None, "reason": "odd p99",
                           "user": "ana via dashboard from 127.0.0.1"}]  # fmt: skip
    cross = run(side, request(dashboard.ACTIONS, "POST", body.encode(),
                              {**BROWSER, "Sec-Fetch-Site": "cross-site"}))  # fmt: skip
    assert cross.status == 403 and len(side.acted) == 1


@pytest.mark.parametrize(
    ("status", "ip", "http", "code"),
    [(0, "127.0.0.1", 200, None), (1, "127.0.0.1", 409, "refused"),
     (0, "192.0.2.7", 403, "forbidden")],
)  # fmt: skip
def test_the_rollouts_are_read_like_the_audit(status, ip, http, code):
    reply = run(FakeSide(status), request(dashboard.ROLLOUTS, ip=ip))
    assert reply.status == http
    doc = json.loads(reply.body)
    assert doc.get("error") == code
    if http == 200:
        assert doc["rollouts"]["r"]["state"] == "running"


class CountingToolkit:
    """A toolkit (its `call`) that counts the processes it would have started."""

    def __init__(self) -> None:
        self.calls = 0

    async def call(self, request: dict) -> tuple[int, dict]:
        self.calls += 1
        return 0, {"rollouts": {}, "call": self.calls}


@pytest.mark.parametrize(
    ("ttl", "forget", "calls"), [(60.0, False, 1), (60.0, True, 3), (0.0, False, 3)]
)
def test_the_rollouts_are_looked_up_once_per_ttl_and_again_after_a_verb(ttl, forget, calls):
    toolkit = CountingToolkit()
    rollouts = Rollouts(toolkit, ttl)  # type: ignore[arg-type]

    async def three() -> None:
        for _ in range(3):
            await rollouts.get()
            if forget:
                rollouts.forget()

    asyncio.run(three())
    assert toolkit.calls == calls


def test_pages_polling_together_share_one_lookup():
    toolkit = CountingToolkit()
    rollouts = Rollouts(toolkit, 60.0)  # type: ignore[arg-type]

    async def together() -> list:
        return await asyncio.gather(*(rollouts.get() for _ in range(5)))

    assert [body["call"] for _, body in asyncio.run(together())] == [1] * 5
