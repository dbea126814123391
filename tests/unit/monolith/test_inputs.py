"""Pure input checks: e-mail and phone shapes, JSON bodies, pagination."""

from __future__ import annotations

import pytest

from strangler.monolith.inputs import ApiError, is_phone, normalise_email, page, parse_json_object


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a@b.example", "a@b.example"),
        ("  Ada@Example.ORG \n", "ada@example.org"),
        ("a@b", None),
        ("a@@b.example", None),
        ("a b@c.example", None),
        ("@b.example", None),
        ("a@b.", None),
        ("", None),
        ("a@" + "b" * 250 + ".example", None),
    ],
)
def test_normalise_email(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("+15551234567", True),
        ("+4930123456", True),
        ("+123456789012345", True),
        ("+1234567890123456", False),  # 16 digits: longer than E.164 allows
        ("+0123456789", False),
        ("15551234567", False),
        ("+1555123456\n", False),
        ("+1555-123-4567", False),
        ("+1234567", False),
    ],
)
def test_is_phone(raw: str, ok: bool) -> None:
    assert is_phone(raw) is ok


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"nul", id="bad-literal"),
        pytest.param(b"\xff\xfe{", id="bad-utf8"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b'{"a": Infinity}', id="infinity"),
        pytest.param(b'{"a": [-Infinity]}', id="minus-infinity"),
    ],
)
def test_unparseable_bodies_are_invalid_json(raw: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw)
    assert (caught.value.status, caught.value.error) == (400, "invalid_json")


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"1", b"null", b"true"])
def test_json_that_is_not_an_object_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw)
    assert caught.value.error == "invalid_json"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "-1"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"limit": " 5"}, "invalid_limit"),
        ({"limit": "\u0665"}, "invalid_limit"),  # an Arabic-Indic five: int() would take it
        ({"offset": "-1"}, "invalid_offset"),
        ({"offset": "1.5"}, "invalid_offset"),
        ({"offset": "9" * 30}, "invalid_offset"),
        ({"offset": ""}, "invalid_offset"),
    ],
)
def test_bad_pagination(args: dict[str, str], error: str) -> None:
    with pytest.raises(ApiError) as caught:
        page(args)
    assert (caught.value.status, caught.value.error) == (400, error)


def test_page_envelope_says_whether_more_follow() -> None:
    window = page({"limit": "2", "offset": "4"})
    assert window.envelope("items", [{"n": 1}, {"n": 2}, {"n": 3}]) == {
        "items": [{"n": 1}, {"n": 2}],
        "limit": 2,
        "offset": 4,
        "next_offset": 6,
    }
    assert window.envelope("items", [{"n": 1}])["next_offset"] is None
