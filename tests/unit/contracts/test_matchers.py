"""Tree comparison: every difference is found and reads as path, recorded, actual."""

from __future__ import annotations

import pytest

from strangler.contracts.matchers import MISSING, compare, validate_matcher

VE_ID = {"$regex": "^VE[0-9a-f]{32}$"}


def diff(expected, actual, values=None) -> list[str]:
    return [str(m) for m in compare(expected, actual, values or {}, "json")]


def test_equal_trees_have_no_difference() -> None:
    tree = {"a": [1, {"b": None}], "c": True}
    assert diff(tree, tree) == []


def test_every_difference_is_reported_not_only_the_first() -> None:
    expected = {"status": "approved", "valid": True, "expires_in": 3}
    actual = {"status": "pending", "valid": False, "expiresIn": 3}
    assert diff(expected, actual) == [
        "json.status: recorded 'approved', actual 'pending'",
        "json.valid: recorded True, actual False",
        "json.expires_in: recorded 3, actual (absent)",
        "json.expiresIn: recorded (absent), actual 3",
    ]


def test_a_boolean_is_not_an_integer() -> None:
    assert diff({"n": 1}, {"n": True}) == ["json.n: recorded 1, actual True"]


@pytest.mark.parametrize(
    ("matcher", "good", "bad", "reads"),
    [
        (VE_ID, "VE" + "a" * 32, "VE" + "A" * 32, "a string matching ^VE[0-9a-f]{32}$"),
        ({"$type": "int"}, 5, "5", "any int"),
        ({"$type": "number"}, 5, None, "any number"),
        ({"$type": "object"}, {}, [], "any object"),
    ],
)
def test_matchers_accept_their_shape_only(matcher, good, bad, reads) -> None:
    assert diff({"x": matcher}, {"x": good}) == []
    assert diff({"x": matcher}, {"x": bad}) == [f"json.x: recorded {reads}, actual {bad!r}"]


def test_a_redacted_value_never_shows_in_a_report() -> None:
    expected = {"code": {"$redacted": "^[0-9]{6}$"}}
    assert diff(expected, {"code": "123456"}) == []
    report = diff(expected, {"code": "12345"})
    assert report == [
        "json.code: recorded a string matching ^[0-9]{6}$ (redacted), "
        "actual (hidden: redacted field)"
    ]


def test_any_accepts_even_absence() -> None:
    assert diff({"x": {"$any": True}}, {}) == []


def test_list_lengths_and_items_are_compared() -> None:
    assert diff([1, 2], [1]) == ["json[1]: recorded 2, actual (absent)"]
    assert diff([1], [1, 5]) == ["json[1]: recorded (absent), actual 5"]


def test_placeholders_are_filled_with_the_runs_values() -> None:
    assert diff({"id": "{{id}}"}, {"id": "VE1"}, {"id": "VE1"}) == []
    assert diff({"id": "{{id}}"}, {"id": "VE2"}, {"id": "VE1"}) == [
        "json.id: recorded 'VE1', actual 'VE2'"
    ]
    assert "unknown variable {{id}}" in diff({"id": "{{id}}"}, {"id": "VE2"})[0]


def test_a_missing_top_level_value_reads_as_absent() -> None:
    assert diff(404, MISSING) == ["json: recorded 404, actual (absent)"]


@pytest.mark.parametrize(
    ("matcher", "message"),
    [({"$type": "integer"}, "'integer' is not one of"), ({"$regex": "("}, "not a regular")],
)
def test_malformed_matchers_are_refused(matcher, message) -> None:
    with pytest.raises(ValueError, match=message):
        validate_matcher(matcher)
