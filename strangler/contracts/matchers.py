"""Expected values in a recording: exact values or matchers, and the tree comparison.

A matcher is a one-key mapping whose key starts with `$` (vcrpy keeps one small matcher per
aspect; so do we, and every mismatch is collected, never only the first):

    {$type: int}                       any value of that JSON type
    {$regex: '^VE[0-9a-f]{32}$'}       a string matching the pattern (whole string)
    {$redacted: '^[0-9]{6}$'}          a secret: the value is not stored, only its shape
    {$any: true}                       anything, even absent
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strangler.contracts.templating import UnknownVariableError, render

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "null": (type(None),),
    "list": (list,),
    "object": (dict,),
}
MATCHER_KEYS = ("$type", "$regex", "$redacted", "$any")
MISSING = object()


@dataclass(frozen=True)
class Mismatch:
    """One difference between a recording and a live response."""

    path: str
    recorded: str
    actual: str

    def __str__(self) -> str:
        return f"{self.path}: recorded {self.recorded}, actual {self.actual}"


def json_type(value: Any) -> str:
    """The name of a value's JSON type, as `$type` spells it."""
    if isinstance(value, bool):
        return "bool"
    for name in ("int", "str", "null", "list", "object"):
        if isinstance(value, JSON_TYPES[name]):
            return name
    return "number"


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in MATCHER_KEYS


def validate_matcher(value: Any) -> None:
    """Refuse a malformed matcher with a message naming the bad part."""
    ((key, arg),) = value.items()
    if key == "$type" and arg not in JSON_TYPES:
        raise ValueError(f"$type {arg!r} is not one of {', '.join(JSON_TYPES)}")
    if key in ("$regex", "$redacted") and arg not in JSON_TYPES:
        try:
            re.compile(str(arg))
        except re.error as exc:
            raise ValueError(f"{key} {arg!r} is not a regular expression: {exc}") from None


def _fits(spec: Any, actual: Any) -> bool:
    if spec in JSON_TYPES:
        return json_type(actual) == spec or (spec == "number" and json_type(actual) == "int")
    return isinstance(actual, str) and re.fullmatch(str(spec), actual) is not None


def describe(value: Any) -> str:
    """How a recorded value reads in a diff."""
    if value is MISSING:
        return "(absent)"
    if is_matcher(value):
        ((key, arg),) = value.items()
        if key == "$any":
            return "anything"
        if key == "$type" or arg in JSON_TYPES:
            return f"any {arg}" + (" (redacted)" if key == "$redacted" else "")
        return f"a string matching {arg}" + (" (redacted)" if key == "$redacted" else "")
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + f"... ({len(text)} chars)"


def _check_matcher(matcher: dict, actual: Any, path: str) -> list[Mismatch]:
    ((key, arg),) = matcher.items()
    if actual == matcher:  # a redacted live value against the same redaction
        return []
    if key == "$any" or (actual is not MISSING and _fits(arg, actual)):
        return []
    shown = "(hidden: redacted field)" if key == "$redacted" else describe(actual)
    return [Mismatch(path, describe(matcher), shown)]


def compare(expected: Any, actual: Any, values: Mapping[str, Any], path: str) -> list[Mismatch]:
    """Every difference between a recorded tree and a live one; `values` fill placeholders."""
    if is_matcher(expected):
        return _check_matcher(expected, actual, path)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return _compare_objects(expected, actual, values, path)
    if isinstance(expected, list) and isinstance(actual, list):
        return _compare_lists(expected, actual, values, path)
    try:
        wanted = render(expected, values)
    except UnknownVariableError as exc:
        return [Mismatch(path, f"{expected!r} ({exc})", describe(actual))]
    if actual is MISSING or json_type(wanted) != json_type(actual) or wanted != actual:
        return [Mismatch(path, describe(wanted), describe(actual))]
    return []


def _compare_objects(expected: dict, actual: dict, values: Mapping, path: str) -> list[Mismatch]:
    found: list[Mismatch] = []
    for key, want in expected.items():
        found += compare(want, actual.get(key, MISSING), values, f"{path}.{key}")
    for key in sorted(actual.keys() - expected.keys()):
        found.append(Mismatch(f"{path}.{key}", "(absent)", describe(actual[key])))
    return found


def _compare_lists(expected: list, actual: list, values: Mapping, path: str) -> list[Mismatch]:
    found: list[Mismatch] = []
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else MISSING
        got = actual[index] if index < len(actual) else MISSING
        if want is MISSING:
            found.append(Mismatch(f"{path}[{index}]", "(absent)", describe(got)))
        else:
            found += compare(want, got, values, f"{path}[{index}]")
    return found
