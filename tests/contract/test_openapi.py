"""The OpenAPI document cannot drift from the behaviour: every recorded exchange is held to it.

Each recorded request of the verification API is filled with sample values (of the scenario's
variable kinds, captures taken from the recorded answers) and checked against its operation:
a request the document accepts must not be answered 400; one it refuses must be answered with
a documented client error. Each recorded answer must be a documented status of that operation,
its body must fit the schema and carry one of the error codes the document lists for it, and
its documented headers (`Retry-After`, `Allow`, ...) must be there and fit. Both backends serve
the same document at `/openapi.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from strangler import apidoc
from strangler.contracts import recording
from strangler.contracts.matchers import is_matcher
from strangler.contracts.model import NO_BODY, Scenario, SinkCode, Step, load_scenarios
from strangler.contracts.noise import DATETIME
from strangler.contracts.templating import VariableKind, render
from strangler.extracted.verification_service import create_app as service_app
from strangler.monolith import create_app as monolith_app
from tests.contract.suite import RECORDINGS, SCENARIOS
from tests.repository import REPO

DOCUMENT = apidoc.document()
API_PREFIX = "/api/verification/"
MAX_BODY = 1024 * 1024
SAMPLE_VARIABLES = {
    VariableKind.PHONE: "+15550000001",
    VariableKind.EMAIL: "c-0000000000@contract.example",
    VariableKind.NAME: "user_00000000",
    VariableKind.TOKEN: "0" * 24,
}
# A value for each pattern the recordings use, so an answer with matchers can be validated.
SAMPLE_FOR_PATTERN = {
    r"^VE[0-9a-f]{32}$": "VE" + "0" * 32,
    DATETIME: "2026-01-01T00:00:00Z",
    r"^[1-9][0-9]*$": "1",
    r"^(POST, OPTIONS|OPTIONS, POST)$": "POST, OPTIONS",
}
SAMPLE_FOR_TYPE = {"int": 1, "str": "x", "number": 1.5, "bool": True, "null": None,
                   "list": [], "object": {}}  # fmt: skip


def sample(tree: Any) -> Any:
    """A recorded tree with each matcher replaced by a value it accepts."""
    if is_matcher(tree):
        ((key, arg),) = tree.items()
        if key == "$type" or arg in SAMPLE_FOR_TYPE:
            return SAMPLE_FOR_TYPE[arg]
        if key == "$redacted":
            return "0" * int(re.fullmatch(r"\^\[0-9\]\{(\d+)\}\$", arg).group(1))
        assert arg in SAMPLE_FOR_PATTERN, f"no sample value for the matcher {tree}: add one"
        return SAMPLE_FOR_PATTERN[arg]
    if isinstance(tree, dict):
        return {k: sample(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [sample(item) for item in tree]
    return tree


def pointer(*parts: str, base: str = "#") -> str:
    """A JSON pointer to `parts` below `base` (itself a pointer)."""
    return base + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator(ref: str) -> jsonschema_rs.Validator:
    """A validator for the schema at `ref` in the document (whose other refs it resolves)."""
    return jsonschema_rs.Draft202012Validator({**DOCUMENT, "$ref": ref})


def errors_of(ref: str, value: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message}" for e in validator(ref).iter_errors(value)]


def deref(node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A document object behind its `$ref` (if it is one), and the pointer it was found at."""
    ref = node.get("$ref") if set(node) == {"$ref"} else None
    if ref is None:
        return node, None
    target: Any = DOCUMENT
    for part in ref.removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, ref


def scenarios_with_recordings() -> list[tuple[Scenario, recording.Recording]]:
    pairs = []
    for scenario in load_scenarios(SCENARIOS):
        made = recording.read(scenario.name, RECORDINGS)
        assert made is not None, f"{scenario.name} has no recording"
        pairs.append((scenario, made))
    return pairs


def step_values(scenario: Scenario, made: recording.Recording) -> list[dict[str, Any]]:
    """The values each step is filled with: samples, then captures from the answers before."""
    values: dict[str, Any] = {name: SAMPLE_VARIABLES[k] for name, k in scenario.variables.items()}
    before = []
    for index, step in enumerate(scenario.steps):
        before.append(dict(values))
        answer = render(sample(made.expected(index)), values)
        for name, source in step.capture.items():
            if isinstance(source, SinkCode):
                values[name] = "000000" if not source.wrong else "111111"
            else:
                target: Any = answer
                for part in source.split("."):
                    target = target[part]
                values[name] = target
    return before


def body_of(step: Step, values: dict[str, Any]) -> tuple[Any, int]:
    """(the JSON document, or NO_BODY when the body is none or not JSON; its size in bytes)."""
    request = step.request
    if request.json is not NO_BODY:
        data = json.dumps(render(request.json, values))
    elif request.raw is not None:
        data = str(render(request.raw, values))
    elif request.raw_bytes is not None:
        return NO_BODY, request.raw_bytes
    else:
        return NO_BODY, 0
    try:
        return json.loads(data), len(data.encode())
    except ValueError:
        return NO_BODY, len(data.encode())


def request_problems(
    operation: dict[str, Any], where: tuple[str, ...], step: Step, values: dict[str, Any]
) -> list[str]:
    """Why the document refuses the request (empty: it accepts it)."""
    headers = {k.lower(): str(v) for k, v in render(step.request.headers, values).items()}
    found = []
    for parameter in operation.get("parameters", []):
        parameter, ref = deref(parameter)
        value = headers.get(parameter["name"].lower())
        if value is None:
            if parameter.get("required"):
                found.append(f"header {parameter['name']} is required")
            continue
        at = pointer("schema", base=ref)
        found += [f"header {parameter['name']}{e}" for e in errors_of(at, value)]
    if "requestBody" in operation:
        document, size = body_of(step, values)
        if size > MAX_BODY:
            found.append(f"the body is {size} bytes")
        elif document is NO_BODY:
            found.append("the body is not JSON")
        else:
            schema = pointer(*where, "requestBody", "content", "application/json", "schema")
            found += [f"body{e}" for e in errors_of(schema, document)]
    return found


def answer_problems(operation: dict[str, Any], where: tuple[str, ...], answer: dict) -> list[str]:
    """Why the recorded answer is not one the operation documents."""
    status = str(answer["status"])
    if status not in operation["responses"]:
        return [f"status {status} is not documented (only {', '.join(operation['responses'])})"]
    response, ref = deref(operation["responses"][status])
    at = ref or pointer(*where, "responses", status)
    found = []
    for name, header in response.get("headers", {}).items():
        header, header_ref = deref(header)
        value = answer.get("headers", {}).get(name.lower())
        if value is None:
            if header.get("required"):
                found.append(f"header {name} is missing")
            continue
        schema_at = pointer("schema", base=header_ref or pointer("headers", name, base=at))
        found += [f"header {name}{e}" for e in errors_of(schema_at, value)]
    content = response.get("content", {}).get("application/json")
    if content is not None:
        if "json" not in answer:
            return [*found, "the body is not JSON"]
        schema_at = pointer("content", "application/json", "schema", base=at)
        found += [f"body{e}" for e in errors_of(schema_at, answer["json"])]
        listed = content["schema"].get("x-errors")
        code = answer["json"].get("error") if isinstance(answer["json"], dict) else None
        if listed is not None and code not in listed:
            found.append(f"error {code!r} is not one of {listed} for status {status}")
    return found


def exchanges() -> list[Any]:
    """One pytest param per recorded request of the verification API (legacy routes left out)."""
    params = []
    for scenario, made in scenarios_with_recordings():
        for index, (step, values) in enumerate(
            zip(scenario.steps, step_values(scenario, made), strict=True)
        ):
            request = step.request
            if request is None or not request.path.startswith(API_PREFIX):
                continue
            name = f"{scenario.name}-{index + 1}"
            params.append(pytest.param(step, values, made.expected(index), id=name))
    return params


EXCHANGES = exchanges()


def test_the_recordings_exercise_every_documented_operation_and_status() -> None:
    seen: set[tuple[str, str, str]] = set()
    for param in EXCHANGES:
        step, _, answer = param.values
        seen.add((step.request.path, step.request.method.lower(), str(answer["status"])))
    for must in [("/api/verification/send", "post", "201"), ("/api/verification/send", "post",
                 "429"), ("/api/verification/check", "post", "200"),
                 ("/api/verification/check", "post", "429"), ("/api/verification/send", "get",
                 "405")]:  # fmt: skip
        assert must in seen, f"no recording shows {must}"
    assert len(EXCHANGES) >= 60


@pytest.mark.parametrize(("step", "values", "recorded"), EXCHANGES)
def test_every_recorded_exchange_fits_the_document(
    step: Step, values: dict[str, Any], recorded: dict[str, Any]
) -> None:
    request, answer = step.request, render(sample(recorded), values)
    item = DOCUMENT["paths"].get(request.path)
    if item is None:  # an unknown URL under the API: the documented not-found error
        assert answer["status"] == 404, answer
        assert errors_of(pointer("components", "schemas", "Error"), answer["json"]) == []
        assert answer["json"]["error"] == "not_found"
        return
    method = request.method.lower()
    assert method in item, f"{request.method} {request.path} is not in the document"
    operation, where = item[method], ("paths", request.path, method)
    refused = request_problems(operation, where, step, values)
    status = answer["status"]
    if refused:
        assert status in (400, 413), f"the document refuses it ({refused}), yet {status}"
    else:
        assert status != 400, f"the document accepts it, yet 400 {answer.get('json')}"
    assert answer_problems(operation, where, answer) == []


def test_the_docs_file_is_the_served_document() -> None:
    linked = Path(REPO / "docs" / "verification-openapi.yaml")
    assert linked.resolve() == (REPO / "apidoc" / apidoc.DOCUMENT).resolve()
    assert DOCUMENT["openapi"] == "3.1.0"


@pytest.mark.parametrize("backend", ["monolith", "service"])
def test_both_backends_serve_the_document(backend: str, tmp_path: Path) -> None:
    if backend == "monolith":
        app = monolith_app({"DATABASE": str(tmp_path / "m.sqlite3")})
    else:  # the store is never reached by this route: no Redis needed
        app = service_app({"REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.is_json and response.get_json() == DOCUMENT
    refused = client.post("/openapi.json")
    assert refused.status_code == 405 and refused.get_json()["error"] == "method_not_allowed"
