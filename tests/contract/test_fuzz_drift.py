"""The fuzz finds what the recordings miss: three seeded drifts pass every scenario, not the fuzz.

The real verification service runs in this process behind a WSGI middleware that changes its
answer in one corner of the API. For each drift: every recorded scenario still passes against
it (on the Redis of a real stack, with its gunicorn monolith, event consumer and webhook sink,
so the scenarios about the monolith's users pass too); `strangler fuzz`'s engine, at its
default budget and seed, reports it, a fresh monolith against the drifted service on emptied
Redis data (the fuzz's cases leave send limits and idempotency keys that a second run must not
meet). The faithful service, wrapped the same way, reports 0.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from strangler.contracts import recording
from strangler.contracts.fuzz import DEFAULT_EXAMPLES, DEFAULT_SEED, Targets, fuzz, load_document
from strangler.contracts.fuzzcases import Plan, plan
from strangler.contracts.model import Target, load_scenarios
from strangler.contracts.replay import replay
from strangler.contracts.runner import Endpoints
from strangler.contracts.stacks import CODE_TTL
from strangler.extracted.verification_service import create_app
from strangler.monolith import create_app as monolith_app
from strangler.stack.running import RunningStack, running_stack
from tests.contract.suite import RECORDINGS, SCENARIOS

# (status, body) instead of the service's answer, or None to keep it.
Drift = Callable[[str, dict[str, str], Any, int, Any], tuple[int, Any] | None]


def unicode_upper_email_kept(path: str, headers: dict, sent: Any, status: int, body: Any):
    """E-mail addresses lower-cased in ASCII only: `Élise@x.example` answers as `Élise@...`."""
    to = sent.get("to") if isinstance(sent, dict) else None
    if status != 201 or not isinstance(to, str) or "@" not in to:
        return None
    if not any(c.isupper() and not c.isascii() for c in to):
        return None
    stripped = to.strip()
    ascii_lowered = "".join(c.lower() if c.isascii() else c for c in stripped)
    return status, {**body, "to": ascii_lowered}


def ten_digit_code_refused(path: str, headers: dict, sent: Any, status: int, body: Any):
    """A code of 10 digits (the longest the API takes) refused as if the limit were 9."""
    code = sent.get("code") if isinstance(sent, dict) else None
    if not path.endswith("/check") or status == 400 or not isinstance(code, str):
        return None
    if len(code) != 10 or not (code.isascii() and code.isdigit()):
        return None
    return 400, {"error": "invalid_code", "message": "'code' must be a string of 1 to 10 digits"}


def longest_idempotency_key_refused(path: str, headers: dict, sent: Any, status: int, body: Any):
    """An `Idempotency-Key` of exactly 255 characters (the longest allowed) refused."""
    if not path.endswith("/send") or len(headers.get("idempotency-key", "")) != 255:
        return None
    return 400, {"error": "invalid_idempotency_key",
                 "message": "Idempotency-Key must be 1-255 characters"}  # fmt: skip


def drifted(app: Callable, drift: Drift | None) -> Callable:
    """WSGI middleware: the app's answers passed through `drift` (which sees the request)."""

    def wsgi(environ: dict, start_response: Callable) -> Any:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        request = Request(environ)
        headers = {k.lower(): v for k, v in request.headers.items()}
        response = Response.from_app(app, environ)
        try:
            sent = json.loads(raw)
        except ValueError:
            sent = None
        if drift is not None and response.is_json:
            changed = drift(environ["PATH_INFO"], headers, sent, response.status_code,
                            response.get_json())  # fmt: skip
            if changed is not None:
                response.status_code = changed[0]
                response.set_data(json.dumps(changed[1]))
        return response(environ, start_response)

    return wsgi


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def default_plan() -> Plan:
    """The cases `strangler fuzz` sends by default (drawn once: they depend on the seed only)."""
    return plan(load_document(None), DEFAULT_EXAMPLES, DEFAULT_SEED)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Redis, the monolith and its event consumer, the sink: shared by every case here."""
    with running_stack(tmp_path_factory.mktemp("fuzz-drift"), service=True, proxy=False) as s:
        yield s


def _serve(app: Callable, servers: list) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_port}"


FUZZ_DATABASE = 1  # the Redis database of the fuzz's service, emptied before each run


@dataclass
class Apps:
    """Apps served in this process: the service (drifted or not) and a fresh monolith."""

    stack: RunningStack
    tmp_path: Path
    servers: list = field(default_factory=list)

    def service(self, drift: Drift | None, env: dict[str, str] | None = None,
                fresh: bool = False) -> str:  # fmt: skip
        """On the stack's Redis, or (`fresh`) on an emptied database of it."""
        redis_url = self.stack.cfg.effective_redis_url
        if fresh:
            redis_url = f"{redis_url.rsplit('/', 1)[0]}/{FUZZ_DATABASE}"
            with redis.Redis.from_url(redis_url) as client:
                client.flushdb()
        settings = {"REDIS_URL": redis_url, "VERIFICATION_WEBHOOK_URL": self.stack.sink.url,
                    **(env or {})}  # fmt: skip
        return _serve(drifted(create_app(settings), drift), self.servers)

    def monolith(self) -> str:
        settings = {"DATABASE": str(self.tmp_path / "monolith.sqlite3"),
                    "VERIFICATION_WEBHOOK_URL": self.stack.sink.url}  # fmt: skip
        return _serve(monolith_app(settings), self.servers)


@pytest.fixture
def apps(stack: RunningStack, tmp_path: Path) -> Iterator[Apps]:
    made = Apps(stack, tmp_path)
    yield made
    for server in made.servers:
        server.shutdown()
        server.server_close()


def failed_scenarios(endpoints: Endpoints) -> list[str]:
    scenarios = [s for s in load_scenarios(SCENARIOS) if s.applies_to(Target.SERVICE)]

    def one(scenario: Any) -> str | None:
        report = replay(scenario, recording.read(scenario.name, RECORDINGS), endpoints)
        return report.render() if report.failed else None

    with ThreadPoolExecutor(4) as pool:  # the scenarios use addresses of their own
        return [text for text in pool.map(one, scenarios) if text]


@pytest.mark.redis
@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize(
    ("drift", "kind"),
    [
        pytest.param(None, None, id="faithful"),
        pytest.param(unicode_upper_email_kept, ("POST /api/verification/send", 201, "json.to"),
                     id="unicode-upper-case-email"),
        pytest.param(ten_digit_code_refused, ("POST /api/verification/check", 400, "status"),
                     id="ten-digit-code"),
        pytest.param(longest_idempotency_key_refused,
                     ("POST /api/verification/send", 400, "status"), id="idempotency-key-of-255"),
    ],
)  # fmt: skip
def test_every_scenario_passes_and_the_fuzz_reports_the_drift(
    stack: RunningStack,
    apps: Apps,
    default_plan: Plan,
    drift: Drift | None,
    kind: tuple[str, int, str] | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The recordings were made with a short code lifetime (and the scenarios about users need
    # the stack's monolith and consumer); the fuzz runs the default lifetime, so no code expires
    # between the legacy's answer and the candidate's, on a fresh monolith and fresh Redis data.
    short = apps.service(drift, {"VERIFICATION_CODE_TTL": str(CODE_TTL)})
    sink = stack.sink.base_url
    assert failed_scenarios(Endpoints(short, stack.monolith_url, sink)) == []
    targets = Targets(apps.monolith(), apps.service(drift, fresh=True), sink)
    tally = fuzz(default_plan, targets)
    report = "\n".join([*tally.render(targets.candidate, sink), tally.summary()])
    with capsys.disabled():  # the report as printed, for the record
        print(f"\n--- {drift.__name__ if drift else 'faithful'}\n{report}")
    if drift is None:
        assert not tally.failed, report
        assert tally.summary().endswith(" 0 differ, 0 5xx")
        return
    assert tally.failed and tally.server_errors == 0, report
    operation, status, where = kind  # where the drift shows: its operation, status, a place
    assert any(k[0] == operation and k[2] == status and where in k[3] for k in tally.groups), report
    assert "curl -sS -i -X POST" in report
