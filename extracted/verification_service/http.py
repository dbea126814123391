"""The thin Flask layer: parse the request, call a service function, answer JSON."""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from strangler import apidoc
from strangler.bodylimit import ChunkedBodyLimit
from strangler.extracted.verification_service import errors, service, validation
from strangler.extracted.verification_service.config import MAX_BODY_BYTES, Config
from strangler.extracted.verification_service.notifier import Notifier, notifier_for
from strangler.extracted.verification_service.redis_store import RedisStore, connect
from strangler.extracted.verification_service.service import Clock, CodeGenerator, Services
from strangler.extracted.verification_service.store import Store

log = logging.getLogger(__name__)
bp = Blueprint("verification", __name__, url_prefix="/api/verification")

STATUS = {
    errors.InvalidRequest: 400,
    errors.ShadowNotAllowed: 403,
    errors.NotFound: 404,
    errors.IdempotencyKeyReused: 422,
    errors.RateLimited: 429,
    errors.MaxAttemptsReached: 429,
    errors.DeliveryFailed: 502,
    errors.StoreUnavailable: 503,
    errors.IdempotencyKeyBusy: 503,
}
# werkzeug's errors that the contract gives machine codes (and, as the monolith, messages).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    500: "internal_error",
}
HTTP_MESSAGES = {
    404: "no such resource",
    405: "method not allowed here",
    413: "the body is over 1 MiB",
    500: "internal error",
}


def create_app(
    config: Config | Mapping[str, str] | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    code_generator: CodeGenerator | None = None,
    notifier: Notifier | None = None,
) -> Flask:
    """The service's WSGI app; `config` is a Config or env-style overrides of os.environ."""
    if not isinstance(config, Config):
        config = Config.from_env({**os.environ, **(config or {})})
    if not config.secret:
        # Kept in Redis beside the hashes it protects: fine for development only.
        log.warning("VERIFICATION_SECRET is not set: using a development secret kept in Redis")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_BODY_BYTES)
    app.json.sort_keys = False  # fields in the contract's order, as the monolith answers
    app.extensions["verification"] = Services(
        config=config,
        store=store or RedisStore(connect(config.redis_url)),
        notifier=notifier or notifier_for(config.webhook_url),
        clock=clock or time.time,
        code_generator=code_generator or service.random_code,
    )
    app.register_blueprint(bp)
    apidoc.register(app)
    app.add_url_rule("/healthz", view_func=healthz)
    app.register_error_handler(errors.VerificationError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_mark_shadow)
    return app


def _services() -> Services:
    return current_app.extensions["verification"]


def _shadow(config: Config) -> bool:
    """Whether this request is an honoured dry run; a dry run without the token is refused."""
    if request.headers.get("X-Strangler-Shadow") != "1":
        return False
    token = request.headers.get("X-Strangler-Internal-Token", "")
    expected = config.internal_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise errors.ShadowNotAllowed("dry runs need the internal token")
    g.shadow = True
    return True


def _json(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post("/send")
def send() -> Response:
    svc = _services()
    dry_run = _shadow(svc.config)
    body = validation.parse_body(request.get_data(cache=False))
    req = validation.parse_send(body)
    key = validation.parse_idempotency_key(request.headers.get("Idempotency-Key"))
    if key is None:
        return _json(201, service.send(svc, req, dry_run=dry_run))
    fingerprint = validation.fingerprint(body)
    stored, replayed = service.send_once(svc, req, key, fingerprint, dry_run=dry_run)
    response = _json(stored.status, stored.body)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/check")
def check() -> Response:
    svc = _services()
    dry_run = _shadow(svc.config)
    req = validation.parse_check(validation.parse_body(request.get_data(cache=False)))
    return _json(200, service.check(svc, req, dry_run=dry_run))


def healthz() -> Response:
    _services().store.ping()
    # The pid shows which worker served, as the monolith's does.
    return _json(200, {"status": "ok", "pid": os.getpid()})


def _mark_shadow(response: Response) -> Response:
    if g.get("shadow"):
        response.headers["X-Strangler-Shadow"] = "1"
    return response


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": code, "message": message})


def _domain_error(exc: errors.VerificationError) -> Response:
    status = STATUS.get(type(exc), 500)
    if isinstance(exc, errors.StoreUnavailable):
        log.warning("store unavailable: %s", exc.__cause__ or exc)
    response = _error(status, exc.code, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    response = _error(status, code, HTTP_MESSAGES.get(status) or exc.description or code)
    # Keep what the exception knew about the protocol (Allow on 405, for one).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
