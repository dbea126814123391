"""A route's progressive rollout (`rollout:` in routes.yaml): its record, parsing and checks.

Pure: the data plane reads `Route.analysed` to know whether to count a route's outcomes, the
controller (`strangler.rollout`) reads the rest. Every bad value is a RoutingConfigError naming
the file, the route and the field.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import NoReturn

DEFAULT_STEPS = (1, 5, 25, 50, 100)
MAX_INTERVAL = 86_400.0  # seconds: a step analysed less than once a day is not a rollout
MAX_STEPS = 20
OUTCOME_BODY_LIMIT = 2048  # bytes of an answer read for its outcome; a longer body: status only
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%\Z")

Fail = Callable[[str, str], NoReturn]


@dataclass(frozen=True, slots=True)
class Rollout:
    """How a route's new backend is given traffic step by step, and when it is rolled back."""

    steps: tuple[int, ...] = DEFAULT_STEPS  # percent to the new backend; the last is 100
    interval: float = 60.0  # seconds at each step before it is analysed
    min_requests: int = 50  # per backend per analysis window; fewer: wait, never promote
    max_error_rate: float = 0.01  # fraction of the new backend's answers: 5xx, connect failures
    max_latency_ratio: float = 1.5  # new p99 / old p99 over the same window
    outcome: tuple[str, ...] = ()  # JSON fields that, with the status, name an answer's outcome
    max_outcome_drift: float = 0.02  # largest difference in an outcome's share, new vs old
    failed_checks: int = 2  # consecutive failed analyses that abort
    gate: str | None = None  # a command run before the first step; non-zero: no rollout


KEYS = {f.name for f in fields(Rollout)}


def parse_rollout(value: object, where: str, fail: Fail) -> Rollout:
    """The `rollout:` mapping of a route; absent keys take Rollout's defaults."""
    if not isinstance(value, dict):
        fail(where, f"must be a mapping, got {value!r}")
    for key in value:
        if key not in KEYS:
            fail(where, f"unknown key {key!r} (allowed: {', '.join(sorted(KEYS))})")
    parsed: dict[str, object] = {}
    for key, parse in _PARSERS.items():
        if key in value:
            parsed[key] = parse(value[key], f"{where}.{key}", fail)
    return Rollout(**parsed)  # type: ignore[arg-type]


def parse_steps(value: object, where: str, fail: Fail) -> tuple[int, ...]:
    """Strictly rising whole percentages 1-100 ending at 100, e.g. [1, 5, 25, 50, 100]."""
    if not isinstance(value, list) or not value:
        fail(where, f"must be a non-empty list of percentages, got {value!r}")
    if len(value) > MAX_STEPS:
        fail(where, f"has {len(value)} steps; at most {MAX_STEPS}")
    for step in value:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100:
            fail(where, f"every step must be a whole percentage 1-100, got {step!r}")
    if any(b <= a for a, b in itertools.pairwise(value)):
        fail(where, f"steps must rise strictly, got {value!r}")
    if value[-1] != 100:
        fail(where, f"the last step must be 100 (the promotion), got {value[-1]!r}")
    return tuple(value)


def parse_duration(value: object, where: str, fail: Fail) -> float:
    """`60s`, `2s`, `500ms`, `5m`, `1h` or a number of seconds; above 0, at most a day."""
    if isinstance(value, bool):
        fail(where, f"must be a duration such as 60s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            fail(where, f"must be a duration such as 60s, 500ms or 5m, got {value!r}")
        seconds = float(match[1]) * _UNIT[match[2]]
    if not 0 < seconds <= MAX_INTERVAL:
        fail(where, f"must be above 0 and at most {MAX_INTERVAL:g} s, got {value!r}")
    return seconds


def parse_fraction(value: object, where: str, fail: Fail) -> float:
    """`1%`, `0.5%` or a fraction 0-1 (0.01); 100 % is allowed, nothing above."""
    if isinstance(value, bool):
        fail(where, f"must be a percentage such as 1%, got {value!r}")
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match is None:
            fail(where, f"must be a percentage such as 1% or a fraction 0-1, got {value!r}")
        fraction = float(match[1]) / 100
    elif isinstance(value, int | float):
        fraction = float(value)
    else:
        fail(where, f"must be a percentage such as 1%, got {value!r}")
    if not 0 <= fraction <= 1:
        fail(where, f"must be 0-100 % (a fraction 0-1), got {value!r}")
    return fraction


def parse_ratio(value: object, where: str, fail: Fail) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        fail(where, f"must be a number of at least 1 (new p99 / old p99), got {value!r}")
    return float(value)


def parse_count(value: object, where: str, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        fail(where, f"must be a whole number 1-1000000, got {value!r}")
    return value


def parse_outcome(value: object, where: str, fail: Fail) -> tuple[str, ...]:
    """Top-level JSON field names, e.g. [error, status]; empty: the status alone."""
    if not isinstance(value, list):
        fail(where, f"must be a list of JSON field names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not _FIELD.match(name):
            fail(where, f"bad field name {name!r}: letters, digits and '_', not first a digit")
    if len(set(value)) != len(value):
        fail(where, f"names a field twice: {value!r}")
    if len(value) > 8:
        fail(where, f"names {len(value)} fields; at most 8")
    return tuple(value)


def parse_gate(value: object, where: str, fail: Fail) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(where, f"must be a command line, got {value!r}")
    try:
        shlex.split(value)
    except ValueError as exc:
        fail(where, f"cannot be split into a command: {exc} in {value!r}")
    return value


_PARSERS: dict[str, Callable[[object, str, Fail], object]] = {
    "steps": parse_steps,
    "interval": parse_duration,
    "min_requests": parse_count,
    "max_error_rate": parse_fraction,
    "max_latency_ratio": parse_ratio,
    "outcome": parse_outcome,
    "max_outcome_drift": parse_fraction,
    "failed_checks": parse_count,
    "gate": parse_gate,
}


def outcome_label(status: int, body: bytes | bytearray | None, fields: tuple[str, ...]) -> str:
    """An answer's outcome: its status, then `field=value` for each named field it has.

    `body` is what was read of a JSON answer (None: not read, or over the bound), so a
    200 `{"status": "approved"}` is `200 status=approved`, a 404 `{"error": "not_found"}`
    `404 error=not_found`. Values are cut to 32 characters: the labels stay few.
    """
    if not body or not fields or body[0] != 0x7B:  # not a JSON object ("{"): the status says it
        return str(status)
    try:
        doc = json.loads(body)
    except ValueError:  # not JSON after all (or cut by the bound): the status says it
        return str(status)
    if not isinstance(doc, dict):
        return str(status)
    parts = [str(status)]
    for name in fields:
        if name in doc:
            value = doc[name]
            text = value if isinstance(value, str) else json.dumps(value)
            parts.append(f"{name}={text[:32]}")
    return " ".join(parts)
