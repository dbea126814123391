"""Run a scenario against live endpoints: requests, sink reads, captures, polling, delays."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from strangler.contracts import paths
from strangler.contracts.filters import headers_to_keep
from strangler.contracts.model import NO_BODY, Request, Scenario, SinkCode, Step, Via
from strangler.contracts.templating import UnknownVariableError, generate, render

REQUEST_TIMEOUT = 10.0
BACKEND_HEADER = "X-Strangler-Backend"  # the proxy names the backend that answered
SINK_WAIT = 3.0  # delivery is synchronous in both backends; this only absorbs scheduling hiccups


class EndpointError(ValueError):
    """A base URL given on the command line that no request could go to; names the flag."""


def check_base_url(url: str, flag: str) -> str:
    """`url` without its trailing slash; EndpointError unless it is http(s)://host[:port][/path]."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        raise EndpointError(f"{flag}: {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise EndpointError(f"{flag}: expected http://host:port, got {url!r}")
    return url.rstrip("/")


class StepFailed(RuntimeError):
    """A step could not run (no connection, a capture found nothing): later steps cannot either."""


@dataclass(frozen=True)
class Endpoints:
    """Where a run sends its requests: the target, the legacy monolith, and the webhook sink."""

    target: str
    monolith: str
    sink: str

    def base(self, via: Via) -> str:
        return self.monolith if via is Via.MONOLITH else self.target


@dataclass(frozen=True)
class Sent:
    """A request as it went out, and the backend its answer named (not part of any recording)."""

    base: str
    method: str
    path: str  # with the query string
    body: bytes | None
    backend: str | None  # the answer's X-Strangler-Backend; None when it had none


@dataclass
class StepRun:
    step: Step
    values: dict[str, Any]  # generated and captured values the step could use
    observed: dict[str, Any] | None = None  # {"status", "headers", "json" | "text"}
    notes: list[str] = field(default_factory=list)
    sent: Sent | None = None  # the (last) request of a request step


@dataclass
class Run:
    scenario: Scenario
    generated: dict[str, str]
    steps: list[StepRun] = field(default_factory=list)
    error: str | None = None  # why the run stopped early


def observe(response: requests.Response) -> dict[str, Any]:
    """The parts of a response a contract is about."""
    observed: dict[str, Any] = {
        "status": response.status_code,
        "headers": headers_to_keep(response.headers),
    }
    if "json" in response.headers.get("Content-Type", ""):
        try:
            observed["json"] = json.loads(response.content)
            return observed
        except ValueError:
            pass
    observed["text"] = response.text
    return observed


def _body(request: Request, values: dict[str, Any]) -> tuple[bytes | None, dict[str, str]]:
    headers = {k: str(v) for k, v in render(request.headers, values).items()}
    if request.json is not NO_BODY:
        data = json.dumps(render(request.json, values)).encode()
    elif request.raw is not None:
        data = str(render(request.raw, values)).encode()
    elif request.raw_bytes is not None:
        data = b"x" * request.raw_bytes
    else:
        return None, headers
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return data, headers


def send(base: str, request: Request, values: dict) -> tuple[dict[str, Any], Sent]:
    data, headers = _body(request, values)
    path = str(render(request.path, values))
    url = base + path
    try:
        # A connection of its own per request: a contract is about answers, and a server that
        # keeps alive a connection whose body it never read (after a 413) must not turn one
        # step's answer into the next step's connection error.
        with requests.Session() as session:
            response = session.request(
                request.method, url, data=data, headers=headers, timeout=REQUEST_TIMEOUT
            )
    except requests.RequestException as exc:
        raise StepFailed(f"{request.method} {url}: {exc}") from None
    backend = response.headers.get(BACKEND_HEADER)
    return observe(response), Sent(base, request.method, path, data, backend)


def sink_messages(session: requests.Session, sink: str, address: str) -> list[dict[str, Any]]:
    try:
        response = session.get(f"{sink}/messages", params={"to": address}, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise StepFailed(f"webhook sink at {sink}: {exc}") from None
    messages = response.json()["messages"]
    return [{k: v for k, v in m.items() if k != "received_at"} for m in messages]


def sink_code(session: requests.Session, sink: str, spec: SinkCode, values: dict) -> str:
    address = str(render(spec.address, values))
    deadline = time.monotonic() + SINK_WAIT
    while not (messages := sink_messages(session, sink, address)):
        if time.monotonic() > deadline:
            raise StepFailed(f"the webhook sink got no message for {address}")
        time.sleep(0.05)
    code = str(messages[-1]["code"])
    # A wrong code of the same length: every digit moved by one, so it can never be right.
    return "".join(str((int(c) + 1) % 10) for c in code) if spec.wrong else code


def _once(session: requests.Session, endpoints: Endpoints, run: StepRun) -> None:
    step = run.step
    if step.request is not None:
        run.observed, run.sent = send(endpoints.base(step.via), step.request, run.values)
        return
    messages = sink_messages(session, endpoints.sink, str(render(step.sink, run.values)))
    run.observed = {"status": 200, "json": {"messages": messages}}


def _condition_met(observed: dict[str, Any], until: Any) -> bool:
    try:
        return paths.get(observed, until.path) == until.equals
    except paths.PathError:
        return False


def run_step(session: requests.Session, endpoints: Endpoints, run: StepRun) -> None:
    """Fill `run.observed` (polling when the step says `until`) and add the step's captures."""
    step = run.step
    if step.delay:
        time.sleep(step.delay)
    deadline = time.monotonic() + (step.until.within if step.until else 0)
    _once(session, endpoints, run)
    while step.until and not _condition_met(run.observed, step.until):
        if time.monotonic() > deadline:
            run.notes.append(
                f"until: {step.until.path} never became {step.until.equals!r} "
                f"within {step.until.within:g}s"
            )
            break
        time.sleep(step.until.every)
        _once(session, endpoints, run)


def captures(session: requests.Session, endpoints: Endpoints, run: StepRun) -> dict[str, Any]:
    """The values a step captures for the steps after it."""
    found: dict[str, Any] = {}
    for name, source in run.step.capture.items():
        if isinstance(source, SinkCode):
            found[name] = sink_code(session, endpoints.sink, source, run.values)
            continue
        try:
            found[name] = paths.get(run.observed or {}, source)
        except paths.PathError as exc:
            raise StepFailed(f"capture {name!r}: {exc}") from None
    return found


def run_scenario(scenario: Scenario, endpoints: Endpoints) -> Run:
    """Run every step in order, with fresh variables; stop at the first step that cannot run."""
    run = Run(scenario, generate(scenario.variables))
    values: dict[str, Any] = dict(run.generated)
    with requests.Session() as session:
        for step in scenario.steps:
            step_run = StepRun(step, dict(values))
            run.steps.append(step_run)
            try:
                run_step(session, endpoints, step_run)
                values.update(captures(session, endpoints, step_run))
            except (StepFailed, UnknownVariableError) as exc:
                run.error = f"step {step.name!r}: {exc}"
                break
    return run
