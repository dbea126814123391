"""Noise inference: two runs merged, exact where they agree, matchers where they differ."""

from __future__ import annotations

import pytest

from strangler.contracts.noise import apply_overrides, merge
from strangler.contracts.paths import PathError

ID_A, ID_B = "VE" + "1" * 32, "VE" + "2" * 32


def test_agreeing_values_stay_exact() -> None:
    run = {"status": 201, "json": {"to": "{{phone}}", "expires_in": 3, "valid": True}}
    assert merge(run, run) == run


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (ID_A, ID_B, {"$regex": "^VE[0-9a-f]{32}$"}),
        (7, 8, {"$type": "int"}),
        (1.5, 2, {"$type": "number"}),
        ("123456", "654321", {"$regex": "^[0-9]+$"}),
        ("abc", "xyz", {"$type": "str"}),
        ("abc", None, {"$any": True}),
        ([1], [1, 2], {"$type": "list"}),
    ],
)
def test_differing_values_become_the_narrowest_matcher(a, b, expected) -> None:
    assert merge({"v": a}, {"v": b}) == {"v": expected}


@pytest.mark.parametrize("value", ["2026-11-22T22:29:00Z", ID_A, 1795386540])
def test_ids_and_times_are_noise_even_when_both_runs_agree(value) -> None:
    assert merge({"v": value}, {"v": value}) != {"v": value}


def test_a_key_seen_in_one_run_only_may_be_absent() -> None:
    assert merge({"a": 1, "b": 2}, {"a": 1}) == {"a": 1, "b": {"$any": True}}


def test_keys_come_out_sorted_so_recordings_are_stable() -> None:
    assert list(merge({"b": 1, "a": 2}, {"a": 2, "b": 1})) == ["a", "b"]


def test_explicit_matchers_win_and_defaults_apply_where_the_path_exists() -> None:
    expected = {"status": 429, "headers": {"retry-after": "600"}, "json": {"message": "x"}}
    result = apply_overrides(
        expected,
        {"headers.Retry-After": {"$regex": "^[1-9][0-9]*$"}},
        {"json.message": {"$type": "str"}, "json.missing": {"$type": "int"}},
    )
    assert result == {
        "status": 429,
        "headers": {"retry-after": {"$regex": "^[1-9][0-9]*$"}},
        "json": {"message": {"$type": "str"}},
    }


def test_a_step_matcher_for_a_value_the_response_lacks_is_an_error() -> None:
    with pytest.raises(PathError, match=r"json\.nothing"):
        apply_overrides({"json": {}}, {"json.nothing.deeper": {"$type": "int"}}, {})
