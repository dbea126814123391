"""Noise found by the machine: two runs of a scenario merged into one expected tree.

Where both runs agree the value is kept exactly; where they differ it becomes a matcher, a
pattern when both values share a known shape (ids, times, codes), a type otherwise. Some
shapes are noise even when the two runs happen to agree (two timestamps in the same second).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from strangler.contracts import paths
from strangler.contracts.matchers import is_matcher, json_type, validate_matcher

DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
# (pattern, always noise?) in order of preference; the first that fits both values wins.
SHAPES: tuple[tuple[str, bool], ...] = (
    (r"^VE[0-9a-f]{32}$", True),
    (DATETIME, True),
    (r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", True),
    (r"^[0-9]+$", False),
    (r"^[0-9a-f]+$", False),
)  # fmt: skip
# Integers this large are epoch times: equal in two runs only by the accident of timing.
EPOCH_FLOOR = 1_000_000_000


def _shape(a: Any, b: Any) -> str | None:
    if not (isinstance(a, str) and isinstance(b, str)):
        return None
    for pattern, _ in SHAPES:
        if re.fullmatch(pattern, a) and re.fullmatch(pattern, b):
            return pattern
    return None


def always_noise(value: Any) -> bool:
    """Values whose shape says they change from run to run, even if two runs agreed."""
    if isinstance(value, str):
        return any(always and re.fullmatch(p, value) for p, always in SHAPES)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value) >= EPOCH_FLOOR
    return False


def matcher_for(a: Any, b: Any) -> dict[str, Any]:
    """The matcher that accepts both observed values."""
    pattern = _shape(a, b)
    if pattern is not None:
        return {"$regex": pattern}
    kind_a, kind_b = json_type(a), json_type(b)
    if kind_a == kind_b:
        return {"$type": kind_a}
    if {kind_a, kind_b} == {"int", "number"}:
        return {"$type": "number"}
    return {"$any": True}


def merge(a: Any, b: Any) -> Any:
    """One expected tree from two observed ones."""
    if is_matcher(a) or is_matcher(b):
        return a if a == b else {"$any": True}
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            key: merge(a[key], b[key]) if key in a and key in b else {"$any": True}
            for key in sorted(a.keys() | b.keys())
        }
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [merge(x, y) for x, y in zip(a, b, strict=True)]
    if json_type(a) == json_type(b) and a == b and not always_noise(a):
        return a
    return matcher_for(a, b)


def _exists(tree: dict[str, Any], path: str) -> bool:
    try:
        paths.get(tree, path)
    except paths.PathError:
        return False
    return True


def apply_overrides(
    expected: dict[str, Any], overrides: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Put explicit matchers in place; they win over inference.

    `defaults` (a scenario's own `match`) apply where the response has the path; `overrides`
    (a step's `match`) must find their path.
    """
    for path, matcher in defaults.items():
        if path not in overrides and _exists(expected, path):
            paths.put(expected, path, matcher)
    for path, matcher in overrides.items():
        if is_matcher(matcher):
            validate_matcher(matcher)
        paths.put(expected, path, matcher)
    return expected
