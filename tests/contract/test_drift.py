"""Drift is caught: the real service, deliberately altered, fails replay and the report names why.

The service app runs in this process behind a small WSGI middleware that rewrites its answers
(or with a looser limit from its own settings); the replay engine is driven directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from strangler.contracts import recording
from strangler.contracts.model import load_scenarios
from strangler.contracts.replay import Report, replay
from strangler.contracts.runner import Endpoints
from strangler.contracts.stacks import CODE_TTL
from strangler.extracted.verification_service import create_app
from strangler.stack.sink import WebhookSink
from tests.contract.suite import RECORDINGS, SCENARIOS

Rewrite = Callable[[str, int, dict[str, Any]], tuple[int, dict[str, Any]]]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        pass


def altered(app: Callable, rewrite: Rewrite | None) -> Callable:
    """WSGI middleware: the app's JSON answers passed through `rewrite(path, status, body)`."""

    def wsgi(environ: dict, start_response: Callable) -> Any:
        response = Response.from_app(app, environ)
        if rewrite is not None and response.is_json:
            path = environ["PATH_INFO"]
            response.status_code, body = rewrite(path, response.status_code, response.get_json())
            response.set_data(json.dumps(body))
        return response(environ, start_response)

    return wsgi


@pytest.fixture
def serve(redis_url: str) -> Iterator[Callable[..., Endpoints]]:
    """Start the real service (with `env` overrides, answers rewritten) on a free port."""
    sink = WebhookSink().start()
    servers = []

    def start(rewrite: Rewrite | None = None, env: dict[str, str] | None = None) -> Endpoints:
        settings = {"REDIS_URL": redis_url, "VERIFICATION_WEBHOOK_URL": sink.url,
                    "VERIFICATION_CODE_TTL": str(CODE_TTL), **(env or {})}  # fmt: skip
        app = altered(create_app(settings), rewrite)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"
        return Endpoints(url, url, sink.base_url)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    sink.stop()


def replay_named(name: str, endpoints: Endpoints) -> Report:
    (scenario,) = load_scenarios(SCENARIOS, only=name)
    return replay(scenario, recording.read(name, RECORDINGS), endpoints)


def rename_expires_in(path: str, status: int, body: dict) -> tuple[int, dict]:
    if path.endswith("/send") and "expires_in" in body:
        body["expiresIn"] = body.pop("expires_in")
    return status, body


def gone_instead_of_not_found(path: str, status: int, body: dict) -> tuple[int, dict]:
    return (410 if status == 404 else status), body


@pytest.mark.redis
def test_the_unaltered_service_passes(serve: Callable[..., Endpoints]) -> None:
    report = replay_named("send_check_sms", serve())
    assert not report.failed, report.render()


@pytest.mark.redis
@pytest.mark.parametrize(
    ("scenario", "rewrite", "env", "expected"),
    [
        pytest.param(
            "send_check_sms", rename_expires_in, {},
            ["  step 1 'send' (POST /api/verification/send):",
             "    json.expires_in: recorded 3, actual (absent)",
             "    json.expiresIn: recorded (absent), actual 3"],
            id="renamed-field",
        ),
        pytest.param(
            "check_without_pending", gone_instead_of_not_found, {},
            ["  step 1 'phone never sent a code' (POST /api/verification/check):",
             "    status: recorded 404, actual 410"],
            id="changed-status",
        ),
        pytest.param(
            "send_rate_limited", None, {"VERIFICATION_MAX_SENDS": "10"},
            ["  step 6 'sixth send is refused' (POST /api/verification/send):",
             "    status: recorded 429, actual 201",
             "    json.error: recorded 'rate_limited', actual (absent)"],
            id="looser-send-limit",
        ),
    ],
)  # fmt: skip
def test_a_drifted_service_fails_and_the_report_names_the_difference(
    serve: Callable[..., Endpoints],
    scenario: str,
    rewrite: Rewrite | None,
    env: dict[str, str],
    expected: list[str],
) -> None:
    report = replay_named(scenario, serve(rewrite, env))
    assert report.failed
    lines = report.render().splitlines()
    for line in expected:
        assert line in lines, report.render()
