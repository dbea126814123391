"""Which backend answered: the proxy's routing promises, checked on every answer of a replay.

The comparison with a recording leaves `X-Strangler-Backend` out (it differs by design), so
this matcher of its own checks it against what `proxy/routes.yaml` promises at the run's split:

- a request on the migrated route (its prefix and methods) is answered by the old backend at
  0 %, by the new one at 100 %, by one of the two in between; any other by the default backend;
- within a run, every answer for one sticky key (`json:to`, normalised as the table says) comes
  from one backend: a code sent by a backend is checked by that backend, at every split;
- the proxy's own answers (a body over its limit: 413) may name `proxy` or no backend at all.

Across a session strictly between 0 and 100 %, both backends must have answered (`SplitCheck`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from strangler.contracts.matchers import Mismatch
from strangler.contracts.runner import Run, Sent
from strangler.proxy.settings import ProxySettings

HEADER_PATH = "headers.x-strangler-backend"
PROXY_ITSELF = "proxy"  # what the proxy's own answers may name, when they name anyone
# Probes for fresh addresses sent when the scenarios showed one backend only. A proxy that
# honours a split of p % (1 <= p <= 99) sends each fresh address to the new backend with
# probability p/100, so all of them land on one side with probability at most
# 0.99 ** 2100 < 7e-10: the session check cannot flake in practice, at any split.
PROBES = 2100


@dataclass(frozen=True)
class BackendMismatch(Mismatch):
    """A wrong `X-Strangler-Backend`; `recorded` holds what the routing table promises."""

    def __str__(self) -> str:
        return f"{self.path}: expected {self.recorded}, actual {self.actual}"


@dataclass(frozen=True)
class Routing:
    """What the proxy promises at one split of its migrated route."""

    route: str
    prefix: str
    methods: frozenset[str] | None  # None: every method
    old: str  # the route's fallback: where the migration starts
    new: str
    percent: int  # of the route's keys that go to `new`
    default: str  # the backend of every request no route matches
    key_field: str | None = None  # FIELD of a `json:FIELD` sticky key
    normalize: tuple[str, ...] = ()
    max_body: int = ProxySettings.max_body  # bodies over this are answered by the proxy itself

    @classmethod
    def from_table(cls, path: Path, route: str, percent: int) -> Routing:
        """The promises of `route` in the routing table at `path`, at `percent` to the new side."""
        table = YAML(typ="safe").load(path.read_text())
        entry = next((r for r in table["routes"] if r["name"] == route), None)
        if entry is None:
            raise LookupError(f"{path}: no route named {route!r}")
        methods = entry["match"].get("methods")
        sticky = entry.get("sticky") or {}
        kind, _, name = str(sticky.get("key", "")).partition(":")
        return cls(
            route=route,
            prefix=entry["match"]["prefix"],
            methods=frozenset(m.upper() for m in methods) if methods else None,
            old=entry["fallback"],
            new=next(name for name in entry["split"] if name != entry["fallback"]),
            percent=percent,
            default=table["default_backend"],
            key_field=name if kind == "json" else None,
            normalize=tuple(sticky.get("normalize") or ()),
        )

    def routed(self, sent: Sent) -> bool:
        path = sent.path.partition("?")[0]
        return path.startswith(self.prefix) and (
            self.methods is None or sent.method.upper() in self.methods
        )

    def promised(self, sent: Sent) -> tuple[str, ...]:
        """The backends allowed to answer `sent`."""
        if not self.routed(sent):
            return (self.default,)
        return {0: (self.old,), 100: (self.new,)}.get(self.percent, (self.old, self.new))

    def why(self, sent: Sent) -> str:
        if not self.routed(sent):
            return f"the default backend: not on route {self.route!r}"
        return f"route {self.route!r} at {self.percent} %"

    def key(self, sent: Sent) -> str | None:
        """The sticky key as the proxy reads it from the body, normalised; None when absent."""
        if self.key_field is None or not sent.body:
            return None
        try:
            document = json.loads(sent.body)
        except (ValueError, RecursionError):
            return None
        value = document.get(self.key_field) if isinstance(document, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = json.dumps(value) if math.isfinite(value) else None
        if not isinstance(value, str):
            return None
        for step in self.normalize:
            value = value.strip() if step == "strip" else value.lower()
        return value or None

    def answered_by_proxy(self, sent: Sent) -> bool:
        """Whether the proxy refuses `sent` itself, before any backend is chosen."""
        return sent.body is not None and len(sent.body) > self.max_body


def _either(names: tuple[str, ...]) -> str:
    return " or ".join(repr(name) for name in names)


def check_run(run: Run, routing: Routing, proxy_url: str) -> list[list[Mismatch]]:
    """The backend mismatches of each step of `run` that went through the proxy at `proxy_url`."""
    flows: dict[str, tuple[str, str]] = {}  # sticky key -> (its backend, the step that showed it)
    found: list[list[Mismatch]] = []
    for index, step_run in enumerate(run.steps):
        sent = step_run.sent
        if sent is None or sent.base != proxy_url:  # a sink read, or straight to the monolith
            found.append([])
            continue
        allowed, why = routing.promised(sent), routing.why(sent)
        key = routing.key(sent) if routing.routed(sent) else None
        if key is not None and key in flows:
            backend, where = flows[key]
            allowed, why = (backend,), f"the backend of {where}, same {routing.key_field}"
        elif key is not None and sent.backend in allowed:
            flows[key] = (sent.backend, f"step {index + 1} {step_run.step.name!r}")
        own = routing.answered_by_proxy(sent)
        if sent.backend in allowed or (own and sent.backend in (None, PROXY_ITSELF)):
            found.append([])
            continue
        expected = f"{_either(allowed)} ({why})"
        if own:
            expected += f", or {PROXY_ITSELF!r} or none (the proxy's own answer)"
        actual = "(absent)" if sent.backend is None else repr(sent.backend)
        found.append([BackendMismatch(HEADER_PATH, expected, actual)])
    return found


@dataclass
class SplitCheck:
    """A session's backend checks: every answer (`check`), and both backends used (`problem`)."""

    routing: Routing
    proxy_url: str
    answered: Counter[str] = field(default_factory=Counter)  # the route's answers, by header
    probes: Counter[str] = field(default_factory=Counter)  # the probes' answers, by header

    def check(self, run: Run) -> list[list[Mismatch]]:
        """`check_run`, counting who answered the route's requests for the session check."""
        for step_run in run.steps:
            sent = step_run.sent
            if sent is not None and sent.base == self.proxy_url and self.routing.routed(sent):
                self.answered[_label(sent.backend)] += 1
        return check_run(run, self.routing, self.proxy_url)

    def unused(self) -> list[str]:
        """The route's backends that answered nothing (yet)."""
        names = (self.routing.old, self.routing.new)
        return [name for name in names if not self.answered[name] and not self.probes[name]]

    def probe(self, ask: Callable[[dict[str, Any]], str | None], new_key: Callable[[], str]) -> int:
        """Ask with fresh keys (at most PROBES) until both backends answered; how many asked."""
        asked = 0
        while 0 < self.routing.percent < 100 and self.unused() and asked < PROBES:
            body = {self.routing.key_field or "to": new_key(), "code": "000000"}
            self.probes[_label(ask(body))] += 1
            asked += 1
        return asked

    def problem(self) -> str | None:
        """Why the session does not show the split at work, or None when both backends answered."""
        routing, unused = self.routing, self.unused()
        if not 0 < routing.percent < 100 or not unused:
            return None
        return (
            f"route {routing.route!r} at {routing.percent} %: no answer came from "
            f"{_either(tuple(unused))} in the whole session (the scenarios' answers: "
            f"{_tally(self.answered)}; probes with fresh keys: {_tally(self.probes)}). A proxy "
            f"that honours the split sends some there; by luck it would not, with a chance "
            f"below 1e-9."
        )


def _label(backend: str | None) -> str:
    return "(absent)" if backend is None else backend


def _tally(counts: Counter[str]) -> str:
    return ", ".join(f"{n} from {name}" for name, n in sorted(counts.items())) or "none"
