"""The benchmark's figures: failures, misrouted answers, ratios to the backend hit directly."""

from __future__ import annotations

from strangler.loadtests.compare import TARGETS, Target, render, target_figures
from strangler.loadtests.flows import Exchange, Flow


def flow(backend: str | None, approved: bool = True, seconds: float = 0.01) -> Flow:
    send = Exchange(201, backend, seconds)
    check = Exchange(200, backend, seconds)
    return Flow("+1555", "", 0.0, 0.05, send, check, approved)


def test_requests_per_second_count_sends_and_checks() -> None:
    got = target_figures(Target("m", "m"), [flow(None)] * 10, seconds=2.0)
    assert (got.flows, got.requests, got.rps, got.failed) == (10, 20, 10.0, 0)


def test_an_answer_from_the_wrong_backend_counts_as_failed() -> None:
    target = Target("proxy at 100%", "service direct", 100, "verification")
    flows = [flow("verification"), flow("monolith"), flow("verification", approved=False)]
    assert target_figures(target, flows, 1.0).failed == 2


def test_render_gives_each_proxied_target_its_ratio_to_the_direct_backend() -> None:
    speeds = {
        "monolith direct": (100, 0.002),
        "service direct": (200, 0.001),
        "proxy at 0%": (50, 0.004),
        "proxy at 100%": (100, 0.002),
    }
    figures = {
        t.name: target_figures(t, [flow(t.expect_backend, seconds=speeds[t.name][1])] * 10,
                               10 * 2 / speeds[t.name][0])
        for t in TARGETS
    }  # fmt: skip
    lines = {line.split("  ")[0]: line for line in render(figures).splitlines()}
    assert "0.50x" in lines["proxy at 0%"] and "2.00x" in lines["proxy at 0%"]
    assert "0.50x" in lines["proxy at 100%"]
    assert "1.00x" in lines["monolith direct"]
