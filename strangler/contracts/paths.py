"""Paths into an observed response: `status`, `headers.retry-after`, `json.messages[0].id`."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
ROOTS = ("status", "headers", "json", "text")


class PathError(LookupError):
    """A path that does not exist in the tree, or is not well formed."""


def parse(path: str) -> list[str | int]:
    """Split a path into keys and list indexes; the first part must be one of ROOTS."""
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            raise PathError(f"malformed path {path!r}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not parts or position != len(path) or parts[0] not in ROOTS:
        raise PathError(f"malformed path {path!r} (it starts with one of: {', '.join(ROOTS)})")
    if parts[0] == "headers" and len(parts) > 1 and isinstance(parts[1], str):
        parts[1] = parts[1].lower()  # header names are compared case-insensitively
    return parts


def get(tree: dict[str, Any], path: str) -> Any:
    """The value at `path`; PathError when it is absent."""
    node: Any = tree
    for part in parse(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise PathError(f"{path}: no such value in the response") from None
    return node


def put(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at `path` (its parent must exist)."""
    *parents, last = parse(path)
    node: Any = tree
    for part in parents:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise PathError(f"{path}: no such value in the response") from None
    if isinstance(node, list) and not isinstance(last, int):
        raise PathError(f"{path}: a list needs an index")
    if isinstance(node, dict) or (
        isinstance(node, list) and isinstance(last, int) and last < len(node)
    ):
        node[last] = value
    else:
        raise PathError(f"{path}: no such value in the response")
