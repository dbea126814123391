"""Placeholders: filled per run with fresh values, and turned back for recordings."""

from __future__ import annotations

import re

import pytest

from strangler.contracts.templating import (
    UnknownVariableError,
    VariableKind,
    generate,
    render,
    unrender,
)


def test_a_whole_placeholder_keeps_the_type_of_its_value() -> None:
    tree = {"author_id": "{{id}}", "path": "/api/users/{{id}}", "list": ["{{name}}", 3]}
    assert render(tree, {"id": 7, "name": "bo"}) == {
        "author_id": 7,
        "path": "/api/users/7",
        "list": ["bo", 3],
    }


def test_an_unknown_placeholder_is_named() -> None:
    with pytest.raises(UnknownVariableError, match=r"\{\{code\}\}"):
        render({"code": "{{code}}"}, {})


def test_generated_values_are_valid_and_fresh_per_run() -> None:
    kinds = {"phone": VariableKind.PHONE, "email": VariableKind.EMAIL, "key": VariableKind.TOKEN}
    first, second = generate(kinds), generate(kinds)
    assert re.fullmatch(r"\+[1-9][0-9]{7,14}", first["phone"])
    assert re.fullmatch(r"[a-z0-9-]+@[a-z]+\.example", first["email"])
    assert first != second


def test_a_typo_in_a_variable_kind_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'phon'.*phone, email, name, token"):
        VariableKind.parse("phon")


def test_unrender_replaces_generated_values_inside_strings() -> None:
    generated = {"phone": "+15551234567"}
    tree = {"to": "+15551234567", "message": "no code for +15551234567", "n": 1}
    assert unrender(tree, generated, {}) == {
        "to": "{{phone}}",
        "message": "no code for {{phone}}",
        "n": 1,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("VE0123456789abcdef0123456789abcdef", "{{id}}"),  # the whole string: a placeholder
        ("id VE0123456789abcdef0123456789abcdef", "id VE0123456789abcdef0123456789abcdef"),
        ("sms", "sms"),  # too short to be anything but a coincidence
    ],
)
def test_unrender_replaces_captured_values_only_when_whole(value: str, expected: str) -> None:
    captured = {"id": "VE0123456789abcdef0123456789abcdef", "channel": "sms"}
    assert unrender(value, {}, captured) == expected
