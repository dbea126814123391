"""The locust users: a forum reader, a forum writer, and a new user verifying a phone."""

from __future__ import annotations

import random
import time
import uuid
from functools import partial
from typing import Any

from locust import HttpUser, between, task
from locust.exception import StopUser

from strangler.loadtests.flows import PhoneNumbers, wait_for_code
from strangler.stack.sink import fetch_latest_code

VERIFIED_WITHIN = 5.0  # seconds: the service reaches the monolith through events (< 1 s expected)
_numbers = PhoneNumbers()


def json_of(resp: Any, status: int) -> dict[str, Any] | None:
    """The response's JSON object when the status is `status`; else mark it failed, None."""
    if resp.status_code != status:
        resp.failure(f"expected {status}, got {resp.status_code}: {resp.text[:200]}")
        return None
    try:
        body = resp.json()
    except ValueError:
        resp.failure("the body is not JSON")
        return None
    if not isinstance(body, dict):
        resp.failure("the body is not a JSON object")
        return None
    return body


def list_of(resp: Any, key: str) -> list[dict[str, Any]] | None:
    """The page's `key` list (e.g. "threads") from a 200; else mark the response failed."""
    body = json_of(resp, 200)
    items = body.get(key) if body is not None else None
    if body is None or not expect(resp, isinstance(items, list), f"no {key!r} list"):
        return None
    return items


def expect(resp: Any, condition: bool, message: str) -> bool:
    """Mark the response failed with `message` unless `condition` holds."""
    if not condition:
        resp.failure(message)
    return condition


class ForumReader(HttpUser):
    """Lists threads, opens one, reads its posts."""

    weight = 3
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.thread_ids: list[int] = []

    @task(2)
    def list_threads(self) -> None:
        with self.client.get("/api/threads", catch_response=True) as resp:
            threads = list_of(resp, "threads")
            if threads is not None:
                self.thread_ids = [t["id"] for t in threads]

    @task(3)
    def read_thread(self) -> None:
        if not self.thread_ids:
            self.list_threads()
            return
        thread_id = random.choice(self.thread_ids)
        url = f"/api/threads/{thread_id}"
        with self.client.get(url, name="/api/threads/[id]", catch_response=True) as resp:
            body = json_of(resp, 200)
            if body is None or not expect(resp, body.get("id") == thread_id, "another thread came"):
                return
        posts_name = "/api/threads/[id]/posts"
        with self.client.get(f"{url}/posts", name=posts_name, catch_response=True) as resp:
            posts = list_of(resp, "posts")
            if posts is not None:
                strays = [p for p in posts if p.get("thread_id") != thread_id]
                expect(resp, not strays, f"posts of other threads listed: {strays[:1]}")


class ForumWriter(HttpUser):
    """Signs up once, then starts threads and posts in them; checks each comes back."""

    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.user_id: int | None = None
        self.posts_in: dict[int, int] = {}  # thread id -> posts this writer made there
        name = f"writer-{uuid.uuid4().hex[:12]}"
        with self.client.post("/api/users", json={"name": name}, catch_response=True) as resp:
            body = json_of(resp, 201)
            if body is not None and expect(resp, _has(body, {"name": name}), f"got {body}"):
                self.user_id = body["id"]
        if self.user_id is None:
            raise StopUser()

    @task(1)
    def start_thread(self) -> None:
        title = f"load test thread {uuid.uuid4().hex[:8]}"
        sent = {"title": title, "author_id": self.user_id}
        with self.client.post("/api/threads", json=sent, catch_response=True) as resp:
            body = json_of(resp, 201)
            if body is None or not expect(resp, _has(body, sent), f"created {body}, sent {sent}"):
                return
        thread_id = body["id"]
        url = f"/api/threads/{thread_id}"
        with self.client.get(url, name="/api/threads/[id]", catch_response=True) as resp:
            shown = json_of(resp, 200)
            if shown is not None and expect(
                resp, _has(shown, {**sent, "id": thread_id}), "not as created"
            ):
                self.posts_in[thread_id] = 0

    @task(3)
    def add_post(self) -> None:
        if not self.posts_in:
            self.start_thread()
            return
        thread_id = random.choice(list(self.posts_in))
        url, name = f"/api/threads/{thread_id}/posts", "/api/threads/[id]/posts"
        sent = {"author_id": self.user_id, "body": f"post {uuid.uuid4().hex}"}
        with self.client.post(url, json=sent, name=name, catch_response=True) as resp:
            body = json_of(resp, 201)
            if body is None or not expect(resp, _has(body, sent), f"created {body}, sent {sent}"):
                return
        self.posts_in[thread_id] += 1
        # Only this writer posts here, so its newest post is the thread's last one.
        last = f"{url}?offset={self.posts_in[thread_id] - 1}&limit=1"
        with self.client.get(last, name=f"{name}?offset=[n]", catch_response=True) as resp:
            posts = list_of(resp, "posts")
            if posts is not None:
                ids = [p.get("id") for p in posts]
                expect(resp, ids == [body["id"]], f"post {body['id']} is not the last: {ids}")


class PhoneVerifier(HttpUser):
    """A new user: signs up with a phone, gets a code by SMS, checks it, ends up verified."""

    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        sink_url = getattr(self.environment.parsed_options, "sink_url", None)
        if not sink_url:
            self.environment.events.request.fire(
                request_type="SETUP", name="PhoneVerifier needs --sink-url", response_time=0,
                response_length=0, exception=RuntimeError("no --sink-url / LOADTEST_SINK_URL"),
            )  # fmt: skip
            raise StopUser()
        self.code_of = partial(fetch_latest_code, sink_url.rstrip("/"))

    @task
    def verify_phone(self) -> None:
        started = time.perf_counter()
        phone = _numbers.next()
        user_id = self._sign_up(phone)
        if user_id is None or not self._send(phone):
            return
        code = wait_for_code(self.code_of, phone)
        if code is None:
            self._flow_done(started, RuntimeError("no code reached the sink"))
            return
        check = {"to": phone, "code": code}
        url = "/api/verification/check"
        with self.client.post(url, json=check, catch_response=True) as resp:
            body = json_of(resp, 200)
            wanted = {"to": phone, "status": "approved", "valid": True}
            approved = body is not None and expect(resp, _has(body, wanted), f"got {body}")
        if approved:
            self._flow_done(started, self._wait_verified(user_id))

    def _sign_up(self, phone: str) -> int | None:
        sent = {"name": f"verifier {phone}", "phone": phone}
        with self.client.post("/api/users", json=sent, catch_response=True) as resp:
            body = json_of(resp, 201)
            wanted = {"phone": phone, "phone_verified": False}
            ok = body is not None and expect(resp, _has(body, wanted), f"got {body}")
            return body["id"] if ok else None

    def _send(self, phone: str) -> bool:
        sent = {"to": phone, "channel": "sms"}
        with self.client.post("/api/verification/send", json=sent, catch_response=True) as resp:
            body = json_of(resp, 201)
            wanted = {**sent, "status": "pending"}
            return body is not None and expect(resp, _has(body, wanted), f"got {body}")

    def _wait_verified(self, user_id: int) -> Exception | None:
        """Poll the user until `phone_verified`; the service's approval arrives by event."""
        deadline = time.monotonic() + VERIFIED_WITHIN
        url = f"/api/users/{user_id}"
        while True:
            with self.client.get(url, name="/api/users/[id]", catch_response=True) as resp:
                body = json_of(resp, 200)
                if body is None or body.get("phone_verified") is True:
                    return None if body else RuntimeError(f"GET {url} failed")
                if time.monotonic() > deadline:
                    resp.failure(f"phone_verified still false {VERIFIED_WITHIN:.0f}s after check")
                    return RuntimeError("phone never marked verified")
            time.sleep(0.05)

    def _flow_done(self, started: float, error: Exception | None) -> None:
        """One synthetic entry per flow: sign-up to phone_verified, as the user lived it."""
        self.environment.events.request.fire(
            request_type="FLOW", name="sign up → phone verified", exception=error,
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
        )  # fmt: skip


def _has(body: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Every expected field is in `body` with the expected value."""
    return all(body.get(key) == value for key, value in expected.items())
