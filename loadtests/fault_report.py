"""Pure accounting for a fault rehearsal: per fault, the flows it broke, what clients saw, what
the data plane counted, and how long until requests were served normally again."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from strangler.loadtests.faults import FaultEvent, PlaneCounters
from strangler.loadtests.flows import Exchange, Flow
from strangler.loadtests.stats import format_table

SLOW = 0.5  # seconds: a request slower than this counts as affected by the fault


@dataclass(frozen=True)
class FaultFigures:
    fault: str
    events: int  # injections
    flows: int
    broken: int  # checks answered but not approved: the flow's state lost or misrouted
    unfinished: int  # the last check got an error or no answer
    errors: int  # client-visible errors (5xx or no answer), each tried request counted
    counters: PlaneCounters  # the data plane's own counts over the run
    recover: float | None  # seconds from an injection to normal answers again (the worst)
    problems: tuple[str, ...] = ()  # faults that could not be injected or ended


LEGEND = """\
  broken: sent, then the check was answered but not approved (the exit status counts these)
  unfinished: sent, then the last check failed (a 503 is tried again for 5 s, as users do)
  errors: answers of 500 or more, or none at all, that a client saw (each try counted)
  misses: requests the data plane placed by the hash because its store did not answer in time
  queued writes: placements the data plane released to the client before its store had them
  recover s: the longest time from an injection until requests were answered again without
  error and in under {slow:g} s
  -: not reported by this data plane"""


def recovery_seconds(
    events: Sequence[FaultEvent], exchanges: Sequence[Exchange], slow: float = SLOW
) -> float | None:
    """From each injection, until the end of the last request it affected; the worst one.

    A request belongs to the last injection before it ended (one in flight when a process
    was killed belongs to that kill); it was affected when it failed or took over `slow` s.
    """
    if not events:
        return None
    starts = sorted(e.injected for e in events)
    worst = 0.0
    for i, injected in enumerate(starts):
        until = starts[i + 1] if i + 1 < len(starts) else math.inf
        ends = [
            x.ended
            for x in exchanges
            if injected <= x.ended < until and (x.failed or x.seconds > slow)
        ]
        if ends:
            worst = max(worst, max(ends) - injected)
    return worst


def fault_figures(
    fault: str,
    events: Sequence[FaultEvent],
    flows: Sequence[Flow],
    counters: PlaneCounters,
    slow: float = SLOW,
    problems: Sequence[str] = (),
) -> FaultFigures:
    exchanges = [x for f in flows for x in f.exchanges]
    return FaultFigures(
        fault=fault,
        events=len(events),
        flows=len(flows),
        broken=sum(f.broken for f in flows),
        unfinished=sum(f.unfinished for f in flows),
        errors=sum(f.errors for f in flows),
        counters=counters,
        recover=recovery_seconds(events, exchanges, slow),
        problems=tuple(problems),
    )


def passed(rows: Sequence[FaultFigures]) -> bool:
    """No broken flow under any fault, every fault injected as planned, and flows ran."""
    return all(r.flows > 0 and r.broken == 0 and not r.problems for r in rows)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(rows: Sequence[FaultFigures], slow: float = SLOW) -> str:
    table = format_table(
        ("fault", "events", "flows", "broken", "unfinished", "errors", "misses",
         "queued writes", "failed recalls", "retries", "recover s"),
        [
            (r.fault, r.events, r.flows, r.broken, r.unfinished, r.errors,
             _count(r.counters.misses), _count(r.counters.queued_writes),
             _count(r.counters.failed_recalls), _count(r.counters.retries),
             "-" if r.recover is None else f"{r.recover:.2f}")
            for r in rows
        ],
    )  # fmt: skip
    problems = [f"  fault not as planned: {p}" for r in rows for p in r.problems]
    verdict = "PASS" if passed(rows) else "FAIL"
    total = sum(r.broken for r in rows)
    summary = f"broken flows {total} over {sum(r.flows for r in rows)} flows: {verdict}"
    return "\n".join([table, LEGEND.format(slow=slow), *problems, "", summary])
