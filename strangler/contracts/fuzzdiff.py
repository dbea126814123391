"""How `strangler fuzz` judges two answers to one request, and how it reports the differences.

The comparison is the recorder's: the legacy answer becomes the expected tree (through the
same noise model, so ids and times are held to their shape, not their value) and the
candidate's answer is compared with it by the same matchers. Headers are the contract's
(volatile ones dropped); `Retry-After` and `Allow` count by presence, as their values follow
the clock and the framework. Differences are grouped by kind (the request's operation, both
statuses and the places that differ); each group shows its smallest case as `curl` lines.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strangler.contracts import noise
from strangler.contracts.fuzzcases import Call, Case
from strangler.contracts.matchers import MISSING, Mismatch, compare
from strangler.contracts.replay import ASPECTS

BY_PRESENCE = ("retry-after", "allow")
PRESENT = "(present)"
SHOWN_BODY = 400  # characters of a body a curl line shows before it is cut


def view(observed: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an observed answer that are compared (see the module docstring)."""
    headers = dict(observed.get("headers", {}))
    for name in BY_PRESENCE:
        if name in headers:
            headers[name] = PRESENT
    return {**observed, "headers": headers}


def differences(legacy: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[Mismatch]:
    """Every difference of the candidate's answer from the legacy one, all aspects at once."""
    want, got = view(legacy), view(candidate)
    expected = noise.merge(want, want)
    found: list[Mismatch] = []
    for aspect in ASPECTS:
        if aspect in expected or aspect in got:
            found += compare(expected.get(aspect, MISSING), got.get(aspect, MISSING), {}, aspect)
    return found


@dataclass(frozen=True)
class Finding:
    """A case whose answers differ (or came back 5xx), up to its first such request."""

    case: Case
    upto: int  # index of the first differing (or 5xx) request
    legacy: Mapping[str, Any]
    candidate: Mapping[str, Any]
    mismatches: tuple[Mismatch, ...]

    @property
    def call(self) -> Call:
        return self.case.calls[self.upto]

    @property
    def kind(self) -> tuple[Any, ...]:
        if not self.mismatches:
            return ("5xx", self.call.operation, self.legacy["status"], self.candidate["status"])
        paths = tuple(sorted({m.path for m in self.mismatches}))
        return (self.call.operation, self.legacy["status"], self.candidate["status"], paths)

    @property
    def size(self) -> tuple[int, int]:
        calls = self.case.calls[: self.upto + 1]
        return len(calls), sum(len(c.body or b"") for c in calls)


def _quote_body(body: bytes) -> str:
    text = body.decode("utf-8", "backslashreplace")
    if len(text) > SHOWN_BODY:
        text = text[:SHOWN_BODY] + f"...({len(body)} bytes)"
    return shlex.quote(text)


def curl(call: Call, base: str, sink: str | None) -> str:
    """One request as a shell line (a code from the sink is shown as a placeholder)."""
    parts = ["curl", "-sS", "-i", "-X", call.method, shlex.quote(base + call.path)]
    for name, value in call.headers:
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if call.sink_code is not None:
        placeholder = "<the code the sink got>" if call.sink_code == "right" else "<a wrong code>"
        parts += ["--data-binary", _quote_body(call.body_for(placeholder))]
        where = f"{sink}/messages?to=..." if sink else "the webhook sink"
        note = "read it from" if call.sink_code == "right" else "each digit plus 1 of the code at"
        return " ".join(parts) + f"   # {note} {where}"
    if call.body is not None:
        parts += ["--data-binary", _quote_body(call.body)]
    return " ".join(parts)


@dataclass
class Tally:
    """A run's findings, grouped by kind; renders the report."""

    cases: int = 0
    differing: int = 0
    server_errors: int = 0
    groups: dict[tuple[Any, ...], list[Finding]] = field(default_factory=dict)
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)  # legacy's, by operation

    def heard(self, call: Call, legacy: Mapping[str, Any]) -> None:
        """Count the legacy answer: the report shows which states the cases reached."""
        body = legacy.get("json")
        outcome = str(legacy["status"])
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            outcome += f" {body['error']}"
        elif isinstance(body, dict) and isinstance(body.get("status"), str):
            outcome += f" {body['status']}"
        self.answers[(call.operation, outcome)] += 1

    def add(self, finding: Finding | None, had_5xx: bool) -> None:
        self.cases += 1
        self.server_errors += had_5xx
        if finding is None:
            return
        self.differing += bool(finding.mismatches)
        self.groups.setdefault(finding.kind, []).append(finding)

    @property
    def failed(self) -> bool:
        return bool(self.differing or self.server_errors)

    def summary(self) -> str:
        return f"{self.cases} cases, {self.differing} differ, {self.server_errors} 5xx"

    def reached(self) -> list[str]:
        """The legacy answers by operation: `POST /x: 201 pending x40, 400 invalid_to x12`."""
        by_operation: dict[str, list[str]] = {}
        for (operation, outcome), n in sorted(self.answers.items(), key=lambda kv: -kv[1]):
            by_operation.setdefault(operation, []).append(f"{outcome} x{n}")
        return [f"  {op}: {', '.join(seen)}" for op, seen in sorted(by_operation.items())]

    def render(self, candidate: str, sink: str | None) -> list[str]:
        lines: list[str] = []
        ordered = sorted(self.groups.values(), key=lambda g: (-len(g), g[0].kind[0]))
        for number, group in enumerate(ordered, 1):
            smallest = min(group, key=lambda f: f.size)
            lines += _group_lines(number, len(ordered), group, smallest, candidate, sink)
        return lines


def _group_lines(
    number: int, total: int, group: list[Finding], first: Finding, base: str, sink: str | None
) -> list[str]:
    legacy, candidate = first.legacy["status"], first.candidate["status"]
    what = "differs" if first.mismatches else "answered 5xx"
    if 0 in (legacy, candidate):
        what += " (0: no answer at all)"
    lines = [
        f"difference {number} of {total}: {first.call.operation} {what}: legacy {legacy}, "
        f"candidate {candidate} ({len(group)} case{'s' * (len(group) != 1)})"
    ]
    lines += [f"  {m.path}: legacy {m.recorded}, candidate {m.actual}" for m in first.mismatches]
    calls = first.case.calls[: first.upto + 1]
    steps = "1 request"
    if len(calls) > 1:
        steps = f"{len(calls)} requests in order; the last one differs"
    lines.append(f"  reproduce ({steps}; the legacy gets the same):")
    lines += [f"    {curl(call, base, sink)}" for call in calls]
    return lines
