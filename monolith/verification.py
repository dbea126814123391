"""The verification blueprint: POST /api/verification/send and /check (docs/verification-api.md)."""

from __future__ import annotations

import hmac
import time
from time import sleep
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from strangler.monolith.codes import (
    body_fingerprint,
    mask,
    new_verification_id,
    parse_check,
    parse_idempotency_key,
    parse_send,
)
from strangler.monolith.db import get_db
from strangler.monolith.errors import error_response
from strangler.monolith.inputs import ApiError, parse_json_object
from strangler.monolith.notifiers import DeliveryError, Message
from strangler.monolith.verifications import (
    AttemptsExhausted,
    IdempotencyClaim,
    IdempotencyKeyBusy,
    IdempotencyKeyReused,
    Limits,
    NoPendingCode,
    Pending,
    RateLimited,
    Replay,
    VerificationError,
    cancel_send,
    check_code,
    finish_send,
    start_send,
)

bp = Blueprint("verification", __name__, url_prefix="/api/verification")

SEND_ROUTE = "POST /api/verification/send"
# Longer than the webhook timeout, so a retry normally outlasts the first request it waits on.
BUSY_KEY_WAIT = 10.0
BUSY_KEY_POLL = 0.05


def limits() -> Limits:
    config = current_app.config
    return Limits(
        ttl=config["VERIFICATION_CODE_TTL"],
        max_attempts=config["VERIFICATION_MAX_ATTEMPTS"],
        max_sends=config["VERIFICATION_MAX_SENDS"],
        send_window=config["VERIFICATION_SEND_WINDOW"],
        secret=config["VERIFICATION_SECRET"].encode(),
    )


def dry_run_requested() -> bool:
    """True for an authorised `X-Strangler-Shadow: 1`; refuses an unauthorised one."""
    if request.headers.get("X-Strangler-Shadow") != "1":
        return False
    expected = current_app.config["STRANGLER_INTERNAL_TOKEN"] or ""
    given = request.headers.get("X-Strangler-Internal-Token", "")
    # An unset token refuses every dry run: otherwise they would be a free guessing oracle.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "shadow_not_allowed", "dry runs need the internal token")
    g.dry_run = True
    return True


@bp.after_request
def mark_dry_run(response: Response) -> Response:
    if g.get("dry_run"):
        response.headers["X-Strangler-Shadow"] = "1"
    return response


@bp.post("/send")
def send() -> Response | tuple[dict[str, Any], int]:
    dry_run = dry_run_requested()
    body = parse_json_object(request.get_data())
    wanted = parse_send(body)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    claim = IdempotencyClaim(SEND_ROUTE, key, body_fingerprint(body)) if key else None
    pending = Pending(new_verification_id(), wanted.to, wanted.channel)
    code = current_app.config["CODE_GENERATOR"](current_app.config["VERIFICATION_CODE_LENGTH"])
    replay = _start_send(pending, code, claim, dry_run)
    if replay is not None:
        response = jsonify(replay.body)
        response.status_code = replay.status
        response.headers["Idempotent-Replayed"] = "true"
        return response
    ttl = current_app.config["VERIFICATION_CODE_TTL"]
    answer = {"id": pending.id, "to": pending.to, "channel": pending.channel,
              "status": "pending", "expires_in": ttl}  # fmt: skip
    if not dry_run:
        _deliver(pending, code, claim)
        finish_send(get_db(), claim, 201, answer)
    current_app.logger.info(
        "verification %s sent by %s to %s%s", pending.id, pending.channel, mask(pending.to),
        " (dry run)" if dry_run else "",
    )  # fmt: skip
    return answer, 201


def _start_send(
    pending: Pending, code: str, claim: IdempotencyClaim | None, dry_run: bool
) -> Replay | None:
    # A retry that races its own first request waits for that one's answer, then replays it.
    deadline = time.monotonic() + BUSY_KEY_WAIT
    while True:
        now = current_app.config["CLOCK"]()
        try:
            return start_send(get_db(), limits(), pending, code, now, claim, dry_run)
        except IdempotencyKeyBusy:
            if time.monotonic() > deadline:
                raise ApiError(
                    503, "unavailable", "a request with this Idempotency-Key is still running",
                    {"Retry-After": "1"},
                ) from None  # fmt: skip
            sleep(BUSY_KEY_POLL)


def _deliver(pending: Pending, code: str, claim: IdempotencyClaim | None) -> None:
    try:
        current_app.config["NOTIFIER"].deliver(
            Message(pending.id, pending.to, pending.channel, code)
        )
    except DeliveryError as exc:
        cancel_send(get_db(), pending, claim)
        current_app.logger.warning(
            "verification %s to %s not delivered: %s", pending.id, mask(pending.to), exc
        )
        raise ApiError(502, "delivery_failed", "the message could not be delivered") from None


@bp.post("/check")
def check() -> dict[str, Any]:
    dry_run = dry_run_requested()
    wanted = parse_check(parse_json_object(request.get_data()))
    now = current_app.config["CLOCK"]()
    verdict = check_code(get_db(), limits(), wanted.to, wanted.code, now, dry_run)
    current_app.logger.info(
        "verification %s for %s checked: %s%s", verdict["id"], mask(wanted.to),
        verdict["status"], " (dry run)" if dry_run else "",
    )  # fmt: skip
    return verdict


# Domain outcomes, translated at the edge: (status, machine code, human text).
OUTCOMES: dict[type[VerificationError], tuple[int, str, str]] = {
    NoPendingCode: (404, "not_found", "no pending verification for this address"),
    AttemptsExhausted: (429, "max_attempts_reached", "too many wrong codes; send a new one"),
    IdempotencyKeyReused: (422, "idempotency_key_reused", "the key came with another body"),
    RateLimited: (429, "rate_limited", "too many codes sent to this address"),
}


@bp.errorhandler(VerificationError)
def verification_error(exc: VerificationError) -> Response:
    status, error, message = OUTCOMES[type(exc)]
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(ApiError(status, error, message, headers))
