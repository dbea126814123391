"""Outcome counts of analysed routes: labels from bounded bodies, merged across workers."""

from __future__ import annotations

from strangler.proxy.outcomes import MAX_OUTCOMES, OTHER, OutcomeCounts, merge, read_limit
from strangler.routing.rollout import OUTCOME_BODY_LIMIT
from strangler.routing.table import parse_text
from tests.unit.routing.test_table import variant

ROUTE = parse_text(
    variant(routes__0__rollout={"outcome": ["error", "status"]},
            routes__0__split={"monolith": 50, "verification": 50}),
    "routes.yaml",
).routes[0]  # fmt: skip


def body(data: bytes, chunks: int = 1) -> bytearray:
    sample = bytearray()
    for _ in range(chunks):
        read_limit(sample, data)
    return sample


def test_an_answer_is_counted_with_its_outcome_errors_and_latency() -> None:
    counts = OutcomeCounts()
    counts.record(ROUTE, "verification", 200, 0.003, body(b'{"status": "approved"}'))
    counts.record(ROUTE, "verification", 503, 0.001, body(b'{"error": "unavailable"}'))
    counts.connect_failure(ROUTE.name, "verification")
    ((route, backend, series),) = counts.snapshot()
    assert (route, backend) == ("verification", "verification")
    assert (series["requests"], series["errors"], series["connect_failures"]) == (2, 1, 1)
    assert series["outcomes"] == {"200 status=approved": 1, "503 error=unavailable": 1}
    assert sum(series["buckets"]) == 2


def test_a_body_over_the_bound_is_kept_to_one_byte_past_it_and_counted_by_status() -> None:
    sample = body(b"x" * 1000, chunks=5)
    assert len(sample) == OUTCOME_BODY_LIMIT + 1
    counts = OutcomeCounts()
    counts.record(ROUTE, "monolith", 200, 0.001, sample)
    assert counts.snapshot()[0][2]["outcomes"] == {"200": 1}


def test_outcomes_past_the_cap_are_counted_as_other() -> None:
    counts = OutcomeCounts()
    for i in range(MAX_OUTCOMES + 5):
        counts.record(ROUTE, "monolith", 200, 0.001, body(b'{"status": "s%d"}' % i))
    outcomes = counts.snapshot()[0][2]["outcomes"]
    assert len(outcomes) == MAX_OUTCOMES + 1 and outcomes[OTHER] == 5


def test_workers_counts_are_summed_in_the_admin_status() -> None:
    one, two = OutcomeCounts(), OutcomeCounts()
    one.record(ROUTE, "monolith", 200, 0.001, body(b'{"status": "approved"}'))
    two.record(ROUTE, "monolith", 200, 0.001, body(b'{"status": "approved"}'))
    two.record(ROUTE, "verification", 404, 0.001, body(b'{"error": "not_found"}'))
    merged = merge([one.snapshot(), two.snapshot()])
    assert merged["verification"]["monolith"]["outcomes"] == {"200 status=approved": 2}
    assert merged["verification"]["verification"]["requests"] == 1


def test_a_label_starts_with_what_was_asked_ids_folded() -> None:
    counts = OutcomeCounts()
    counts.record(ROUTE, "monolith", 200, 0.001, body(b'{"status": "approved"}'), "POST",
                  b"/api/verification/check")  # fmt: skip
    counts.record(ROUTE, "monolith", 404, 0.001, None, "GET", b"/api/verification/ab12/x")
    assert counts.snapshot()[0][2]["outcomes"] == {
        "POST /api/verification/check -> 200 status=approved": 1,
        "GET /api/verification/:id/x -> 404": 1,
    }
