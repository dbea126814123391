"""The service under gunicorn on a real Redis: concurrency, shared secret, events, logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from strangler.stack.sink import WebhookSink
from strangler.stack.specs import StackConfig, service_spec
from strangler.stack.supervisor import Child, Supervisor
from tests.integration.chunked_bodies import assert_chunked_limit_holds
from tests.integration.polling import in_parallel

pytestmark = [pytest.mark.redis, pytest.mark.live]

TOKEN = "internal-token-for-tests"
TIMEOUT = 10


@dataclass
class Live:
    url: str
    sink: WebhookSink
    child: Child

    def post(self, route: str, body: dict, headers: dict | None = None) -> requests.Response:
        return requests.post(
            f"{self.url}/api/verification/{route}", json=body, headers=headers, timeout=TIMEOUT
        )


def service_config(var_dir: Path, redis_url: str, sink: WebhookSink) -> StackConfig:
    env = {
        "VERIFICATION_WEBHOOK_URL": sink.url,
        "VERIFICATION_SECRET": "",  # the development secret, shared through Redis
        "STRANGLER_INTERNAL_TOKEN": TOKEN,
    }
    return StackConfig.on_free_ports(var_dir, redis_url=redis_url, workers=2, env=env)


@pytest.fixture(scope="module")
def live(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One service (2 workers) for the module; each test gets an empty Redis and sink."""
    var_dir = tmp_path_factory.mktemp("service")
    with WebhookSink() as sink, Supervisor(log_dir=var_dir / "logs") as sup:
        cfg = service_config(var_dir, redis_server, sink)
        yield Live(cfg.service_url, sink, sup.start(service_spec(cfg)))


@pytest.fixture
def service(live: Live, redis_url: str) -> Live:
    live.sink.log.clear()
    return live


def test_send_check_and_the_approval_event(service: Live, redis_url: str):
    assert requests.get(f"{service.url}/healthz", timeout=TIMEOUT).status_code == 200
    sent = service.post("send", {"to": "+15551230001", "channel": "sms"})
    assert sent.status_code == 201
    code = service.sink.latest_code("+15551230001")
    checked = service.post("check", {"to": "+15551230001", "code": code})
    assert checked.json() == {"id": sent.json()["id"], "to": "+15551230001", "channel": "sms",
                              "status": "approved", "valid": True}  # fmt: skip
    events = redis.Redis.from_url(redis_url, decode_responses=True).xrange("verification.events")
    assert len(events) == 1
    fields = events[0][1]
    assert {k: fields[k] for k in ("type", "id", "to", "channel")} == {
        "type": "verification.approved", "id": sent.json()["id"], "to": "+15551230001",
        "channel": "sms",
    }  # fmt: skip
    assert fields["approved_at"].endswith("Z")


def test_fifty_parallel_wrong_checks_count_exactly_five_attempts(service: Live):
    to = "+15551230002"
    service.post("send", {"to": to, "channel": "sms"})
    wrong = "000000" if service.sink.latest_code(to) != "000000" else "111111"
    responses = in_parallel(50, lambda: service.post("check", {"to": to, "code": wrong}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({200: 5, 429: 1, 404: 44})
    remaining = sorted(r.json()["attempts_remaining"] for r in responses if r.status_code == 200)
    assert remaining == [0, 1, 2, 3, 4]
    right = service.post("check", {"to": to, "code": service.sink.latest_code(to)})
    assert right.status_code == 404


def test_twenty_parallel_right_checks_approve_exactly_once(service: Live, redis_url: str):
    to = "+15551230003"
    service.post("send", {"to": to, "channel": "sms"})
    code = service.sink.latest_code(to)
    responses = in_parallel(20, lambda: service.post("check", {"to": to, "code": code}))
    assert Counter(r.status_code for r in responses) == Counter({200: 1, 404: 19})
    client = redis.Redis.from_url(redis_url)
    assert client.xlen("verification.events") == 1


@pytest.mark.parametrize("round_", range(3))
def test_two_parallel_sends_leave_exactly_one_valid_code(service: Live, round_: int):
    to = f"+1555124000{round_}"
    sends = in_parallel(2, lambda: service.post("send", {"to": to, "channel": "sms"}))
    assert [r.status_code for r in sends] == [201, 201]
    codes = [m["code"] for m in service.sink.log.messages(to)]
    assert len(codes) == 2
    # Dry-run checks give each code's verdict without spending it.
    shadow = {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": TOKEN}
    verdicts = [service.post("check", {"to": to, "code": c}, shadow).json() for c in codes]
    assert sorted(v["valid"] for v in verdicts) == [False, True]


def test_workers_share_the_development_secret(service: Live, redis_url: str):
    # With two workers a send and its check often land on different workers.
    for n in range(8):
        to = f"ann{n}@b.example"
        assert service.post("send", {"to": to, "channel": "email"}).status_code == 201
        code = service.sink.latest_code(to)
        assert service.post("check", {"to": to, "code": code}).json()["valid"] is True
    client = redis.Redis.from_url(redis_url)
    assert client.keys("verification:secret") == [b"verification:secret"]


def test_parallel_retries_with_one_idempotency_key_send_once(service: Live):
    to = "+15551230005"
    headers = {"Idempotency-Key": "retry-me"}
    responses = in_parallel(6, lambda: service.post("send", {"to": to, "channel": "sms"}, headers))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 5
    assert len(service.sink.log.messages(to)) == 1


def test_dry_run_sends_nothing_and_stores_nothing(service: Live, redis_url: str):
    shadow = {"X-Strangler-Shadow": "1", "X-Strangler-Internal-Token": TOKEN}
    resp = service.post("send", {"to": "+15551230006", "channel": "sms"}, shadow)
    assert resp.status_code == 201
    assert resp.headers["X-Strangler-Shadow"] == "1"
    assert service.sink.log.messages() == []
    assert redis.Redis.from_url(redis_url).keys("verification:code:*") == []


def test_logs_mask_destinations_and_never_show_a_code(service: Live):
    to = "+15551230007"
    service.post("send", {"to": to, "channel": "sms"})
    code = service.sink.latest_code(to)
    service.post("check", {"to": to, "code": code})
    log_text = service.child.log_path.read_text()
    assert "+1555***0007" in log_text
    assert to not in log_text
    assert code not in log_text


def test_chunked_body_over_one_mib_is_413_and_one_of_exactly_one_mib_is_read(service: Live):
    assert_chunked_limit_holds(service.url, "+15551230008")


def test_idempotency_record_keeps_a_digest_not_the_body(service: Live, redis_url: str):
    body = {"to": "+15551230009", "channel": "sms", "pad": "x" * 500_000}
    headers = {"Idempotency-Key": "big-body"}
    first = service.post("send", body, headers)
    assert first.status_code == 201
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    [key] = client.keys("verification:idem:*")
    assert client.hstrlen(key, "fp") == 64
    assert service.post("send", body, headers).json() == first.json()
    changed = service.post("send", {**body, "pad": "y" * 500_000}, headers)
    assert (changed.status_code, changed.json()["error"]) == (422, "idempotency_key_reused")
