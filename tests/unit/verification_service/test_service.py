"""The service functions against the in-memory store: codes, attempts, limits, idempotency."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import pytest

from strangler.extracted.verification_service import errors, service
from strangler.extracted.verification_service.config import Config
from strangler.extracted.verification_service.service import Services
from strangler.extracted.verification_service.validation import CheckRequest, SendRequest
from tests.unit.verification_service.fakes import FakeNotifier, FakeStore, SequentialCodes

PHONE = "+15551234567"
SMS = SendRequest(PHONE, "sms")


def check(services: Services, code: str, *, dry_run: bool = False) -> dict:
    return service.check(services, CheckRequest(PHONE, code), dry_run=dry_run)


def test_send_answers_pending_with_a_fresh_id_and_delivers_the_code(services, notifier):
    first = service.send(services, SMS)
    second = service.send(services, SMS)
    assert re.fullmatch(r"VE[0-9a-f]{32}", first["id"])
    assert first["id"] != second["id"]
    assert first == {
        "id": first["id"], "to": PHONE, "channel": "sms", "status": "pending", "expires_in": 600,
    }  # fmt: skip
    assert [m.id for m in notifier.messages] == [first["id"], second["id"]]
    assert re.fullmatch(r"[0-9]{6}", notifier.messages[0].code)


def test_code_is_stored_only_as_a_keyed_hash_of_id_and_code(services, store, notifier):
    sent = service.send(services, SMS)
    code = notifier.code_for(PHONE)
    stored = store.codes[PHONE]
    expected = hmac.new(store.secret.encode(), f"{sent['id']}:{code}".encode(), hashlib.sha256)
    assert stored.mac == expected.hexdigest()
    assert code not in repr(stored)


def test_workers_sharing_a_store_share_the_development_secret(config, store, clock, notifier):
    worker_a = Services(config, store, notifier, clock, SequentialCodes())
    worker_b = Services(config, store, FakeNotifier(), clock, SequentialCodes())
    service.send(worker_a, SMS)
    verdict = service.check(worker_b, CheckRequest(PHONE, notifier.code_for(PHONE)))
    assert verdict["valid"] is True


def test_configured_secret_is_used_instead_of_the_stored_one(store, clock, notifier):
    services = Services(Config(secret="s3cret"), store, notifier, clock, SequentialCodes())
    sent = service.send(services, SMS)
    digest = hmac.new(b"s3cret", f"{sent['id']}:000001".encode(), hashlib.sha256).hexdigest()
    assert store.codes[PHONE].mac == digest
    assert store.secret is None


class CountingStore(FakeStore):
    """Counts how often the shared secret is asked for; `lose_data` is a Redis restart."""

    def __init__(self) -> None:
        super().__init__()
        self.secret_reads = 0

    def shared_secret(self, candidate: str) -> str:
        self.secret_reads += 1
        return super().shared_secret(candidate)

    def lose_data(self) -> None:
        self.secret = None
        self.codes.clear()
        self.sends.clear()


def test_checks_use_the_secret_this_worker_cached(config, clock, notifier):
    store = CountingStore()
    services = Services(config, store, notifier, clock, SequentialCodes())
    service.send(services, SMS)
    reads = store.secret_reads
    assert check(services, notifier.code_for(PHONE))["valid"] is True
    assert store.secret_reads == reads  # no store round trip for the secret


def test_sends_always_hash_under_the_secret_in_the_store(config, clock, notifier):
    store = CountingStore()
    services = Services(config, store, notifier, clock, SequentialCodes())
    service.send(services, SMS)
    store.lose_data()
    sent = service.send(services, SMS)
    expected = hmac.new(store.secret.encode(), f"{sent['id']}:000002".encode(), hashlib.sha256)
    assert store.codes[PHONE].mac == expected.hexdigest()


@pytest.mark.parametrize(("right", "answer"), [(True, {"valid": True}),
                                                (False, {"attempts_remaining": 4})])  # fmt: skip
def test_a_worker_caching_a_lost_secret_checks_codes_made_under_the_new_one(
    config, clock, notifier, right, answer
):
    store = CountingStore()
    worker_a = Services(config, store, notifier, clock, SequentialCodes())
    worker_b = Services(config, store, FakeNotifier(), clock, SequentialCodes())
    service.send(worker_a, SMS)
    assert check(worker_b, notifier.code_for(PHONE))["valid"] is True  # b caches the secret
    store.lose_data()
    service.send(worker_a, SMS)  # a new secret, which worker b has not seen
    code = notifier.code_for(PHONE) if right else "999999"
    verdict = check(worker_b, code)
    assert {name: verdict.get(name) for name in answer} == answer  # one attempt, not two


def test_right_code_approves_once_and_publishes_the_event(services, store, notifier, clock):
    sent = service.send(services, SMS)
    verdict = check(services, notifier.code_for(PHONE))
    assert verdict == {"id": sent["id"], "to": PHONE, "channel": "sms", "status": "approved",
                       "valid": True}  # fmt: skip
    assert store.events == [{
        "type": "verification.approved", "id": sent["id"], "to": PHONE, "channel": "sms",
        "approved_at": "2023-11-14T22:13:20Z",
    }]  # fmt: skip
    with pytest.raises(errors.NotFound):
        check(services, notifier.code_for(PHONE))


def test_wrong_checks_count_down_then_exhaust_the_code(services, notifier):
    service.send(services, SMS)
    remaining = [check(services, "999999")["attempts_remaining"] for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(errors.MaxAttemptsReached):
        check(services, notifier.code_for(PHONE))
    with pytest.raises(errors.NotFound):
        check(services, notifier.code_for(PHONE))


def test_only_the_latest_code_is_valid_and_a_new_send_resets_attempts(services, notifier):
    service.send(services, SMS)
    old = notifier.code_for(PHONE)
    check(services, "999999")
    service.send(services, SMS)
    stale = check(services, old)
    assert stale["valid"] is False
    assert stale["attempts_remaining"] == 4
    assert check(services, notifier.code_for(PHONE))["valid"] is True


def test_an_expired_code_is_not_found(services, notifier, clock):
    service.send(services, SMS)
    clock.advance(600)
    with pytest.raises(errors.NotFound):
        check(services, notifier.code_for(PHONE))


def test_sixth_send_in_the_window_is_refused_until_the_oldest_leaves(services, clock):
    for _ in range(5):
        service.send(services, SMS)
        clock.advance(10)
    with pytest.raises(errors.RateLimited) as caught:
        service.send(services, SMS)
    assert caught.value.retry_after == 550
    clock.advance(549.5)
    with pytest.raises(errors.RateLimited) as caught:
        service.send(services, SMS)
    assert caught.value.retry_after == 1
    clock.advance(0.5)
    service.send(services, SMS)


def test_refused_sends_do_not_count(services, clock):
    for _ in range(5):
        service.send(services, SMS)
    for _ in range(3):
        with pytest.raises(errors.RateLimited):
            service.send(services, SMS)
    clock.advance(600)
    for _ in range(5):
        service.send(services, SMS)


def test_failed_delivery_stores_nothing_counts_nothing_and_old_code_stays_gone(
    services, store, notifier
):
    service.send(services, SMS)
    old = notifier.code_for(PHONE)
    notifier.failing = True
    with pytest.raises(errors.DeliveryFailed):
        service.send(services, SMS)
    assert PHONE not in store.codes
    assert len(store.sends[PHONE]) == 1
    with pytest.raises(errors.NotFound):
        check(services, old)


def test_dry_runs_change_nothing_and_send_nothing(services, store, notifier):
    service.send(services, SMS)
    before = (dict(store.codes), list(store.sends[PHONE]), len(notifier.messages))
    assert service.send(services, SMS, dry_run=True)["status"] == "pending"
    assert check(services, notifier.code_for(PHONE), dry_run=True)["valid"] is True
    assert check(services, "999999", dry_run=True)["attempts_remaining"] == 4
    assert (dict(store.codes), list(store.sends[PHONE]), len(notifier.messages)) == before
    assert store.events == []


def test_dry_run_predicts_exhaustion_and_rate_limit(services, notifier):
    for _ in range(5):
        service.send(services, SMS)
    with pytest.raises(errors.RateLimited):
        service.send(services, SMS, dry_run=True)
    for _ in range(5):
        check(services, "999999")
    with pytest.raises(errors.MaxAttemptsReached):
        check(services, notifier.code_for(PHONE), dry_run=True)
    with pytest.raises(errors.MaxAttemptsReached):
        check(services, notifier.code_for(PHONE))


def test_idempotent_send_replays_the_first_response_and_sends_once(services, notifier):
    first, replayed = service.send_once(services, SMS, "key-1", "fp")
    again, replayed_again = service.send_once(services, SMS, "key-1", "fp")
    assert (first, replayed) == (again, not replayed_again)
    assert first.status == 201
    assert len(notifier.messages) == 1


def test_idempotency_key_with_another_body_is_refused(services):
    service.send_once(services, SMS, "key-1", "fp")
    with pytest.raises(errors.IdempotencyKeyReused):
        service.send_once(services, SMS, "key-1", "other fp")


def test_a_failed_send_frees_its_idempotency_key(services, notifier):
    notifier.failing = True
    with pytest.raises(errors.DeliveryFailed):
        service.send_once(services, SMS, "key-1", "fp")
    notifier.failing = False
    response, replayed = service.send_once(services, SMS, "key-1", "fp")
    assert (response.status, replayed) == (201, False)
    assert len(notifier.messages) == 1


def test_logs_mask_destinations_and_never_hold_a_code(services, notifier, caplog):
    caplog.set_level(logging.DEBUG)
    service.send(services, SMS)
    code = notifier.code_for(PHONE)
    check(services, "999999")
    check(services, code)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "+1555***4567" in text
    assert PHONE not in text
    assert code not in text
