"""The running data plane's record in the state directory: how the CLI finds it, no port repeated.

`strangler serve` and `strangler up` write `var/dataplane.json` once their data plane is
ready and remove it when they stop cleanly; `shift`, `rollback` and `status` (and later the
dashboard and the rollout controller) read it. A record whose process is gone (killed,
crashed, the machine rebooted, its pid reused by another program) is stale: `load` answers
None for it and the next start replaces it.

Every kind of data plane records the common fields below; a kind adds fields of its own
(`extra`: the HAProxy data plane's runtime API socket and stats URL, say), which the file
keeps as top-level keys beside the common ones. The record holds addresses, never a secret.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strangler.control.atomic import write_atomically

FILE_NAME = "dataplane.json"
KINDS = ("embedded", "haproxy")
COMMON = ("kind", "pid", "started_at", "routes", "public_url", "admin_url")
REQUIRED = (
    ("kind", str, "a string"),
    ("pid", int, "a whole number"),
    ("started_at", str, "a string"),
    ("routes", str, "a string"),
    ("public_url", str, "a string"),
)
# /proc gives a process's start in whole seconds since boot: allow for that rounding.
START_SLACK = 2.0


class RecordError(ValueError):
    """A record file that cannot be read as one; the message names the file and the field."""


@dataclass(frozen=True)
class DataPlane:
    """A data plane that runs: what it is, which process owns it, where to reach it."""

    kind: str  # one of KINDS
    pid: int  # the process that started it and stops it (`strangler serve`, `strangler up`)
    started_at: str  # RFC 3339, UTC
    routes: str  # the routing file it serves (absolute)
    public_url: str
    admin_url: str | None = None  # the embedded proxy's admin listener
    extra: Mapping[str, Any] = field(default_factory=dict)  # the kind's own fields

    @classmethod
    def of_this_process(
        cls, kind: str, routes: Path, public_url: str, admin_url: str | None = None, **extra: Any
    ) -> DataPlane:
        """The record for a data plane this process has just made ready."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return cls(kind, os.getpid(), now, str(routes.resolve()), public_url, admin_url, extra)

    def to_json(self) -> dict[str, Any]:
        common = {name: getattr(self, name) for name in COMMON}
        return {**common, **{k: v for k, v in self.extra.items() if k not in COMMON}}

    @classmethod
    def from_json(cls, data: object, source: str) -> DataPlane:
        if not isinstance(data, dict):
            raise RecordError(f"{source}: not a data plane record (expected a JSON object)")
        for name, kind, what in REQUIRED:
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise RecordError(f"{source}: {name}: missing or not {what}")
        if data["kind"] not in KINDS:
            raise RecordError(f"{source}: kind: {data['kind']!r} is not one of {', '.join(KINDS)}")
        if not isinstance(data.get("admin_url"), str | None):
            raise RecordError(f"{source}: admin_url: not a string")
        try:
            _epoch(data["started_at"])
        except ValueError:
            raise RecordError(f"{source}: started_at: not a time: {data['started_at']!r}") from None
        extra = {k: v for k, v in data.items() if k not in COMMON}
        return cls(**{name: data.get(name) for name in COMMON}, extra=extra)


def path(var: Path) -> Path:
    """Where the record of the project whose state directory is `var` lives."""
    return var / FILE_NAME


def record(var: Path, plane: DataPlane) -> Path:
    """Write the record atomically (a reader sees the old file or the new one, never half)."""
    target = path(var)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, (json.dumps(plane.to_json(), indent=2) + "\n").encode())
    return target


def read(var: Path) -> DataPlane | None:
    """The record as written, stale or not; None when there is none. RecordError if unreadable."""
    source = path(var)
    try:
        text = source.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError(f"{source}: cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{source}: not valid JSON: {exc}") from None
    return DataPlane.from_json(data, str(source))


def load(var: Path) -> DataPlane | None:
    """The data plane that runs for this state directory, or None (no record, or a stale one)."""
    plane = read(var)
    return plane if plane is not None and alive(plane) else None


def clear(var: Path, pid: int | None = None) -> bool:
    """Remove the record if process `pid` (default: this one) wrote it; whether it did.

    A record of another process stays: it may run still, and a stale one does no harm.
    """
    try:
        plane = read(var)
    except RecordError:
        return False
    if plane is None or plane.pid != (os.getpid() if pid is None else pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        path(var).unlink()
    return True


def alive(plane: DataPlane) -> bool:
    """Whether the recorded process still runs (and is the one that wrote the record)."""
    try:
        os.kill(plane.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    found = _process_state(plane.pid)
    if found is None:
        return True  # no /proc to tell: the pid exists, trust it
    state, started = found
    if state in ("Z", "X"):
        return False  # exited, not yet reaped by its parent
    # A process that started after the record was written got the recorded pid by reuse.
    return started <= _epoch(plane.started_at) + START_SLACK


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _process_state(pid: int) -> tuple[str, float] | None:
    """`pid`'s state letter and start time (epoch seconds) from /proc; None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
