"""What `strangler fuzz` sends: requests generated from an OpenAPI document, and stateful flows.

Schemathesis generates each operation's requests, valid and invalid (half of the budget each).
For the verification API (a document with the operations `send` and `check`) hypothesis also
draws flows: a send, then checks with the right code (read from the webhook sink at run time,
per backend), wrong codes, attempts exhausted, resends, the same `Idempotency-Key` again, with
the same body and another. Their inputs come from the document's own shapes (its patterns,
the key's `maxLength` and the lengths just around it) and from corners of the API (e-mail
addresses with upper-case letters outside ASCII, padded addresses).

Everything is drawn before anything is sent, with a fixed seed: the same seed and budget give
the same cases, whatever the servers answer.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import string
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

# Headers schemathesis adds that are about the client, not the case (and one that changes).
CLIENT_HEADERS = frozenset(
    {"user-agent", "accept-encoding", "accept", "connection", "x-schemathesis-testcaseid"}
)
KEY_ALPHABET = string.ascii_letters + string.digits + "-_.~:"
# Domains for the corner addresses: mixed case, and letters outside ASCII.
DOMAINS = ("example.com", "EXAMPLE.org", "bücher.example", "ÉCOLE.Example")
FLOW_ACTIONS = ("check_right", "check_wrong", "check_code", "resend", "resend_same_key",
                "same_key_other_body", "exhaust", "flood", "check_other_spelling")  # fmt: skip
MAX_ATTEMPTS = 5  # the API's defaults: the 6th wrong check is refused,
MAX_SENDS = 5  # and the 6th send to one address within the window


@dataclass(frozen=True)
class Call:
    """One request, sent alike to both backends.

    `sink_code` ("right" or "wrong") makes the body's `code` the one each backend delivered
    for its last accepted send of the flow (read from the sink), or a wrong one of its length.
    """

    operation: str  # "POST /api/verification/check"
    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    document: Any = None  # the JSON body when `sink_code` fills it in at run time
    sink_code: str | None = None

    def body_for(self, code: str | None) -> bytes | None:
        if self.sink_code is None:
            return self.body
        return json.dumps({**self.document, "code": code}).encode()


@dataclass(frozen=True)
class Case:
    """Requests sent in order; a flow keeps the state its earlier requests made."""

    kind: str  # "valid", "invalid" or "flow"
    operation: str  # the operation generated from, or "flow"
    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Plan:
    cases: tuple[Case, ...]
    counts: dict[str, dict[str, int]]  # operation -> kind -> cases generated
    flows_skipped: str | None = None  # why no flows were drawn, if none were


@contextlib.contextmanager
def _seed_alone() -> Iterator[None]:
    """Hide from hypothesis the constants it collects from the source of loaded modules.

    Hypothesis sometimes draws a literal found in a loaded module of the project instead of a
    random value; which modules are loaded differs between a `strangler fuzz` process, a test
    session and an installed wheel, so one seed would draw other cases in each. While drawing,
    its pool of them is empty and every loaded module counts as read. (Internal state of
    hypothesis 6: if it is not there, drawing goes on with the pool.)
    """
    try:
        from hypothesis.internal.conjecture import providers

        saved = (providers._local_constants, providers._sys_modules_len)
        seen = set(providers._seen_modules)
        empty = copy.deepcopy(providers._local_constants)
    except AttributeError:  # pragma: no cover (another hypothesis)
        yield
        return
    for pool in (empty.integers, empty.floats, empty.bytes, empty.strings):
        pool.clear()
    providers._local_constants = empty
    providers._seen_modules.update(id(module) for module in list(sys.modules.values()))
    providers._sys_modules_len = len(sys.modules)
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._local_constants, providers._sys_modules_len = saved
        providers._seen_modules.clear()
        providers._seen_modules.update(seen)
        providers.CONSTANTS_CACHE.cache.clear()


def draw(strategy: st.SearchStrategy, count: int, at_seed: int) -> list[Any]:
    """Up to `count` values of `strategy`, the same ones for the same seed (no shrinking)."""
    found: list[Any] = []

    @seed(at_seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    # An operation without inputs has nothing (or one thing) to vary.
    with _seed_alone(), contextlib.suppress(Unsatisfiable):
        collect()
    return found


def json_body(document: Any) -> bytes:
    return json.dumps(document).encode()


def call_from_case(case: Any, operation: str) -> Call:
    kwargs = case.as_transport_kwargs(base_url="http://fuzz.invalid")
    parts = urllib.parse.urlsplit(kwargs["url"])
    query = urllib.parse.urlencode(kwargs.get("params") or {}, doseq=True)
    path = parts.path + (f"?{query}" if query else "")
    headers = tuple(
        (name, str(value))
        for name, value in (kwargs.get("headers") or {}).items()
        if name.lower() not in CLIENT_HEADERS
    )
    if "json" in kwargs:
        body = json_body(kwargs["json"])
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data.encode() if isinstance(data, str) else bytes(data)
    else:
        body = None
    return Call(operation, kwargs["method"].upper(), path, headers, body)


def operation_cases(document: dict[str, Any], examples: int, at_seed: int) -> Plan:
    """`examples` cases per operation of the document: half valid, half invalid."""
    schema = schemathesis.openapi.from_dict(document)
    cases: list[Case] = []
    counts: dict[str, dict[str, int]] = {}
    budget = {"valid": math.ceil(examples / 2), "invalid": examples // 2}
    modes = {"valid": GenerationMode.POSITIVE, "invalid": GenerationMode.NEGATIVE}
    for index, result in enumerate(schema.get_all_operations()):
        if isinstance(result, Err):
            raise result.err()  # an operation the document does not describe well enough
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = {}
        for kind, mode in modes.items():
            strategy = operation.as_strategy(generation_mode=mode)
            drawn = draw(strategy, budget[kind], at_seed + index)
            counts[label][kind] = len(drawn)
            cases += [Case(kind, label, (call_from_case(c, label),)) for c in drawn]
    return Plan(tuple(cases), counts)


def _find(document: dict[str, Any], operation_id: str) -> tuple[str, str] | None:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return method.upper(), path
    return None


@dataclass(frozen=True)
class FlowShapes:
    """What the flows take from the document: where to send and check, and the input shapes."""

    send: tuple[str, str]
    check: tuple[str, str]
    phone: str
    email: str
    code: str
    key_max: int

    @classmethod
    def of(cls, document: dict[str, Any]) -> FlowShapes | None:
        send, check = _find(document, "send"), _find(document, "check")
        schemas = document.get("components", {}).get("schemas", {})
        key = document.get("components", {}).get("parameters", {}).get("IdempotencyKey", {})
        patterns = [schemas.get(name, {}).get("pattern") for name in ("Phone", "Email", "Code")]
        if send is None or check is None or None in patterns:
            return None
        phone, email, code = patterns
        return cls(send, check, phone, email, code, key.get("schema", {}).get("maxLength", 255))


def _destination(shapes: FlowShapes, channel: str) -> st.SearchStrategy[str]:
    if channel == "sms":
        return st.from_regex(shapes.phone, fullmatch=True)
    letters = st.characters(categories=("Lu", "Ll", "Nd"))
    corner = st.builds(
        lambda pad, local, domain: f"{pad}{local}@{domain}{pad}",
        st.sampled_from(["", " ", "\t"]),
        st.text(letters, min_size=1, max_size=12),
        st.sampled_from(DOMAINS),
    )
    return st.one_of(st.from_regex(shapes.email, fullmatch=True).filter(_short), corner)


def _short(address: str) -> bool:
    return len(address.strip()) <= 254


def _keys(shapes: FlowShapes) -> st.SearchStrategy[str]:
    # The lengths just around the limit, and any length up to it.
    edge = [1, shapes.key_max - 1, shapes.key_max, shapes.key_max + 1]
    length = st.one_of(st.sampled_from(edge), st.integers(1, shapes.key_max))
    return length.flatmap(lambda n: st.text(KEY_ALPHABET, min_size=n, max_size=n))


@st.composite
def _flow(draw_: st.DrawFn, shapes: FlowShapes) -> dict[str, Any]:
    channel = draw_(st.sampled_from(["sms", "email"]))
    codes = st.from_regex(shapes.code, fullmatch=True)
    action = st.tuples(st.sampled_from(FLOW_ACTIONS), codes)
    return {
        "channel": channel,
        "to": draw_(_destination(shapes, channel)),
        "key": draw_(st.none() | _keys(shapes)),
        "actions": draw_(st.lists(action, min_size=1, max_size=8)),
    }


def _unique(drawn: dict[str, Any], number: int) -> dict[str, Any]:
    """The flow with an address (and key) of its own, so flows do not share a send limit."""
    tag = f"{number:05d}"
    to, key = drawn["to"], drawn["key"]
    if drawn["channel"] == "sms":
        to = to[: len(to) - len(tag)] + tag
    else:
        stripped = to.strip()
        to = to.replace(stripped, f"f{tag}.{stripped}", 1)
    if key is not None and len(key) > len(tag):
        key = tag + key[len(tag) :]
    return {**drawn, "to": to, "key": key}


def _post(operation: tuple[str, str], document: dict[str, Any], key: str | None) -> Call:
    method, path = operation
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Idempotency-Key", key))
    return Call(f"{method} {path}", method, path, tuple(headers), json_body(document))


def flow_calls(shapes: FlowShapes, flow: dict[str, Any]) -> tuple[Call, ...]:
    """The requests of one drawn flow: a send, then its actions in order."""
    to, key = flow["to"], flow["key"]
    send_body = {"to": to, "channel": flow["channel"]}
    send = _post(shapes.send, send_body, key)
    check = _post(shapes.check, {"to": to, "code": "0"}, None)
    right = replace(check, body=None, document={"to": to}, sink_code="right")
    wrong = replace(right, sink_code="wrong")
    calls = [send]
    for action, code in flow["actions"]:
        if action == "check_right":
            calls.append(right)
        elif action == "check_wrong":
            calls.append(wrong)
        elif action == "check_code":
            calls.append(replace(check, body=json_body({"to": to, "code": code})))
        elif action == "exhaust":
            calls += [wrong] * (MAX_ATTEMPTS + 1)
        elif action == "resend":
            calls.append(_post(shapes.send, send_body, None))
        elif action == "flood":
            calls += [_post(shapes.send, send_body, None)] * MAX_SENDS
        elif action == "resend_same_key":
            calls.append(send)
        elif action == "same_key_other_body":
            calls.append(_post(shapes.send, {**send_body, "note": code}, key or code))
        else:  # the same address spelled otherwise: upper-cased, or padded
            other = to.upper() if "@" in to else f" {to}"
            calls.append(replace(right, document={"to": other}))
    return tuple(calls)


def flow_cases(document: dict[str, Any], examples: int, at_seed: int) -> tuple[list[Case], str]:
    """`examples` flows of the verification API, or none and why."""
    shapes = FlowShapes.of(document)
    if shapes is None:
        return [], "the document has no operations `send` and `check` with Phone, Email, Code"
    drawn = draw(_flow(shapes), examples, at_seed)
    cases = [Case("flow", "flow", flow_calls(shapes, _unique(f, n))) for n, f in enumerate(drawn)]
    return cases, ""


def plan(document: dict[str, Any], examples: int, at_seed: int, flows: bool = True) -> Plan:
    """Every case of a run: each operation's, then the flows (when asked and possible)."""
    made = operation_cases(document, examples, at_seed)
    if not flows:
        return replace(made, flows_skipped="flows need the webhook sink (--sink-url)")
    drawn, why = flow_cases(document, examples, at_seed)
    counts = {**made.counts, "flow": {"flow": len(drawn)}} if drawn else made.counts
    return Plan(made.cases + tuple(drawn), counts, why or None)
