"""The status document of the HAProxy data plane, in the embedded proxy's shape (pure).

`strangler status`, `shift`'s wait for the new table, the dashboard and the rollout read one
document whichever data plane runs (see `strangler.proxy.admin.status_document`). Here the
figures come from HAProxy's own counters (`show stat`): per backend, summed over every
HAProxy backend its server appears in (the route's, the default one, as a fallback).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strangler.proxy.admin import routes_view
from strangler.routing.records import RoutingTable

RECENT = 60.0  # seconds: "the last minute"
_STATUS_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def _int(row: Mapping[str, str], column: str) -> int:
    value = row.get(column) or "0"
    return int(value) if value.isdigit() else 0


@dataclass(frozen=True)
class Totals:
    """Cumulative counters of one backend's servers."""

    requests: int = 0  # answers of any status, plus connects that failed
    errors: int = 0  # 5xx answers, failed connects and broken answers

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.requests - other.requests, self.errors - other.errors)


def server_rows(rows: Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return [r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND", None)]


def totals(rows: Iterable[Mapping[str, str]]) -> dict[str, Totals]:
    """Per server name (= our backend name): the counters of all its rows added up."""
    out: dict[str, Totals] = {}
    for row in server_rows(rows):
        answers = sum(_int(row, c) for c in _STATUS_COLUMNS)
        failed = _int(row, "econ") + _int(row, "eresp")
        errors = _int(row, "hrsp_5xx") + failed
        seen = out.get(row["svname"], Totals())
        out[row["svname"]] = Totals(seen.requests + answers + failed, seen.errors + errors)
    return out


def circuits(rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """A backend's circuit as the embedded proxy words it, from its checked (primary) rows."""
    states: dict[str, set[str]] = {}
    for row in server_rows(rows):
        if row.get("bck") == "1":
            continue  # a fallback's row follows the checks of its own backend
        status = (row.get("status") or "").upper()
        if status.startswith(("DOWN", "MAINT")) and "/" not in status:
            state = "open"
        elif "/" in status or status.startswith("NOLB"):
            state = "half_open"  # going up or down: checks disagree with the last state
        else:
            state = "closed"
        states.setdefault(row["svname"], set()).add(state)
    return {
        name: next(s for s in ("open", "half_open", "closed") if s in found)
        for name, found in states.items()
    }


class History:
    """Samples of the totals, to tell the last minute apart from the totals since start."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, Totals]]] = deque()

    def add(self, now: float, sample: dict[str, Totals]) -> None:
        self.samples.append((now, sample))
        while len(self.samples) > 2 and self.samples[1][0] <= now - RECENT:
            self.samples.popleft()

    def last_minute(self, now: float, current: dict[str, Totals]) -> dict[str, Totals]:
        base = self.samples[0][1] if self.samples else {}
        return {name: value - base.get(name, Totals()) for name, value in current.items()}


def document(
    table: RoutingTable,
    watcher: Mapping[str, Any],
    rows: Sequence[Mapping[str, str]],
    history: History,
    info: Mapping[str, str],
    affinity_entries: int,
    now: float,
    applied: bool,
) -> dict[str, Any]:
    """The status document (see `strangler.proxy.admin.status_document` for the fields)."""
    current = totals(rows)
    recent = history.last_minute(now, current)
    states = circuits(rows)
    backends = {}
    for name, backend in table.backends.items():
        total, last = current.get(name, Totals()), recent.get(name, Totals())
        backends[name] = {
            "url": backend.url,
            "health": backend.health,
            "circuit": states.get(name, "closed"),
            "requests": total.requests,
            "errors": total.errors,
            "last_minute": {
                "requests": last.requests,
                "error_rate": round(last.errors / last.requests, 4) if last.requests else 0,
                "p50_ms": None,  # HAProxy keeps averages, not percentiles
                "p99_ms": None,
            },
        }
    worker = {
        "index": 0,
        "pid": int(info.get("Pid", "0") or 0),
        "generation": watcher["generation"],
        "digest": watcher["digest"][:12],
        "affinity": "ok",
        "affinity_failed_recalls": 0,
        "stale": not info,
    }
    return {
        "data_plane": "haproxy",
        "generation": watcher["generation"],
        "digest": watcher["digest"],
        "source": table.source,
        "converged": applied,
        "default_backend": table.default_backend,
        "routes": routes_view(table),
        "backends": backends,
        "affinity": "ok",  # the stick table lives in the process: no lookup can fail
        "affinity_failed_recalls": 0,
        "affinity_entries": affinity_entries,
        "last_reload_error": watcher.get("last_reload_error"),
        "in_flight": int(info.get("CurrConns", "0") or 0),
        "connections": int(info.get("CurrConns", "0") or 0),
        "threads": int(info.get("Nbthread", "0") or 0),
        "workers": [worker] if info else [],
    }
