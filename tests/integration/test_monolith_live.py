"""The monolith under real gunicorn with 2 workers: flows across workers, races on one code."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from dataclasses import replace

import pytest
import requests

from strangler.stack.sink import WebhookSink
from strangler.stack.specs import StackConfig, monolith_spec
from strangler.stack.supervisor import Supervisor
from tests.integration.chunked_bodies import assert_chunked_limit_holds
from tests.integration.polling import in_parallel

pytestmark = pytest.mark.live

PHONE = "+15551234567"
TIMEOUT = 30


@pytest.fixture
def base_url(supervisor: Supervisor, stack_config: StackConfig, sink: WebhookSink) -> str:
    cfg = replace(stack_config, workers=2, env={"VERIFICATION_WEBHOOK_URL": sink.url})
    supervisor.start(monolith_spec(cfg))
    return cfg.monolith_url


def worker_pid(session: requests.Session, base_url: str) -> int:
    return session.get(f"{base_url}/healthz", timeout=TIMEOUT).json()["pid"]


def sessions_on_two_workers(base_url: str) -> list[tuple[requests.Session, int]]:
    """Two kept-alive connections, each served by a different worker process.

    The connections are opened several at a time: one after another, a busy machine lets the
    same worker win every accept.
    """
    by_pid: dict[int, requests.Session] = {}
    for _ in range(25):
        sessions = [requests.Session() for _ in range(8)]
        queue = iter(sessions)  # each racing call takes the next session

        def connect(queue=queue) -> tuple[requests.Session, int]:
            session = next(queue)
            return session, worker_pid(session, base_url)

        for session, pid in in_parallel(len(sessions), connect):
            if pid in by_pid or len(by_pid) == 2:
                session.close()
            else:
                by_pid[pid] = session
        if len(by_pid) == 2:
            return list((s, p) for p, s in by_pid.items())
    pytest.fail(f"200 connections all reached the same worker(s): {sorted(by_pid)}")


def post(base_url: str, path: str, body: dict, session: requests.Session | None = None):
    poster = session.post if session is not None else requests.post
    return poster(f"{base_url}/api/verification/{path}", json=body, timeout=TIMEOUT)


def test_code_sent_through_one_worker_is_checked_through_the_other(
    base_url: str, sink: WebhookSink
) -> None:
    (sender, sender_pid), (checker, checker_pid) = sessions_on_two_workers(base_url)
    user = checker.post(
        f"{base_url}/api/users", json={"name": "a", "phone": PHONE}, timeout=TIMEOUT
    )
    assert post(base_url, "send", {"to": PHONE, "channel": "sms"}, sender).status_code == 201
    assert worker_pid(sender, base_url) == sender_pid  # the send stayed on its connection
    approved = post(base_url, "check", {"to": PHONE, "code": sink.latest_code(PHONE)}, checker)
    assert worker_pid(checker, base_url) == checker_pid
    assert sender_pid != checker_pid
    assert approved.json()["status"] == "approved"
    shown = sender.get(f"{base_url}/api/users/{user.json()['id']}", timeout=TIMEOUT).json()
    assert shown["phone_verified"] is True


def test_thirty_parallel_wrong_checks_count_at_most_five(base_url: str, sink: WebhookSink) -> None:
    post(base_url, "send", {"to": PHONE, "channel": "sms"})
    wrong = "000000" if sink.latest_code(PHONE) != "000000" else "111111"
    responses = in_parallel(30, lambda: post(base_url, "check", {"to": PHONE, "code": wrong}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 5, 429: 1, 404: 24}
    remaining = sorted(r.json()["attempts_remaining"] for r in responses if r.status_code == 200)
    assert remaining == [0, 1, 2, 3, 4]


def test_twenty_parallel_right_checks_approve_exactly_once(
    base_url: str, sink: WebhookSink
) -> None:
    post(base_url, "send", {"to": PHONE, "channel": "sms"})
    body = {"to": PHONE, "code": sink.latest_code(PHONE)}
    responses = in_parallel(20, lambda: post(base_url, "check", body))
    assert Counter(r.status_code for r in responses) == {200: 1, 404: 19}
    assert [r.json()["status"] for r in responses if r.status_code == 200] == ["approved"]


def test_two_parallel_sends_leave_one_valid_code(base_url: str, sink: WebhookSink) -> None:
    responses = in_parallel(2, lambda: post(base_url, "send", {"to": PHONE, "channel": "sms"}))
    assert [r.status_code for r in responses] == [201, 201]
    codes = [m["code"] for m in sink.log.messages(PHONE)]
    assert len(codes) == 2
    verdicts = [
        post(base_url, "check", {"to": PHONE, "code": c}).json().get("status") for c in codes
    ]
    assert verdicts.count("approved") == 1


def test_rate_limit_is_shared_by_the_workers(base_url: str) -> None:
    statuses = Counter(
        r.status_code
        for r in in_parallel(8, lambda: post(base_url, "send", {"to": PHONE, "channel": "sms"}))
    )
    assert statuses == {201: 5, 429: 3}


def test_connection_stays_usable_after_an_oversized_body(base_url: str) -> None:
    """A 413 must not leave the unread body on a kept-alive connection (proxies pool them)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = b'{"to": "' + b"a" * (1024 * 1024) + b'", "channel": "sms"}'
    conn.request("POST", "/api/verification/send", body=body)
    first = conn.getresponse()
    assert (first.status, json.loads(first.read())["error"]) == (413, "payload_too_large")
    conn.request("GET", "/healthz")
    second = conn.getresponse()
    assert second.status == 200
    conn.close()


def test_chunked_body_over_one_mib_is_413_and_one_of_exactly_one_mib_is_read(
    base_url: str,
) -> None:
    assert_chunked_limit_holds(base_url, PHONE)
