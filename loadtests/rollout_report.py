"""Pure accounting for a rollout under load: per step the split, flows and the analysis' figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strangler.loadtests.flows import Flow
from strangler.loadtests.stats import format_table

LEGEND = """\
  flows: started at the step; broken: sent, then the check answered but not approved;
  unfinished: the check got an error; send err: the send got an error (no flow started)
  err, p99, drift: the step's last analysis over its window, old (fallback) and new backend;
  drift: the outcome whose share differs most, by how much, and the chi-square p-value"""


@dataclass(frozen=True)
class StepRow:
    index: int
    percent: int
    flows: int
    broken: int
    unfinished: int
    send_errors: int
    analyses: int
    last: dict[str, Any] | None  # the step's last analysis (state.analyses entry)


def step_rows(
    steps: Sequence[tuple[int, int]], flows: Sequence[Flow], analyses: Sequence[dict[str, Any]]
) -> list[StepRow]:
    """`steps`: (index, percent) entered in order; flows carry the step index as their phase."""
    rows = []
    for index, percent in steps:
        mine = [f for f in flows if f.phase == str(index)]
        judged = [a for a in analyses if a["step"] == index + 1]
        rows.append(
            StepRow(
                index, percent, len(mine), sum(f.broken for f in mine),
                sum(f.unfinished for f in mine), sum(not f.sent for f in mine), len(judged),
                judged[-1] if judged else None,
            )
        )  # fmt: skip
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _drift(figures: dict[str, Any]) -> str:
    if figures.get("drift") is None:
        return "-"
    return f"{_pct(figures['drift'])} {figures['drift_outcome']!r} p={figures['drift_p']:.2g}"


def render(rows: Sequence[StepRow], steps_total: int) -> str:
    header = ["step", "split", "flows", "broken", "unfinished", "send err", "analyses",
              "err old", "err new", "p99 old ms", "p99 new ms", "drift", "verdict"]  # fmt: skip
    table = []
    for row in rows:
        f = (row.last or {}).get("figures", {})
        verdict = (row.last or {}).get("verdict", "-") if row.percent < 100 else "promoted"
        table.append([
            f"{row.index + 1}/{steps_total}", f"{row.percent}%", row.flows, row.broken,
            row.unfinished, row.send_errors, row.analyses, _pct(f.get("old_error_rate")),
            _pct(f.get("new_error_rate")), _ms(f.get("old_p99_ms")), _ms(f.get("new_p99_ms")),
            _drift(f), verdict,
        ])  # fmt: skip
    return format_table(header, table) + "\n" + LEGEND


def caught_after(
    steps: Sequence[tuple[int, float]], ended: float | None, above: int | None
) -> float | None:
    """Seconds from the fault's start (the first step over `above` %) to the rollback."""
    starts = [at for percent, at in steps if above is None or percent > above]
    if ended is None or not starts:
        return None
    return ended - starts[0]
