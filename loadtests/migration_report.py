"""Pure accounting for a migration under load: flows, per-backend shares and latency per step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strangler.loadtests.flows import Flow
from strangler.loadtests.stats import LatencySummary, Share, format_table, shares


@dataclass(frozen=True)
class StepWindow:
    """One step of the migration, in time.monotonic() seconds."""

    index: int
    percent: int  # the route's share on its new backend
    started: float  # the shift was written
    applied: float  # the proxy reported running the new table
    ended: float


@dataclass(frozen=True)
class StepFigures:
    step: StepWindow
    flows: int
    completed: int
    broken: int
    unfinished: int  # started, but the last check got an error or no answer
    send_errors: int
    across_shift: int  # sent in this step, checked once the next step's table was live
    crossed: int  # checks answered by another backend than their send
    shares: list[Share]  # sends started once the step was applied, by backend
    latency: LatencySummary  # every request of the step's flows


LEGEND = """\
  broken: sent, then the check was answered but not approved; unfinished: the check failed
  across shift: sent in this step, checked after the next step's table was live
  crossed: checks answered by another backend than their send (affinity says 0)
  applied s: from writing the shift to the proxy reporting every worker on it"""
SHARES_TITLE = (
    "sends per backend (X-Strangler-Backend; each send is a new key, so it follows the split), "
    "counted once the proxy ran the step's table:"
)


def configured_split(percent: int, old: str, new: str) -> dict[str, float]:
    return {old: 100 - percent, new: percent}


def step_figures(
    step: StepWindow, flows: Sequence[Flow], old: str, new: str, next_applied: float | None
) -> StepFigures:
    """Figures for the flows that started during `step`."""
    mine = [f for f in flows if f.phase == str(step.index)]
    settled = [f for f in mine if f.started >= step.applied and f.send.backend]
    return StepFigures(
        step=step,
        flows=len(mine),
        completed=sum(f.approved for f in mine),
        broken=sum(f.broken for f in mine),
        unfinished=sum(f.unfinished for f in mine),
        send_errors=sum(not f.sent for f in mine),
        across_shift=sum(
            next_applied is not None and f.checked is not None and f.checked >= next_applied
            for f in mine
        ),
        crossed=sum(
            f.check is not None and f.check.backend != f.send.backend for f in mine if f.sent
        ),
        shares=shares((f.send.backend for f in settled), configured_split(step.percent, old, new)),
        latency=LatencySummary.of([e.seconds for f in mine for e in f.exchanges]),
    )


def migration_figures(
    steps: Sequence[StepWindow], flows: Sequence[Flow], old: str, new: str
) -> list[StepFigures]:
    nexts = [s.applied for s in steps[1:]] + [None]
    return [step_figures(s, flows, old, new, n) for s, n in zip(steps, nexts, strict=True)]


def passed(figures: Sequence[StepFigures]) -> bool:
    """No broken or unfinished flow, no refused send, and some flows actually ran."""
    return sum(f.flows for f in figures) > 0 and all(
        f.broken == 0 and f.unfinished == 0 and f.send_errors == 0 for f in figures
    )


def render(figures: Sequence[StepFigures]) -> str:
    """The flows table, then the per-backend share table."""
    flow_rows = [
        (
            f"{f.step.index + 1}: {f.step.percent}%", f.flows, f.completed, f.broken,
            f.unfinished, f.send_errors, f.across_shift, f.crossed, f.latency.p50, f.latency.p99,
            f"{f.step.applied - f.step.started:.2f}",
        )
        for f in figures
    ]  # fmt: skip
    flows_table = format_table(
        ("step: new %", "flows", "completed", "broken", "unfinished", "send errors",
         "across shift", "crossed", "p50 ms", "p99 ms", "applied s"),
        flow_rows,
    )  # fmt: skip
    share_rows = [
        (f"{f.step.index + 1}: {f.step.percent}%", s.backend, s.requests, s.observed_pct,
         s.configured_pct, s.deviation)
        for f in figures
        for s in f.shares
    ]  # fmt: skip
    share_table = format_table(
        ("step: new %", "backend", "sends", "observed %", "configured %", "deviation"),
        share_rows,
    )
    total = sum(f.flows for f in figures)
    summary = (
        f"flows started {total}, completed {sum(f.completed for f in figures)}, "
        f"broken {sum(f.broken for f in figures)}, "
        f"unfinished {sum(f.unfinished for f in figures)}, "
        f"send errors {sum(f.send_errors for f in figures)}: "
        f"{'PASS' if passed(figures) else 'FAIL'}"
    )
    return f"{flows_table}\n{LEGEND}\n\n{SHARES_TITLE}\n{share_table}\n\n{summary}"
