"""A verification flow's outcome, against a fake backend speaking the verification API."""

from __future__ import annotations

import re
from typing import Any

import requests

from strangler.loadtests.flows import PhoneNumbers, run_flow, wait_for_code

E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")  # docs/verification-api.md


class FakeResponse:
    def __init__(self, status: int, body: Any, backend: str | None) -> None:
        self.status_code = status
        self._body = body
        self.headers = {"X-Strangler-Backend": backend} if backend else {}

    def json(self) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


class FakeVerification:
    """One backend's verification API with a webhook sink; `backends` names who answers."""

    def __init__(self, backends: tuple[str, str] = ("monolith", "monolith")) -> None:
        self.codes: dict[str, str] = {}
        self.backends = list(backends)
        self.send_status = 201
        self.lose_codes = False
        self.checked_elsewhere = False  # the check reaches a backend that never saw the send
        self.html_check = False
        self.fail_check_with: Exception | None = None
        self.unavailable_checks = 0  # checks answered 503 before the backend is back

    def post(self, url: str, json: dict, timeout: float) -> FakeResponse:
        backend = self.backends.pop(0)
        if url.endswith("/send"):
            if self.send_status != 201:
                return FakeResponse(self.send_status, {"error": "rate_limited"}, backend)
            self.codes[json["to"]] = "123456"
            return FakeResponse(201, {"to": json["to"], "status": "pending"}, backend)
        if self.fail_check_with:
            raise self.fail_check_with
        if self.unavailable_checks:
            self.unavailable_checks -= 1
            return FakeResponse(503, {"error": "unavailable"}, backend)
        if self.html_check:
            return FakeResponse(502, ValueError("not JSON"), None)
        if self.checked_elsewhere:
            return FakeResponse(404, {"error": "not_found"}, backend)
        right = self.codes.pop(json["to"], None) == json["code"]
        status = "approved" if right else "pending"
        return FakeResponse(200, {"status": status, "valid": right}, backend)

    def code_of(self, to: str) -> str | None:
        return None if self.lose_codes else self.codes.get(to)


def flow_against(fake: FakeVerification, **kwargs: Any):
    return run_flow(fake, "http://proxy", "+15550000001", fake.code_of, "2", **kwargs)  # type: ignore[arg-type]


def test_a_flow_with_the_delivered_code_is_approved() -> None:
    fake = FakeVerification(("monolith", "monolith"))
    flow = flow_against(fake)
    assert (flow.sent, flow.approved, flow.broken, flow.error) == (True, True, False, None)
    assert [e.backend for e in flow.exchanges] == ["monolith", "monolith"]
    assert flow.phase == "2"
    assert flow.checked is not None and flow.checked >= flow.started


def test_the_user_thinks_between_the_code_and_the_check() -> None:
    fake = FakeVerification()
    flow = flow_against(fake, think=0.05)
    assert flow.approved
    assert flow.checked is not None and flow.checked - flow.started >= 0.05


def test_a_check_the_other_backend_cannot_approve_is_a_broken_flow() -> None:
    fake = FakeVerification(("monolith", "verification"))
    fake.checked_elsewhere = True
    flow = flow_against(fake)
    assert flow.sent and flow.broken
    assert flow.error == "check answered 404 by verification, sent by monolith"
    assert [e.backend for e in flow.exchanges] == ["monolith", "verification"]


def test_a_wrong_code_is_not_approved() -> None:
    fake = FakeVerification()
    flow = run_flow(fake, "http://x", "+15550000009", lambda to: "000000")  # type: ignore[arg-type]
    assert flow.broken and flow.error == "check answered 200 pending by monolith, sent by monolith"


def test_a_refused_send_is_not_a_started_flow() -> None:
    fake = FakeVerification()
    fake.send_status = 429
    flow = flow_against(fake)
    assert (flow.sent, flow.broken, flow.check, flow.checked) == (False, False, None, None)
    assert flow.error == "send answered 429"


def test_a_code_that_never_reaches_the_sink_breaks_the_flow() -> None:
    fake = FakeVerification()
    fake.lose_codes = True
    flow = run_flow(fake, "http://x", "+15550000002", lambda to: None, timeout=1)  # type: ignore[arg-type]
    assert flow.broken and flow.error == "no code reached the sink"


def test_a_connection_failure_is_status_0_not_an_exception() -> None:
    fake = FakeVerification()
    fake.fail_check_with = requests.ConnectionError("refused")
    flow = flow_against(fake)
    assert flow.unfinished and not flow.broken and flow.errors == 1
    assert flow.check is not None and flow.check.status == 0


def test_wait_for_code_polls_until_the_code_arrives() -> None:
    answers = iter([None, None, "654321"])
    assert wait_for_code(lambda to: next(answers), "+15550000003", timeout=2) == "654321"


def test_wait_for_code_gives_up_after_its_timeout() -> None:
    assert wait_for_code(lambda to: None, "+15550000004", timeout=0.05) is None


def test_phone_numbers_are_unique_valid_e164() -> None:
    numbers = PhoneNumbers(seed=7)
    drawn = [numbers.next() for _ in range(1000)]
    assert len(set(drawn)) == 1000
    assert all(E164.match(n) for n in drawn)


def test_two_runs_draw_different_numbers() -> None:
    assert PhoneNumbers(seed=1).next() != PhoneNumbers(seed=2).next()


def test_a_non_json_check_answer_is_not_approved() -> None:
    fake = FakeVerification()
    fake.html_check = True
    flow = flow_against(fake)
    assert not flow.approved and flow.unfinished and flow.error == "check answered 502"


def test_a_check_answered_503_is_tried_again_and_each_try_is_a_client_visible_error() -> None:
    fake = FakeVerification(("monolith",) * 4)
    fake.unavailable_checks = 2
    flow = flow_against(fake, retry_delay=0)
    assert flow.approved and not flow.broken and not flow.unfinished
    assert [e.status for e in flow.exchanges] == [201, 503, 503, 200]
    assert flow.errors == 2


def test_requests_are_timed_from_when_they_were_sent() -> None:
    flow = flow_against(FakeVerification())
    assert flow.started <= flow.send.started <= flow.send.ended <= flow.check.started
