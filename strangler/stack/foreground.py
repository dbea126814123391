"""Children in the foreground until Ctrl-C or SIGTERM, restarted when they die: `up` and `serve`."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from strangler.control import dataplane
from strangler.stack import listeners
from strangler.stack.supervisor import Child, ChildSpec, StartError, Supervisor

RESTARTS_ALLOWED = 5  # per child within RESTART_WINDOW, then the command gives up
RESTART_WINDOW = 60.0
START_TIMEOUT = 60.0  # seconds per child: gunicorn boots slowly on a busy shared machine


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(
    verb: str,
    specs: list[ChildSpec],
    announce: Callable[[list[Child]], None],
    record: tuple[Path, Callable[[], dataplane.DataPlane]] | None = None,
) -> int:
    """Start `specs` in order; once all are ready, record the data plane, announce; watch.

    `record` is (the state directory, the record to write there): written before the
    banner, so whoever reads the banner finds the data plane; removed after every child
    has stopped. 0 after a signal, 1 when a child cannot start or keeps exiting.
    """
    taken = [
        f"{spec.name}: {problem}"
        for spec in specs
        for port in spec.ports
        if (problem := listeners.taken(port)) is not None
    ]
    if taken:  # every taken port at once, before anything starts
        for line in taken:
            print(f"strangler {verb}: {line}", file=sys.stderr)
        return 1
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    sup = Supervisor(prefix_output=True)
    try:
        for spec in specs:
            sup.start(spec, timeout=START_TIMEOUT)
        if record is not None:
            dataplane.record(record[0], record[1]())
        announce(sup.children)
        return _watch(verb, sup)
    except StartError as exc:
        print(f"strangler {verb}: {exc}", file=sys.stderr)
        return 1
    except _Stop as exc:
        print(f"strangler {verb}: {exc}: stopping", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not interrupt the shutdown half-way and leave orphans.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        sup.stop_all()
        if record is not None:
            dataplane.clear(record[0])
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print(f"strangler {verb}: every process stopped", flush=True)


def _watch(verb: str, sup: Supervisor) -> int:
    """Restart a child that dies (with a budget), like a process manager would."""
    restarts: dict[str, list[float]] = {}
    while True:
        time.sleep(0.5)
        dead = sup.first_exited()
        if dead is None:
            continue
        now = time.monotonic()
        recent = [t for t in restarts.get(dead.name, []) if now - t < RESTART_WINDOW]
        code = dead.process.returncode
        if len(recent) >= RESTARTS_ALLOWED:
            print(
                f"strangler {verb}: {dead.name} keeps exiting (status {code}); stopping", flush=True
            )
            return 1
        print(f"strangler {verb}: {dead.name} exited with status {code}; restarting", flush=True)
        restarts[dead.name] = [*recent, now]
        _restart(verb, sup, dead)


def _restart(verb: str, sup: Supervisor, dead: Child) -> None:
    sup.stop(dead)
    index = sup.children.index(dead)
    sup.children.remove(dead)
    try:
        sup.start(dead.spec, timeout=START_TIMEOUT)
    except StartError as exc:
        print(f"strangler {verb}: {exc}", flush=True)
        # Stopped, it stays in the list, so _watch tries again within its budget.
        sup.stop(sup.children[-1])
    # Keep the start order, so the stop order stays the reverse of it.
    sup.children.insert(index, sup.children.pop())


def already_running(verb: str, var: Path) -> bool:
    """Whether the project's record names a data plane that still runs; if so, say which."""
    try:
        plane = dataplane.load(var)
    except dataplane.RecordError as exc:
        print(f"strangler {verb}: replacing an unreadable record: {exc}", file=sys.stderr)
        return False
    if plane is None:
        return False
    print(
        f"strangler {verb}: a data plane already runs for this project: {plane.kind}, pid "
        f"{plane.pid}, since {plane.started_at}, on {plane.public_url} (recorded in "
        f"{dataplane.path(var)}). Stop it first, or give this one its own state directory "
        "(STRANGLER_VAR).",
        file=sys.stderr,
    )
    return True
