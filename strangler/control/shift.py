"""`strangler shift` and `rollback`: validated, atomic, locked and audited edits of a split."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import getpass
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode

from strangler.control import project
from strangler.control.atomic import write_atomically
from strangler.routing.records import Route, RoutingConfigError, RoutingTable
from strangler.routing.table import parse_text

LOCK_TIMEOUT = 10.0  # seconds to wait for a concurrent edit before giving up


class ControlError(Exception):
    """A refused edit; the message is one line meant for the engineer who asked for it."""


@dataclass(frozen=True, slots=True)
class ShiftResult:
    route: str
    old_split: dict[str, int]
    new_split: dict[str, int]
    changed: bool  # False: the split already was the asked one; the file was not rewritten
    path: Path  # the routing file (symlinks resolved)
    audit_path: Path


def default_routes_path(environ: Mapping[str, str] | None = None) -> Path:
    """$STRANGLER_ROUTES, else the project's routing file (see `project`)."""
    return project.load(environ=environ).routes


def default_audit_path(environ: Mapping[str, str] | None = None) -> Path:
    """$STRANGLER_AUDIT_LOG, else `audit.log` in $STRANGLER_VAR or the project's `var/`."""
    return project.load(environ=environ).audit_log


@dataclass(frozen=True, slots=True)
class SplitEdit:
    text: bytes  # the whole file, validated; the input itself when nothing changes
    old_split: dict[str, int]
    new_split: dict[str, int]

    @property
    def changed(self) -> bool:
        return self.new_split != self.old_split


def edit_split(raw: bytes, source: str, route: str, percent: int) -> SplitEdit:
    """Pure: a routing file's text with `percent` for the route's new backend, validated.

    Only the split's numbers change, byte for byte; the edited text must parse to the same
    table except for that split, or ControlError (RoutingConfigError if `raw` is invalid).
    """
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise ControlError(f"percent must be a whole number 0-100, got {percent!r}")
    table = parse_text(raw, source)
    index, target = _shiftable(table, route, source)
    old_split = dict(target.split)
    new_split = {
        name: percent if name == target.new_backend else 100 - percent for name in old_split
    }
    if new_split == old_split:
        return SplitEdit(raw, old_split, new_split)
    return SplitEdit(_edit(raw, source, table, index, new_split), old_split, new_split)


def shift(
    path: str | os.PathLike[str],
    route: str,
    percent: int,
    reason: str | None = None,
    user: str | None = None,
    audit_path: str | os.PathLike[str] | None = None,
    *,
    action: str = "shift",
    details: Mapping[str, object] | None = None,
) -> ShiftResult:
    """Give `percent` of the route's traffic to its new backend and the rest to its fallback.

    Validated (see `edit_split`), written atomically under a lock, and audited. A shift to
    the split the file already has rewrites nothing but is still audited with
    "changed": false: the log records every decision, including "make sure it is at 0 %".
    `details` (a rollout's step and the figures behind it) goes in the line as "rollout".
    """
    real = Path(os.path.realpath(path))
    audit = Path(audit_path) if audit_path is not None else default_audit_path()
    if not real.is_file():  # checked before the lock so a typo leaves no stray lock file
        raise ControlError(f"{path}: no such routing file")
    with _locked(real):
        raw = _read(real)
        edit = edit_split(raw, str(path), route, percent)
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user": user or _current_user(),
            "action": action,
            "route": route,
            "old_split": edit.old_split,
            "new_split": edit.new_split,
            "changed": edit.changed,
            "reason": reason,
            "file": str(real),
        }
        if details is not None:
            record["rollout"] = dict(details)
        with _audit_log(audit) as audit_fd:  # opened first: an unwritable log stops the edit
            if edit.changed:
                write_atomically(real, edit.text)
            try:
                os.write(audit_fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
                os.fsync(audit_fd)
            except OSError:
                if edit.changed:  # no change may stand without its audit line
                    write_atomically(real, raw)
                raise
    return ShiftResult(route, edit.old_split, edit.new_split, edit.changed, real, audit)


def rollback(
    path: str | os.PathLike[str],
    route: str,
    reason: str | None = None,
    user: str | None = None,
    audit_path: str | os.PathLike[str] | None = None,
    details: Mapping[str, object] | None = None,
) -> ShiftResult:
    """Send all of the route's traffic back to its fallback (a shift to 0 %)."""
    return shift(path, route, 0, reason, user, audit_path, action="rollback", details=details)


def _shiftable(table: RoutingTable, name: str, source: str) -> tuple[int, Route]:
    for index, route in enumerate(table.routes):
        if route.name == name:
            if route.fallback is None or route.new_backend is None:
                raise ControlError(
                    f"{source}: route {name!r} splits {dict(route.split)} with fallback "
                    f"{route.fallback!r}; shift needs exactly a fallback and one new backend"
                )
            return index, route
    known = ", ".join(repr(r.name) for r in table.routes) or "none"
    raise ControlError(f"{source}: no route {name!r} (routes: {known})")


def _edit(raw: bytes, source: str, table: RoutingTable, index: int, split: dict) -> bytes:
    """The file's text with only the route's split numbers replaced, checked by re-parsing."""
    text = raw.decode("utf-8")
    try:
        root = YAML().compose(text)
        split_node = _child(_child(root, "routes").value[index], "split")
    except (YAMLError, LookupError, AttributeError, TypeError) as exc:
        raise ControlError(f"{source}: cannot locate the split of routes[{index}]: {exc}") from exc
    for key_node, value_node in sorted(split_node.value, key=lambda kv: -kv[1].start_mark.index):
        if not isinstance(value_node, ScalarNode):
            raise ControlError(f"{source}: the split of routes[{index}] is not plain numbers")
        start, end = value_node.start_mark.index, value_node.end_mark.index
        text = text[:start] + str(split[key_node.value]) + text[end:]
    edited = text.encode("utf-8")
    try:
        new_table = parse_text(edited, source)
    except RoutingConfigError as exc:
        raise ControlError(f"the edit would make the file invalid, nothing written: {exc}") from exc
    old_route = table.routes[index]
    expected = list(table.routes)
    expected[index] = dataclasses.replace(old_route, split=tuple((n, split[n]) for n in split))
    if (new_table.routes, new_table.backends) != (tuple(expected), table.backends):
        raise ControlError(
            f"{source}: editing the split of {old_route.name!r} in place would change more "
            "than that split (YAML anchors or aliases?); edit the file by hand"
        )
    return edited


def _child(node: object, key: str) -> MappingNode:
    if not isinstance(node, MappingNode):
        raise TypeError(f"expected a mapping around {key!r}")
    return next(value for key_node, value in node.value if key_node.value == key)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ControlError(f"{path}: cannot read the routing file: {exc.strerror}") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise edits of `path` (across threads and processes) on a sibling lock file."""
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ControlError(f"{lock_path}: cannot create the lock file: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ControlError(f"{path}: another edit holds {lock_path}") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _audit_log(path: Path) -> Iterator[int]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ControlError(f"{path}: cannot open the audit log: {exc.strerror}") from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _current_user() -> str:
    with contextlib.suppress(KeyError, OSError):
        return os.environ.get("STRANGLER_USER") or getpass.getuser()
    return "unknown"
