"""The `rollout:` block: defaults, every accepted form, and each bad value named with its place."""

from __future__ import annotations

import pytest

from strangler.routing.records import RoutingConfigError
from strangler.routing.rollout import Rollout, outcome_label
from strangler.routing.table import parse_text
from tests.unit.routing.test_table import R0, variant


def parsed(block: object, **changes: object):
    return parse_text(variant(routes__0__rollout=block, **changes), "routes.yaml").routes[0]


def test_an_empty_block_takes_the_defaults() -> None:
    assert parsed({}).rollout == Rollout()
    assert Rollout().steps == (1, 5, 25, 50, 100)


def test_the_issue_s_block_parses_to_its_values() -> None:
    block = {
        "steps": [1, 5, 25, 50, 100], "interval": "60s", "min_requests": 50,
        "max_error_rate": "1%", "max_latency_ratio": 1.5, "outcome": ["error", "status"],
        "max_outcome_drift": "2%", "failed_checks": 2,
        "gate": "pytest tests/contract --backend service -q",
    }  # fmt: skip
    assert parsed(block).rollout == Rollout(
        (1, 5, 25, 50, 100), 60.0, 50, 0.01, 1.5, ("error", "status"), 0.02, 2,
        "pytest tests/contract --backend service -q",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("interval", "2s", 2.0), ("interval", "500ms", 0.5), ("interval", "5m", 300.0),
        ("interval", "1h", 3600.0), ("interval", 30, 30.0), ("interval", 1.5, 1.5),
        ("max_error_rate", "0.5%", 0.005), ("max_error_rate", 0.02, 0.02),
        ("max_error_rate", "0%", 0.0), ("max_outcome_drift", "100%", 1.0),
        ("steps", [100], (100,)), ("outcome", [], ()),
    ],
)  # fmt: skip
def test_accepted_forms(field: str, value: object, expected: object) -> None:
    assert getattr(parsed({field: value}).rollout, field) == expected


W = f"{R0}.rollout"
MALFORMED = [
    ("not a mapping", [1, 2], W, "must be a mapping"),
    ("unknown key", {"step": [1, 100]}, W, "unknown key 'step'"),
    ("steps not a list", {"steps": 5}, f"{W}.steps", "non-empty list"),
    ("steps empty", {"steps": []}, f"{W}.steps", "non-empty list"),
    ("step zero", {"steps": [0, 100]}, f"{W}.steps", "1-100, got 0"),
    ("step over 100", {"steps": [50, 101]}, f"{W}.steps", "got 101"),
    ("step a string", {"steps": ["5%", 100]}, f"{W}.steps", "got '5%'"),
    ("step a bool", {"steps": [True, 100]}, f"{W}.steps", "got True"),
    ("steps falling", {"steps": [50, 25, 100]}, f"{W}.steps", "rise strictly"),
    ("steps repeated", {"steps": [5, 5, 100]}, f"{W}.steps", "rise strictly"),
    ("no promotion", {"steps": [1, 50]}, f"{W}.steps", "(the promotion), got 50"),
    ("too many steps", {"steps": list(range(80, 101))}, f"{W}.steps", "at most 20"),
    ("interval unit", {"interval": "60 sec"}, f"{W}.interval", "got '60 sec'"),
    ("interval zero", {"interval": "0s"}, f"{W}.interval", "above 0"),
    ("interval negative", {"interval": -1}, f"{W}.interval", "got -1"),
    ("interval over a day", {"interval": "25h"}, f"{W}.interval", "at most 86400"),
    ("interval a bool", {"interval": True}, f"{W}.interval", "got True"),
    ("min_requests zero", {"min_requests": 0}, f"{W}.min_requests", "1-1000000, got 0"),
    ("min_requests float", {"min_requests": 2.5}, f"{W}.min_requests", "got 2.5"),
    ("error rate no %", {"max_error_rate": "1"}, f"{W}.max_error_rate", "got '1'"),
    ("error rate over 100%", {"max_error_rate": "150%"}, f"{W}.max_error_rate", "0-100 %"),
    ("error rate over 1", {"max_error_rate": 5}, f"{W}.max_error_rate", "got 5"),
    ("error rate a list", {"max_error_rate": [1]}, f"{W}.max_error_rate", "got [1]"),
    ("ratio below 1", {"max_latency_ratio": 0.9}, f"{W}.max_latency_ratio", "at least 1"),
    ("ratio a string", {"max_latency_ratio": "1.5x"}, f"{W}.max_latency_ratio", "'1.5x'"),
    ("outcome a string", {"outcome": "status"}, f"{W}.outcome", "list of JSON field names"),
    ("outcome bad name", {"outcome": ["a.b"]}, f"{W}.outcome", "bad field name 'a.b'"),
    ("outcome digit first", {"outcome": ["1st"]}, f"{W}.outcome", "bad field name '1st'"),
    ("outcome twice", {"outcome": ["status", "status"]}, f"{W}.outcome", "twice"),
    ("outcome too many", {"outcome": list("abcdefghi")}, f"{W}.outcome", "at most 8"),
    ("drift no %", {"max_outcome_drift": "2 percent"}, f"{W}.max_outcome_drift", "'2 percent'"),
    ("failed_checks zero", {"failed_checks": 0}, f"{W}.failed_checks", "got 0"),
    ("gate empty", {"gate": "  "}, f"{W}.gate", "must be a command line"),
    ("gate unbalanced quote", {"gate": "pytest 'x"}, f"{W}.gate", "cannot be split"),
    ("gate a list", {"gate": ["pytest"]}, f"{W}.gate", "must be a command line"),
]


@pytest.mark.parametrize(("block", "where", "fragment"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])  # fmt: skip
def test_a_bad_rollout_block_is_refused_naming_the_file_route_and_field(
    block: object, where: str, fragment: str
) -> None:
    with pytest.raises(RoutingConfigError) as caught:
        parsed(block)
    assert caught.value.source == "routes.yaml"
    assert caught.value.where == where
    assert fragment in caught.value.detail


def test_a_rollout_needs_a_two_backend_split_with_a_fallback() -> None:
    with pytest.raises(RoutingConfigError) as caught:
        parsed({}, routes__0__split={"monolith": 100}, routes__0__fallback="monolith")
    assert caught.value.where == W
    assert "two backends" in caught.value.detail


@pytest.mark.parametrize(("share", "analysed"), [(0, False), (1, True), (50, True), (100, False)])
def test_a_route_is_analysed_only_while_both_backends_get_traffic(share: int, analysed: bool):
    split = {"monolith": 100 - share, "verification": share}
    assert parsed({}, routes__0__split=split).analysed is analysed


def test_a_route_without_a_rollout_is_never_analysed() -> None:
    text = variant(routes__0__split={"monolith": 50, "verification": 50})
    assert parse_text(text, "routes.yaml").routes[0].analysed is False


@pytest.mark.parametrize(
    ("status", "body", "fields", "label"),
    [
        (200, b'{"status": "approved", "valid": true}', ("error", "status"), "200 status=approved"),
        (404, b'{"error": "not_found", "m": 1}', ("error", "status"), "404 error=not_found"),
        (200, b'{"valid": false}', ("valid",), "200 valid=false"),
        (200, b'{"status": "approved"}', (), "200"),
        (502, None, ("error",), "502"),
        (200, b"<html>", ("status",), "200"),
        (200, b"[1, 2]", ("status",), "200"),
        (200, b'{"status": "' + b"x" * 100 + b'"}', ("status",), "200 status=" + "x" * 32),
    ],
)  # fmt: skip
def test_an_answer_s_outcome_label(status: int, body: bytes | None, fields: tuple, label: str):
    assert outcome_label(status, body, fields) == label
