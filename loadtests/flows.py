"""Verification flows (send, read the delivered code, check) driven by plain threads.

The migration-under-load and backend-comparison commands use this client instead of locust:
it runs beside the stack's supervisor in one ordinary process (no gevent monkey-patching) and
keeps every request's backend, status and latency for per-step accounting.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

BACKEND_HEADER = "X-Strangler-Backend"
CodeSource = Callable[[str], "str | None"]
CHECK_RETRY_DELAY = 0.25  # seconds between a user's tries of a check answered 503
CHECK_RETRY_FOR = 5.0  # seconds a user keeps trying before giving up


class PhoneNumbers:
    """Unique E.164 numbers: a random 6-digit run prefix (runs share a database), then a counter."""

    def __init__(self, seed: int | None = None) -> None:
        prefix = random.Random(seed).randrange(100_000, 1_000_000)
        self._prefix = f"+1{prefix}"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            n = next(self._counter)
        return f"{self._prefix}{n:07d}"


@dataclass(frozen=True)
class Exchange:
    """One HTTP request of a flow."""

    status: int  # 0 when no response arrived
    backend: str | None  # the X-Strangler-Backend header; None when talking to a backend directly
    seconds: float
    body: dict | None = None
    started: float = 0.0  # time.monotonic() when the request was sent

    @property
    def failed(self) -> bool:
        """What a client sees as an error: a 5xx answer, or none at all."""
        return self.status == 0 or self.status >= 500

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass(frozen=True)
class Flow:
    """One user's send → check, with the load phase (migration step) it started in."""

    to: str
    phase: str
    started: float  # time.monotonic() before the send
    checked: float | None  # time.monotonic() before the (first) check; None when there was none
    send: Exchange
    check: Exchange | None  # the last check; earlier ones answered 503 and were tried again
    approved: bool
    error: str | None = None
    retried_checks: tuple[Exchange, ...] = ()

    @property
    def sent(self) -> bool:
        return self.send.status == 201

    @property
    def unfinished(self) -> bool:
        """Started, but the last check got an error or no answer: the user saw it fail."""
        return self.sent and self.check is not None and self.check.failed

    @property
    def broken(self) -> bool:
        """Started, and its check was answered but not approved (or no code arrived): the flow's
        state was lost or its check reached a backend that never sent the code."""
        return self.sent and not self.approved and not self.unfinished

    @property
    def exchanges(self) -> list[Exchange]:
        return [self.send, *self.retried_checks] + ([self.check] if self.check else [])

    @property
    def errors(self) -> int:
        """Client-visible errors in this flow, each tried request counted."""
        return sum(e.failed for e in self.exchanges)


def post(session: requests.Session, url: str, body: dict, timeout: float) -> Exchange:
    """POST JSON and time it; a connection failure is an Exchange with status 0."""
    sent_at = time.monotonic()
    start = time.perf_counter()
    try:
        resp = session.post(url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        error = {"error": type(exc).__name__}
        return Exchange(0, None, time.perf_counter() - start, error, sent_at)
    seconds = time.perf_counter() - start
    try:
        data = resp.json()
    except ValueError:
        data = None
    return Exchange(resp.status_code, resp.headers.get(BACKEND_HEADER), seconds, data, sent_at)


def wait_for_code(source: CodeSource, to: str, timeout: float = 2.0) -> str | None:
    """The delivered code for `to`, polling briefly in case delivery lags the 201."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        code = source(to)
        if code is not None or time.monotonic() > deadline:
            return code
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def run_flow(
    session: requests.Session,
    base_url: str,
    to: str,
    code_source: CodeSource,
    phase: str = "",
    timeout: float = 10.0,
    think: float = 0.0,
    retry_delay: float = CHECK_RETRY_DELAY,
) -> Flow:
    """Send a code to `to`, read it from the sink, wait `think` s, check it; what happened.

    A check answered 503 (the backend is unavailable: it did nothing) is tried again, as a
    user taps "verify" again, every `retry_delay` s for up to CHECK_RETRY_FOR s.
    """
    started = time.monotonic()
    send = post(session, f"{base_url}/api/verification/send", {"to": to, "channel": "sms"}, timeout)
    if send.status != 201:
        error = f"send answered {send.status}"
        return Flow(to, phase, started, None, send, None, False, error)
    code = wait_for_code(code_source, to)
    if code is None:
        return Flow(to, phase, started, None, send, None, False, "no code reached the sink")
    if think:
        time.sleep(think)  # the user reads the SMS and types the code
    checked = time.monotonic()
    url, body = f"{base_url}/api/verification/check", {"to": to, "code": code}
    check = post(session, url, body, timeout)
    retried: list[Exchange] = []
    while check.status == 503 and time.monotonic() - checked < CHECK_RETRY_FOR:
        retried.append(check)
        time.sleep(retry_delay)
        check = post(session, url, body, timeout)
    answer = check.body or {}
    approved = check.status == 200 and answer.get("status") == "approved" and answer.get("valid")
    error = None
    if not approved:
        error = f"check answered {check.status} {answer.get('status', '')}".strip()
        error += f" by {check.backend}, sent by {send.backend}" if check.backend else ""
    return Flow(to, phase, started, checked, send, check, bool(approved), error, tuple(retried))


class FlowLoad:
    """`users` threads running flows back to back against `base_url` until stopped.

    `think` > 0: each user waits a random 0..think s between receiving the code and checking
    it, as people do; flows then stay open long enough to straddle a routing change.
    """

    def __init__(
        self,
        base_url: str,
        code_source: CodeSource,
        users: int,
        numbers: PhoneNumbers | None = None,
        think: float = 0.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.code_source = code_source
        self.numbers = numbers or PhoneNumbers()
        self.think = think
        self.phase = ""
        self.flows: list[Flow] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._user, name=f"flow-user-{i}", daemon=True)
            for i in range(users)
        ]

    def _user(self) -> None:
        pause = random.Random()
        with requests.Session() as session:
            while not self._stop.is_set():
                flow = run_flow(
                    session, self.base_url, self.numbers.next(), self.code_source, self.phase,
                    think=pause.uniform(0, self.think),
                )  # fmt: skip
                with self._lock:
                    self.flows.append(flow)

    def start(self) -> FlowLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Flow]:
        """Let every flow in progress finish, then return all flows."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.snapshot()

    def snapshot(self) -> list[Flow]:
        with self._lock:
            return list(self.flows)

    def __enter__(self) -> FlowLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
