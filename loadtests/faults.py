"""Real faults injected on a schedule into a running stack: Redis paused or restarted, the new
service killed, a data-plane worker killed.

Each fault is the real event, not a simulation: SIGSTOP/SIGCONT of the redis-server process,
SIGKILL of it and a start again on its append-only file, SIGKILL of the service's whole
gunicorn group and a start again, SIGKILL of one worker of the data plane (whose master starts
a new one). The data plane under test is reached through `DataPlaneProbe`, so that another
data plane is rehearsed with the same faults through its own probe (`PROBES`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strangler.control import status
from strangler.haproxy.config import SOCKET_FILE
from strangler.haproxy.runtime import RuntimeAPI, RuntimeAPIError
from strangler.stack import specs
from strangler.stack.running import RunningStack

REDIS, SERVICE = "redis", "verification"  # the stack's child names (strangler.stack.specs)
RESTART_TIMEOUT = 60.0  # seconds for a killed process to be ready again
FAULT_ERRORS = (OSError, RuntimeError, KeyError, ValueError, subprocess.SubprocessError)


@dataclass(frozen=True)
class Schedule:
    """When a fault happens, in seconds from the start of the load."""

    first: float  # the first injection
    every: float  # from one injection to the next
    length: float  # how long the fault lasts (a pause, or the time a process stays dead)


@dataclass(frozen=True)
class FaultEvent:
    """One injection, in time.monotonic() seconds."""

    fault: str
    injected: float
    restored: float  # the component is back: Redis resumed or ready, a process restarted


@dataclass(frozen=True)
class PlaneCounters:
    """What the data plane counts about its affinity; None where it does not report it."""

    misses: int | None = None  # requests placed by the hash because the store did not answer
    queued_writes: int | None = None  # placements released to the client before stored
    failed_recalls: int | None = None
    retries: int | None = None  # requests retried on the fallback after a 503

    def minus(self, earlier: PlaneCounters) -> PlaneCounters:
        def delta(now: int | None, then: int | None) -> int | None:
            return None if now is None else now - (then or 0)

        return PlaneCounters(
            delta(self.misses, earlier.misses),
            delta(self.queued_writes, earlier.queued_writes),
            delta(self.failed_recalls, earlier.failed_recalls),
            delta(self.retries, earlier.retries),
        )


class DataPlaneProbe(Protocol):
    """What the rehearsal needs of the data plane under test."""

    name: str
    faults: frozenset[str]  # the faults that exist for this data plane

    def counters(self) -> PlaneCounters: ...

    def kill_worker(self) -> None:
        """SIGKILL one worker; return once a replacement serves."""
        ...

    def reload(self) -> None:
        """Make the data plane take up a new table mid-flow; return once it serves it."""
        ...


ALL_FAULTS = frozenset({"none", "redis-pause", "redis-restart", "service-kill", "worker-kill",
                        "reload"})  # fmt: skip


def _new_generation(running: RunningStack) -> None:
    """The routing file rewritten with one more comment: a new table, the same placements."""
    routes = running.routes
    if routes is None:
        raise RuntimeError("no routing file to reload")
    text = routes.read_text() + f"# reloaded at {time.time():.3f}\n"
    tmp = routes.with_name(f".{routes.name}.reload")
    tmp.write_text(text)
    os.replace(tmp, routes)
    status.wait_applied(
        running.cfg.admin_url, hashlib.sha256(text.encode()).hexdigest(),
        os.environ.get("STRANGLER_ADMIN_TOKEN"), timeout=RESTART_TIMEOUT,
    )  # fmt: skip


class EmbeddedPlane:
    """The embedded proxy, through its admin status (workers, pids, affinity counts)."""

    name = "embedded"
    faults = ALL_FAULTS

    def __init__(self, running: RunningStack) -> None:
        self.running = running
        self.admin_url = running.cfg.admin_url
        self.token = os.environ.get("STRANGLER_ADMIN_TOKEN")
        self.next_victim = 0

    def status(self) -> dict:
        return status.fetch(self.admin_url, self.token)

    def counters(self) -> PlaneCounters:
        doc = self.status()
        totals = doc.get("affinity_totals") or {}
        retries = doc.get("retries") or {}
        return PlaneCounters(
            totals.get("misses"),
            totals.get("queued_writes"),
            doc.get("affinity_failed_recalls"),
            retries.get("total"),
        )

    def kill_worker(self) -> None:
        workers = sorted(self.status()["workers"], key=lambda w: w["index"])
        victim = workers[self.next_victim % len(workers)]
        self.next_victim += 1
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + RESTART_TIMEOUT
        while not self._replaced(victim):
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {victim['index']} was not restarted")
            time.sleep(0.02)

    def _replaced(self, victim: dict) -> bool:
        try:
            workers = self.status()["workers"]
        except (OSError, ValueError):
            return False
        return any(w["index"] == victim["index"] and w["pid"] != victim["pid"] for w in workers)

    def reload(self) -> None:
        _new_generation(self.running)


class HAProxyPlane:
    """HAProxy under its agent: its affinity is the stick table, in the process (no store to
    fail), and a reload is seamless: the next process takes the listeners and the table over.

    A worker SIGKILLed is not one of its faults: HAProxy's master then stops, and the agent
    with it (the supervisor of `strangler up` starts both again, with an empty table).
    """

    name = "haproxy"
    faults = ALL_FAULTS - {"worker-kill"}

    def __init__(self, running: RunningStack) -> None:
        self.running = running
        self.api = RuntimeAPI(specs.haproxy_state_dir(running.cfg) / SOCKET_FILE)

    def counters(self) -> PlaneCounters:
        return PlaneCounters(misses=0, queued_writes=0, failed_recalls=0, retries=None)

    def kill_worker(self) -> None:
        raise RuntimeError("worker-kill is not a fault of the haproxy data plane")

    def reload(self) -> None:
        """A seamless reload of HAProxy's master (as a changed table would cause one), once
        HAProxy has learned its stick table, which a reload hands on to the next process."""
        deadline = time.monotonic() + RESTART_TIMEOUT
        while not self.api.peers_synced():
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy never learned its stick table")
            time.sleep(0.05)
        pid = self.api.info()["Pid"]
        os.kill(self._master_pid(), signal.SIGUSR2)
        deadline = time.monotonic() + RESTART_TIMEOUT
        while self._pid() in (None, pid):
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy started no new worker")
            time.sleep(0.02)

    def _pid(self) -> str | None:
        try:
            return self.api.info().get("Pid")
        except RuntimeAPIError:
            return None

    def _master_pid(self) -> int:
        agent = self.running.supervisor.child("haproxy").process.pid
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == agent:
                    return int(entry)
        raise RuntimeError("haproxy's master was not found under its agent")


PROBES: dict[str, Callable[[RunningStack], DataPlaneProbe]] = {
    "embedded": EmbeddedPlane,
    "haproxy": HAProxyPlane,
}


@dataclass(frozen=True)
class Fault:
    """A named fault: how to start it, how to end it, and its default schedule."""

    name: str
    schedule: Schedule
    inject: Callable[[RunningStack, DataPlaneProbe], None]
    restore: Callable[[RunningStack, DataPlaneProbe], None]
    what: str  # formatted with the schedule's fields

    def describe(self, schedule: Schedule) -> str:
        if self.name == "none":
            return self.what
        text = self.what.format(length=schedule.length)
        return f"{text}, every {schedule.every:g} s from {schedule.first:g} s"


def _signal_child(name: str, signum: signal.Signals) -> Callable[[RunningStack, object], None]:
    def send(running: RunningStack, plane: object) -> None:
        os.kill(running.supervisor.child(name).process.pid, signum)

    return send


def _kill_child(name: str) -> Callable[[RunningStack, object], None]:
    def kill(running: RunningStack, plane: object) -> None:
        running.supervisor.kill(running.supervisor.child(name))

    return kill


def _restart_child(name: str) -> Callable[[RunningStack, object], None]:
    def restart(running: RunningStack, plane: object) -> None:
        running.supervisor.restart(running.supervisor.child(name), timeout=RESTART_TIMEOUT)

    return restart


def _kill_worker(running: RunningStack, plane: DataPlaneProbe) -> None:
    plane.kill_worker()


def _reload(running: RunningStack, plane: DataPlaneProbe) -> None:
    plane.reload()


def _nothing(running: RunningStack, plane: object) -> None:
    return None


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("none", Schedule(0, 0, 0), _nothing, _nothing, "no fault: the baseline"),
        Fault(
            "redis-pause", Schedule(1.0, 1.0, 0.2),
            _signal_child(REDIS, signal.SIGSTOP), _signal_child(REDIS, signal.SIGCONT),
            "redis-server stopped (SIGSTOP) for {length:g} s, then SIGCONT",
        ),
        Fault(
            "redis-restart", Schedule(3.0, 8.0, 1.0), _kill_child(REDIS), _restart_child(REDIS),
            "redis-server SIGKILLed, started again {length:g} s later on its append-only file",
        ),
        Fault(
            "service-kill", Schedule(3.0, 8.0, 1.0), _kill_child(SERVICE),
            _restart_child(SERVICE),
            "the service's gunicorn group SIGKILLed, started again {length:g} s later",
        ),
        Fault(
            "worker-kill", Schedule(2.0, 4.0, 0.0), _kill_worker, _nothing,
            "one data-plane worker SIGKILLed; its master starts another",
        ),
        Fault(
            "reload", Schedule(2.0, 3.0, 0.0), _reload, _nothing,
            "the data plane reloads mid-flow (HAProxy: a new process takes over)",
        ),
    )
}  # fmt: skip


class Injector:
    """Injects a fault on its schedule in a thread, from `start()` until `stop()`.

    `stop()` ends a fault in progress (resumes Redis, restarts what is dead) before it
    returns, so the stack is whole again when the load's last flows finish.
    """

    def __init__(
        self, fault: Fault, schedule: Schedule, running: RunningStack, plane: DataPlaneProbe
    ) -> None:
        self.fault, self.schedule = fault, schedule
        self.running, self.plane = running, plane
        self.events: list[FaultEvent] = []
        self.errors: list[str] = []
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fault-{fault.name}", daemon=True)

    def start(self) -> Injector:
        self.began = time.monotonic()
        if self.fault.name != "none":
            self._thread.start()
        return self

    def stop(self) -> list[FaultEvent]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.events

    def _run(self) -> None:
        next_at = time.monotonic() + self.schedule.first
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            injected = time.monotonic()
            try:
                self.fault.inject(self.running, self.plane)
                self._stop.wait(self.schedule.length)  # cut short by stop(), never skipped
                self.fault.restore(self.running, self.plane)
            except FAULT_ERRORS as exc:  # reported with the figures, and the run fails
                self.errors.append(f"{self.fault.name} at {injected - self.began:.1f} s: {exc}")
                return
            self.events.append(FaultEvent(self.fault.name, injected, time.monotonic()))
            next_at = injected + self.schedule.every
